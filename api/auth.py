"""Auth: who is calling, and may they — FastAPI dependencies every route declares.

A request carries its credentials either as ``Authorization: Bearer <token>`` (API clients,
the command line's tokens) or as the dashboard's session cookie (``homecare_session``: httponly,
SameSite=Strict, Secure in production), set by ``POST /api/v1/auth/login`` or the dashboard's
sign-in form. Both are the same kind of token, looked up by hash; the header wins when both
are present.

- ``require_principal``: any signed-in user (401 ``unauthorized`` otherwise).
- ``require_role(*roles)``: one of these roles (403 ``forbidden`` otherwise). Which patients a
  clinician may see is not a role question: it is decided per patient in ``api.scope``.

SameSite=Strict means a browser never sends the cookie on a request started by another site.
A *site* is the registrable domain, though: a page on a sibling host (``x.hospital.example``
beside ``rpm.hospital.example``) is same-site and its requests carry the cookie. So a change
(any method but GET, HEAD, OPTIONS) authenticated by the cookie must also come from this origin
(``Origin``, or ``Referer`` when a browser sends no Origin), or it is a 403 ``cross_origin`` —
in the JSON API as in the dashboard's forms: a body-less POST (ack, revoke, logout) needs no
JSON content type, hence no CORS preflight, so nothing else would stop it. A bearer token is
never attached by a browser on its own, so header-authenticated requests are not checked.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated
from urllib.parse import urlsplit

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from homecare.api.accounts import Principal, Role, principal_for_token
from homecare.api.config import ApiConfig
from homecare.api.db import Conn
from homecare.api.errors import Forbidden, Unauthorized

__all__ = [
    "BAD_TOKEN",
    "NO_CREDENTIALS",
    "SESSION_COOKIE",
    "Admin",
    "Analyst",
    "Clinician",
    "ClinicianOrAdmin",
    "Config",
    "CurrentPrincipal",
    "authenticate",
    "get_config",
    "require_principal",
    "require_role",
    "same_origin",
]

SESSION_COOKIE = "homecare_session"
NO_CREDENTIALS = "sign in first: send Authorization: Bearer <token>"
BAD_TOKEN = "the token is unknown, expired or revoked"
_bearer = HTTPBearer(auto_error=False, description="a token from sign-in or `homecare token`")
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def get_config(request: Request) -> ApiConfig:
    """get_config is the app's ApiConfig."""
    config: ApiConfig = request.app.state.config
    return config


Config = Annotated[ApiConfig, Depends(get_config)]


def same_origin(request: Request) -> bool:
    """same_origin: the request's ``Origin`` (else ``Referer``) is this server's origin, or the
    client sent neither (not a browser: browsers send Origin on every cross-origin change)."""
    source = request.headers.get("origin") or request.headers.get("referer")
    if source is None:
        return True
    parts = urlsplit(source)
    return parts.scheme == request.url.scheme and parts.netloc == request.url.netloc


def require_principal(
    request: Request,
    conn: Conn,
    config: Config,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    """require_principal is the signed-in user; 401 when the credentials are not valid, 403
    ``cross_origin`` for a change authenticated by the session cookie from another origin."""
    cookie_signed = credentials is None and bool(request.cookies.get(SESSION_COOKIE))
    if cookie_signed and request.method not in _SAFE_METHODS and not same_origin(request):
        raise Forbidden(
            "a change signed by the session cookie must come from this site", code="cross_origin"
        )
    return authenticate(request, conn, config, credentials)


def authenticate(
    request: Request,
    conn: Conn,
    config: Config,
    credentials: HTTPAuthorizationCredentials | None,
) -> Principal:
    """authenticate is the user of the bearer token, else of the session cookie; 401 when
    neither is valid (the dashboard's pages call it and check their forms' origin themselves)."""
    token = credentials.credentials if credentials else request.cookies.get(SESSION_COOKIE)
    if not token:
        raise Unauthorized(NO_CREDENTIALS)
    principal = principal_for_token(conn, token, config.clock())
    if principal is None:
        raise Unauthorized(BAD_TOKEN)
    request.state.principal = principal
    return principal


CurrentPrincipal = Annotated[Principal, Depends(require_principal)]


def require_role(*roles: Role) -> Callable[..., Principal]:
    """require_role is a dependency admitting only principals with one of ``roles``."""
    allowed = frozenset(roles)

    def dependency(principal: CurrentPrincipal) -> Principal:
        if principal.role not in allowed:
            raise Forbidden(
                f"a {principal.role} may not do this (needs: {', '.join(sorted(allowed))})"
            )
        return principal

    dependency.__name__ = f"require_{'_or_'.join(sorted(allowed))}"
    # Read by the authorization-matrix test, which checks every route against its table.
    setattr(dependency, "roles", allowed)  # noqa: B010
    return dependency


Clinician = Annotated[Principal, Depends(require_role("nurse", "physician"))]
Admin = Annotated[Principal, Depends(require_role("admin"))]
Analyst = Annotated[Principal, Depends(require_role("analyst"))]
ClinicianOrAdmin = Annotated[Principal, Depends(require_role("nurse", "physician", "admin"))]
