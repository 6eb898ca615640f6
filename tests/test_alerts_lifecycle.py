"""Alerts lifecycle on a real PostgreSQL: open → acknowledged → resolved with who and when,
outcomes, de-duplication by fingerprint, condition apart from handling, auto-resolution after a
hold time, flapping, retractions, the queue order, and the audit trail."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

import psycopg
import pytest

from homecare import store
from homecare.alerts import OUTCOMES, InvalidTransition, list_alerts
from homecare.alerts.repository import StoredFinding, insert_alert
from tests.alerts_support import (
    T0,
    Clock,
    alerts_of,
    drain,
    events,
    finding,
    patient,
    retract,
    service,
)

MIN = timedelta(minutes=1)


def test_each_fingerprint_opens_its_own_alert_with_the_contract_shape(
    db: psycopg.Connection[Any], database_url: str
) -> None:
    clock = Clock()
    svc = service(database_url, clock)
    pid = patient(db)
    finding(db, pid, "htn.sbp_crisis", "active", T0)
    drain(svc, db)
    finding(db, pid, "common.hr_high", "active", T0, severity="medium")
    drain(svc, db)
    (htn, hr) = alerts_of(db, pid)
    assert (htn.rule_id, htn.status, htn.condition) == ("htn.sbp_crisis", "open", "active")
    assert htn.to_json().keys() >= {
        "id", "patient_id", "rule_id", "severity", "status", "condition", "opened_at",
        "evidence_time", "summary", "evidence",
    }  # fmt: skip
    assert htn.to_json()["opened_at"] == T0.isoformat()
    assert events(db, htn.id) == [("opened", "system:alerts")]
    assert hr.rule_id == "common.hr_high"


def test_clear_then_refire_updates_the_open_alert_and_reopens_an_acknowledged_one(
    db: psycopg.Connection[Any], database_url: str
) -> None:
    clock = Clock()
    svc = service(database_url, clock, flap_window=timedelta(minutes=30))
    pid = patient(db)
    finding(db, pid, "htn.sbp_crisis", "active", T0)
    drain(svc, db)
    (alert,) = alerts_of(db, pid)

    clock.advance(10 * MIN)
    finding(db, pid, "htn.sbp_crisis", "cleared", T0 + 10 * MIN)
    drain(svc, db)
    (alert,) = alerts_of(db, pid)
    # The condition cleared by itself; the alert still waits for a nurse.
    assert (alert.status, alert.condition, alert.cleared_at) == ("open", "cleared", T0 + 10 * MIN)

    clock.advance(10 * MIN)
    finding(db, pid, "htn.sbp_crisis", "active", T0 + 20 * MIN)
    drain(svc, db)
    (alert,) = alerts_of(db, pid)  # still one alert: same fingerprint, unresolved
    assert (alert.status, alert.condition, alert.fired_count) == ("open", "active", 2)

    svc.acknowledge(db, alert.id, "nurse:alice")
    (alert,) = alerts_of(db, pid)
    assert (alert.status, alert.acknowledged_by, alert.acknowledged_at) == (
        "acknowledged",
        "nurse:alice",
        clock.now,
    )
    assert alert.escalate_at is None

    # Acknowledged: new evidence of the same episode does not page again.
    clock.advance(5 * MIN)
    finding(db, pid, "htn.sbp_crisis", "active", T0 + 25 * MIN)
    drain(svc, db)
    assert alerts_of(db, pid)[0].status == "acknowledged"

    # Clears and fires again past the flap window: the acknowledgement no longer holds.
    clock.advance(40 * MIN)
    finding(db, pid, "htn.sbp_crisis", "cleared", T0 + 60 * MIN)
    finding(db, pid, "htn.sbp_crisis", "active", T0 + 65 * MIN)
    drain(svc, db)
    (alert,) = alerts_of(db, pid)
    assert (alert.status, alert.condition, alert.acknowledged_by) == ("open", "active", None)
    assert alert.last_paged_at == clock.now
    kinds = [k for k, _ in events(db, alert.id)]
    assert kinds == [
        "opened", "cleared", "refired", "acknowledged", "updated", "cleared", "refired"
    ]  # fmt: skip


def test_flapping_does_not_page_again(db: psycopg.Connection[Any], database_url: str) -> None:
    clock = Clock()
    svc = service(database_url, clock, flap_window=timedelta(minutes=30))
    pid = patient(db)
    finding(db, pid, "htn.sbp_crisis", "active", T0)
    drain(svc, db)
    (alert,) = alerts_of(db, pid)
    svc.acknowledge(db, alert.id, "nurse:alice")
    for k in range(1, 6):  # clears and re-fires every 2 minutes
        clock.advance(2 * MIN)
        finding(db, pid, "htn.sbp_crisis", "cleared" if k % 2 else "active", clock.now)
        drain(svc, db)
    (alert,) = alerts_of(db, pid)
    assert alert.status == "acknowledged" and alert.last_paged_at == T0
    paged = db.execute(
        "SELECT count(*) FROM alert_events WHERE alert_id = %s AND (detail->>'paged')::bool",
        (alert.id,),
    ).fetchone()
    assert paged == (1,)
    reasons = db.execute(
        "SELECT detail->>'suppressed_by' FROM alert_events WHERE kind = 'refired'"
    ).fetchall()
    assert reasons == [("flapping",), ("flapping",)]


@pytest.mark.parametrize("outcome", sorted(OUTCOMES))
def test_a_nurse_resolves_with_an_outcome_and_a_refire_opens_a_new_alert(
    db: psycopg.Connection[Any], database_url: str, outcome: str
) -> None:
    clock = Clock()
    svc = service(database_url, clock)
    pid = patient(db)
    finding(db, pid, "htn.sbp_crisis", "active", T0)
    drain(svc, db)
    (first,) = alerts_of(db, pid)
    clock.advance(3 * MIN)
    resolved = svc.resolve(db, first.id, "nurse:bob", outcome, note="called, fine")
    assert (resolved.status, resolved.outcome, resolved.resolved_by, resolved.resolved_at) == (
        "resolved",
        outcome,
        "nurse:bob",
        clock.now,
    )
    audit = db.execute("SELECT actor, action, subject, detail FROM audit_log").fetchall()
    assert audit == [("nurse:bob", "alert.resolve", f"alert/{first.id}", {"outcome": outcome})]
    with pytest.raises(InvalidTransition):
        svc.acknowledge(db, first.id, "nurse:bob")
    with pytest.raises(InvalidTransition):
        svc.resolve(db, first.id, "nurse:bob", outcome)

    # Same episode still active: no new alert. A clear and a new firing: a new alert.
    finding(db, pid, "htn.sbp_crisis", "cleared", T0 + 10 * MIN)
    drain(svc, db)
    assert len(alerts_of(db, pid)) == 1
    finding(db, pid, "htn.sbp_crisis", "active", T0 + 20 * MIN)
    drain(svc, db)
    first_again, second = alerts_of(db, pid)
    assert first_again.status == "resolved" and second.status == "open"


def test_unknown_outcome_and_missing_actor_are_refused(
    db: psycopg.Connection[Any], database_url: str
) -> None:
    svc = service(database_url, Clock())
    pid = patient(db)
    finding(db, pid, "htn.sbp_crisis", "active", T0)
    drain(svc, db)
    (alert,) = alerts_of(db, pid)
    with pytest.raises(InvalidTransition):
        svc.resolve(db, alert.id, "nurse:bob", "auto_resolved")
    with pytest.raises(InvalidTransition):
        svc.acknowledge(db, alert.id, " ")


def test_auto_resolve_after_the_hold_time_only_where_allowed(
    db: psycopg.Connection[Any], database_url: str
) -> None:
    clock = Clock()
    svc = service(database_url, clock, hold=timedelta(minutes=30))
    pid = patient(db, programs=("heart_failure", "diabetes"))
    finding(db, pid, "hf.missing_weight", "active", T0, severity="low")  # auto_resolve: true
    finding(db, pid, "dm.hypo_level2", "active", T0, severity="critical")  # auto_resolve: false
    finding(db, pid, "common.news2_high", "active", T0, severity="critical", score=8)
    drain(svc, db)
    for rule in ("hf.missing_weight", "dm.hypo_level2", "common.news2_high"):
        finding(db, pid, rule, "cleared", T0 + 5 * MIN)
    clock.advance(5 * MIN)
    drain(svc, db)

    clock.advance(29 * MIN)  # clear for 29 minutes: not yet
    assert svc.housekeeping(db)["auto_resolved"] == 0
    # Fires again and clears during the hold: the hold starts over.
    finding(db, pid, "hf.missing_weight", "active", T0 + 30 * MIN, severity="low")
    finding(db, pid, "hf.missing_weight", "cleared", T0 + 32 * MIN, severity="low")
    drain(svc, db)
    clock.advance(2 * MIN)  # T0+36: 31 min after the first clear, 4 after the second
    assert svc.housekeeping(db)["auto_resolved"] == 0
    clock.advance(30 * MIN)
    assert svc.housekeeping(db)["auto_resolved"] == 1
    by_rule = {a.rule_id: a for a in alerts_of(db, pid)}
    auto = by_rule["hf.missing_weight"]
    assert (auto.status, auto.outcome, auto.resolved_by) == (
        "resolved",
        "auto_resolved",
        "system:auto_resolved",
    )
    # The rule forbids it, and a critical alert waits for a nurse even when its rule allows it.
    assert by_rule["dm.hypo_level2"].status == "open"
    assert by_rule["common.news2_high"].status == "open"
    assert svc.housekeeping(db)["auto_resolved"] == 0


def test_a_retracted_firing_resolves_its_alert_as_retracted(
    db: psycopg.Connection[Any], database_url: str
) -> None:
    svc = service(database_url, Clock())
    pid = patient(db)
    fid = finding(db, pid, "htn.sbp_crisis", "active", T0)
    kept = finding(db, pid, "common.hr_high", "active", T0, severity="medium")
    drain(svc, db)
    retract(db, fid)
    drain(svc, db)
    by_rule = {a.rule_id: a for a in alerts_of(db, pid)}
    assert (by_rule["htn.sbp_crisis"].status, by_rule["htn.sbp_crisis"].outcome) == (
        "resolved",
        "retracted",
    )
    assert by_rule["common.hr_high"].status == "open"
    # A retraction that leaves an earlier firing standing keeps the alert and follows history.
    retract(db, kept)
    finding(db, pid, "common.hr_high", "active", T0 - 60 * MIN, severity="medium")
    finding(db, pid, "common.hr_high", "cleared", T0 - 30 * MIN, severity="medium")
    drain(svc, db)
    hr = {a.rule_id: a for a in alerts_of(db, pid)}["common.hr_high"]
    assert (hr.status, hr.condition, hr.cleared_at) == ("open", "cleared", T0 - 30 * MIN)


def test_the_queue_is_sorted_by_severity_then_news2_then_age(
    db: psycopg.Connection[Any], database_url: str
) -> None:
    svc = service(database_url, Clock(), inhibitions=())
    a, b, c = patient(db), patient(db), patient(db)
    finding(db, a, "common.hr_high", "active", T0, severity="medium")
    finding(db, b, "common.news2_medium", "active", T0, severity="high", score=5)
    finding(db, c, "common.news2_medium", "active", T0, severity="high", score=6)
    finding(db, a, "common.news2_high", "active", T0, severity="critical", score=7)
    finding(db, b, "htn.sbp_crisis", "active", T0, severity="high")
    drain(svc, db)
    queue = [(x.rule_id, x.news2) for x in list_alerts(db, status="open")]
    assert queue[0] == ("common.news2_high", 7)
    assert queue[1] == ("common.news2_medium", 6)
    assert queue[2] == ("common.news2_medium", 5)
    assert queue[3] == ("htn.sbp_crisis", None)
    assert queue[4] == ("common.hr_high", None)


def test_two_processes_raising_the_same_fingerprint_make_one_alert(
    db: psycopg.Connection[Any], database_url: str
) -> None:
    """Without the per-patient lock (each on its own connection, released at a barrier), the
    unique index on the fingerprint still lets exactly one insert win."""
    pid = patient(db)
    fid = finding(db, pid, "htn.sbp_crisis", "active", T0)
    f = StoredFinding(fid, "htn.sbp_crisis", "active", "high", T0, False, "s", {}, False)
    barrier = threading.Barrier(8)
    won: list[bool] = []

    def race() -> None:
        with store.connect(database_url, autocommit=True) as conn, conn.transaction():
            barrier.wait()
            won.append(insert_alert(conn, pid, f, T0) is not None)

    threads = [threading.Thread(target=race) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(won) == [False] * 7 + [True]
    assert db.execute("SELECT count(*) FROM alerts").fetchone() == (1,)


def test_two_alert_workers_on_the_same_findings_make_one_alert_each(
    db: psycopg.Connection[Any], database_url: str
) -> None:
    patients = [patient(db) for _ in range(20)]
    for pid in patients:
        finding(db, pid, "htn.sbp_crisis", "active", T0)
        finding(db, pid, "common.hr_high", "active", T0, severity="medium")
    services = [service(database_url, Clock()) for _ in range(3)]

    def work(svc: Any) -> None:
        with store.connect(database_url, autocommit=True) as conn:
            for _ in range(3):
                drain(svc, conn)

    threads = [threading.Thread(target=work, args=(s,)) for s in services]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    drain(services[0], db)
    rows = db.execute("SELECT count(*), count(DISTINCT (patient_id, rule_id)) FROM alerts")
    assert rows.fetchone() == (40, 40)
    assert db.execute("SELECT count(*) FROM alert_events WHERE kind = 'opened'").fetchone() == (40,)
    assert db.execute("SELECT count(*) FROM alert_inbox").fetchone() == (0,)
