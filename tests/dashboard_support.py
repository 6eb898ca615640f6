"""Dashboard test support: small fixed packs, alerts opened through the alerts stage, a signed-in
browser, and a patient's readings for the charts."""

from __future__ import annotations

import json
import re
import uuid
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg.types.json import Jsonb

from homecare import store
from tests.alerts_support import drain
from tests.api_support import PASSWORD, World

__all__ = [
    "COMMON",
    "HEART_FAILURE",
    "alert_for",
    "chart_data",
    "csrf",
    "finding",
    "packs_dir",
    "readings",
    "sign_in",
    "sign_in_with_password",
]

# Small fixed packs, so these tests do not move with the clinical tuning of the shipped ones
# (the French summaries of the shipped packs are checked against the packs themselves below).
COMMON = """
pack: common
version: 1
rules:
  - {id: common.news2_medium, kind: news2, min_score: 5, within: 12h, severity: high,
     summary: "NEWS2 {score}"}
  - {id: common.news2_high, kind: news2, min_score: 7, within: 12h, severity: critical,
     summary: "NEWS2 {score}"}
  - {id: common.hr_high, kind: threshold, type: heart_rate, op: ">", value: 120,
     severity: medium, summary: "HR {value:.0f}"}
  - {id: common.hr_low, kind: threshold, type: heart_rate, op: "<", value: 40,
     severity: medium, summary: "HR {value:.0f}"}
"""
HEART_FAILURE = """
pack: heart_failure
version: 1
rules:
  - {id: hf.spo2_low, kind: threshold, type: spo2, op: "<", value: 92, severity: medium,
     summary: "SpO2 {value:.0f}% below {threshold:.0f}% in {count} of the last {of} readings"}
  - {id: hf.weight_gain, kind: baseline_change, type: body_weight, change: 2.0, over: 3d,
     baseline: 7d, severity: high,
     summary: "Weight {value:.1f} kg, {delta:+.1f} kg above the patient's baseline"}
"""


@pytest.fixture
def packs_dir(tmp_path: Path) -> Path:
    """packs_dir: the fixed packs above (the world's app reads them)."""
    target = tmp_path / "packs"
    target.mkdir()
    (target / "common.yaml").write_text(COMMON)
    (target / "heart_failure.yaml").write_text(HEART_FAILURE)
    return target


def finding(
    conn: psycopg.Connection[Any],
    patient_id: uuid.UUID,
    rule_id: str,
    at: datetime,
    evidence: dict[str, Any],
    severity: str = "high",
    summary: str | None = None,
    late: bool = False,
) -> None:
    """finding writes an active finding as the rules stage does (the trigger wakes alerts)."""
    conn.execute(
        "INSERT INTO findings (patient_id, rule_id, state, severity, evidence_time, received_at,"
        " late, summary, evidence, pack, pack_version)"
        " VALUES (%s, %s, 'active', %s, %s, %s, %s, %s, %s, 'common', 1)",
        (
            patient_id,
            rule_id,
            severity,
            at,
            at,
            late,
            summary or f"stored summary of {rule_id}",
            Jsonb(evidence),
        ),
    )


def alert_for(w: World, patient: str, at: datetime, **kw: Any) -> int:
    """alert_for opens an hf.spo2_low alert for the world's patient through the alerts stage."""
    evidence = {"value": 89.0, "threshold": 92.0, "count": 2, "of": 3}
    finding(w.db, w.patients[patient], kw.pop("rule_id", "hf.spo2_low"), at, evidence, **kw)
    drain(w.client.app.state.alerts, w.db)  # type: ignore[attr-defined]
    row = w.db.execute(
        "SELECT max(id) FROM alerts WHERE patient_id = %s", (w.patients[patient],)
    ).fetchone()
    assert row is not None and row[0] is not None
    return int(row[0])


def sign_in(w: World, user: str = "nurse") -> None:
    """sign_in gives the browser the user's token as its session cookie (what the sign-in form
    does, without paying an argon2 check in every test; the form has tests of its own)."""
    w.client.cookies.set("homecare_session", w.tokens[user])


def sign_in_with_password(w: World, user: str = "nurse") -> None:
    answer = w.client.post(
        "/dashboard/login",
        data={"username": user, "password": PASSWORD, "next": "/dashboard/"},
        follow_redirects=False,
    )
    assert answer.status_code == 303, answer.text
    assert answer.headers["location"] == "/dashboard/"


def csrf(html: str) -> str:
    found = re.search(r'name="csrf" value="([0-9a-f]{64})"', html)
    assert found, "every signed-in page carries the form token"
    return found.group(1)


def readings(conn: psycopg.Connection[Any], patient: uuid.UUID, now: datetime) -> None:
    store.register_device(conn, "ox-1", model="oximeter")
    store.assign_device(conn, "ox-1", patient, now - timedelta(days=100))
    conn.execute(
        "INSERT INTO readings (time, patient_id, device_id, type, value, unit, original_value,"
        " original_unit, msg_id, received_at)"
        " SELECT t, %(p)s, 'ox-1', ty.name, ty.v + (extract(hour FROM t) %% 3), ty.u,"
        " ty.v, ty.u, 'm' || extract(epoch FROM t), t"
        " FROM generate_series(%(start)s::timestamptz, %(end)s::timestamptz, '6 hours') AS t,"
        " (VALUES ('spo2', 94.0, '%%'), ('heart_rate', 80.0, '/min'),"
        "  ('respiratory_rate', 18.0, '/min'), ('systolic_bp', 125.0, 'mm[Hg]'),"
        "  ('body_temperature', 37.0, 'Cel')) AS ty(name, v, u)",
        {"p": patient, "start": now - timedelta(days=95), "end": now - timedelta(hours=1)},
    )
    store.refresh_aggregates(conn)


def chart_data(html: str) -> dict[str, Any]:
    found = re.search(r'<script type="application/json" id="chart-data">(.*?)</script>', html)
    assert found
    data: dict[str, Any] = json.loads(found.group(1))
    return data
