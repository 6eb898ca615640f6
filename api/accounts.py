"""Accounts: users, care teams, memberships and tokens — the queries behind sign-in and access.

A principal is looked up from a token's SHA-256 in one query that also refuses expired and
revoked tokens and disabled users, and reads the user's care teams. Sign-in checks a password at
the same cost whether or not the user exists; how often one may try is ``api.throttle``'s job
(a slow hash alone does not stop an online guesser).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

import psycopg

from homecare.api.hashing import hash_password, hash_token, needs_rehash, new_token, verify_password

__all__ = [
    "ROLES",
    "IssuedToken",
    "LoginResult",
    "Principal",
    "Role",
    "add_member",
    "create_care_team",
    "create_user",
    "find_user",
    "issue_token",
    "login",
    "principal_for_token",
    "revoke_token",
]

Role = Literal["nurse", "physician", "analyst", "admin"]
ROLES: tuple[Role, ...] = ("nurse", "physician", "analyst", "admin")


@dataclass(frozen=True)
class Principal:
    """Principal: who is calling — the user, their role, care teams, locale and time zone.

    ``actor`` is how they appear in the audit log and in the alerts' ``acknowledged_by`` /
    ``resolved_by``: ``user:<username>``, stable and free of health data.
    """

    user_id: uuid.UUID
    username: str
    display_name: str
    role: Role
    care_teams: frozenset[str]
    locale: str
    time_zone: str
    token_id: int

    @property
    def actor(self) -> str:
        return f"user:{self.username}"

    @property
    def is_clinician(self) -> bool:
        """is_clinician: a nurse or physician, who sees their care teams' patients."""
        return self.role in ("nurse", "physician")


@dataclass(frozen=True)
class IssuedToken:
    """IssuedToken: a new token (the secret, shown once) and when it expires."""

    token: str
    token_id: int
    expires_at: datetime


@dataclass(frozen=True)
class LoginResult:
    """LoginResult: ``token`` on success; ``known``: the name is an enabled user's (for the
    audit trail only — the caller's answer must not depend on it)."""

    token: IssuedToken | None
    known: bool = True


def create_care_team(
    conn: psycopg.Connection[Any], team_id: str, name: str, time_zone: str
) -> bool:
    """create_care_team adds a team; False if it already exists (left unchanged)."""
    cur = conn.execute(
        "INSERT INTO care_teams (id, name, time_zone) VALUES (%s, %s, %s)"
        " ON CONFLICT (id) DO NOTHING",
        (team_id, name, time_zone),
    )
    return cur.rowcount == 1


def create_user(
    conn: psycopg.Connection[Any],
    *,
    username: str,
    display_name: str,
    role: Role,
    password: str | None,
    locale: str,
    time_zone: str,
) -> uuid.UUID:
    """create_user adds a user (password hashed with argon2id; None: token sign-in only)."""
    row = conn.execute(
        "INSERT INTO users (username, display_name, role, password_hash, locale, time_zone)"
        " VALUES (%s, %s, %s, %s, %s, %s) RETURNING id",
        (
            username,
            display_name,
            role,
            hash_password(password) if password is not None else None,
            locale,
            time_zone,
        ),
    ).fetchone()
    assert row is not None
    return row[0]  # type: ignore[no-any-return]


def find_user(conn: psycopg.Connection[Any], username: str) -> tuple[uuid.UUID, str] | None:
    """find_user gives (id, role) of a user by name."""
    row = conn.execute("SELECT id, role FROM users WHERE username = %s", (username,)).fetchone()
    return (row[0], row[1]) if row else None


def add_member(
    conn: psycopg.Connection[Any], team_id: str, user_id: uuid.UUID, added_by: str
) -> bool:
    """add_member puts the user in the team; False if already a member."""
    cur = conn.execute(
        "INSERT INTO care_team_members (care_team, user_id, added_by) VALUES (%s, %s, %s)"
        " ON CONFLICT DO NOTHING",
        (team_id, user_id, added_by),
    )
    return cur.rowcount == 1


def issue_token(
    conn: psycopg.Connection[Any],
    user_id: uuid.UUID,
    kind: Literal["api", "session"],
    ttl: timedelta,
    now: datetime,
) -> IssuedToken:
    """issue_token makes a token for the user, valid for ``ttl``; only its hash is stored."""
    token = new_token()
    row = conn.execute(
        "INSERT INTO api_tokens (token_hash, user_id, kind, created_at, expires_at)"
        " VALUES (%s, %s, %s, %s, %s) RETURNING id",
        (hash_token(token), user_id, kind, now, now + ttl),
    ).fetchone()
    assert row is not None
    return IssuedToken(token, int(row[0]), now + ttl)


def revoke_token(conn: psycopg.Connection[Any], token_id: int, now: datetime) -> None:
    """revoke_token ends a token now (sign-out)."""
    conn.execute(
        "UPDATE api_tokens SET revoked_at = %s WHERE id = %s AND revoked_at IS NULL",
        (now, token_id),
    )


def principal_for_token(
    conn: psycopg.Connection[Any], token: str, now: datetime
) -> Principal | None:
    """principal_for_token is the token's user, or None if the token is unknown, expired or
    revoked, or the user disabled."""
    row = conn.execute(
        "SELECT u.id, u.username, u.display_name, u.role, u.locale, u.time_zone, t.id,"
        " coalesce((SELECT array_agg(m.care_team ORDER BY m.care_team)"
        "  FROM care_team_members m WHERE m.user_id = u.id), '{}')"
        " FROM api_tokens t JOIN users u ON u.id = t.user_id"
        " WHERE t.token_hash = %s AND t.revoked_at IS NULL AND t.expires_at > %s"
        " AND u.disabled_at IS NULL",
        (hash_token(token), now),
    ).fetchone()
    if row is None:
        return None
    user_id, username, display_name, role, locale, time_zone, token_id, teams = row
    return Principal(
        user_id, username, display_name, role, frozenset(teams), locale, time_zone, token_id
    )


def login(
    conn: psycopg.Connection[Any],
    username: str,
    password: str,
    *,
    ttl: timedelta,
    now: datetime,
) -> LoginResult:
    """login checks the password and issues a session token. An unknown or disabled user, or
    one without a password, costs the same argon2 verification (against a dummy hash)."""
    row = conn.execute(
        "SELECT id, password_hash FROM users WHERE username = %s AND disabled_at IS NULL",
        (username,),
    ).fetchone()
    user_id, stored = row if row is not None else (None, None)
    if not verify_password(stored, password) or user_id is None or stored is None:
        return LoginResult(None, known=user_id is not None)
    with conn.transaction():
        if needs_rehash(stored):
            conn.execute(
                "UPDATE users SET password_hash = %s WHERE id = %s",
                (hash_password(password), user_id),
            )
        return LoginResult(issue_token(conn, user_id, "session", ttl, now))


def team_members(conn: psycopg.Connection[Any], team_id: str) -> Sequence[str]:
    """team_members lists the usernames of a team."""
    rows = conn.execute(
        "SELECT u.username FROM care_team_members m JOIN users u ON u.id = m.user_id"
        " WHERE m.care_team = %s ORDER BY u.username",
        (team_id,),
    ).fetchall()
    return [r[0] for r in rows]
