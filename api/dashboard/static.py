"""Static: the dashboard's script, styles and charting library, served from package files.

The charting library is uPlot (MIT, ~50 kB, draws thousands of points on a canvas without a
framework), vendored in ``vendor/uplot/`` with its licence and version (see its README there):
it ships inside the package, so a wheel installed anywhere serves the charts, and nothing is
fetched from npm or a CDN at build or run time. Only the files listed here are served (no
directory is exposed).
"""

from __future__ import annotations

import logging
from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse, Response

__all__ = ["FILES", "router", "vendor_missing"]

log = logging.getLogger(__name__)

HERE = Path(__file__).parent
VENDOR = HERE / "vendor"
FILES: dict[str, tuple[Path, str]] = {
    "dashboard.js": (HERE / "static" / "dashboard.js", "text/javascript"),
    "dashboard.css": (HERE / "static" / "dashboard.css", "text/css"),
    "uplot.js": (VENDOR / "uplot" / "uPlot.iife.min.js", "text/javascript"),
    "uplot.css": (VENDOR / "uplot" / "uPlot.min.css", "text/css"),
}

router = APIRouter(include_in_schema=False)


def vendor_missing() -> list[str]:
    """vendor_missing lists the served files that are missing (an incomplete install)."""
    return [name for name, (path, _) in FILES.items() if not path.is_file()]


@router.get("/dashboard/static/{name}")
def static_file(name: str) -> Response:
    found = FILES.get(name)
    if found is None or not found[0].is_file():
        return Response(status_code=404)
    path, media_type = found
    return FileResponse(
        path,
        media_type=media_type,
        headers={"Cache-Control": "public, max-age=3600", "X-Content-Type-Options": "nosniff"},
    )
