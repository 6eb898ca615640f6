"""Auth: who is calling, and may they — FastAPI dependencies every route declares.

A request carries its credentials either as ``Authorization: Bearer <token>`` (API clients,
the command line's tokens) or as the dashboard's session cookie (``homecare_session``: httponly,
SameSite=Strict, Secure in production), set by ``POST /api/v1/auth/login`` or the dashboard's
sign-in form. Both are the same kind of token, looked up by hash; the header wins when both
are present.

- ``require_principal``: any signed-in user (401 ``unauthorized`` otherwise).
- ``require_role(*roles)``: one of these roles (403 ``forbidden`` otherwise). Which patients a
  clinician may see is not a role question: it is decided per patient in ``api.scope``.

SameSite=Strict means a browser never sends the cookie on a request started by another site,
which is what stops cross-site request forgery against the cookie-authenticated actions.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from api.accounts import Principal, Role, principal_for_token
from api.config import ApiConfig
from api.db import Conn
from api.errors import Forbidden, Unauthorized

__all__ = [
    "SESSION_COOKIE",
    "Admin",
    "Analyst",
    "Clinician",
    "ClinicianOrAdmin",
    "Config",
    "CurrentPrincipal",
    "get_config",
    "require_principal",
    "require_role",
]

SESSION_COOKIE = "homecare_session"
_bearer = HTTPBearer(auto_error=False, description="a token from sign-in or `homecare token`")


def get_config(request: Request) -> ApiConfig:
    """get_config is the app's ApiConfig."""
    config: ApiConfig = request.app.state.config
    return config


Config = Annotated[ApiConfig, Depends(get_config)]


def require_principal(
    request: Request,
    conn: Conn,
    config: Config,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    """require_principal is the signed-in user; 401 when the credentials are not valid."""
    token = credentials.credentials if credentials else request.cookies.get(SESSION_COOKIE)
    if not token:
        raise Unauthorized("sign in first: send Authorization: Bearer <token>")
    principal = principal_for_token(conn, token, config.clock())
    if principal is None:
        raise Unauthorized("the token is unknown, expired or revoked")
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
