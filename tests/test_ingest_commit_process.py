"""The commit process: the child that parses and writes, and what happens when it or the
database goes away. Real PostgreSQL, real child processes; the broker side is in
test_resilience.py (a child killed mid-stream, the parent killed mid-stream)."""

from __future__ import annotations

import json
import logging
import os
import signal
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from homecare.ingest import Delivery, ParseLimits
from homecare.ingest.commit_process import CommitProcess
from homecare.ingest.commit_wire import CommitSummary
from homecare.ingest.committer import CommitEvent, Stopping
from tests.conftest import enrol
from tests.support.services import free_port

NOW = datetime.now(UTC)


def delivery(
    device: str, msg_id: str, value: float = 120.0, payload: bytes | None = None
) -> Delivery:
    """delivery is one BP message; its event time is taken from the msg_id's number."""
    at = NOW - timedelta(minutes=int(msg_id.rsplit("-", 1)[1]))
    body = {
        "msg_id": msg_id,
        "readings": [
            {"type": "systolic_bp", "value": value, "unit": "mm[Hg]", "time": at.isoformat()}
        ],
    }
    raw = payload if payload is not None else json.dumps(body).encode()
    return Delivery(f"homecare/v1/devices/{device}/readings", raw, NOW)


class Recorder:
    """Recorder keeps what the commit process reports: events, and committed batches in order."""

    def __init__(self) -> None:
        self.events: list[CommitEvent] = []
        self.committed: list[tuple[list[str], CommitSummary]] = []
        self._changed = threading.Condition()

    def event(self, event: CommitEvent) -> None:
        self.events.append(event)

    def done(self, batch: list[Delivery], summary: CommitSummary, seconds: float) -> None:
        with self._changed:
            self.committed.append(([d.topic for d in batch], summary))
            self._changed.notify_all()

    def kinds(self) -> list[str]:
        return [event.kind for event in self.events]

    def wait_committed(self, n: int, timeout_s: float = 30) -> list[CommitSummary]:
        with self._changed:
            assert self._changed.wait_for(lambda: len(self.committed) >= n, timeout_s), (
                f"{len(self.committed)} of {n} batches committed; events {self.events}"
            )
        return [summary for _, summary in self.committed]


def commit(process: CommitProcess, recorder: Recorder, batch: list[Delivery]) -> CommitSummary:
    """commit submits one batch and waits for its answer."""
    n = len(recorder.committed) + 1
    process.submit(batch, threading.Event())
    return recorder.wait_committed(n)[-1]


@pytest.fixture
def process_for() -> Any:
    """process_for(url) starts a commit process on ``url`` reporting to a new Recorder; every
    process started is closed at the end of the test."""
    started: list[CommitProcess] = []

    def make(url: str) -> tuple[CommitProcess, Recorder]:
        recorder = Recorder()
        process = CommitProcess(url, ParseLimits(), recorder.done, recorder.event)
        process.start()
        started.append(process)
        return process, recorder

    yield make
    for process in started:
        process.close()


def test_child_commits_and_counts_each_outcome(
    db: psycopg.Connection[Any], database_url: str, process_for: Any
) -> None:
    enrol(db, "cuff-1")
    process, recorder = process_for(database_url)
    batch = [
        delivery("cuff-1", "m-1"),
        delivery("cuff-1", "m-2", value=130),
        delivery("cuff-1", "m-1"),  # a resend within the batch
        delivery("cuff-1", "m-3", payload=b"{not json"),
        delivery("nobody", "m-4"),
    ]
    summary = commit(process, recorder, batch)
    assert summary == CommitSummary(
        messages_new=2,
        messages_duplicate=1,
        messages_quarantined=2,
        readings_stored=2,
        quarantined={"bad_json": 1, "unknown_device": 1},
    )
    rows = db.execute("SELECT msg_id, value FROM readings ORDER BY msg_id").fetchall()
    assert rows == [("m-1", 120.0), ("m-2", 130.0)]
    reasons = db.execute("SELECT reason FROM quarantine ORDER BY reason").fetchall()
    assert reasons == [("bad_json",), ("unknown_device",)]


