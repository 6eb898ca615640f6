"""Bootstrap: the command line's way in — ``homecare token create --role ROLE``.

The first administrator has no one to sign in as, so the command line (which already holds the
database credentials) makes a token directly: for ``--user`` (default ``cli-<role>``), creating
that user without a password if needed, and adding it to the ``--care-team``s (created if
needed, named by their id, in the default time zone). The token is printed once; only its hash
is kept. The grant is audited with the operating-system user who ran the command.
"""

from __future__ import annotations

import getpass
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg

from homecare.api import accounts, audit
from homecare.api.accounts import IssuedToken, Role

__all__ = ["TokenError", "create_cli_token"]


class TokenError(ValueError):
    """TokenError: the token cannot be made as asked (the message says why)."""


def create_cli_token(
    conn: psycopg.Connection[Any],
    *,
    role: Role,
    username: str | None,
    care_teams: Sequence[str],
    ttl: timedelta,
    default_locale: str,
    default_time_zone: str,
    now: datetime | None = None,
) -> tuple[IssuedToken, list[str]]:
    """create_cli_token issues a token for the user; returns it and notes for the operator."""
    now = now or datetime.now(UTC)
    name = (username or f"cli-{role}").strip().lower()
    actor = f"cli:{_os_user()}"
    notes: list[str] = []
    with conn.transaction():
        found = accounts.find_user(conn, name)
        if found is None:
            user_id = accounts.create_user(
                conn,
                username=name,
                display_name=name,
                role=role,
                password=None,
                locale=default_locale,
                time_zone=default_time_zone,
            )
            audit.record(conn, actor, "user.create", f"user/{name}", {"role": role})
            notes.append(f"created user {name!r} ({role}, token sign-in only)")
        else:
            user_id, existing_role = found
            if existing_role != role:
                raise TokenError(f"user {name!r} exists with role {existing_role}, not {role}")
        for team in care_teams:
            if accounts.create_care_team(conn, team, team, default_time_zone):
                audit.record(conn, actor, "care_team.create", f"care_team/{team}", {})
            if accounts.add_member(conn, team, user_id, actor):
                audit.record(
                    conn, actor, "care_team.add_member", f"care_team/{team}", {"user": name}
                )
        if role in ("nurse", "physician") and not care_teams:
            teams = conn.execute(
                "SELECT count(*) FROM care_team_members WHERE user_id = %s", (user_id,)
            ).fetchone()
            if teams is None or teams[0] == 0:
                notes.append(f"{name!r} is in no care team: it will see no patients")
        issued = accounts.issue_token(conn, user_id, "api", ttl, now)
        audit.record(
            conn,
            actor,
            "token.create",
            f"user/{name}",
            {"token_id": issued.token_id, "expires_at": issued.expires_at.isoformat()},
        )
    notes.append(f"token for {name!r} expires {issued.expires_at.isoformat(timespec='seconds')}")
    return issued, notes


def _os_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"
