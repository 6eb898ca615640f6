"""The pure evaluator: each rule kind, persistence, overrides, late data and event-time order."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from homecare.ingest import Reading
from homecare.rules.evaluate import PatientContext, evaluate_patient
from homecare.rules.packs import PackSet, load_packs

T0 = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)
PATIENT = uuid.uuid4()
LATE = timedelta(hours=6)

PACK = """pack: heart_failure
version: 3
rules:
  - id: hf.hr_high
    kind: threshold
    type: heart_rate
    op: ">"
    value: 120
    persistence: {count: 2, of: 3}
    severity: medium
    summary: "HR {value:.0f} > {threshold:.0f} ({count}/{of})"
  - id: hf.sbp_low_sustained
    kind: threshold
    type: systolic_bp
    op: "<"
    value: 90
    persistence: {for: 2h}
    severity: high
    summary: "SBP low"
  - id: hf.weight_gain
    kind: baseline_change
    type: body_weight
    change: 2.0
    over: 3d
    baseline: 7d
    persistence: {count: 2, of: 2}
    severity: high
    summary: "Weight {value:.1f} ({delta:+.1f} on {baseline:.1f})"
  - id: hf.missing_weight
    kind: missing
    type: body_weight
    hours: 48
    severity: low
    summary: "No weight for {hours:.0f} h"
  - id: hf.both
    kind: combination
    mode: all
    rules: [hf.hr_high, hf.weight_gain]
    within: 3d
    severity: high
    summary: "Weight and heart rate: {rules}"
  - id: hf.news2
    kind: news2
    min_score: 5
    min_parameters: 5
    severity: high
    summary: "NEWS2 {score}"
"""


@pytest.fixture(scope="module")
def packs(tmp_path_factory: pytest.TempPathFactory) -> PackSet:
    directory: Path = tmp_path_factory.mktemp("packs")
    (directory / "heart_failure.yaml").write_text(PACK)
    return load_packs(directory)


def reading(
    type_: str,
    value: float,
    at: datetime,
    delay: timedelta = timedelta(seconds=5),
    **context: object,
) -> Reading:
    return Reading(
        PATIENT,
        "dev-1",
        f"m-{type_}-{at.isoformat()}",
        type_,
        at,
        float(value),
        "u",
        float(value),
        "u",
        at + delay,
        context.get("on_oxygen"),
        context.get("consciousness"),  # type: ignore[arg-type]
    )


def run(
    packs: PackSet,
    readings: list[Reading],
    start: datetime = T0 - timedelta(days=30),
    until: datetime = T0 + timedelta(days=30),
    initial: dict[str, bool] | None = None,
    patient: PatientContext | None = None,
) -> list[tuple[str, str, datetime]]:
    context = patient or PatientContext(PATIENT, ("heart_failure",))
    findings = evaluate_patient(packs, context, readings, start, until, initial or {}, LATE)
    return [(f.rule_id, f.state, f.evidence_time) for f in findings]


def hours(n: float) -> datetime:
    return T0 + timedelta(hours=n)


def only(rule: str, found: list[tuple[str, str, datetime]]) -> list[tuple[str, datetime]]:
    return [(state, at) for rule_id, state, at in found if rule_id == rule]


def test_threshold_needs_two_of_the_last_three_and_clears_on_a_normal_reading(
    packs: PackSet,
) -> None:
    values = [125, 110, 125, 130, 100]
    found = run(packs, [reading("heart_rate", v, hours(i)) for i, v in enumerate(values)])
    assert only("hf.hr_high", found) == [("active", hours(2)), ("cleared", hours(4))]


def test_a_single_high_reading_does_not_fire(packs: PackSet) -> None:
    values = [125, 80, 80, 126, 80, 80]
    found = run(packs, [reading("heart_rate", v, hours(i)) for i, v in enumerate(values)])
    assert only("hf.hr_high", found) == []


def test_sustained_threshold_fires_only_after_lasting_the_duration(packs: PackSet) -> None:
    times = [0, 0.5, 1, 1.5, 2.0, 2.5]
    found = run(packs, [reading("systolic_bp", 85, hours(t)) for t in times])
    assert only("hf.sbp_low_sustained", found) == [("active", hours(2.0))]


def test_sustained_threshold_counts_from_a_sparse_run(packs: PackSet) -> None:
    # Low at 0 h and again at 3 h, nothing between: it has lasted 3 h ≥ 2 h at the second.
    found = run(packs, [reading("systolic_bp", 85, hours(t)) for t in (0, 3)])
    assert only("hf.sbp_low_sustained", found) == [("active", hours(3))]
    broken = [reading("systolic_bp", v, hours(t)) for t, v in ((0, 85), (1, 120), (3, 85))]
    assert only("hf.sbp_low_sustained", run(packs, broken)) == []


def test_a_clinicians_override_applies_from_when_it_was_set(packs: PackSet) -> None:
    readings = [reading("heart_rate", 125, hours(i)) for i in range(6)]
    patient = PatientContext(
        PATIENT, ("heart_failure",), overrides={"hf.hr_high": [(hours(3), 130)]}
    )
    found = run(packs, readings, patient=patient)
    # 125 is above the pack's 120 until hour 3, then below the patient's own 130.
    assert only("hf.hr_high", found) == [("active", hours(1)), ("cleared", hours(3))]


def weights(gain_from_day: int, days: int = 14, gain: float = 2.6) -> list[Reading]:
    return [
        reading(
            "body_weight",
            80 + (gain if d >= gain_from_day else 0) + (d % 3) * 0.1,
            T0 + timedelta(days=d),
        )
        for d in range(days)
    ]


def test_weight_gain_against_the_patients_own_baseline(packs: PackSet) -> None:
    found = run(packs, weights(gain_from_day=10))
    # Day 10 is the first gain, day 11 confirms it (2 of 2).
    assert only("hf.weight_gain", found) == [("active", T0 + timedelta(days=11))]


def test_a_one_day_weight_bump_that_reverts_does_not_fire(packs: PackSet) -> None:
    readings = weights(gain_from_day=99)
    readings[10] = reading("body_weight", 82.8, T0 + timedelta(days=10))
    assert only("hf.weight_gain", run(packs, readings)) == []


CLOCK_PACK = """pack: diabetes
version: 1
rules:
  - id: dm.fall
    kind: baseline_change
    type: blood_glucose
    change: -0.35
    relative: true
    over: 1d
    baseline: 14d
    same_time_of_day: 2h
    severity: medium
    summary: "Glucose {value:.1f} against {baseline:.1f}"
