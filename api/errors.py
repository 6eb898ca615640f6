"""Errors: every failure the API answers is JSON ``{"code", "message"}`` with a stable code.

    ApiError (status, code, message[, details])
     ├── BadRequest       400  invalid_cursor, invalid_request, invalid_pack, …
     ├── Unauthorized     401  unauthorized (no, unknown, expired or revoked credentials),
     │                         login_failed
     ├── Forbidden        403  forbidden (the role may not do this), cross_origin (a change
     │                         signed by the session cookie, sent from another origin)
     ├── NotFound         404  not_found (also: a patient of another care team — see api.scope)
     ├── Conflict         409  conflict, invalid_transition, device_revoked, …
     └── TooManyRequests  429  too_many_sign_ins (with Retry-After; see api.throttle)

Before any route, ``api.intake`` answers 413 ``payload_too_large`` (a body over the limit) and
401 ``unauthorized`` (a body sent without valid credentials) from the headers alone.
Everything else is translated at the boundary, here, so no route handles it: FastAPI's request
validation → 422 ``invalid_request`` (with the field errors in ``details``); Starlette's own
HTTP errors (unknown path, wrong method) → their status with ``not_found`` /
``method_not_allowed``; the store's ``Rejected`` and PostgreSQL's integrity errors (data the
database refused) → 409 ``conflict``, its data errors (a value out of range) → 400
``invalid_value``;
the alerts stage's ``AlertNotFound`` / ``InvalidTransition`` → 404 / 409; the store being
unreachable → 503 ``unavailable``; anything unexpected → 500 ``internal_error``, logged with the
request id, never with the exception text in the answer (it may hold health data).

The codes are part of the contract: clients branch on ``code``; ``message`` is for people.
"""

from __future__ import annotations

import logging
from typing import Any

import psycopg
from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from homecare import store
from homecare.alerts import AlertNotFound, InvalidTransition

__all__ = [
    "ERROR_RESPONSES",
    "ApiError",
    "BadRequest",
    "Conflict",
    "ErrorOut",
    "Forbidden",
    "NotFound",
    "TooManyRequests",
    "Unauthorized",
    "install_error_handlers",
]

log = logging.getLogger(__name__)

_STATUS_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "invalid_request",
    429: "too_many_requests",
    500: "internal_error",
    503: "unavailable",
}


class ApiError(Exception):
    """ApiError is an answer the API chose to give: a status, a stable code and a message."""

    status = 400
    code = "bad_request"

    def __init__(self, message: str, *, code: str | None = None, details: Any = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.details = details


class BadRequest(ApiError):
    """BadRequest: the request is well-formed JSON but asks for something invalid."""

    status = 400
    code = "bad_request"


class Unauthorized(ApiError):
    """Unauthorized: no valid credentials (missing, unknown, expired, revoked, disabled user)."""

    status = 401
    code = "unauthorized"


class Forbidden(ApiError):
    """Forbidden: the principal's role may not do this (whoever the patient is)."""

    status = 403
    code = "forbidden"


class NotFound(ApiError):
    """NotFound: no such thing — or one the principal may not know exists."""

    status = 404
    code = "not_found"


class Conflict(ApiError):
    """Conflict: the request contradicts the current state."""

    status = 409
    code = "conflict"


class TooManyRequests(ApiError):
    """TooManyRequests: slow down; ``retry_after`` seconds (sent as ``Retry-After``)."""

    status = 429
    code = "too_many_requests"

    def __init__(self, message: str, *, retry_after: int, code: str | None = None) -> None:
        super().__init__(message, code=code)
        self.retry_after = retry_after


def _body(code: str, message: str, details: Any = None) -> dict[str, Any]:
    body: dict[str, Any] = {"code": code, "message": message}
    if details is not None:
        body["details"] = jsonable_encoder(details)
    return body


def error_response(status: int, code: str, message: str, details: Any = None) -> JSONResponse:
    """error_response is the JSON answer for an error."""
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse(_body(code, message, details), status_code=status, headers=headers)


def install_error_handlers(app: FastAPI) -> None:
    """install_error_handlers makes every error of ``app`` a JSON body with a stable code."""

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
        response = error_response(exc.status, exc.code, exc.message, exc.details)
        if isinstance(exc, TooManyRequests):
            response.headers["Retry-After"] = str(exc.retry_after)
        return response

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")}
            for e in exc.errors()
        ]
        first = errors[0] if errors else {"loc": [], "msg": "invalid request"}
        where = ".".join(str(p) for p in first["loc"])
        return error_response(422, "invalid_request", f"{where}: {first['msg']}", errors)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _STATUS_CODES.get(exc.status_code, "error")
        message = exc.detail if isinstance(exc.detail, str) else code.replace("_", " ")
        response = error_response(exc.status_code, code, message)
        if exc.headers:
            response.headers.update(exc.headers)
        return response

    @app.exception_handler(AlertNotFound)
    async def _alert_not_found(request: Request, exc: AlertNotFound) -> JSONResponse:
        return error_response(404, "not_found", str(exc))

    @app.exception_handler(InvalidTransition)
    async def _invalid_transition(request: Request, exc: InvalidTransition) -> JSONResponse:
        return error_response(409, "invalid_transition", str(exc))

    @app.exception_handler(store.Rejected)
    async def _rejected(request: Request, exc: store.Rejected) -> JSONResponse:
        return error_response(409, "conflict", str(exc))

    @app.exception_handler(psycopg.IntegrityError)
    async def _integrity(request: Request, exc: psycopg.IntegrityError) -> JSONResponse:
        return error_response(409, "conflict", "the change conflicts with the stored data")

    @app.exception_handler(psycopg.DataError)
    async def _data(request: Request, exc: psycopg.DataError) -> JSONResponse:
        return error_response(400, "invalid_value", "a value is out of range for the store")

    @app.exception_handler(psycopg.OperationalError)
    async def _unavailable(request: Request, exc: psycopg.OperationalError) -> JSONResponse:
        log.warning("database unavailable", extra={"path": request.url.path})
        return error_response(503, "unavailable", "the database is not reachable; retry later")

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error", extra={"path": request.url.path})
        return error_response(500, "internal_error", "internal error; it has been logged")


class ErrorOut(BaseModel):
    """ErrorOut is the error shape, for the OpenAPI document."""

    code: str
    message: str
    details: Any = None


# Responses every route may give, for the OpenAPI document (the fuzzer checks them).
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorOut, "description": description}
    for status, description in (
        (400, "Bad request"),
        (401, "No valid credentials"),
        (403, "The role may not do this"),
        (404, "Not found (or not visible to this principal)"),
        (409, "Conflict with the current state"),
        (413, "Request body larger than the configured limit"),
        (422, "Invalid request"),
    )
}
