"""Inhibition, silences and escalation on a real PostgreSQL; escalation across a process restart
and with two processes (real subprocesses running the alerts worker)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import psycopg

from tests.alerts_support import T0, Clock, alerts_of, drain, events, finding, patient, service
from tests.support.pipeline import wait_for

MIN = timedelta(minutes=1)


def test_a_high_news2_mutes_the_single_vital_alerts_it_explains(
    db: psycopg.Connection[Any], database_url: str
) -> None:
    clock = Clock()
    svc = service(database_url, clock)
    pid = patient(db, programs=("hypertension",))
    other = patient(db)
    # A single-vital alert is paged first; then NEWS2 rises and explains it.
    finding(db, pid, "common.hr_high", "active", T0, severity="medium")
    finding(db, other, "common.hr_high", "active", T0, severity="medium")
    drain(svc, db)
    finding(db, pid, "common.news2_high", "active", T0 + MIN, severity="critical", score=8)
    finding(db, pid, "common.sbp_low", "active", T0 + MIN, severity="high")
    finding(db, pid, "htn.sbp_crisis", "active", T0 + MIN, severity="high")  # not explained
    drain(svc, db)
    by_rule = {a.rule_id: a for a in alerts_of(db, pid)}
    news2 = by_rule["common.news2_high"]
    assert news2.suppressed_by is None and news2.escalate_at is not None
    for rule in ("common.hr_high", "common.sbp_low"):
        assert by_rule[rule].suppressed_by == f"inhibited:{news2.id}", rule
        assert by_rule[rule].escalate_at is None
    assert by_rule["htn.sbp_crisis"].suppressed_by is None
    assert alerts_of(db, other)[0].suppressed_by is None  # another patient: untouched
    assert [k for k, _ in events(db, by_rule["common.hr_high"].id)] == ["opened", "suppressed"]

    # The NEWS2 alert is resolved: the muted alerts come back and are paged.
    clock.advance(5 * MIN)
    svc.resolve(db, news2.id, "nurse:alice", "sent_to_er")
    by_rule = {a.rule_id: a for a in alerts_of(db, pid)}
    for rule in ("common.hr_high", "common.sbp_low"):
        assert by_rule[rule].suppressed_by is None
        assert by_rule[rule].last_paged_at == clock.now
    for rule in ("common.hr_high", "common.sbp_low"):
        kinds = [k for k, _ in events(db, by_rule[rule].id)]
        assert kinds == ["opened", "suppressed", "unsuppressed"], rule
    # Muted as it opened (the NEWS2 alert came in the same batch): never paged until now.
    paged = db.execute(
        "SELECT kind, (detail->>'paged')::bool, detail->>'suppressed_by' FROM alert_events"
        " WHERE alert_id = %s ORDER BY id",
        (by_rule["common.sbp_low"].id,),
    ).fetchall()
    assert [p for _, p, _ in paged] == [False, False, True]
    assert paged[0][2] == f"inhibited:{news2.id}"


def test_inhibition_is_configurable_by_rule(db: psycopg.Connection[Any], database_url: str) -> None:
    from homecare.alerts import InhibitRule

    svc = service(
        database_url, Clock(), inhibitions=(InhibitRule("htn.sbp_crisis", ("htn.sbp_sustained",)),)
    )
    pid = patient(db)
    finding(db, pid, "common.news2_high", "active", T0, severity="critical", score=8)
    finding(db, pid, "common.hr_high", "active", T0, severity="medium")
    finding(db, pid, "htn.sbp_crisis", "active", T0, severity="high")
    finding(db, pid, "htn.sbp_sustained", "active", T0, severity="medium")
    drain(svc, db)
    muted = {a.rule_id: a.suppressed_by for a in alerts_of(db, pid)}
    assert muted["common.hr_high"] is None  # the default NEWS2 inhibition is replaced
    assert (muted["htn.sbp_sustained"] or "").startswith("inhibited:")


def test_a_silence_records_but_does_not_page_until_it_expires(
    db: psycopg.Connection[Any], database_url: str
) -> None:
    clock = Clock()
    svc = service(database_url, clock, flap_window=timedelta(0))
    pid = patient(db)
    silence = svc.silence(
        db,
        actor="nurse:alice",
        reason="known high BP during medication change",
        duration=timedelta(days=7),
        patient_id=pid,
        rule_id="htn.sbp_crisis",
    )
    finding(db, pid, "htn.sbp_crisis", "active", T0)
    finding(db, pid, "common.hr_high", "active", T0, severity="medium")  # other rule: paged
    drain(svc, db)
    by_rule = {a.rule_id: a for a in alerts_of(db, pid)}
    crisis = by_rule["htn.sbp_crisis"]
    assert crisis.suppressed_by == f"silence:{silence}"
    assert crisis.last_paged_at is None and crisis.escalate_at is None
    assert by_rule["common.hr_high"].last_paged_at == T0
    audit = db.execute("SELECT actor, action, detail->>'reason' FROM audit_log").fetchall()
    assert audit == [("nurse:alice", "silence.create", "known high BP during medication change")]

    clock.advance(timedelta(days=6))
    assert svc.housekeeping(db)["unsilenced"] == 0
    clock.advance(timedelta(days=1, minutes=1))
    assert svc.housekeeping(db)["unsilenced"] == 1
    crisis = {a.rule_id: a for a in alerts_of(db, pid)}["htn.sbp_crisis"]
    assert crisis.suppressed_by is None and crisis.last_paged_at == clock.now
    assert crisis.escalate_at == clock.now + timedelta(minutes=30)  # high: 30 min to ack
    assert [k for k, _ in events(db, crisis.id)] == ["opened", "unsuppressed"]


def test_a_new_silence_mutes_open_alerts_and_ending_it_early_pages_them(
    db: psycopg.Connection[Any], database_url: str
) -> None:
    clock = Clock()
    svc = service(database_url, clock)
    pid = patient(db)
    finding(db, pid, "htn.sbp_crisis", "active", T0)
    drain(svc, db)
    silence = svc.silence(
        db, actor="dr:bob", reason="cuff broken", duration=timedelta(hours=4), patient_id=pid
    )
    (alert,) = alerts_of(db, pid)
    assert alert.suppressed_by == f"silence:{silence}" and alert.escalate_at is None
    clock.advance(MIN)
    svc.end_silence(db, silence, "dr:bob")
    (alert,) = alerts_of(db, pid)
    assert alert.suppressed_by is None and alert.last_paged_at == clock.now
    actions = [r[0] for r in db.execute("SELECT action FROM audit_log ORDER BY id")]
    assert actions == ["silence.create", "silence.end"]


def test_escalation_walks_the_chain_until_acknowledged(
    db: psycopg.Connection[Any], database_url: str
) -> None:
    clock = Clock()
    svc = service(database_url, clock)
    pid = patient(db)
    finding(db, pid, "common.news2_high", "active", T0, severity="critical", score=9)
    finding(db, pid, "htn.sbp_crisis", "active", T0, severity="high")
    drain(svc, db)
    clock.advance(14 * MIN)
    assert svc.housekeeping(db)["escalated"] == 0
    clock.advance(2 * MIN)  # critical: 15 minutes
    assert svc.housekeeping(db)["escalated"] == 1
    by_rule = {a.rule_id: a for a in alerts_of(db, pid)}
    svc.acknowledge(db, by_rule["htn.sbp_crisis"].id, "nurse:carol")  # acked in time
    clock.advance(16 * MIN)
    assert svc.housekeeping(db)["escalated"] == 1
    clock.advance(60 * MIN)
    assert svc.housekeeping(db)["escalated"] == 0  # end of the chain
    news2 = {a.rule_id: a for a in alerts_of(db, pid)}["common.news2_high"]
    assert news2.escalation_level == 2 and news2.escalate_at is None
    recipients = db.execute(
        "SELECT detail->>'recipient' FROM alert_events WHERE alert_id = %s AND (detail->>'paged')"
        "::bool ORDER BY id",
        (news2.id,),
    ).fetchall()
    assert recipients == [("primary_nurse",), ("nurse_on_duty",), ("physician_on_call",)]
    assert {a.rule_id: a for a in alerts_of(db, pid)}["htn.sbp_crisis"].escalation_level == 0


_WORKER = textwrap.dedent(
    """
    import signal, sys, threading
    from datetime import timedelta
    from homecare.alerts import AlertsConfig, AlertsWorker
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    step = timedelta(seconds=float(sys.argv[2]))
    config = AlertsConfig(
        database_url=sys.argv[1],
        escalation={"critical": step, "high": step, "medium": step, "low": None},
        housekeeping_every_s=0.1,
        poll_s=0.1,
    )
    print("ready", flush=True)
    AlertsWorker(config).run(stop)
    """
)


def _start(database_url: str, step_s: float, log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as err:
        return subprocess.Popen(
            [sys.executable, "-c", _WORKER, database_url, str(step_s)],
            env=os.environ | {"HOMECARE_LOG_LEVEL": "WARNING"},
            stdout=subprocess.DEVNULL,
            stderr=err,
        )


def test_escalation_survives_a_restart_and_fires_once_with_two_processes(
    db: psycopg.Connection[Any], database_url: str, tmp_path: Path
) -> None:
    from datetime import UTC, datetime

    step = 3.0
    log = tmp_path / "workers.log"
    first = _start(database_url, step, log)
    try:
        pid = patient(db)
        now = datetime.now(UTC)
        for k in range(5):  # five patients' critical alerts, opened by the first process
            target = pid if k == 0 else patient(db)
            finding(db, target, "common.news2_high", "active", now, severity="critical", score=9)
        wait_for(
            lambda: db.execute("SELECT count(*) FROM alerts").fetchone() == (5,),
            what="the first worker to open the alerts",
        )
    finally:
        first.send_signal(signal.SIGKILL)  # dies with every timer pending
        first.wait(10)
    # Two processes start after the first deadline passed: each escalation fires once.
    time.sleep(step + 0.5)
    workers = [_start(database_url, step, log), _start(database_url, step, log)]
    try:
        wait_for(
            lambda: (
                db.execute("SELECT count(*) FROM alerts WHERE escalation_level = 2").fetchone()
                == (5,)
            ),
            timeout_s=30,
            what="every alert to reach the end of the chain",
        )
        time.sleep(1.0)  # time for a double firing to show, if there were one
    finally:
        for w in workers:
            w.send_signal(signal.SIGTERM)
        for w in workers:
            w.wait(20)
    rows = db.execute(
        "SELECT alert_id, detail->>'level', count(*) FROM alert_events WHERE kind = 'escalated'"
        " GROUP BY 1, 2 ORDER BY 1, 2"
    ).fetchall()
    assert len(rows) == 10 and all(n == 1 for _, _, n in rows), rows
    assert all(w.returncode == 0 for w in workers), log.read_text()
