"""Rules worker wake-up: a committed announcement in ``reading_changes`` wakes an idle worker at
once through the NOTIFY of migration 0007's trigger, not at its next poll; the poll is still the
fallback; one notify per ingest batch."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import psycopg

from homecare import store
from homecare.ingest import Delivery, ParseLimits, parse_message, write_batch
from homecare.rules import RulesConfig, RulesWorker
from homecare.rules.worker import WAKEUP_CHANNEL
from tests.conftest import enrol
from tests.support.pipeline import wait_for


def store_glucose(conn: psycopg.Connection[Any], device: str, value: float) -> None:
    """store_glucose commits one glucose reading (stamped now) through the ingest's writer."""
    now = datetime.now(UTC)
    payload = json.dumps(
        {
            "msg_id": uuid.uuid4().hex,
            "readings": [
                {"type": "blood_glucose", "value": value, "unit": "mmol/L", "time": now.isoformat()}
            ],
        }
    ).encode()
    delivery = Delivery(f"homecare/v1/devices/{device}/readings", payload, now)
    write_batch(conn, [parse_message(delivery, ParseLimits())])


@contextmanager
def running(database_url: str, poll_s: float) -> Iterator[RulesWorker]:
    worker = RulesWorker(RulesConfig(database_url=database_url, poll_s=poll_s))
    stop = threading.Event()
    thread = threading.Thread(target=worker.run, args=(stop,), daemon=True)
    thread.start()
    try:
        yield worker
    finally:
        stop.set()
        thread.join(timeout=5)
        assert not thread.is_alive(), "the rules worker did not stop within 5 s"


def wait_idle_listening(worker: RulesWorker, db: psycopg.Connection[Any]) -> None:
    """wait_idle_listening waits until the worker has LISTENed and has nothing left to do."""

    def idle_and_listening() -> bool:
        listening = db.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
            " AND application_name = 'homecare-rules-wake'"
        ).fetchone()
        pending = db.execute("SELECT count(*) FROM reading_changes").fetchone()
        return listening == (1,) and pending == (0,)

    wait_for(idle_and_listening, timeout_s=10, what="an idle, listening rules worker")
    time.sleep(0.3)  # past its first (empty) pass, into the wait


def evaluated_after(worker: RulesWorker, commit: Callable[[], None]) -> float:
    """evaluated_after commits a change and returns the seconds until the worker evaluated it."""
    before = worker.stats.evaluations
    committed = time.monotonic()
    commit()
    while worker.stats.evaluations == before:  # finer than wait_for's 50 ms steps
        assert time.monotonic() - committed < 5, "no evaluation within 5 s"
        time.sleep(0.002)
    return time.monotonic() - committed


def hypo_findings(db: psycopg.Connection[Any], patient: uuid.UUID) -> int:
    row = db.execute(
        "SELECT count(*) FROM findings WHERE patient_id = %s AND rule_id = 'dm.hypo_level2'",
        (patient,),
    ).fetchone()
    return int(row[0]) if row else 0


def test_an_idle_worker_evaluates_a_committed_change_at_once_not_at_its_poll(
    db: psycopg.Connection[Any], database_url: str
) -> None:
    patient = enrol(db, "meter-1", programs=("diabetes",))
    with running(database_url, poll_s=60) as worker:
        wait_idle_listening(worker, db)
        for value in (2.5, 2.4):  # twice, so a wake-up is not a one-off of the first pass
            took = evaluated_after(worker, partial(store_glucose, db, "meter-1", value))
            assert took < 0.2, f"evaluated {took:.3f} s after the commit (poll_s is 60 s)"
    assert hypo_findings(db, patient) >= 1


def test_without_the_notify_the_poll_still_finds_the_change(
    db: psycopg.Connection[Any], database_url: str
) -> None:
    patient = enrol(db, "meter-2", programs=("diabetes",))
    db.execute("ALTER TABLE reading_changes DISABLE TRIGGER reading_changes_notify")
    with running(database_url, poll_s=0.3) as worker:
        wait_idle_listening(worker, db)
        store_glucose(db, "meter-2", 2.5)
        wait_for(lambda: hypo_findings(db, patient) == 1, 5, "the finding, found by the poll")


def test_one_notify_per_ingest_batch_and_only_once_committed(
    db: psycopg.Connection[Any], database_url: str
) -> None:
    for i in range(3):
        enrol(db, f"meter-b{i}", programs=("diabetes",))
    with store.connect(database_url, autocommit=True) as listener:
        listener.execute(f"LISTEN {WAKEUP_CHANNEL}")
        now = datetime.now(UTC)
        batch = []
        for i in range(3):
            for minute in range(2):
                at = (now - timedelta(minutes=minute)).isoformat()
                payload = json.dumps(
                    {
                        "msg_id": f"b{i}-{minute}",
                        "readings": [
                            {"type": "blood_glucose", "value": 6.1, "unit": "mmol/L", "time": at}
                        ],
                    }
                ).encode()
                delivery = Delivery(f"homecare/v1/devices/meter-b{i}/readings", payload, now)
                batch.append(parse_message(delivery, ParseLimits()))
        with db.transaction():
            write_batch(db, batch)  # 6 messages, 3 patients, one statement
            assert list(listener.notifies(timeout=0.3)) == []  # nothing before the commit
        got = list(listener.notifies(timeout=0.5))
        assert [n.channel for n in got] == [WAKEUP_CHANNEL]
        row = db.execute("SELECT count(*) FROM reading_changes").fetchone()
        assert row == (3,)
