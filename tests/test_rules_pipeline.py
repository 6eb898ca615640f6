"""Rules on a real PostgreSQL: outbox → evaluation → findings; replay equals live; several
workers, backlogs and overrides."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import threading
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg

from homecare import store
from homecare.ingest import Delivery, ParseLimits, parse_message, write_batch
from homecare.rules import RulesConfig, RulesWorker, load_packs, replay
from homecare.rules.repository import set_override
from homecare.rules.worker import wait_idle
from tests.conftest import enrol

T0 = datetime(2026, 10, 1, 7, 0, tzinfo=UTC)
NOW = T0 + timedelta(days=20)


def worker(database_url: str, now: datetime = NOW) -> RulesWorker:
    return RulesWorker(RulesConfig(database_url=database_url, clock=lambda: now))


def hf_days(device: str) -> list[list[dict[str, object]]]:
    """hf_days: one message a day — weight, and heart rate — with a decompensation from day 12."""
    days = []
    for d in range(18):
        at = (T0 + timedelta(days=d)).isoformat()
        weight = 81.0 + (d % 2) * 0.2 + (0.8 * (d - 11) if d >= 12 else 0)
        heart = 72 + (d % 3) + (20 if d >= 14 else 0)
        days.append(
            [
                {"type": "body_weight", "value": round(weight, 1), "unit": "kg", "time": at},
                {"type": "heart_rate", "value": heart, "unit": "/min", "time": at},
            ]
        )
    return days


def store_day(
    conn: psycopg.Connection[Any],
    device: str,
    day: int,
    readings: list[dict[str, object]],
    received: datetime,
) -> None:
    payload = json.dumps({"msg_id": f"{device}-{day}", "readings": readings}).encode()
    delivery = Delivery(f"homecare/v1/devices/{device}/readings", payload, received)
    write_batch(conn, [parse_message(delivery, ParseLimits(max_age=timedelta(days=3650)))])


def findings(conn: psycopg.Connection[Any], patient: uuid.UUID) -> list[tuple[Any, ...]]:
    return conn.execute(
        "SELECT rule_id, state, evidence_time, late FROM findings"
        " WHERE patient_id = %s AND retracted_at IS NULL ORDER BY evidence_time, rule_id, state",
        (patient,),
    ).fetchall()


def glitchy_days(device: str) -> list[list[dict[str, object]]]:
    """glitchy_days: hf_days with a lone motion-artefact pulse of 285 on day 5."""
    days = hf_days(device)
    days[5][1]["value"] = 285
    return days


def feed(
    conn: psycopg.Connection[Any],
    database_url: str,
    device: str,
    order: Callable[[list[int]], list[int]],
    evaluate_each: bool = True,
    make_days: Callable[[str], list[list[dict[str, object]]]] = hf_days,
    programs: tuple[str, ...] = ("heart_failure",),
    sent_after: timedelta = timedelta(minutes=5),
) -> uuid.UUID:
    patient = enrol(conn, device, since=T0 - timedelta(days=1), programs=programs)
    rules = worker(database_url)
    days = make_days(device)
    for day in order(list(range(len(days)))):
        store_day(conn, device, day, days[day], received=T0 + timedelta(days=day) + sent_after)
        if evaluate_each:
            wait_idle(rules)
    wait_idle(rules)
    rules.close()
    return patient


def test_live_findings_then_replay_gives_exactly_the_same(
    db: psycopg.Connection[Any], database_url: str
) -> None:
    patient = feed(db, database_url, "scale-1", order=lambda days: days)
    found = findings(db, patient)
    rules_fired = {(rule, state) for rule, state, _, _ in found}
    assert ("hf.weight_gain", "active") in rules_fired
    assert ("hf.hr_rise", "active") in rules_fired
    assert ("hf.decompensation", "active") in rules_fired
    assert db.execute("SELECT count(*) FROM reading_changes").fetchone() == (0,)

    report = replay(db, load_packs(), T0 - timedelta(days=1), NOW, timedelta(hours=6))
    assert report.patients == 1
    assert report.equal, (report.only_stored, report.only_replayed)
    assert len(report.same) == len(found)


def test_a_shuffled_backlog_gives_the_findings_of_an_in_order_stream(
    db: psycopg.Connection[Any], database_url: str
) -> None:
    in_order = feed(db, database_url, "scale-a", order=lambda days: days)

    def shuffled(days: list[int]) -> list[int]:
        random.Random(9).shuffle(days)
        return days

    backlog = feed(db, database_url, "scale-b", order=shuffled)
    strip = lambda rows: [(r, s, t) for r, s, t, _ in rows]  # noqa: E731
    assert strip(findings(db, backlog)) == strip(findings(db, in_order))
    assert len(findings(db, in_order)) >= 3


def test_a_lone_glitch_is_the_same_note_live_from_a_backlog_and_in_replay(
    db: psycopg.Connection[Any], database_url: str
) -> None:
    # common.suspect_reading (common v5): a pulse above 220 counts only once an earlier reading
    # confirms it; until the next pulse it is a low note. Whether a reading is confirmed depends
    # only on earlier readings, so the worker's passes, a shuffled backlog and a replay agree.
    live = feed(db, database_url, "scale-g1", order=lambda days: days, make_days=glitchy_days)
    found = [(rule, state, at) for rule, state, at, _ in findings(db, live)]
    glitch, next_pulse = T0 + timedelta(days=5), T0 + timedelta(days=6)
    assert ("common.suspect_reading", "active", glitch) in found
    assert ("common.suspect_reading", "cleared", next_pulse) in found
    assert [rule for rule, state, at in found if at == glitch and state == "active"] == [
        "common.suspect_reading"
    ]
    report = replay(db, load_packs(), T0 - timedelta(days=1), NOW, timedelta(hours=6))
    assert report.equal, (report.only_stored, report.only_replayed)

    def shuffled(days: list[int]) -> list[int]:
        random.Random(4).shuffle(days)
        return days

    backlog = feed(db, database_url, "scale-g2", order=shuffled, make_days=glitchy_days)
    assert [(rule, state, at) for rule, state, at, _ in findings(db, backlog)] == found


def glucose_days(device: str) -> list[list[dict[str, object]]]:
    """glucose_days: a meter's day a message — fasting 6, noon 7, before dinner 10, bedtime 12
    mmol/L (T0 is 07:00 UTC) — with a fall to 6.4 before dinner on day 16."""
    days = []
    for d in range(18):
        day = []
        for hours, value in ((0, 6.0), (5, 7.0), (10.5, 10.0), (15, 12.0)):
            if d == 16 and hours == 10.5:
                value = 6.4
            at = (T0 + timedelta(days=d, hours=hours)).isoformat()
            day.append({"type": "blood_glucose", "value": value, "unit": "mmol/L", "time": at})
        days.append(day)
    return days


def test_a_fall_against_the_usual_at_that_time_of_day_is_the_same_live_from_a_backlog_and_in_replay(
    db: psycopg.Connection[Any], database_url: str
) -> None:
    # dm.glucose_fall (diabetes v4): 35 % below the patient's usual within 3 h of the reading's
    # clock time. 6.4 before dinner is 36 % below the usual 10 there, though above the all-day
    # median's 35 % line (8.5 -> 5.5); the bedtime 12 that follows clears it. Which readings
    # make the usual depends only on their clock times, so passes, backlog and replay agree.
    def meter(device: str, order: Callable[[list[int]], list[int]]) -> uuid.UUID:
        return feed(
            db, database_url, device, order, make_days=glucose_days,
            programs=("diabetes",), sent_after=timedelta(hours=16),
        )  # fmt: skip

    live = meter("meter-1", order=lambda days: days)
    found = [(rule, state, at) for rule, state, at, _ in findings(db, live)]
    fall = T0 + timedelta(days=16, hours=10.5)
    assert [f for f in found if f[0] != "dm.missing_glucose"] == [
        ("dm.glucose_fall", "active", fall),
        ("dm.glucose_fall", "cleared", fall + timedelta(hours=4.5)),
    ]
    report = replay(db, load_packs(), T0 - timedelta(days=1), NOW, timedelta(hours=6))
    assert report.equal, (report.only_stored, report.only_replayed)

    def shuffled(days: list[int]) -> list[int]:
        random.Random(6).shuffle(days)
        return days

    backlog = meter("meter-2", order=shuffled)
    assert [(rule, state, at) for rule, state, at, _ in findings(db, backlog)] == found


def test_two_workers_give_the_findings_of_one(
    db: psycopg.Connection[Any], database_url: str
) -> None:
    alone = feed(db, database_url, "scale-1", order=lambda days: days)
    pair = enrol(db, "scale-2", since=T0 - timedelta(days=1), programs=("heart_failure",))
    days = hf_days("scale-2")
    for day, readings in enumerate(days):
        store_day(db, "scale-2", day, readings, received=T0 + timedelta(days=day, minutes=5))
    workers = [worker(database_url), worker(database_url)]
    threads = [threading.Thread(target=wait_idle, args=(w,)) for w in workers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for w in workers:
        w.close()
    strip = lambda rows: [(r, s, t) for r, s, t, _ in rows]  # noqa: E731
    assert strip(findings(db, pair)) == strip(findings(db, alone))


def test_a_late_backlog_is_marked_late(db: psycopg.Connection[Any], database_url: str) -> None:
    patient = enrol(db, "scale-1", since=T0 - timedelta(days=1), programs=("heart_failure",))
    for day, readings in enumerate(hf_days("scale-1")):
        # Everything uploaded at once, days after it was measured.
        store_day(db, "scale-1", day, readings, received=T0 + timedelta(days=19))
    rules = worker(database_url)
    wait_idle(rules)
    rules.close()
    active = [row for row in findings(db, patient) if row[1] == "active"]
    from_readings = [row for row in active if row[0] != "hf.missing_weight"]
    assert len(from_readings) >= 3 and all(late for _, _, _, late in from_readings)
    # The missing-weight finding is decided by the clock (no weight for 48 h), not by old data.
    assert [row[3] for row in active if row[0] == "hf.missing_weight"] == [False]


def test_an_override_is_audited_and_changes_findings_from_its_time(
    db: psycopg.Connection[Any], database_url: str
) -> None:
    patient = enrol(db, "cuff-1", since=T0 - timedelta(days=1), programs=("heart_failure",))
    for hour in range(6):
        at = (T0 + timedelta(hours=hour)).isoformat()
        store_day(
            db,
            "cuff-1",
            hour,
            [{"type": "heart_rate", "value": 125, "unit": "/min", "time": at}],
            received=T0 + timedelta(hours=hour, minutes=1),
        )
    rules = worker(database_url)
    wait_idle(rules)
    assert ("common.hr_high", "active", T0 + timedelta(hours=1), False) in findings(db, patient)

    set_override(
        db,
        patient,
        "common.hr_high",
        130.0,
        actor="nurse:alice",
        reason="known sinus tachycardia, on treatment",
        at=T0 + timedelta(hours=3),
    )
    wait_idle(rules)
    rules.close()
    rows = [(r, s, t) for r, s, t, _ in findings(db, patient) if r == "common.hr_high"]
    assert rows == [
        ("common.hr_high", "active", T0 + timedelta(hours=1)),
        ("common.hr_high", "cleared", T0 + timedelta(hours=3)),
    ]
    audit = db.execute("SELECT actor, action, subject, detail FROM audit_log").fetchall()
    assert len(audit) == 1
    actor, action, subject, detail = audit[0]
    assert (actor, action, subject) == (
        "nurse:alice",
        "threshold_override.set",
        f"patient/{patient}",
    )
    assert detail["after"] == 130.0 and detail["before"] is None and "sinus" in detail["reason"]


def test_missing_data_fires_from_the_periodic_tick(
    db: psycopg.Connection[Any], database_url: str
) -> None:
    patient = enrol(db, "scale-1", since=T0 - timedelta(days=1), programs=("heart_failure",))
    for day in range(3):
        at = (T0 + timedelta(days=day)).isoformat()
        store_day(
            db,
            "scale-1",
            day,
            [{"type": "body_weight", "value": 80, "unit": "kg", "time": at}],
            received=T0 + timedelta(days=day, minutes=1),
        )
    early = worker(database_url, now=T0 + timedelta(days=2, hours=1))
    wait_idle(early)
    early.close()
    assert [r for r in findings(db, patient) if r[0] == "hf.missing_weight"] == []

    later = worker(database_url, now=T0 + timedelta(days=5))
    later.tick_if_due()
    wait_idle(later)
    later.close()
    missing = [r[:3] for r in findings(db, patient) if r[0] == "hf.missing_weight"]
    assert missing == [("hf.missing_weight", "active", T0 + timedelta(days=4))]
    assert store.flavour(db) == "postgres"


def homecare_replay(database_url: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "homecare", "replay", "--since", "2026-09-30", "--until",
         NOW.isoformat()],
        env=os.environ | {"HOMECARE_DATABASE_URL": database_url, "HOMECARE_LOG_LEVEL": "WARNING"},
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def test_the_replay_command_reports_agreement(
    db: psycopg.Connection[Any], database_url: str
) -> None:
    feed(db, database_url, "scale-1", order=lambda days: days)
    result = homecare_replay(database_url)
    assert result.returncode == 0, result.stderr
    assert "replayed 1 patients:" in result.stdout
    assert ", 0 only stored, 0 only replayed" in result.stdout

    # Tamper with history: the replay must notice, and exit non-zero.
    db.execute("UPDATE findings SET retracted_at = now() WHERE rule_id = 'hf.weight_gain'")
    tampered = homecare_replay(database_url)
    assert tampered.returncode == 3
    assert "only replayed" in tampered.stdout and "hf.weight_gain active" in tampered.stdout
