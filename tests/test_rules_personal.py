"""Personal-baseline rules: multi-vital deviation, NEWS2 above the patient's usual, building blocks.

Figures are worked out by hand from the definitions in rules/packs.py (DeviationRule,
News2Personal); the NEWS2 component scores are the Royal College of Physicians' NEWS2 (2017),
chart 1, as in tests/test_news2.py.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from homecare.ingest import Reading
from homecare.rules.evaluate import PatientContext, evaluate_patient, history_needed
from homecare.rules.packs import PackError, PackSet, load_packs

T0 = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)
PATIENT = uuid.uuid4()
DAY = timedelta(days=1)

PACK = """pack: copd
version: 1
rules:
  - id: copd.deviation
    kind: deviation
    vitals:
      - {type: spo2, direction: down, floor: 1.0}
      - {type: heart_rate, direction: up, floor: 3}
      - {type: body_temperature, direction: up, floor: 0.3, required: REQUIRED}
    recent: 24h
    over: 2d
    baseline: 14d
    min_score: 4
    min_vitals: 2
    cap: 3
    severity: high
    summary: "Away from usual: {explanation}"
  - id: copd.news2
    kind: news2
    min_score: 5
    min_parameters: 5
    personal: {rise: 3, over: 2d, baseline: 14d, min_scores: 5}
    severity: high
    summary: "NEWS2 {score}, usual {usual_score}"
  - id: copd.hr_over_100
    kind: threshold
    type: heart_rate
    op: ">"
    value: 100
    alert: false
    severity: medium
    summary: "HR over 100"
  - id: copd.hr_up_15
    kind: baseline_change
    type: heart_rate
    change: 15
    over: 2d
    baseline: 14d
    alert: false
    severity: medium
    summary: "HR up 15"
  - id: copd.tachycardia_new
    kind: combination
    mode: all
    rules: [copd.hr_over_100, copd.hr_up_15]
    within: 1d
    severity: high
    summary: "New tachycardia: {rules}"
