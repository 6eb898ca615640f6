"""Migrations on plain PostgreSQL: idempotent, guarded, and aggregates equal to raw GROUP BYs."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from homecare import store
from homecare.ingest import Delivery, ParseLimits, parse_message, write_batch
from homecare.store.migrate import available_migrations
from tests.conftest import enrol

AGGREGATE_CHECK = """
SELECT a.bucket, a.patient_id, a.type, a.n, round(a.mean::numeric, 9),
       a.min_value, a.max_value
FROM {view} a ORDER BY 1, 2, 3
"""
RAW_CHECK = """
SELECT date_trunc('{unit}', time AT TIME ZONE 'UTC') AT TIME ZONE 'UTC', patient_id, type,
       count(*), round(avg(value)::numeric, 9), min(value), max(value)
FROM readings GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
"""


def test_migrate_twice_applies_nothing_the_second_time(db: psycopg.Connection[Any]) -> None:
    assert store.migrate(db) == []
    versions = [row[0] for row in db.execute("SELECT version FROM schema_migrations ORDER BY 1")]
    assert versions == [m.version for m in available_migrations("postgres")]
    assert store.flavour(db) == "postgres"


def test_an_edited_migration_is_refused(db: psycopg.Connection[Any]) -> None:
    db.execute("UPDATE schema_migrations SET checksum = 'edited' WHERE version = 1")
    with pytest.raises(store.MigrationError, match="edited after it was applied"):
        store.migrate(db)


def test_asking_for_another_flavour_than_recorded_is_refused(db: psycopg.Connection[Any]) -> None:
    with pytest.raises(store.MigrationError, match="migrated as postgres"):
        store.migrate(db, "timescaledb")


def test_both_flavours_walk_the_same_versions() -> None:
    pg = [m.version for m in available_migrations("postgres")]
    ts = [m.version for m in available_migrations("timescaledb")]
    assert pg == ts
    empty_on_pg = {m.version for m in available_migrations("postgres") if not m.sql}
    assert empty_on_pg == {3}  # the hypertable conversion has no plain-PostgreSQL counterpart


def seed_readings(conn: psycopg.Connection[Any]) -> None:
    start = datetime(2026, 11, 20, 22, 0, tzinfo=UTC)
    for device in ("cuff-a", "cuff-b"):
        enrol(conn, device, since=start - timedelta(days=1))
        items = []
        for i in range(60):
            at = start + timedelta(minutes=47 * i)
            readings = [
                {
                    "type": "heart_rate",
                    "value": 60 + (i * 7) % 31,
                    "unit": "/min",
                    "time": at.isoformat(),
                },
                {
                    "type": "systolic_bp",
                    "value": 110 + (i * 11) % 41,
                    "unit": "mm[Hg]",
                    "time": at.isoformat(),
                },
            ]
            payload = json.dumps({"msg_id": f"{device}-{i}", "readings": readings}).encode()
            delivery = Delivery(
                f"homecare/v1/devices/{device}/readings", payload, start + timedelta(days=3)
            )
            items.append(parse_message(delivery, ParseLimits()))
        write_batch(conn, items)


@pytest.mark.parametrize(("view", "unit"), [("readings_hourly", "hour"), ("readings_daily", "day")])
def test_aggregate_views_equal_a_raw_group_by(
    db: psycopg.Connection[Any], view: str, unit: str
) -> None:
    seed_readings(db)
    store.refresh_aggregates(db)
    aggregated = db.execute(AGGREGATE_CHECK.format(view=view)).fetchall()
    raw = db.execute(RAW_CHECK.format(unit=unit)).fetchall()
    assert len(raw) > 10
    assert aggregated == raw


def test_retention_deletes_old_readings_on_plain_postgres(db: psycopg.Connection[Any]) -> None:
    seed_readings(db)
    total = db.execute("SELECT count(*) FROM readings").fetchone()
    deleted = store.apply_retention(db, retention_days=1, dedup_window_days=3650)
    assert deleted["readings"] == (total[0] if total else -1)
    assert db.execute("SELECT count(*) FROM readings").fetchone() == (0,)
