"""The test TimescaleDB engine (PGlite + TimescaleDB over the wire protocol) is real TimescaleDB.

These tests pin the engine features our migrations and queries rely on, so a broken npm
install or an engine upgrade fails here first, with a clear message, rather than deep inside
store/ingest tests.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from tests.support.timescaledb import (
    TimescaleEngine,
    ensure_node_packages,
    start_timescaledb_engine,
)

NODE_DIR = Path(__file__).parent / "timescaledb"

pytestmark = pytest.mark.timescaledb


@pytest.fixture(scope="module")
def engine() -> Iterator[TimescaleEngine]:
    ensure_node_packages(NODE_DIR)
    with start_timescaledb_engine(NODE_DIR) as running:
        yield running


@pytest.fixture
def conn(engine: TimescaleEngine) -> Iterator[psycopg.Connection]:
    # The engine serves one connection at a time: one per test, closed before the next.
    with psycopg.connect(engine.url, autocommit=True) as connection:
        connection.execute("CREATE EXTENSION IF NOT EXISTS timescaledb")
        yield connection


def _create_readings(conn: psycopg.Connection, table: str) -> None:
    conn.execute(
        f"CREATE TABLE {table} (time timestamptz NOT NULL, patient_id uuid, type text,"
        " value double precision)"
    )
    conn.execute(f"SELECT create_hypertable('{table}', by_range('time', INTERVAL '7 days'))")
    conn.execute(f"CREATE UNIQUE INDEX ON {table} (patient_id, type, time)")


def _insert(conn: psycopg.Connection, table: str, rows: list[tuple[object, ...]]) -> int:
    """Insert like our ingest does: one statement, one array per column, duplicates ignored."""
    columns = [list(column) for column in zip(*rows, strict=True)]
    cursor = conn.execute(
        f"INSERT INTO {table} SELECT * FROM unnest("
        "%s::timestamptz[], %s::uuid[], %s::text[], %s::float8[]) ON CONFLICT DO NOTHING",
        columns,
    )
    return cursor.rowcount


def test_extension_is_timescaledb_2_23(conn: psycopg.Connection) -> None:
    row = conn.execute(
        "SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'"
    ).fetchone()
    assert row is not None
    assert row[0].startswith("2.23."), row[0]


def test_continuous_aggregate_matches_raw_group_by(conn: psycopg.Connection) -> None:
    _create_readings(conn, "cagg_readings")
    patients = [uuid.uuid4(), uuid.uuid4()]
    start = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    rows: list[tuple[object, ...]] = [
        (
            start + dt.timedelta(minutes=7 * i),
            patients[i % 2],
            ("hr", "spo2")[i % 3 % 2],
            float(50 + (i * 37) % 60),
        )
        for i in range(2000)  # ~9.7 days: spans two 7-day chunks
    ]
    assert _insert(conn, "cagg_readings", rows) == len(rows)
    assert _insert(conn, "cagg_readings", rows[:100]) == 0  # replayed batch: no duplicates

    conn.execute(
        "CREATE MATERIALIZED VIEW cagg_readings_hourly"
        " WITH (timescaledb.continuous, timescaledb.materialized_only = true) AS"
        " SELECT time_bucket('1 hour', time) AS bucket, patient_id, type, count(*) AS n,"
        " avg(value) AS mean, min(value) AS min, max(value) AS max"
        " FROM cagg_readings GROUP BY 1, 2, 3 WITH NO DATA"
    )
    # Background workers do not run in PGlite: refresh explicitly (needs autocommit).
    conn.execute("CALL refresh_continuous_aggregate('cagg_readings_hourly', NULL, NULL)")

    order = " ORDER BY 1, 2, 3"
    aggregated = conn.execute(
        "SELECT bucket, patient_id, type, n, mean, min, max FROM cagg_readings_hourly" + order
    ).fetchall()
    raw = conn.execute(
        "SELECT time_bucket('1 hour', time), patient_id, type, count(*), avg(value),"
        " min(value), max(value) FROM cagg_readings GROUP BY 1, 2, 3" + order
    ).fetchall()
    assert len(aggregated) == len(raw) > 200
    for got, want in zip(aggregated, raw, strict=True):
        assert got[:4] == want[:4]
        assert got[4] == pytest.approx(want[4])
        assert got[5:] == want[5:]
    assert sum(row[3] for row in aggregated) == len(rows)


def test_compression_and_retention_policies_are_registered(conn: psycopg.Connection) -> None:
    _create_readings(conn, "policy_readings")
    conn.execute(
        "ALTER TABLE policy_readings SET (timescaledb.compress,"
        " timescaledb.compress_segmentby = 'patient_id, type',"
        " timescaledb.compress_orderby = 'time DESC')"
    )
    conn.execute("SELECT add_compression_policy('policy_readings', INTERVAL '30 days')")
    conn.execute("SELECT add_retention_policy('policy_readings', INTERVAL '3650 days')")

    jobs = conn.execute(
        "SELECT job_id, proc_name FROM timescaledb_information.jobs"
        " WHERE hypertable_name = 'policy_readings' ORDER BY proc_name"
    ).fetchall()
    assert [proc for _, proc in jobs] == ["policy_compression", "policy_retention"]
    # Jobs never run by themselves here; running them by hand must work.
    for job_id, _ in jobs:
        conn.execute("CALL run_job(%s)", (job_id,))