def test_a_killed_child_is_replaced_and_the_batch_resent(
    db: psycopg.Connection[Any], database_url: str, process_for: Any
) -> None:
    enrol(db, "cuff-1")
    process, recorder = process_for(database_url)
    first = process.pid
    assert first is not None
    os.kill(first, signal.SIGKILL)
    time.sleep(0.2)

    summary = commit(process, recorder, [delivery("cuff-1", "m-1")])

    assert summary.messages_new == 1 and summary.readings_stored == 1
    assert process.pid not in (None, first)
    assert recorder.kinds() == ["restart"]
    assert "killed by signal 9" in recorder.events[0].detail
    assert recorder.events[0].level == logging.ERROR
    assert db.execute("SELECT count(*) FROM readings").fetchone() == (1,)


def test_database_down_is_retried_and_close_abandons_the_batch(process_for: Any) -> None:
    # Nothing listens on this port: every connection attempt fails like a server that is down.
    url = f"postgresql://postgres@127.0.0.1:{free_port()}/postgres?connect_timeout=1"
    process, recorder = process_for(url)
    process.submit([delivery("cuff-1", "m-1")], threading.Event())
    deadline = time.monotonic() + 20
    while recorder.kinds().count("retry") < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert recorder.kinds().count("retry") >= 2, recorder.events
    started = time.monotonic()
    process.close()
    assert time.monotonic() - started < 5, "close waited for a batch that cannot commit"
    assert recorder.committed == [] and process.in_flight == 1


def test_submit_waits_for_room_and_gives_up_on_stop(process_for: Any) -> None:
    url = f"postgresql://postgres@127.0.0.1:{free_port()}/postgres?connect_timeout=1"
    process, _ = process_for(url)
    stop = threading.Event()
    for n in range(process.depth):
        process.submit([delivery("cuff-1", f"m-{n}")], stop)
    threading.Timer(0.3, stop.set).start()
    with pytest.raises(Stopping):
        process.submit([delivery("cuff-1", "m-99")], stop)
    assert process.in_flight == process.depth


def test_answers_come_in_submission_order(
    db: psycopg.Connection[Any], database_url: str, process_for: Any
) -> None:
    for device in ("cuff-1", "cuff-2", "cuff-3"):
        enrol(db, device)
    process, recorder = process_for(database_url)
    sizes = [50, 1, 20, 3, 2, 40]
    for n, size in enumerate(sizes):
        device = f"cuff-{n % 3 + 1}"
        process.submit(
            [delivery(device, f"m-{n * 100 + i}") for i in range(size)], threading.Event()
        )
    summaries = recorder.wait_committed(len(sizes))
    assert [s.messages_new for s in summaries] == sizes
    topics = [topics[0] for topics, _ in recorder.committed]
    assert topics == [f"homecare/v1/devices/cuff-{n % 3 + 1}/readings" for n in range(6)]
    assert db.execute("SELECT count(*) FROM readings").fetchone() == (sum(sizes),)


def test_close_ends_the_child(database_url: str) -> None:
    recorder = Recorder()
    process = CommitProcess(database_url, ParseLimits(), recorder.done, recorder.event)
    process.start()
    pid = process.pid
    assert pid is not None
    process.close()
    assert process.pid is None
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_a_batch_committed_before_a_restart_comes_back_as_duplicates(
    db: psycopg.Connection[Any], database_url: str, process_for: Any
) -> None:
    """The child may die after its commit and before its answer; the resend must be harmless."""
    enrol(db, "cuff-1", since=NOW - timedelta(days=1))
    process, recorder = process_for(database_url)
    batch = [delivery("cuff-1", f"m-{i}") for i in range(20)]
    commit(process, recorder, batch)
    pid = process.pid
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    time.sleep(0.2)
    again = commit(process, recorder, batch)
    assert (again.messages_new, again.messages_duplicate, again.readings_stored) == (0, 20, 0)
    assert db.execute("SELECT count(*) FROM readings").fetchone() == (20,)


def test_batches_in_flight_when_the_child_dies_are_resent_in_order(
    db: psycopg.Connection[Any], database_url: str, process_for: Any
) -> None:
    enrol(db, "cuff-1")
    process, recorder = process_for(database_url)
    first = process.pid
    with psycopg.connect(database_url) as blocker:
        # Hold the readings table: the child's first insert waits, so both batches stay in flight.
        blocker.execute("LOCK TABLE readings IN ACCESS EXCLUSIVE MODE")
        process.submit([delivery("cuff-1", f"m-{i}") for i in range(10)], threading.Event())
        process.submit([delivery("cuff-1", f"m-{i}") for i in range(10, 13)], threading.Event())
        time.sleep(0.5)
        assert process.in_flight == 2 and recorder.committed == []
        assert first is not None
        os.kill(first, signal.SIGKILL)
        blocker.rollback()
    summaries = recorder.wait_committed(2)
    assert [(s.messages_new, s.messages_duplicate) for s in summaries] == [(10, 0), (3, 0)]
    assert recorder.kinds() == ["restart"] and "2 batch(es)" in recorder.events[0].detail
    assert process.pid not in (None, first)
    assert db.execute("SELECT count(*) FROM readings").fetchone() == (13,)


