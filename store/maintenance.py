"""Maintenance: retention of readings and of the de-duplication memory.

TimescaleDB drops whole chunks through its retention policy (set by ``apply_policies``). Plain
PostgreSQL has no such policy, so the scheduler calls ``apply_retention`` there. Message ids are
kept for a bounded de-duplication window: a device resending a message months later is not a
redelivery but a bug, and the table must not grow forever.
"""

from __future__ import annotations

from typing import Any

import psycopg

from homecare.store.migrate import flavour

__all__ = ["apply_retention"]


def apply_retention(
    conn: psycopg.Connection[Any], *, retention_days: int, dedup_window_days: int
) -> dict[str, int]:
    """apply_retention deletes what is past its keep time; returns rows deleted per table."""
    deleted: dict[str, int] = {}
    with conn.transaction():
        if flavour(conn) == "postgres":
            cur = conn.execute(
                "DELETE FROM readings WHERE time < now() - make_interval(days => %s)",
                (retention_days,),
            )
            deleted["readings"] = cur.rowcount
        cur = conn.execute(
            "DELETE FROM ingested_messages WHERE received_at < now() - make_interval(days => %s)",
            (dedup_window_days,),
        )
        deleted["ingested_messages"] = cur.rowcount
    return deleted
