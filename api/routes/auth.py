"""Auth routes: sign in (token and session cookie), sign out, and who am I."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fastapi import APIRouter, Body, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from homecare.api import accounts, audit
from homecare.api.auth import SESSION_COOKIE, Config, CurrentPrincipal
from homecare.api.db import Conn
from homecare.api.errors import ERROR_RESPONSES, BadRequest, ErrorOut
from homecare.api.signin import sign_in
from homecare.api.vocab import Locale

router = APIRouter(prefix="/auth", tags=["auth"], responses=ERROR_RESPONSES)


class LoginIn(BaseModel):
    """LoginIn: a user's name and password."""

    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=1024)


class MeOut(BaseModel):
    """MeOut: the signed-in user as the dashboard needs them."""

    id: str
    username: str
    display_name: str
    role: str
    care_teams: list[str]
    locale: str
    time_zone: str


class LoginOut(BaseModel):
    """LoginOut: the bearer token (shown once) and when it expires."""

    token: str
    token_type: str = "bearer"
    expires_at: datetime


def me_out(principal: accounts.Principal) -> MeOut:
    """me_out is the public view of a principal."""
    return MeOut(
        id=str(principal.user_id),
        username=principal.username,
        display_name=principal.display_name,
        role=principal.role,
        care_teams=sorted(principal.care_teams),
        locale=principal.locale,
        time_zone=principal.time_zone,
    )


def set_session_cookie(response: Response, issued: accounts.IssuedToken, config: Config) -> None:
    """set_session_cookie puts the session token in an httponly, SameSite=Strict cookie."""
    response.set_cookie(
        SESSION_COOKIE,
        issued.token,
        max_age=int(config.session_ttl.total_seconds()),
        httponly=True,
        samesite="strict",
        secure=config.cookie_secure,
        path="/",
    )


def client_address(request: Request) -> str:
    """client_address is the caller's address (uvicorn puts the one a trusted proxy forwarded
    in its place: ``FORWARDED_ALLOW_IPS``)."""
    return request.client.host if request.client else "unknown"


@router.post(
    "/login",
    summary="Sign in with a password; returns a token and sets a cookie",
    responses={429: {"model": ErrorOut, "description": "Too many failed sign-ins: slow down"}},
)
def login(
    body: Annotated[LoginIn, Body()],
    request: Request,
    response: Response,
    conn: Conn,
    config: Config,
) -> LoginOut:
    issued = sign_in(conn, config, body.username, body.password, client_address(request))
    set_session_cookie(response, issued, config)
    return LoginOut(token=issued.token, expires_at=issued.expires_at)


@router.post("/logout", status_code=204, summary="Revoke the token in use")
def logout(principal: CurrentPrincipal, response: Response, conn: Conn, config: Config) -> None:
    accounts.revoke_token(conn, principal.token_id, config.clock())
    audit.record(conn, principal, "auth.logout", "auth/session")
    response.delete_cookie(SESSION_COOKIE, path="/")


@router.get("/me", summary="The signed-in user")
def me(principal: CurrentPrincipal) -> MeOut:
    return me_out(principal)


class MeUpdate(BaseModel):
    """MeUpdate: the signed-in user's own preferences (language, time zone)."""

    model_config = ConfigDict(extra="forbid")

    locale: Locale | None = None
    time_zone: str | None = Field(default=None, min_length=1, max_length=64)


@router.patch("/me", summary="Change the signed-in user's language or time zone")
def update_me(body: MeUpdate, principal: CurrentPrincipal, conn: Conn) -> MeOut:
    changes: dict[str, str] = {}
    if body.locale is not None:
        changes["locale"] = body.locale
    if body.time_zone is not None:
        try:
            ZoneInfo(body.time_zone)
        except (ZoneInfoNotFoundError, ValueError):
            raise BadRequest(
                f"unknown IANA time zone {body.time_zone!r}", code="unknown_time_zone"
            ) from None
        changes["time_zone"] = body.time_zone
    if changes:
        assignments = ", ".join(f"{column} = %({column})s" for column in changes)
        conn.execute(
            f"UPDATE users SET {assignments} WHERE id = %(id)s",
            {**changes, "id": principal.user_id},
        )
        audit.record(
            conn,
            principal,
            "user.update",
            f"user/{principal.username}",
            {"fields": sorted(changes)},
        )
    return me_out(
        replace(
            principal,
            locale=changes.get("locale", principal.locale),
            time_zone=changes.get("time_zone", principal.time_zone),
        )
    )