def test_a_batch_committed_early_waits_for_the_older_one(
    db: psycopg.Connection[Any], database_url: str, process_for: Any
) -> None:
    """Two committers may finish out of order; acknowledgements must still go in order."""
    enrol(db, "cuff-1")
    process, recorder = process_for(database_url)
    with psycopg.connect(database_url) as blocker:
        # An uncommitted claim of m-1: the first batch's claim waits for it, the second's doesn't.
        blocker.execute(
            "INSERT INTO ingested_messages (device_id, msg_id, received_at) VALUES (%s, %s, now())",
            ("cuff-1", "m-1"),
        )
        process.submit([delivery("cuff-1", "m-1")], threading.Event())
        process.submit([delivery("cuff-1", "m-2"), delivery("cuff-1", "m-3")], threading.Event())
        deadline = time.monotonic() + 20
        while db.execute("SELECT count(*) FROM readings").fetchone() != (2,):
            assert time.monotonic() < deadline, "the second batch did not commit"
            time.sleep(0.05)
        time.sleep(0.3)
        assert recorder.committed == [], "a batch was handed back before an older one"
        blocker.rollback()
    summaries = recorder.wait_committed(2)
    assert [s.messages_new for s in summaries] == [1, 2]


def test_a_message_that_kills_the_child_each_time_is_isolated_by_halving_its_batch(
    db: psycopg.Connection[Any], database_url: str, process_for: Any
) -> None:
    """A real crash, as the kernel's OOM killer would deal it: whenever the child is writing
    message m-5 (a trigger holds that insert), it is SIGKILLed. Without isolation the batch is
    resent and kills the next child forever, and no device's reading is stored meanwhile."""
    enrol(db, "cuff-1")
    db.execute(
        "CREATE FUNCTION hold_poison() RETURNS trigger LANGUAGE plpgsql AS $$"
        " BEGIN IF NEW.msg_id = 'm-5' THEN PERFORM pg_sleep(60); END IF; RETURN NEW; END $$"
    )
    db.execute(
        "CREATE TRIGGER hold_poison BEFORE INSERT ON ingested_messages"
        " FOR EACH ROW EXECUTE FUNCTION hold_poison()"
    )
    process, recorder = process_for(database_url)
    done = threading.Event()
    kills: list[int] = []

    def kill_whoever_writes_the_poison() -> None:
        with psycopg.connect(database_url, autocommit=True) as watch:
            while not done.wait(0.05):
                held = watch.execute(
                    "SELECT pid FROM pg_stat_activity WHERE wait_event = 'PgSleep'"
                    " AND application_name = 'homecare-ingest'"
                ).fetchall()
                child = process.pid
                if held and child is not None and child not in kills:
                    os.kill(child, signal.SIGKILL)
                    kills.append(child)
                for (backend,) in held:  # frees the dead child's locks at once
                    watch.execute("SELECT pg_terminate_backend(%s)", (backend,))

    killer = threading.Thread(target=kill_whoever_writes_the_poison, daemon=True)
    killer.start()
    try:
        process.submit([delivery("cuff-1", f"m-{i}") for i in range(1, 9)], threading.Event())
        (summary,) = recorder.wait_committed(1, timeout_s=120)
    finally:
        done.set()
        killer.join(10)

    assert summary == CommitSummary(
        messages_new=7,
        messages_duplicate=0,
        messages_quarantined=1,
        readings_stored=7,
        quarantined={"ingest_crash": 1},
    )
    stored = db.execute("SELECT msg_id FROM readings ORDER BY msg_id").fetchall()
    assert [m for (m,) in stored] == [f"m-{i}" for i in (1, 2, 3, 4, 6, 7, 8)]
    (reason, payload) = db.execute("SELECT reason, payload FROM quarantine").fetchone()
    assert reason == "ingest_crash" and b'"m-5"' in bytes(payload)
    # 8 messages: two deaths for the whole batch, then one per halving (4, 2, 1).
    assert len(kills) == process.restarts == 5
    assert recorder.kinds().count("split") == 3
