"""Static: the dashboard's script, styles and charting library, served from local files.

The charting library is uPlot (npm ``uplot``, MIT, ~50 kB, draws thousands of points on a
canvas without a framework), installed into ``api/dashboard/node_modules`` by ``scripts/test``
and ``scripts/demo`` (``npm ci`` from ``package-lock.json``) — never fetched from a CDN at run
time. Only the files listed here are served (no directory is exposed). When the npm packages
are missing, the library's URLs answer 404 and the pages still work, without charts (the page
says so); the start-up log names the fix.
"""

from __future__ import annotations

import logging
from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse, Response

__all__ = ["FILES", "router", "vendor_missing"]

log = logging.getLogger(__name__)

HERE = Path(__file__).parent
VENDOR = HERE / "node_modules"
FILES: dict[str, tuple[Path, str]] = {
    "dashboard.js": (HERE / "static" / "dashboard.js", "text/javascript"),
    "dashboard.css": (HERE / "static" / "dashboard.css", "text/css"),
    "uplot.js": (VENDOR / "uplot" / "dist" / "uPlot.iife.min.js", "text/javascript"),
    "uplot.css": (VENDOR / "uplot" / "dist" / "uPlot.min.css", "text/css"),
}

router = APIRouter(include_in_schema=False)


def vendor_missing() -> list[str]:
    """vendor_missing lists the npm files that are not installed."""
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