"""


def packs_with(tmp_path: Path, required: bool = False) -> PackSet:
    (tmp_path / "copd.yaml").write_text(PACK.replace("REQUIRED", str(required).lower()))
    return load_packs(tmp_path)


@pytest.fixture
def packs(tmp_path: Path) -> PackSet:
    return packs_with(tmp_path)


def reading(type_: str, value: float, at: datetime) -> Reading:
    return Reading(
        PATIENT, "ox-1", f"m-{type_}-{at.isoformat()}", type_, at, float(value), "u",
        float(value), "u", at + timedelta(seconds=5), None, None,
    )  # fmt: skip


def usual_days(days: int = 14, spo2: tuple[float, ...] = (93, 94, 95)) -> list[Reading]:
    """Two weeks of a stable patient: SpO2 93-95 (median 94, MAD 1 → spread 1.48),
    heart rate 78-82 (median 80, MAD 2 → spread 2.97 → the floor 3), temperature 36.8."""
    readings = []
    for day in range(days):
        at = T0 + day * DAY
        readings += [
            reading("spo2", spo2[day % len(spo2)], at),
            reading("heart_rate", (78, 80, 82)[day % 3], at),
            reading("body_temperature", 36.8, at),
        ]
    return readings


def evaluate(packs: PackSet, readings: list[Reading], rule: str) -> list[tuple[str, datetime]]:
    findings = evaluate_patient(
        packs, PatientContext(PATIENT, ("copd",)), readings,
        T0, T0 + 40 * DAY, {}, timedelta(hours=6),
    )  # fmt: skip
    return [(f.state, f.evidence_time) for f in findings if f.rule_id == rule]


def test_two_vitals_moving_together_fire_and_name_what_moved(packs: PackSet) -> None:
    day = T0 + 16 * DAY
    # SpO2 91: (94 - 91) / 1.48 = 2.02; HR 89: (89 - 80) / 3 = 3.0 (at the cap); sum 5.02 ≥ 4.
    readings = [*usual_days(), reading("spo2", 91, day), reading("heart_rate", 89, day)]
    findings = evaluate_patient(
        packs, PatientContext(PATIENT, ("copd",)), readings, T0, day, {}, timedelta(hours=6)
    )
    [finding] = [f for f in findings if f.rule_id == "copd.deviation"]
    assert (finding.state, finding.evidence_time) == ("active", day)
    assert finding.evidence["score"] == pytest.approx(5.02, abs=0.01)
    assert finding.summary == ("Away from usual: Heart rate +9 (usual 80), SpO2 -3 (usual 94)")


def test_one_vital_alone_does_not_fire_however_far_it_moves(packs: PackSet) -> None:
    day = T0 + 16 * DAY
    # HR +30 is 10 spreads, capped at 3: below 4, and only one vital moved.
    assert evaluate(packs, [*usual_days(), reading("heart_rate", 110, day)], "copd.deviation") == []


def test_small_moves_within_the_patients_spread_do_not_fire(packs: PackSet) -> None:
    day = T0 + 16 * DAY
    # SpO2 93: 0.67 spreads; HR 85: 1.67; sum 2.3 < 4.
    readings = [*usual_days(), reading("spo2", 93, day), reading("heart_rate", 85, day)]
    assert evaluate(packs, readings, "copd.deviation") == []


def test_the_floor_stops_a_patient_whose_readings_never_vary_from_paging_on_noise(
    packs: PackSet,
) -> None:
    day = T0 + 16 * DAY
    # SpO2 always 94 (MAD 0): 1 point down is 1 spread (floor 1.0), not infinity.
    # HR 86: (86 - 80) / 3 = 2. Sum 3 < 4.
    readings = [*usual_days(spo2=(94,)), reading("spo2", 93, day), reading("heart_rate", 86, day)]
    assert evaluate(packs, readings, "copd.deviation") == []


def test_a_required_vital_must_be_among_those_that_moved(tmp_path: Path) -> None:
    day = T0 + 16 * DAY
    moved = [*usual_days(), reading("spo2", 91, day), reading("heart_rate", 89, day)]
    assert evaluate(packs_with(tmp_path, required=True), moved, "copd.deviation") == []
    fever = [*moved, reading("body_temperature", 37.8, day)]
    assert evaluate(packs_with(tmp_path, required=True), fever, "copd.deviation") == [
        ("active", day)
    ]


def test_without_a_baseline_a_vital_does_not_count(packs: PackSet) -> None:
    # Three days of history only: fewer than min_baseline_readings (4) in the baseline window.
    day = T0 + 5 * DAY
    readings = [*usual_days(days=3), reading("spo2", 85, day), reading("heart_rate", 110, day)]
    assert evaluate(packs, readings, "copd.deviation") == []


def test_news2_fires_only_when_above_the_patients_usual_score(packs: PackSet) -> None:
    def vitals(at: datetime, rr: float, spo2: float) -> list[Reading]:
        # HR 80 → 0, SBP 120 → 0, T 37 → 0 (RCP NEWS2 chart 1).
        return [
            reading("respiratory_rate", rr, at), reading("spo2", spo2, at),
            reading("heart_rate", 80, at), reading("systolic_bp", 120, at),
            reading("body_temperature", 37.0, at),
        ]  # fmt: skip

    # Usual: RR 22 → 2, SpO2 93 → 2 (scale 1): NEWS2 4 every day for two weeks.
    history = [r for day in range(14) for r in vitals(T0 + day * DAY, 22, 93)]
    day = T0 + 16 * DAY
    # RR 22 → 2, SpO2 91 → 3: NEWS2 5, in the medium band, but only 1 above the usual 4.
    assert evaluate(packs, [*history, *vitals(day, 22, 91)], "copd.news2") == []
    # RR 25 → 3, SpO2 91 → 3, HR 112 → 2: NEWS2 8, 4 above the usual 4 → fires.
    worse = [*vitals(day, 25, 91)[:2], reading("heart_rate", 112, day), *vitals(day, 25, 91)[3:]]
    assert evaluate(packs, [*history, *worse], "copd.news2") == [("active", day)]
    # A new patient with no usual score yet: the plain band applies to the NEWS2 5.
    assert evaluate(packs, vitals(day, 22, 91), "copd.news2") == [("active", day)]


def test_building_blocks_are_never_findings_but_combinations_see_them(packs: PackSet) -> None:
    day = T0 + 16 * DAY
    readings = [*usual_days(), reading("heart_rate", 104, day)]
    findings = evaluate_patient(
        packs, PatientContext(PATIENT, ("copd",)), readings, T0, T0 + 20 * DAY, {},
        timedelta(hours=6),
    )  # fmt: skip
    rules = {f.rule_id for f in findings}
    assert "copd.hr_over_100" not in rules and "copd.hr_up_15" not in rules
    assert [(f.rule_id, f.state) for f in findings if f.evidence_time == day] == [
        ("copd.tachycardia_new", "active")
    ]


def test_lookback_covers_the_baseline_of_personal_rules(packs: PackSet) -> None:
    # deviation: over 2d + baseline 14d (+ persistence window 3d); NEWS2: 12h + 2d + 14d.
    assert history_needed(packs, ("copd",)) >= 16 * DAY + timedelta(hours=12)


def test_any_start_gives_the_same_deviation_verdicts(packs: PackSet) -> None:
    readings = usual_days(days=30)
    for day in (16, 17, 18):
        at = T0 + day * DAY + timedelta(hours=6)
        readings += [reading("spo2", 90, at), reading("heart_rate", 92, at)]
    context = PatientContext(PATIENT, ("copd",))
    whole = evaluate_patient(packs, context, readings, T0, T0 + 30 * DAY, {}, timedelta(hours=6))
    split_at = T0 + 17 * DAY
    first = [f for f in whole if f.evidence_time < split_at]
    initial = {f.rule_id: f.state == "active" for f in first}
    later = evaluate_patient(
        packs, context, readings, split_at, T0 + 30 * DAY, initial, timedelta(hours=6)
    )
    assert [f for f in whole if f.evidence_time >= split_at] == later


def test_an_unreferenced_building_block_is_refused(tmp_path: Path) -> None:
    body = PACK.replace("REQUIRED", "false")
    body = body[: body.index("  - id: copd.tachycardia_new")]
    (tmp_path / "copd.yaml").write_text(body)
    with pytest.raises(PackError, match=r"rule copd.hr_over_100: field alert: false, but no"):
        load_packs(tmp_path)


def test_a_deviation_rule_needing_more_vitals_than_it_lists_is_refused(tmp_path: Path) -> None:
    (tmp_path / "copd.yaml").write_text(
        PACK.replace("REQUIRED", "false").replace("min_vitals: 2", "min_vitals: 4")
    )
    with pytest.raises(PackError, match=r"rule copd.deviation: .*min_vitals 4 is more than"):
        load_packs(tmp_path)


def test_the_usual_news2_takes_one_score_per_six_hours_the_last_of_each(packs: PackSet) -> None:
    def vitals(at: datetime, rr: float) -> list[Reading]:
        # SpO2 96 → 0, HR 80 → 0, SBP 120 → 0, T 37 → 0 (RCP NEWS2 chart 1); RR decides:
        # RR 22 → 2 (with SpO2 93 → 2: NEWS2 4), RR 25 → 3 (with SpO2 91 → 3 and HR 112 → 2: 8).
        spo2, hr = (93, 80) if rr == 22 else (91, 112)
        return [
            reading("respiratory_rate", rr, at), reading("spo2", spo2, at),
            reading("heart_rate", hr, at), reading("systolic_bp", 120, at),
            reading("body_temperature", 37.0, at),
        ]  # fmt: skip

    # Every hour for 14 days: NEWS2 8 at most hours, 4 at the last hour of each 6-hour block.
    history: list[Reading] = []
    for hour in range(14 * 24):
        at = T0.replace(hour=0) + timedelta(hours=hour, minutes=30)
        history += vitals(at, 22 if hour % 6 == 5 else 25)
    day = T0.replace(hour=0) + 16 * DAY
    # The usual score is the median of the blocks' last scores (4), so a NEWS2 of 8 is 4 above
    # it and holds; a median over every hour (8) would have kept it quiet. (The history itself
    # pages while the patient is new; only the verdict at ``day`` is the subject here.)
    found = evaluate(packs, [*history, *vitals(day - timedelta(hours=1), 22), *vitals(day, 25)],
                     "copd.news2")  # fmt: skip
    assert found[-1] == ("active", day)
