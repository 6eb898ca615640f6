"""The scheduler's jobs against a real PostgreSQL: aggregates refreshed, retention applied."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg

from homecare.scheduler import SchedulerConfig, refresh_job, retention_job, run_scheduler
from tests.test_migrations import seed_readings


def test_refresh_makes_new_readings_visible_in_the_plain_postgres_views(
    db: psycopg.Connection[Any], database_url: str
) -> None:
    seed_readings(db)
    assert db.execute("SELECT count(*) FROM readings_hourly").fetchone() == (0,)
    refresh_job(SchedulerConfig(database_url))
    hourly = db.execute("SELECT sum(n) FROM readings_hourly").fetchone()
    raw = db.execute("SELECT count(*) FROM readings").fetchone()
    assert hourly is not None and raw is not None and hourly[0] == raw[0] > 0


def test_retention_forgets_old_message_ids_but_keeps_recent_ones(
    db: psycopg.Connection[Any], database_url: str
) -> None:
    now = datetime.now(UTC)
    db.execute(
        "INSERT INTO ingested_messages VALUES ('d', 'old', %s), ('d', 'new', %s)",
        (now - timedelta(days=40), now - timedelta(days=1)),
    )
    retention_job(SchedulerConfig(database_url, dedup_window_days=30))
    rows = db.execute("SELECT msg_id FROM ingested_messages").fetchall()
    assert rows == [("new",)]


def test_the_scheduler_runs_its_jobs_at_start_and_stops_when_asked(
    db: psycopg.Connection[Any], database_url: str
) -> None:
    seed_readings(db)
    stop = threading.Event()
    thread = threading.Thread(target=run_scheduler, args=(SchedulerConfig(database_url), stop))
    thread.start()
    try:
        deadline = datetime.now(UTC) + timedelta(seconds=20)
        while db.execute("SELECT count(*) FROM readings_daily").fetchone() == (0,):
            assert datetime.now(UTC) < deadline, "the refresh did not run"
            time.sleep(0.05)
    finally:
        stop.set()
        thread.join(timeout=20)
    assert not thread.is_alive()
