"""The shipped packs' clinical rules on hand-made readings: each sourced value fires at its edge.

The sources are named in the packs (rules/packs/*.yaml) and repeated at each test.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from ingest import Reading
from rules.evaluate import PatientContext, evaluate_patient
from rules.packs import load_packs

T0 = datetime(2026, 9, 1, 8, 0, tzinfo=UTC)
DAY = timedelta(days=1)
HOUR = timedelta(hours=1)
PATIENT = uuid.uuid4()
PACKS = load_packs()


def reading(type_: str, value: float, at: datetime) -> Reading:
    return Reading(
        PATIENT, "dev-1", f"m-{type_}-{at.isoformat()}", type_, at, float(value), "u",
        float(value), "u", at + timedelta(seconds=5), None, None,
    )  # fmt: skip


def fired(programs: tuple[str, ...], readings: list[Reading], rule: str) -> list[datetime]:
    """fired: when ``rule`` turned active over the readings (the shipped packs)."""
    findings = evaluate_patient(
        PACKS, PatientContext(PATIENT, programs), readings,
        T0, T0 + 60 * DAY, {}, timedelta(hours=6),
    )  # fmt: skip
    return [f.evidence_time for f in findings if f.rule_id == rule and f.state == "active"]


def test_one_temperature_of_37_8_is_a_fever() -> None:
    # IDSA 2009 (High et al., Clin Infect Dis 48:149): a single oral temperature > 37.8 °C
    # (100 °F) is fever in an older adult; thermometers show tenths, so 37.8 is the edge.
    usual = [reading("body_temperature", 36.7, T0 + d * DAY) for d in range(10)]
    day = T0 + 10 * DAY
    assert fired(("wound_care",), [*usual, reading("body_temperature", 37.7, day)],
                 "common.fever") == []  # fmt: skip
    assert fired(("wound_care",), [*usual, reading("body_temperature", 37.8, day)],
                 "common.fever") == [day]  # fmt: skip
