"""Replay: re-evaluate stored readings over a span and compare with the stored findings.

The live path and the replay run the same pure evaluation from the same stored state (the
findings before the span, the readings and the registered anomaly models, chosen by event
time), so they must agree; any difference is a bug or a
changed rule pack, and ``apply`` makes the store follow the replay.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import psycopg

from homecare.rules import repository
from homecare.rules.evaluate import evaluate_patient, history_needed
from homecare.rules.model import Finding
from homecare.rules.models import ModelLoader
from homecare.rules.packs import PackSet

__all__ = ["ReplayReport", "replay"]


@dataclass
class ReplayReport:
    """ReplayReport lists the findings both agree on and those only one side has."""

    patients: int = 0
    same: list[Finding] = field(default_factory=list)
    only_stored: list[Finding] = field(default_factory=list)
    only_replayed: list[Finding] = field(default_factory=list)

    @property
    def equal(self) -> bool:
        return not self.only_stored and not self.only_replayed


def replay(
    conn: psycopg.Connection[Any],
    packs: PackSet,
    since: datetime,
    until: datetime,
    late_after: timedelta,
    *,
    patient_id: uuid.UUID | None = None,
    apply: bool = False,
    models: ModelLoader | None = None,
) -> ReplayReport:
    """replay re-evaluates [since, until] (per patient, no further than it was evaluated live),
    with the anomaly models registered for each instant, as the live pass had them."""
    report = ReplayReport()
    models = models or ModelLoader()
    for pid, evaluated_until in _patients(conn, patient_id):
        end = min(until, evaluated_until)
        if end < since:
            continue
        patient = repository.load_context(conn, pid)
        if patient is None:
            continue
        report.patients += 1
        patient = models.context(conn, patient)
        readings = repository.load_readings(
            conn, pid, since - history_needed(packs, patient.programs), end
        )
        initial = repository.initial_states(conn, pid, since)
        replayed = evaluate_patient(packs, patient, readings, since, end, initial, late_after)
        stored = repository.current_findings(conn, pid, since, end)
        stored_keys = {f.key for f in stored}
        replayed_keys = {f.key for f in replayed}
        report.same.extend(f for f in replayed if f.key in stored_keys)
        report.only_replayed.extend(f for f in replayed if f.key not in stored_keys)
        report.only_stored.extend(f for f in stored if f.key not in replayed_keys)
        if apply:
            with conn.transaction():
                repository.reconcile(conn, pid, since, end, replayed)
    return report


def _patients(
    conn: psycopg.Connection[Any], patient_id: uuid.UUID | None
) -> list[tuple[uuid.UUID, datetime]]:
    rows = conn.execute(
        "SELECT patient_id, evaluated_until FROM rule_progress"
        " WHERE %s::uuid IS NULL OR patient_id = %s ORDER BY patient_id",
        (patient_id, patient_id),
    ).fetchall()
    return [(row[0], row[1]) for row in rows]
