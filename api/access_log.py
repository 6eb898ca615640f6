"""Access log: one structured line per request — method, route, status, duration, user id.

uvicorn's own access log stays off (``api.serve``): it writes the raw path and query string,
which carry patient ids and clinical filters. This one writes the route's template
(``/api/v1/patients/{patient_id}/readings``) instead of the path, never the query or the body,
and the signed-in user's id (set by ``api.auth.authenticate``; none for a refused or anonymous
request). A request no route serves is logged as ``route: null``. A live stream is logged when
it ends, with how long it lasted.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["AccessLog"]

log = logging.getLogger("homecare.api.access")


class AccessLog:
    """AccessLog writes the ``request`` log line of every HTTP request (INFO)."""

    def __init__(self, app: ASGIApp, *, prefix: str) -> None:
        self.app = app
        self.prefix = prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        scope.setdefault("state", {})
        status = 500  # unless an answer starts: what the client will see
        started = time.perf_counter()

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            principal = scope["state"].get("principal")
            log.info(
                "request",
                extra={
                    "method": scope["method"],
                    "route": self._template(scope),
                    "status": status,
                    "duration_ms": round((time.perf_counter() - started) * 1000, 1),
                    "user_id": str(principal.user_id) if principal is not None else None,
                },
            )

    def _template(self, scope: Scope) -> str | None:
        """_template is the path template of the route that served the request. FastAPI keeps
        the route as its router declared it (``/patients/{patient_id}``): a route of a router
        included under the API prefix gets the prefix back."""
        route: Any = scope.get("route")
        path = getattr(route, "path", None)
        if not isinstance(path, str):
            return None
        under_prefix = scope["path"].startswith(self.prefix + "/")
        return self.prefix + path if under_prefix and not path.startswith(self.prefix) else path
