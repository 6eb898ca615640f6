"""``homecare evaluate`` end to end on a small labelled cohort (real ingest code, real store)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from homecare.evaluation.cohorts import (
    ORACLE,
    VISIBLE,
    _oracle,
    _visible_oracle,
    baseline_packs,
    evaluate_cohort,
)
from homecare.evaluation.report import format_report
from homecare.ingest import Reading
from homecare.rules import load_packs
from homecare.rules.harness import Episode, Labels
from homecare.rules.packs import News2Rule, ThresholdRule
from tests.conftest import BASE_URL


def test_a_small_cohort_is_stored_evaluated_and_scored_against_its_labels() -> None:
    result = evaluate_cohort(
        BASE_URL, patients=14, days=30, seed=3, end=datetime(2026, 6, 1, tzinfo=UTC)
    )
    assert result.readings > 1000
    assert len(result.labels.programs) == 14
    assert set(result.results) == {
        "shipped packs",
        "classic weight rule (heart failure)",
        "single readings, no persistence",
        ORACLE,
        VISIBLE,
    }
    shipped, _, rules = result.results["shipped packs"]
    assert shipped.episodes == len(result.labels.episodes)
    assert shipped.patient_days == 14 * 30
    # Every rule that alerted is a shipped rule, and the classic weight rules alert only on
    # weight, which only heart-failure patients are asked to measure every morning.
    assert all("." in rule_id for rule_id in rules)
    _, _, classic_rules = result.results["classic weight rule (heart failure)"]
    assert set(classic_rules) <= {"classic.weight_2lb_day", "classic.weight_5lb_week"}
    # The oracle alerts once per episode that has a reading after its onset, never falsely, and
    # no rule set can be caught in time more often (its alerts may start 12 h before onset, so
    # compare per kind against what the oracle could see at all).
    oracle, _, _ = result.results[ORACLE]
    assert oracle.false_alerts == 0 and oracle.lookalike_alerts == 0
    assert oracle.alerts <= len(result.labels.episodes)
    assert sum(g.episodes for g in result.kinds[ORACLE].values()) == oracle.episodes
    # The visible oracle alerts at one of the readings the plain oracle could use, never earlier.
    visible, _, _ = result.results[VISIBLE]
    assert visible.false_alerts == 0 and visible.caught <= oracle.caught
    report = format_report(result)
    assert "== shipped packs" in report and "all programs" in report


def test_the_single_reading_baseline_is_plain_population_thresholds() -> None:
    single = baseline_packs(load_packs())["single readings, no persistence"]
    rules = [rule for pack in single.packs.values() for rule in pack.rules]
    assert rules and {rule.kind for rule in rules} == {"threshold", "news2"}
    for rule in rules:
        assert rule.alert
        if isinstance(rule, ThresholdRule):
            assert (rule.persistence.count, rule.persistence.of) == (1, 1)
            assert rule.persistence.sustained is None
        else:
            assert isinstance(rule, News2Rule) and rule.personal is None
    # The shipped building block "SBP at or below 90" pages on its own in the baseline.
    assert "common.sbp_at_or_below_90" in {rule.id for rule in rules}


def test_the_oracle_waits_for_a_reading_of_a_vital_the_episode_moves() -> None:
    # A flare of ESAS symptoms: the thermometer reading the day after onset tells nothing of it;
    # the oracle's alert is the first questionnaire after onset.
    start = datetime(2026, 1, 1, tzinfo=UTC)
    onset, er_visit = start + timedelta(days=10), start + timedelta(days=14)
    flare = Episode("e1", "symptom_flare", "p1", onset, er_visit, frozenset({"esas_pain"}))
    labels = Labels(start, start + timedelta(days=30), {"p1": ("oncology",)}, (flare,), ())

    def reading(type_name: str, at: datetime) -> Reading:
        value = 36.8 if type_name == "body_temperature" else 6.0
        return Reading(uuid.uuid4(), "d1", "m1", type_name, at, value, "", value, "", at)

    readings = [
        reading("esas_pain", onset - timedelta(hours=2)),  # before onset
        reading("body_temperature", onset + timedelta(days=1)),
        reading("esas_pain", onset + timedelta(days=3)),
    ]
    (alert,) = _oracle(readings, "p1", labels)
    assert alert.time == onset + timedelta(days=3)
    # An episode that names no signals takes any reading after its onset.
    unnamed = Episode("e1", "symptom_flare", "p1", onset, er_visit)
    bare = Labels(labels.start, labels.end, labels.programs, (unnamed,), ())
    (alert,) = _oracle(readings, "p1", bare)
    assert alert.time == onset + timedelta(days=1)


def test_the_visible_oracle_waits_for_a_reading_outside_the_patients_own_range() -> None:
    # A sepsis: temperatures of 36.4-37.0 in the 14 days before onset. 36.9 after the onset is an
    # ordinary day of this patient's; 37.4 is outside anything they sent, and 35.9 is too (either
    # side counts). A type with no readings before the onset has no range and never counts.
    start = datetime(2026, 1, 1, tzinfo=UTC)
    onset, er_visit = start + timedelta(days=20), start + timedelta(days=23)
    sepsis = Episode(
        "e1", "infection", "p1", onset, er_visit, frozenset({"body_temperature", "heart_rate"})
    )
    labels = Labels(start, start + timedelta(days=30), {"p1": ("copd",)}, (sepsis,), ())

    def reading(type_name: str, at: datetime, value: float) -> Reading:
        return Reading(uuid.uuid4(), "d1", "m1", type_name, at, value, "", value, "", at)

    usual = [
        reading("body_temperature", onset - timedelta(days=d), 36.4 + (d % 7) / 10)
        for d in range(1, 14)
    ]
    old = reading("body_temperature", onset - timedelta(days=15), 38.5)  # outside the 14 days
    first = onset + timedelta(hours=30)
    after = [
        reading("heart_rate", onset + timedelta(hours=2), 130.0),  # no heart rate before
        reading("body_temperature", onset + timedelta(hours=6), 36.9),
        reading("body_temperature", first, 37.4),
        reading("body_temperature", onset + timedelta(hours=40), 35.9),
    ]
    (alert,) = _visible_oracle([old, *usual, *after], "p1", labels)
    assert alert.time == first
    # 37.4 would be ordinary if the patient had sent 37.5 in the 14 days before.
    high = reading("body_temperature", onset - timedelta(days=2, hours=1), 37.5)
    (alert,) = _visible_oracle([old, *usual, high, *after], "p1", labels)
    assert alert.time == onset + timedelta(hours=40)
