"""The rules worker's window cache: reused only while it is still what the store holds.

Real PostgreSQL and real workers. The danger a cache brings is stale input: a second worker
consumes the announcement of readings the first never loaded, and the first, reusing its window,
evaluates without them. Each test here checks the window against the store itself, and the
findings against a worker that never reused anything.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import psycopg

from homecare.ingest import Reading
from homecare.rules import RulesWorker
from homecare.rules.repository import load_readings
from homecare.rules.window_cache import WindowCache
from homecare.rules.worker import wait_idle
from tests.conftest import enrol
from tests.test_rules_pipeline import T0, feed, findings, hf_days, store_day, worker


def stored(conn: psycopg.Connection[Any], rules: RulesWorker, patient: uuid.UUID) -> list[Reading]:
    """stored is what the store holds over the worker's window for ``patient``."""
    window = rules.windows.peek(patient)
    assert window is not None, "the worker kept no window"
    _, start, end = window
    return load_readings(conn, patient, start, end)


def key(readings: list[Reading]) -> list[tuple[Any, ...]]:
    return sorted((r.type, r.time, r.msg_id, r.value) for r in readings)


def test_passes_after_the_first_reuse_the_window_and_read_only_whats_new(
    db: psycopg.Connection[Any], database_url: str
) -> None:
    patient = enrol(db, "scale-1", since=T0 - timedelta(days=1), programs=("heart_failure",))
    rules = worker(database_url)
    for day, readings in enumerate(hf_days("scale-1")):
        store_day(db, "scale-1", day, readings, received=T0 + timedelta(days=day, minutes=5))
        wait_idle(rules)
        window = rules.windows.peek(patient)
        assert window is not None and key(window[0]) == key(stored(db, rules, patient))
    rules.close()
    assert rules.windows.stats.misses == 1, "only the first pass should read the whole lookback"
    assert rules.windows.stats.hits == len(hf_days("scale-1")) - 1
    assert rules.windows.stats.rows_reused > 0


def test_a_window_is_not_reused_after_another_worker_evaluated_the_patient(
    db: psycopg.Connection[Any], database_url: str
) -> None:
    alone = feed(db, database_url, "scale-a", order=lambda days: days)

    patient = enrol(db, "scale-b", since=T0 - timedelta(days=1), programs=("heart_failure",))
    first, second = worker(database_url), worker(database_url)
    try:
        for day, readings in enumerate(hf_days("scale-b")):
            store_day(db, "scale-b", day, readings, received=T0 + timedelta(days=day, minutes=5))
            # Days 12-13 (the weight starts to climb) are evaluated by the second worker only:
            # the first never loads them unless it notices that someone else evaluated.
            wait_idle(second if day in (12, 13) else first)
            if day >= 14:
                window = first.windows.peek(patient)
                assert window is not None and key(window[0]) == key(stored(db, first, patient))
    finally:
        first.close()
        second.close()
    assert first.windows.stats.misses == 2  # its first pass, and its first after day 13
    strip = lambda rows: [(r, s, t) for r, s, t, _ in rows]  # noqa: E731
    assert strip(findings(db, patient)) == strip(findings(db, alone))


def test_a_backlog_older_than_the_last_pass_is_read_from_the_store(
    db: psycopg.Connection[Any], database_url: str
) -> None:
    patient = enrol(db, "scale-1", since=T0 - timedelta(days=1), programs=("heart_failure",))
    rules = worker(database_url)
    days = hf_days("scale-1")
    for day in range(10, 18):  # recent days first, then the device uploads days 0-9
        store_day(db, "scale-1", day, days[day], received=T0 + timedelta(days=day, minutes=5))
        wait_idle(rules)
    for day in range(10):
        store_day(db, "scale-1", day, days[day], received=T0 + timedelta(days=18))
        wait_idle(rules)
        window = rules.windows.peek(patient)
        assert window is not None and key(window[0]) == key(stored(db, rules, patient))
    rules.close()
    assert rules.windows.stats.hits > 0


def test_the_cache_holds_at_most_its_bound(db: psycopg.Connection[Any]) -> None:
    cache = WindowCache(max_patients=2)
    patients = [uuid.uuid4() for _ in range(3)]
    for patient in patients:
        cache.keep(patient, [], T0, T0 + timedelta(days=1), 1)
    assert len(cache) == 2
    assert cache.peek(patients[0]) is None and cache.peek(patients[2]) is not None
