"""Users and care teams: administrators create users, teams and memberships.

A user's role is fixed at creation (a nurse who becomes an administrator gets a second
account: least privilege, and the audit trail stays readable). Disabling a user, or resetting
their password, revokes every token of theirs at once, for good: enabling the account again
does not revive them. Passwords are at least 12 characters and stored as argon2id hashes.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import psycopg
from fastapi import APIRouter, Depends, Path
from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from homecare.api import accounts, audit
from homecare.api.auth import Admin, Config
from homecare.api.db import Conn
from homecare.api.errors import ERROR_RESPONSES, Conflict, NotFound
from homecare.api.hashing import MIN_PASSWORD_LENGTH, hash_password
from homecare.api.pagination import Page, PageParams, page
from homecare.api.vocab import Locale

router = APIRouter(tags=["users"], responses=ERROR_RESPONSES)

Username = Annotated[str, Path(pattern=r"^[a-z0-9._@-]{1,64}$")]
TeamId = Annotated[str, Path(pattern=r"^[A-Za-z0-9._-]{1,64}$")]


def _zone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown IANA time zone {value!r}") from None
    return value


TimeZone = Annotated[str, Field(min_length=1, max_length=64), AfterValidator(_zone)]
Password = Annotated[str, Field(min_length=MIN_PASSWORD_LENGTH, max_length=1024)]


class UserCreate(BaseModel):
    """UserCreate: a new user, their role, password and teams."""

    model_config = ConfigDict(extra="forbid")

    username: str = Field(pattern=r"^[a-z0-9._@-]{1,64}$")
    display_name: str = Field(min_length=1, max_length=200)
    role: accounts.Role
    password: Password
    locale: Locale | None = None
    time_zone: TimeZone | None = None
    care_teams: list[str] = Field(default_factory=list, max_length=50)


class UserUpdate(BaseModel):
    """UserUpdate: fields to change (absent: unchanged)."""

    model_config = ConfigDict(extra="forbid")

    display_name: str | None = Field(default=None, min_length=1, max_length=200)
    password: Password | None = None
    locale: Locale | None = None
    time_zone: TimeZone | None = None
    disabled: bool | None = None


class UserOut(BaseModel):
    """UserOut: a user as administrators see them (never a password or hash)."""

    id: uuid.UUID
    username: str
    display_name: str
    role: str
    locale: str
    time_zone: str
    care_teams: list[str]
    disabled: bool
    created_at: datetime


class CareTeamIn(BaseModel):
    """CareTeamIn: a new care team."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=r"^[A-Za-z0-9._-]{1,64}$")
    name: str = Field(min_length=1, max_length=200)
    time_zone: TimeZone | None = None


class CareTeamOut(BaseModel):
    """CareTeamOut: a care team and its members' usernames."""

    id: str
    name: str
    time_zone: str
    members: list[str]


_USER = (
    "SELECT u.id, u.username, u.display_name, u.role, u.locale, u.time_zone,"
    " coalesce((SELECT array_agg(m.care_team ORDER BY m.care_team) FROM care_team_members m"
    " WHERE m.user_id = u.id), '{}'), u.disabled_at IS NOT NULL, u.created_at FROM users u"
)


def _user(conn: psycopg.Connection[Any], username: str) -> UserOut:
    row = conn.execute(_USER + " WHERE u.username = %s", (username,)).fetchone()
    if row is None:
        raise NotFound(f"no user {username!r}")
    return _user_out(row)


def _user_out(row: Any) -> UserOut:
    keys = ("id", "username", "display_name", "role", "locale", "time_zone", "care_teams")
    return UserOut(**dict(zip(keys, row[:7], strict=True)), disabled=row[7], created_at=row[8])


def _team(conn: psycopg.Connection[Any], team: str) -> CareTeamOut:
    row = conn.execute("SELECT id, name, time_zone FROM care_teams WHERE id = %s", (team,))
    found = row.fetchone()
    if found is None:
        raise NotFound(f"no care team {team!r}")
    return CareTeamOut(
        id=found[0],
        name=found[1],
        time_zone=found[2],
        members=list(accounts.team_members(conn, team)),
    )


def _require_teams(conn: psycopg.Connection[Any], teams: list[str]) -> None:
    for team in teams:
        _team(conn, team)


@router.post("/users", status_code=201, summary="Create a user")
def create_user(body: UserCreate, principal: Admin, conn: Conn, config: Config) -> UserOut:
    with conn.transaction():
        if accounts.find_user(conn, body.username) is not None:
            raise Conflict(f"user {body.username!r} exists", code="user_exists")
        _require_teams(conn, body.care_teams)
        user_id = accounts.create_user(
            conn,
            username=body.username,
            display_name=body.display_name,
            role=body.role,
            password=body.password,
            locale=body.locale or config.default_locale,
            time_zone=body.time_zone or config.default_time_zone,
        )
        for team in sorted(set(body.care_teams)):
            accounts.add_member(conn, team, user_id, principal.actor)
        audit.record(
            conn,
            principal,
            "user.create",
            f"user/{body.username}",
            {"role": body.role, "care_teams": sorted(set(body.care_teams))},
        )
        return _user(conn, body.username)


