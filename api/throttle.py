"""Throttle: sign-in attempts slowed per client address and per account — never locked.

A lockout (ten wrong passwords lock the account for 15 minutes) hands anyone who knows a
nurse's username a way to keep her out during a shift. Here every failed sign-in fills three
leaky buckets, each draining one failure per ``leak``:

- ``address:<ip>`` — everything from one client address (password spraying: one password
  over many accounts); a ward behind one NAT address shares it, so it holds the most;
- ``pair:<name>@<ip>`` — one account from one address (guessing one nurse's password);
- ``account:<name>`` — one account from anywhere (the same guessing spread over many
  addresses); it holds far more than a pair, so one attacker's address fills its own pair
  bucket long before the account's, and only that address is slowed, not the nurse.

An attempt is let through when every bucket has room for one more failure; otherwise it is
answered 429 ``too_many_sign_ins`` with ``Retry-After`` (seconds until there is room), before
any password is checked. Refused attempts fill nothing, so hammering does not lengthen the wait.
An attempt let through is counted before its password is checked (concurrent attempts cannot
slip past together); a good password gives the count back and empties its pair bucket.

Names are keyed as typed (normalised, SHA-256), whether or not the user exists: known and
unknown names are throttled alike, and a password typed into the name field is never stored.
The buckets live in the database (``sign_in_throttle``), shared by every API process and kept
across restarts; the first refusal of an episode is what ``started`` reports, for the alert.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import psycopg

__all__ = ["Admission", "Policy", "admit", "keys_for", "settle"]


@dataclass(frozen=True)
class Policy:
    """Policy: how many failures each bucket holds, and how fast one drains."""

    per_address: int = 20
    per_pair: int = 5
    per_account: int = 50
    leak: timedelta = timedelta(minutes=1)


@dataclass(frozen=True)
class Admission:
    """Admission: ``retry_after`` None lets the attempt through; otherwise it is refused for
    that long. ``started`` names the buckets whose refusals begin with this attempt."""

    retry_after: timedelta | None
    started: tuple[str, ...] = ()

    @property
    def retry_after_s(self) -> int:
        """retry_after_s is the wait in whole seconds (at least 1), for ``Retry-After``."""
        return max(1, math.ceil(self.retry_after.total_seconds())) if self.retry_after else 0


def keys_for(username: str, address: str, policy: Policy) -> dict[str, int]:
    """keys_for is each bucket of an attempt and how many failures it holds."""
    name = hashlib.sha256(username.encode()).hexdigest()[:32]
    return {
        f"address:{address}": policy.per_address,
        f"pair:{name}@{address}": policy.per_pair,
        f"account:{name}": policy.per_account,
    }


def drained(level: float, since: datetime, now: datetime, leak: timedelta) -> float:
    """drained is a bucket's level at ``now``, ``since`` its last change.

    >>> from datetime import UTC
    >>> t = datetime(2026, 1, 1, tzinfo=UTC)
    >>> drained(5.0, t, t + timedelta(minutes=2), timedelta(minutes=1))
    3.0
    """
    return max(0.0, level - (now - since) / leak)


def admit(
    conn: psycopg.Connection[Any], keys: Mapping[str, int], now: datetime, policy: Policy
) -> Admission:
    """admit lets an attempt through (counting it as a failure until ``settle``) or refuses it."""
    ordered = sorted(keys)  # one lock order for every attempt: no deadlock between two
    with conn.transaction():
        conn.execute(
            "INSERT INTO sign_in_throttle (key, level, updated_at)"
            " SELECT k, 0, %s FROM unnest(%s::text[]) AS k ON CONFLICT (key) DO NOTHING",
            (now, ordered),
        )
        rows = conn.execute(
            "SELECT key, level, updated_at, refused FROM sign_in_throttle"
            " WHERE key = ANY(%s) ORDER BY key FOR UPDATE",
            (ordered,),
        ).fetchall()
        levels = {key: drained(level, at, now, policy.leak) for key, level, at, _ in rows}
        refused = {key: count for key, _, _, count in rows}
        full = [key for key in ordered if levels[key] + 1 > keys[key]]
        if full:
            wait = max((levels[key] + 1 - keys[key]) * policy.leak for key in full)
            conn.execute(
                "UPDATE sign_in_throttle SET refused = refused + 1 WHERE key = ANY(%s)", (full,)
            )
            return Admission(wait, tuple(key for key in full if refused[key] == 0))
        with conn.cursor() as cur:
            cur.executemany(
                "UPDATE sign_in_throttle SET level = %s, updated_at = %s, refused = 0"
                " WHERE key = %s",
                [(levels[key] + 1, now, key) for key in ordered],
            )
        # Buckets drained empty long ago hold nothing: forget them.
        conn.execute(
            "DELETE FROM sign_in_throttle WHERE updated_at < %s",
            (now - policy.leak * max(keys.values()),),
        )
    return Admission(None)


def settle(conn: psycopg.Connection[Any], keys: Sequence[str], now: datetime) -> None:
    """settle gives back a successful attempt's count, and empties its pair bucket."""
    with conn.transaction():
        conn.execute(
            "UPDATE sign_in_throttle SET level = greatest(level - 1, 0) WHERE key = ANY(%s)",
            (list(keys),),
        )
        conn.execute(
            "DELETE FROM sign_in_throttle WHERE key = ANY(%s) AND key LIKE 'pair:%%'",
            (list(keys),),
        )
