"""Helpers for the anomaly tests: a seeded synthetic heart-failure patient, optionally with a
gradual deterioration of chosen vitals injected over its last days."""

from __future__ import annotations

import math
import random
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

from homecare.ingest import Reading

T0 = datetime(2026, 3, 2, tzinfo=UTC)
PATIENT = uuid.UUID(int=7)

# vital -> (usual, noise SD, circadian amplitude); sessions at 07:00 and 19:00 UTC, the scale
# ten minutes before the morning one (another device, another instant).
USUAL: dict[str, tuple[float, float, float]] = {
    "body_weight": (82.0, 0.25, 0.3),
    "heart_rate": (72.0, 3.5, 4.0),
    "systolic_bp": (125.0, 6.0, 5.0),
    "diastolic_bp": (78.0, 4.5, 3.0),
    "spo2": (95.0, 0.9, 0.3),
    "respiratory_rate": (18.0, 1.3, 0.5),
}


def reading(type_: str, value: float, at: datetime, patient: uuid.UUID = PATIENT) -> Reading:
    """reading: a stored reading as the rules stage receives it."""
    return Reading(
        patient, "dev-1", f"m-{type_}-{at.timestamp()}", type_, at, value, "u", value, "u",
        at + timedelta(minutes=1),
    )  # fmt: skip


def synthetic_patient(
    days: int,
    seed: int = 1,
    moves: Mapping[str, float] | None = None,
    over_days: float = 5.0,
    start: datetime = T0,
    constant: bool = False,
    patient: uuid.UUID = PATIENT,
    usual: Mapping[str, float] | None = None,
) -> list[Reading]:
    """synthetic_patient: ``days`` of twice-daily readings; each vital in ``moves`` drifts
    linearly by its amount over the last ``over_days`` (a gradual deterioration)."""
    rng = random.Random(seed)
    moves = moves or {}
    end = start + timedelta(days=days)
    onset = end - timedelta(days=over_days)
    readings = []
    for day in range(days):
        for hour in (7, 19):
            session = start + timedelta(days=day, hours=hour)
            for vital, (mean, sd, swing) in USUAL.items():
                if vital == "body_weight" and hour != 7:
                    continue
                at = session - timedelta(minutes=10) if vital == "body_weight" else session
                value = (usual or {}).get(vital, mean)
                if not constant:
                    value += swing * math.sin(2 * math.pi * hour / 24) + rng.gauss(0, sd)
                if at > onset and vital in moves:
                    value += moves[vital] * (at - onset) / (end - onset)
                readings.append(reading(vital, round(value, 1), at, patient))
    return readings