@router.get("/users", summary="Users, by username")
def list_users(
    principal: Admin, conn: Conn, params: Annotated[PageParams, Depends()]
) -> Page[UserOut]:
    after = params.after("users", (str,))
    rows = conn.execute(
        _USER + " WHERE (%s::text IS NULL OR u.username > %s) ORDER BY u.username LIMIT %s",
        (after[0] if after else None, after[0] if after else None, params.limit + 1),
    ).fetchall()
    kept, cursor = page(rows, params.limit, "users", lambda r: (r[1],))
    return Page(data=[_user_out(r) for r in kept], next_cursor=cursor)


@router.get("/users/{username}", summary="One user")
def get_user(username: Username, principal: Admin, conn: Conn) -> UserOut:
    return _user(conn, username)


@router.patch("/users/{username}", summary="Change a user (disable, reset password, …)")
def update_user(
    username: Username, body: UserUpdate, principal: Admin, conn: Conn, config: Config
) -> UserOut:
    changes: dict[str, Any] = {}
    for field in ("display_name", "locale", "time_zone"):
        if getattr(body, field) is not None:
            changes[field] = getattr(body, field)
    if body.password is not None:
        changes["password_hash"] = hash_password(body.password)
    if body.disabled is not None:
        changes["disabled_at"] = config.clock() if body.disabled else None
    with conn.transaction():
        _user(conn, username)
        if changes:
            assignments = ", ".join(f"{column} = %({column})s" for column in changes)
            conn.execute(
                f"UPDATE users SET {assignments} WHERE username = %(username)s",
                {**changes, "username": username},
            )
        if body.disabled or body.password is not None:
            # Ended for good: enabling the account again must not bring back a token that
            # may be in the wrong hands (the reason one disables or resets an account).
            conn.execute(
                "UPDATE api_tokens SET revoked_at = %s WHERE revoked_at IS NULL"
                " AND user_id = (SELECT id FROM users WHERE username = %s)",
                (config.clock(), username),
            )
        audit.record(
            conn,
            principal,
            "user.update",
            f"user/{username}",
            {"fields": sorted(body.model_fields_set)},  # never the password
        )
        return _user(conn, username)


@router.post("/care-teams", status_code=201, summary="Create a care team")
def create_team(body: CareTeamIn, principal: Admin, conn: Conn, config: Config) -> CareTeamOut:
    with conn.transaction():
        if not accounts.create_care_team(
            conn, body.id, body.name, body.time_zone or config.default_time_zone
        ):
            raise Conflict(f"care team {body.id!r} exists", code="care_team_exists")
        audit.record(conn, principal, "care_team.create", f"care_team/{body.id}")
        return _team(conn, body.id)


@router.get("/care-teams", summary="Care teams, by id")
def list_teams(
    principal: Admin, conn: Conn, params: Annotated[PageParams, Depends()]
) -> Page[CareTeamOut]:
    after = params.after("care_teams", (str,))
    rows = conn.execute(
        "SELECT id FROM care_teams WHERE (%s::text IS NULL OR id > %s) ORDER BY id LIMIT %s",
        (after[0] if after else None, after[0] if after else None, params.limit + 1),
    ).fetchall()
    kept, cursor = page(rows, params.limit, "care_teams", lambda r: (r[0],))
    return Page(data=[_team(conn, r[0]) for r in kept], next_cursor=cursor)


@router.put("/care-teams/{team}/members/{username}", summary="Add a user to a care team")
def add_member(team: TeamId, username: Username, principal: Admin, conn: Conn) -> CareTeamOut:
    with conn.transaction():
        _team(conn, team)
        user = _user(conn, username)
        if accounts.add_member(conn, team, user.id, principal.actor):
            audit.record(
                conn, principal, "care_team.add_member", f"care_team/{team}", {"user": username}
            )
        return _team(conn, team)


@router.delete("/care-teams/{team}/members/{username}", summary="Remove a user from a care team")
def remove_member(team: TeamId, username: Username, principal: Admin, conn: Conn) -> CareTeamOut:
    with conn.transaction():
        _team(conn, team)
        user = _user(conn, username)
        cur = conn.execute(
            "DELETE FROM care_team_members WHERE care_team = %s AND user_id = %s",
            (team, user.id),
        )
        if cur.rowcount:
            audit.record(
                conn, principal, "care_team.remove_member", f"care_team/{team}", {"user": username}
            )
        return _team(conn, team)
