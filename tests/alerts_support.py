"""Helpers for the alerts tests: findings as the rules stage writes them, a settable clock,
a service bound to a test database."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from homecare import store
from homecare.alerts import AlertsConfig, AlertService

T0 = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)


@dataclass
class Clock:
    """Clock is a settable ``now`` for configs."""

    now: datetime = T0

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> None:
        self.now += delta


def patient(
    conn: psycopg.Connection[Any],
    programs: tuple[str, ...] = ("hypertension",),
    care_team: str | None = None,
) -> uuid.UUID:
    return store.create_patient(
        conn, display_name="Test patient", programs=programs, care_team=care_team
    )


def finding(
    conn: psycopg.Connection[Any],
    patient_id: uuid.UUID,
    rule_id: str,
    state: str,
    at: datetime,
    *,
    severity: str = "high",
    late: bool = False,
    score: int | None = None,
) -> int:
    """finding inserts one finding row the way ``rules.repository.reconcile`` does."""
    evidence: dict[str, Any] = {"value": 200}
    if score is not None:
        evidence["score"] = score
    row = conn.execute(
        "INSERT INTO findings (patient_id, rule_id, state, severity, evidence_time, received_at,"
        " late, summary, evidence, pack, pack_version)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, 'common', 1) RETURNING id",
        (patient_id, rule_id, state, severity, at, at, late, f"{rule_id} {state}", Jsonb(evidence)),
    ).fetchone()
    assert row is not None
    return int(row[0])


def retract(conn: psycopg.Connection[Any], finding_id: int) -> None:
    conn.execute("UPDATE findings SET retracted_at = now() WHERE id = %s", (finding_id,))


def service(database_url: str, clock: Clock, **overrides: Any) -> AlertService:
    return AlertService(AlertsConfig(database_url=database_url, clock=clock, **overrides))


def drain(svc: AlertService, conn: psycopg.Connection[Any]) -> None:
    """drain processes every announced patient."""
    from homecare.alerts.repository import pending_patients

    for pid in pending_patients(conn, 1000):
        svc.process_patient(conn, pid)


def events(conn: psycopg.Connection[Any], alert_id: int) -> list[tuple[str, str]]:
    return [
        (kind, actor)
        for kind, actor in conn.execute(
            "SELECT kind, actor FROM alert_events WHERE alert_id = %s ORDER BY id", (alert_id,)
        )
    ]


def alerts_of(conn: psycopg.Connection[Any], patient_id: uuid.UUID) -> list[Any]:
    from homecare.alerts import list_alerts

    return sorted(list_alerts(conn, patient_id=patient_id), key=lambda a: a.id)
