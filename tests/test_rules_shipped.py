"""The shipped packs' clinical rules on hand-made readings: each sourced value fires at its edge.

The sources are named in the packs (rules/packs/*.yaml) and repeated at each test.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from homecare.ingest import Reading
from homecare.rules.evaluate import PatientContext, evaluate_patient
from homecare.rules.packs import load_packs

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


def vitals(at: datetime, **values: float) -> list[Reading]:
    return [reading(type_, value, at) for type_, value in values.items()]


def news2_medium(usual_pulse: float, usual_spo2: float) -> tuple[list[datetime], datetime]:
    """news2_medium: when common.news2_medium fired over two weeks of a usual state and then a
    NEWS2 of 5, and when that 5 was measured."""
    # RCP NEWS2 (2017), chart 1: respiratory rate 12-20 → 0, 21-24 → 2; SpO2 scale 1 ≥ 96 → 0,
    # 94-95 → 1; air → 0; systolic 111-219 → 0; pulse 51-90 → 0, 91-110 → 1, 111-130 → 2;
    # Alert → 0; temperature 36.1-38.0 → 0.
    usual = [
        r
        for half_day in range(30)
        for r in vitals(
            T0 + half_day * 12 * HOUR,
            respiratory_rate=18,
            spo2=usual_spo2,
            systolic_bp=125,
            heart_rate=usual_pulse,
            body_temperature=36.8,
        )
    ]
    at = T0 + 15 * DAY + 2 * HOUR
    # Respiratory rate 22 (2) + SpO2 95 (1) + pulse 115 (2) = 5, the medium band.
    now = vitals(at, respiratory_rate=22, spo2=95, systolic_bp=125, heart_rate=115,
                 body_temperature=36.8)  # fmt: skip
    return fired(("hypertension",), [*usual, *now], "common.news2_medium"), at


def test_news2_medium_pages_at_four_above_the_patients_usual() -> None:
    # Usual pulse 95 (1 point), SpO2 97 (0): usual NEWS2 1, now 5, four above → the page.
    when, at = news2_medium(usual_pulse=95, usual_spo2=97)
    assert when == [at]
    # Usual pulse 95 (1) and SpO2 95 (1): usual 2, now 5, only three above → silent (the high
    # band, 7, still needs only three above).
    when, at = news2_medium(usual_pulse=95, usual_spo2=95)
    assert when == []


@pytest.mark.parametrize(("pulse", "fires"), [(84, True), (83, False)])
def test_infection_signs_at_three_spreads_with_temperature_among_them(
    pulse: float, fires: bool
) -> None:
    # SIRS / qSOFA signs (Singer et al., JAMA 2016) against the patient's own usual: two weeks at
    # 36.6 °C, pulse 80 (no spread, so the floors: 0.3 °C and 3/min). 37.1 °C is 1.67 spreads;
    # pulse 84 adds 1.33 (3.0: a page), pulse 83 adds 1.0 (2.67: not yet). Neither is a fever.
    usual = [
        r
        for d in range(14)
        for r in vitals(
            T0 + d * DAY, body_temperature=36.6, heart_rate=80, respiratory_rate=18, systolic_bp=130
        )
    ]
    at = T0 + 15 * DAY
    now = vitals(at, body_temperature=37.1, heart_rate=pulse, respiratory_rate=18, systolic_bp=130)
    assert fired(("wound_care",), [*usual, *now], "common.infection_signs") == (
        [at] if fires else []
    )


ESAS_USUAL = {"esas_pain": 2, "esas_tiredness": 3, "esas_nausea": 1, "esas_appetite": 2,
              "esas_wellbeing": 2, "esas_drowsiness": 1}  # fmt: skip


@pytest.mark.parametrize(("earlier", "fires"), [(2, True), (1, False)])
def test_oncology_flare_needs_two_earlier_questionnaires(earlier: int, fires: bool) -> None:
    # A weekly ESAS-r responder (Watanabe et al. 2011): pain and tiredness each 2 points above
    # their usual (floor 1 point, Hui et al. 2015) is a score of 4, the flare, once there are
    # 2 earlier questionnaires in the 35-day baseline to know the usual from.
    usual = [
        reading(item, value, T0 + week * 7 * DAY)
        for week in range(earlier)
        for item, value in ESAS_USUAL.items()
    ]
    at = T0 + 14 * DAY
    flare = {**ESAS_USUAL, "esas_pain": 4, "esas_tiredness": 5}
    now = [reading(item, value, at) for item, value in flare.items()]
    assert fired(("oncology",), [*usual, *now], "onc.flare") == ([at] if fires else [])


@pytest.mark.parametrize(("motion", "fires"), [(54.0, True), (54.1, False)])
def test_rehab_deviation_at_three_spreads(motion: float, fires: bool) -> None:
    # Two weeks at pain 3 and 60° of motion (no spread: floors 1 point and 3°). Pain 4 is one
    # spread; motion 54° two more (3.0: a page), 54.1° 1.97 (2.97: not yet).
    usual = [
        r
        for d in range(14)
        for r in vitals(T0 + d * DAY, pain_score=3, range_of_motion=60, body_temperature=36.6)
    ]
    at = T0 + 15 * DAY
    now = vitals(at, pain_score=4, range_of_motion=motion, body_temperature=36.6)
    assert fired(("post_surgical_rehab",), [*usual, *now], "rehab.deviation") == (
        [at] if fires else []
    )


def test_temperature_1_1_above_the_patients_usual_is_a_fever() -> None:
    # IDSA 2009 (High et al., Clin Infect Dis 48:149), third fever criterion for older adults:
    # "an increase in temperature of > 2 °F (1.1 °C) over the baseline temperature". Usual 36.2
    # for two weeks: 37.2 is no fever by any criterion, 37.3 is 1.1 above the usual (and below the
    # single-reading 37.8). 37.3 - 36.2 is 1.0999999999999943 in floating point: the edge must
    # still hold.
    usual = [reading("body_temperature", 36.2, T0 + d * DAY) for d in range(14)]
    day = T0 + 15 * DAY
    assert fired(("oncology",), [*usual, reading("body_temperature", 37.2, day)],
                 "common.fever_rise") == []  # fmt: skip
    assert fired(("oncology",), [*usual, reading("body_temperature", 37.3, day)],
                 "common.fever_rise") == [day]  # fmt: skip
    assert fired(("oncology",), [*usual, reading("body_temperature", 37.3, day)],
                 "common.fever") == []  # fmt: skip


def test_glucose_35_percent_below_the_patients_usual_at_that_time_of_day() -> None:
    # ADA Standards of Care 2024 §6: level 1 hypoglycaemia is < 3.9 mmol/L; a fall from a usual
    # 10 mmol/L before dinner to 6.5 is above every level yet is the start of the fall (dm v4,
    # our judgement on the harness). ISO 15197:2013 lets a meter read ±15 % above 5.55 mmol/L,
    # so 35 % is beyond its error. Glucose follows the meals (ADA §6: pre-meal and post-meal
    # targets differ), so each reading is compared with the patient's readings within 3 h of its
    # time of day: here fasting 6.0 at 08:00, 7.0 at noon, 10.0 before dinner at 18:00 and 12.0
    # at bedtime, for two weeks (all-day median 8.5).
    usual = [
        reading("blood_glucose", value, T0 + d * DAY + h * HOUR)
        for d in range(14)
        for h, value in ((0, 6.0), (4, 7.0), (10, 10.0), (14, 12.0))
    ]
    dinner = T0 + 15 * DAY + 10 * HOUR
    assert fired(("diabetes",), [*usual, reading("blood_glucose", 6.6, dinner)],
                 "dm.glucose_fall") == []  # fmt: skip
    assert fired(("diabetes",), [*usual, reading("blood_glucose", 6.5, dinner)],
                 "dm.glucose_fall") == [dinner]  # fmt: skip
    # A fasting 5.5 is 35 % below the all-day median but an ordinary morning for this patient.
    fasting = T0 + 15 * DAY
    assert fired(("diabetes",), [*usual, reading("blood_glucose", 5.5, fasting)],
                 "dm.glucose_fall") == []  # fmt: skip
    assert fired(("diabetes",), [*usual, reading("blood_glucose", 3.9, fasting)],
                 "dm.glucose_fall") == [fasting]  # fmt: skip