"""


def test_a_same_time_of_day_baseline_takes_only_readings_near_that_clock_time(
    tmp_path: Path,
) -> None:
    (tmp_path / "diabetes.yaml").write_text(CLOCK_PACK)
    clock_packs = load_packs(tmp_path)
    midnight = datetime(2026, 11, 1, tzinfo=UTC)
    # Two weeks of 10.0 at 23:30 and 20.0 at 12:00 (UTC); the all-day median would be 15.
    usual = [
        reading("blood_glucose", value, midnight + timedelta(days=d, hours=h))
        for d in range(14)
        for h, value in ((23.5, 10.0), (12, 20.0))
    ]
    context = PatientContext(PATIENT, ("diabetes",))

    def verdicts(value: float, at: datetime) -> list[tuple[str, float]]:
        found = evaluate_patient(
            clock_packs, context, [*usual, reading("blood_glucose", value, at)],
            at, at + timedelta(hours=1), {}, LATE,
        )  # fmt: skip
        return [(f.state, f.evidence["baseline"]) for f in found if f.rule_id == "dm.fall"]

    # 00:30 is an hour from 23:30 across midnight: its usual is 10, and 6.5 is 35 % below it.
    after_midnight = midnight + timedelta(days=16, minutes=30)
    assert verdicts(6.5, after_midnight) == [("active", 10.0)]
    assert verdicts(6.6, after_midnight) == []
    # 10.0 at 13:00 is 50 % below the patient's usual of 20 at noon.
    assert verdicts(10.0, midnight + timedelta(days=16, hours=13)) == [("active", 20.0)]
    # 17:30 is more than 2 h from both clock times: no baseline, so no verdict.
    assert verdicts(1.0, midnight + timedelta(days=16, hours=17.5)) == []


def test_missing_data_fires_on_the_hour_and_clears_when_data_returns(packs: PackSet) -> None:
    readings = [reading("body_weight", 80, T0 + timedelta(days=d)) for d in (0, 1)]
    readings.append(reading("body_weight", 80, T0 + timedelta(days=5)))
    found = only("hf.missing_weight", run(packs, readings, start=T0, until=T0 + timedelta(days=6)))
    assert found == [("active", T0 + timedelta(days=3)), ("cleared", T0 + timedelta(days=5))]


def test_combination_needs_both_conditions_within_the_window(packs: PackSet) -> None:
    readings = weights(gain_from_day=10)
    readings += [reading("heart_rate", 125, T0 + timedelta(days=12, hours=h)) for h in (0, 1)]
    found = only("hf.both", run(packs, readings))
    assert found == [("active", T0 + timedelta(days=12, hours=1))]


def test_news2_scores_the_latest_vitals_with_the_context(packs: PackSet) -> None:
    # RCP NEWS2 chart 1: RR 25 → 3, SpO2 95 → 1, SBP 105 → 1, HR 95 → 1, T 37 → 0; air, alert.
    at = hours(1)
    vitals = [
        reading("respiratory_rate", 25, at),
        reading("spo2", 95, at),
        reading("systolic_bp", 105, at),
        reading("heart_rate", 95, at),
        reading("body_temperature", 37.0, at),
    ]
    assert only("hf.news2", run(packs, vitals)) == [("active", at)]  # 6 ≥ 5
    # SpO2 97 → 0 and SBP 115 → 0: 3 + 0 + 0 + 1 + 0 = 4, below 5.
    calmer = [vitals[0], reading("spo2", 97, at), reading("systolic_bp", 115, at), *vitals[3:]]
    assert only("hf.news2", run(packs, calmer)) == []
    on_oxygen = [reading("respiratory_rate", 20, at, on_oxygen=True), *vitals[1:]]
    # RR 20 → 0, oxygen → 2: 0 + 1 + 1 + 1 + 0 + 2 = 5.
    assert only("hf.news2", run(packs, on_oxygen)) == [("active", at)]


def test_arrival_order_does_not_matter(packs: PackSet) -> None:
    readings = weights(gain_from_day=10) + [
        reading("heart_rate", v, hours(24 * 12 + i)) for i, v in enumerate([125, 126, 90, 130, 131])
    ]
    expected = run(packs, readings)
    shuffled = readings[:]
    random.Random(4).shuffle(shuffled)
    assert run(packs, shuffled) == expected
    assert len(expected) >= 4


def test_evaluating_in_two_steps_gives_the_findings_of_one(packs: PackSet) -> None:
    readings = weights(gain_from_day=10, days=20) + [
        reading("heart_rate", v, hours(24 * 12 + i)) for i, v in enumerate([125, 126, 90, 130, 131])
    ]
    start, middle, until = (
        T0 - timedelta(days=1),
        T0 + timedelta(days=11, hours=12),
        T0 + timedelta(days=21),
    )
    whole = run(packs, readings, start=start, until=until)
    first = run(packs, readings, start=start, until=middle - timedelta(microseconds=1))
    state: dict[str, bool] = {}
    for rule_id, found_state, _ in first:
        state[rule_id] = found_state == "active"
    second = run(packs, readings, start=middle, until=until, initial=state)
    assert first + second == whole


def test_a_backlog_reading_gives_a_late_finding(packs: PackSet) -> None:
    packs_findings = evaluate_patient(
        packs,
        PatientContext(PATIENT, ("heart_failure",)),
        [reading("heart_rate", 125, hours(i), delay=timedelta(days=2)) for i in range(3)],
        T0,
        T0 + timedelta(days=5),
        {},
        LATE,
    )
    fired = [f for f in packs_findings if f.rule_id == "hf.hr_high"]
    assert [f.late for f in fired] == [True]
    assert fired[0].summary == "HR 125 > 120 (2/3)"
    assert fired[0].pack == "heart_failure" and fired[0].pack_version == 3


@pytest.mark.parametrize("seed", range(25))
def test_any_starting_point_gives_the_same_verdicts(packs: PackSet, seed: int) -> None:
    """Live evaluation starts at the newest data, replays anywhere: with sparse, gappy data and
    a random split, evaluating in two steps must equal evaluating at once."""
    rng = random.Random(seed)
    readings = []
    at = T0
    for _ in range(120):
        at += timedelta(hours=rng.choice([1, 3, 8, 20, 50]))
        kind = rng.choice(["body_weight", "heart_rate", "systolic_bp", "spo2"])
        value = {
            "body_weight": 80 + rng.uniform(-1, 4),
            "heart_rate": rng.uniform(60, 140),
            "systolic_bp": rng.uniform(80, 140),
            "spo2": rng.uniform(88, 99),
        }[kind]
        readings.append(reading(kind, round(value, 1), at))
    start, until = T0, at + timedelta(days=3)
    middle = T0 + (at - T0) * rng.uniform(0.2, 0.8)
    whole = run(packs, readings, start=start, until=until)
    first = run(packs, readings, start=start, until=middle - timedelta(microseconds=1))
    state = {rule_id: found_state == "active" for rule_id, found_state, _ in first}
    # Only what a live worker would load: history_needed before the new start.
    from homecare.rules.evaluate import history_needed

    window = [r for r in readings if r.time >= middle - history_needed(packs, ("heart_failure",))]
    second = run(packs, window, start=middle, until=until, initial=state)
    assert first + second == whole
