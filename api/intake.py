"""Intake: what a request must pass before the API reads its body — a size limit, and valid
credentials when its route needs a signed-in user.

FastAPI reads and parses a request's whole body before it runs any dependency, so
``require_principal`` alone let anyone make the server hold and parse whatever they sent:
four 250 MB bodies without a token took the API process from 125 MB to 3.4 GB, and it kept
1.1 GB afterwards (``bench/api_body_flood.py``). So, from the headers alone:

- a declared ``Content-Length`` above ``max_body_bytes`` is answered 413 ``payload_too_large``
  at once, nothing read; a body without one (chunked transfer encoding) is counted as it
  streams and refused with the same answer as soon as it passes the limit — the handler reading
  it gets ``BodyTooLarge``, what was read is dropped and the rest is never read (the server
  then closes the connection). FastAPI's own ``max_body_size`` does the same count but answers
  in plain text from outside the app's error handlers, which would break the API's JSON error
  contract;
- a request with a body to the JSON API (``/api/v1``) is answered 401 ``unauthorized`` unless
  its bearer token or session cookie is valid, before the first byte of the body is read —
  except on the few ``public`` paths (sign-in; the authorization-matrix test checks that they
  are exactly the routes open to everyone). The route's own dependencies still run as for any
  request (role, origin of a cookie-signed change), and a path no route serves still gets its
  404 once signed in.

Pages and forms outside the JSON API (the dashboard, its sign-in form) are bounded by the size
limit only: their forms are small, and a signed-out form is answered with a redirect.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

import psycopg
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from homecare.api.accounts import principal_for_token
from homecare.api.auth import BAD_TOKEN, NO_CREDENTIALS, SESSION_COOKIE
from homecare.api.db import connection
from homecare.api.errors import error_response

__all__ = ["BodyTooLarge", "Intake"]

# A refusal whose unread body may be large or endless closes the connection: otherwise uvicorn
# reads the rest (to discard it, to the last byte) to keep the connection alive. The price: a
# client still sending may see the connection reset instead of the answer. A body declared
# within the limit is left to be discarded, so an ordinary request with an expired token gets
# its 401 reliably.
_CLOSE = {"Connection": "close"}


class BodyTooLarge(HTTPException):
    """BodyTooLarge: a streamed body passed the limit (answered 413 ``payload_too_large``)."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, _limit_message(limit), headers=dict(_CLOSE))


class Intake:
    """Intake refuses, from its headers, a request whose body is too large, or a JSON API
    request with a body and no valid credentials (see the module docstring)."""

    def __init__(
        self, app: ASGIApp, *, prefix: str, public: Collection[str], max_body_bytes: int
    ) -> None:
        self.app = app
        self.prefix = prefix
        self.public = frozenset(public)
        self.limit = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        declared = _content_length(headers)
        if declared is not None and declared > self.limit:
            await _refused(413, "payload_too_large", _limit_message(self.limit))(
                scope, receive, send
            )
            return
        has_body = bool(declared) or "transfer-encoding" in headers
        path: str = scope["path"]
        if has_body and path.startswith(self.prefix + "/") and path not in self.public:
            refusal = await _refusal(scope, close=declared is None)
            if refusal is not None:
                await refusal(scope, receive, send)
                return
        await self.app(scope, self._counting(receive), send)

    def _counting(self, receive: Receive) -> Receive:
        limit = self.limit
        received = 0

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)
            return message

        return counting_receive


def _content_length(headers: Headers) -> int | None:
    try:
        return int(headers["content-length"])
    except (KeyError, ValueError):
        return None


async def _refusal(scope: Scope, *, close: bool) -> Any:
    """_refusal is the answer to a request without valid credentials (None: they are valid) —
    the same lookup and the same answers as ``require_principal``."""
    conn_ = HTTPConnection(scope)
    scheme, _, credentials = conn_.headers.get("authorization", "").partition(" ")
    token = credentials.strip() if scheme.lower() == "bearer" else ""
    token = token or conn_.cookies.get(SESSION_COOKIE, "")
    if not token:
        return _refused(401, "unauthorized", NO_CREDENTIALS, close=close)
    app = scope["app"]
    try:
        async with connection(app) as conn:
            principal = await run_in_threadpool(
                principal_for_token, conn, token, app.state.config.clock()
            )
    except psycopg.OperationalError:
        message = "the database is not reachable; retry later"
        return _refused(503, "unavailable", message, close=close)
    if principal is None:
        return _refused(401, "unauthorized", BAD_TOKEN, close=close)
    return None


def _limit_message(limit: int) -> str:
    return f"the request body is larger than the limit of {limit} bytes"


def _refused(status: int, code: str, message: str, *, close: bool = True) -> Any:
    response = error_response(status, code, message)
    if close:
        response.headers.update(_CLOSE)
    return response
