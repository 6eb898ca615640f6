"""Aggregates: keep the hourly and daily views current, whichever engine holds them.

On TimescaleDB the continuous-aggregate policies do this in the background; calling the
refresh by hand is still useful where background jobs do not run (the test engine) and after a
large backlog. On plain PostgreSQL the views are ordinary materialized views that only the
scheduler refreshes. Callers just call ``refresh_aggregates`` and do not care which it was.
"""

from __future__ import annotations

from typing import Any

import psycopg

from homecare.store.migrate import flavour

__all__ = ["AGGREGATE_VIEWS", "refresh_aggregates"]

AGGREGATE_VIEWS = ("readings_hourly", "readings_daily")


def refresh_aggregates(conn: psycopg.Connection[Any]) -> None:
    """refresh_aggregates brings both aggregate views up to date (needs autocommit)."""
    if flavour(conn) == "timescaledb":
        for view in AGGREGATE_VIEWS:
            # A procedure that cannot run inside a transaction block: autocommit required.
            conn.execute(f"CALL refresh_continuous_aggregate('{view}', NULL, NULL)")
    else:
        for view in AGGREGATE_VIEWS:
            conn.execute(f"REFRESH MATERIALIZED VIEW CONCURRENTLY {view}")
