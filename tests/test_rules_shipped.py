"""The shipped packs' clinical rules on hand-made readings: each sourced value fires at its edge.

The sources are named in the packs (rules/packs/*.yaml) and repeated at each test.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

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


def test_copd_deviation_sees_the_last_twelve_hours_not_the_day() -> None:
    # Two weeks of a stable COPD patient, morning and evening: SpO2 93-95 (median 94, MAD 1 →
    # spread 1.48), pulse 78-82 (median 80, MAD 2 → 2.97, floor 3), respiratory rate 19.
    usual = []
    for half_day in range(28):
        at = T0 + half_day * 12 * HOUR
        usual += [
            reading("spo2", (93, 94, 95)[half_day % 3], at),
            reading("heart_rate", (78, 80, 82)[half_day % 3], at),
            reading("respiratory_rate", 19, at),
        ]
    morning, evening = T0 + 15 * DAY, T0 + 15 * DAY + timedelta(hours=12, minutes=30)
    day = [
        reading("spo2", 94, morning), reading("heart_rate", 80, morning),
        reading("respiratory_rate", 19, morning),
        reading("spo2", 91, evening), reading("heart_rate", 89, evening),
        reading("respiratory_rate", 19, evening),
    ]  # fmt: skip
    # Last 12 h: SpO2 91 → (94 - 91) / 1.48 = 2.02, pulse 89 → 9 / 3 = 3 (the cap): 5.02 ≥ 3.5.
    # (Over 24 h the medians 92.5 and 84.5 give 1.01 + 1.5 = 2.5: silent until the next day.)
    assert fired(("copd",), [*usual, *day], "copd.deviation") == [evening]


@pytest.mark.parametrize(
    ("program", "rule"),
    [("wound_care", "wound.pain_rise"), ("post_surgical_rehab", "rehab.pain_rise")],
)
def test_pain_two_points_above_usual_twice_in_a_row(program: str, rule: str) -> None:
    # Farrar et al., Pain 2001: a 2-point (≈ 30 %) change on the 0-10 numerical rating scale is
    # clinically important. Usual pain 3 every evening for two weeks.
    usual = [reading("pain_score", 3, T0 + d * DAY) for d in range(14)]
    first, second = T0 + 14 * DAY, T0 + 15 * DAY
    one_point = [reading("pain_score", 4, first), reading("pain_score", 4, second)]
    assert fired((program,), [*usual, *one_point], rule) == []
    once = [reading("pain_score", 5, first), reading("pain_score", 3, second)]
    assert fired((program,), [*usual, *once], rule) == []
    twice = [reading("pain_score", 5, first), reading("pain_score", 5, second)]
    assert fired((program,), [*usual, *twice], rule) == [second]
