"""The store on a real TimescaleDB engine: the same migrations, hypertable, policies, aggregates.

The engine (PGlite + TimescaleDB 2.23 over the wire protocol) serves one connection at a time,
so every test opens exactly one and closes it; its background jobs do not run by themselves, so
the tests run them with ``CALL run_job``, as the scheduler would see them run in production.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest

from homecare import store
from homecare.ingest import Delivery, ParseLimits, parse_message, write_batch
from homecare.store.migrate import available_migrations
from tests.conftest import enrol
from tests.support.timescaledb import ensure_node_packages, start_timescaledb_engine
from tests.test_migrations import AGGREGATE_CHECK, RAW_CHECK, seed_readings

pytestmark = pytest.mark.timescaledb
NODE_DIR = Path(__file__).parent / "timescaledb"


@pytest.fixture(scope="module")
def tsdb_url() -> Iterator[str]:
    ensure_node_packages(NODE_DIR)
    with start_timescaledb_engine(NODE_DIR) as engine:
        with store.connect(engine.url, autocommit=True) as conn:
            versions = [m.version for m in available_migrations("timescaledb")]
            assert store.migrate(conn, "auto") == versions
            store.apply_policies(conn, compress_after_days=30, retention_days=3650)
        yield engine.url


@pytest.fixture
def tsdb(tsdb_url: str) -> Iterator[psycopg.Connection[Any]]:
    with store.connect(tsdb_url, autocommit=True) as conn:
        yield conn


def jobs(conn: psycopg.Connection[Any]) -> dict[str, list[dict[str, Any]]]:
    found: dict[str, list[dict[str, Any]]] = {}
    for proc, config in conn.execute(
        "SELECT proc_name, config FROM timescaledb_information.jobs WHERE job_id >= 1000"
    ):
        found.setdefault(proc, []).append(config)
    return found


def test_auto_flavour_picks_timescaledb_and_migrating_again_is_a_no_op(
    tsdb: psycopg.Connection[Any],
) -> None:
    assert store.flavour(tsdb) == "timescaledb"
    assert store.migrate(tsdb) == []
    hypertables = tsdb.execute(
        "SELECT hypertable_name, compression_enabled FROM timescaledb_information.hypertables"
    ).fetchall()
    assert ("readings", True) in hypertables
    caggs = {
        row[0]
        for row in tsdb.execute(
            "SELECT view_name FROM timescaledb_information.continuous_aggregates"
        )
    }
    assert caggs == {"readings_hourly", "readings_daily"}


def test_policies_are_registered_and_follow_the_settings(tsdb: psycopg.Connection[Any]) -> None:
    registered = jobs(tsdb)
    assert registered["policy_compression"][0]["compress_after"] == "30 days"
    assert registered["policy_retention"][0]["drop_after"] == "3650 days"
    assert len(registered["policy_refresh_continuous_aggregate"]) == 2
    store.apply_policies(tsdb, compress_after_days=14, retention_days=2555)
    registered = jobs(tsdb)
    assert [c["compress_after"] for c in registered["policy_compression"]] == ["14 days"]
    assert [c["drop_after"] for c in registered["policy_retention"]] == ["2555 days"]
    store.apply_policies(tsdb, compress_after_days=30, retention_days=3650)


@pytest.mark.parametrize(("view", "unit"), [("readings_hourly", "hour"), ("readings_daily", "day")])
def test_continuous_aggregates_equal_a_raw_group_by(
    tsdb: psycopg.Connection[Any], view: str, unit: str
) -> None:
    if tsdb.execute("SELECT count(*) FROM readings").fetchone() == (0,):
        seed_readings(tsdb)
    store.refresh_aggregates(tsdb)
    aggregated = tsdb.execute(AGGREGATE_CHECK.format(view=view)).fetchall()
    raw = tsdb.execute(RAW_CHECK.format(unit=unit)).fetchall()
    assert len(raw) > 10
    assert aggregated == raw


def test_a_backlog_lands_in_a_compressed_chunk_once(tsdb: psycopg.Connection[Any]) -> None:
    old = datetime.now(UTC).replace(microsecond=0) - timedelta(days=60)
    enrol(tsdb, "scale-old", since=old - timedelta(days=1))

    def message(msg_id: str, *times: datetime) -> Any:
        readings = [
            {"type": "body_weight", "value": 80 + i, "unit": "kg", "time": t.isoformat()}
            for i, t in enumerate(times)
        ]
        payload = json.dumps({"msg_id": msg_id, "readings": readings}).encode()
        delivery = Delivery("homecare/v1/devices/scale-old/readings", payload, datetime.now(UTC))
        return parse_message(delivery, ParseLimits())

    first = write_batch(tsdb, [message("m1", old)])
    assert len(first.stored) == 1
    (job,) = [
        row[0]
        for row in tsdb.execute(
            "SELECT job_id FROM timescaledb_information.jobs WHERE proc_name = 'policy_compression'"
        )
    ]
    tsdb.execute("CALL run_job(%s)", (job,))
    compressed = tsdb.execute(
        "SELECT count(*) FROM timescaledb_information.chunks WHERE hypertable_name = 'readings'"
        " AND is_compressed AND range_end < now() - '30 days'::interval"
    ).fetchone()
    assert compressed is not None and compressed[0] >= 1

    # A device uploads its backlog weeks late, resending one reading under a new msg_id.
    late = write_batch(tsdb, [message("m2", old, old + timedelta(hours=1))])
    assert len(late.stored) == 1
    assert late.quarantined == {"duplicate_reading": 1}
    rows = tsdb.execute(
        "SELECT time, value FROM readings WHERE device_id = 'scale-old' ORDER BY time"
    ).fetchall()
    assert rows == [(old, 80.0), (old + timedelta(hours=1), 81.0)]
