"""Harness scoring against labels, with figures worked out by hand."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from homecare.rules.harness import (
    Alert,
    Episode,
    Group,
    Labels,
    Lookalike,
    parse_labels,
    score,
    score_kinds,
)

D0 = datetime(2026, 1, 1, tzinfo=UTC)


def day(n: float) -> datetime:
    return D0 + timedelta(days=n)


LABELS = Labels(
    start=D0,
    end=day(30),
    programs={"p1": ("heart_failure",), "p2": ("copd",), "p3": ("heart_failure", "diabetes")},
    episodes=(
        Episode("e1", "hf_decompensation", "p1", onset=day(10), er_visit=day(17)),
        Episode("e2", "copd_exacerbation", "p2", onset=day(5), er_visit=day(8)),
        Episode("e3", "hypoglycaemia", "p3", onset=day(20), er_visit=day(20.5)),
    ),
    lookalikes=(Lookalike("l1", "salty_meal", "p1", start=day(2), end=day(4)),),
)


def test_figures_match_a_hand_count() -> None:
    alerts = [
        Alert("p1", "hf.weight_gain", "high", day(13)),  # e1 caught, lead 4 days
        Alert("p1", "hf.weight_gain", "high", day(3)),  # inside the look-alike
        Alert("p2", "copd.spo2_drop", "high", day(7.5)),  # e2: 12 h before the ER: too late
        Alert("p3", "common.hr_high", "medium", day(25)),  # false: outside every window
        Alert("p3", "dm.missing_glucose", "low", day(26)),  # below the severity floor
    ]
    overall, programs, rules = score(alerts, LABELS)
    assert (overall.episodes, overall.caught) == (3, 1)
    assert overall.lead_days == [4.0, 0.5]  # e1 from day 13, e2 from day 7.5
    assert overall.median_lead_days == pytest.approx(2.25)
    assert (overall.false_alerts, overall.lookalike_alerts, overall.alerts) == (1, 1, 4)
    assert overall.patient_days == 90
    assert overall.false_per_patient_month == pytest.approx(1 / 90 * 30)
    assert overall.burden_per_nurse_day == pytest.approx(4 / 90 * 100)

    hf = programs["heart_failure"]
    assert (hf.episodes, hf.caught, hf.patient_days) == (2, 1, 60)  # p1 and p3
    assert (hf.false_alerts, hf.lookalike_alerts) == (1, 1)
    assert programs["copd"].caught == 0 and programs["copd"].episodes == 1
    assert rules["hf.weight_gain"].caught == 1
    assert rules["hf.weight_gain"].lookalike_alerts == 1
    assert rules["common.hr_high"].false_alerts == 1
    assert "dm.missing_glucose" not in rules


def test_a_rule_is_credited_alone_only_with_episodes_no_other_rule_caught_in_time() -> None:
    alerts = [
        Alert("p1", "hf.weight_gain", "high", day(12)),  # e1 in time, with hf.deviation
        Alert("p1", "hf.weight_gain", "high", day(13)),  # the same rule again: still one rule
        Alert("p1", "hf.deviation", "high", day(14)),
        Alert("p1", "common.hr_high", "medium", day(16.5)),  # e1 too late: does not share it
        Alert("p2", "copd.deviation", "high", day(6)),  # e2 in time, by copd.deviation alone
        Alert("p2", "copd.deviation", "high", day(6.5)),
        Alert("p3", "dm.hypo", "low", day(19.9)),  # below the floor: leaves dm.falling alone
        Alert("p3", "dm.falling", "high", day(19.6)),  # e3: 22 h before the ER, too late
    ]
    _, _, rules = score(alerts, LABELS)
    assert (rules["hf.weight_gain"].caught, rules["hf.weight_gain"].caught_only) == (1, 0)
    assert (rules["hf.deviation"].caught, rules["hf.deviation"].caught_only) == (1, 0)
    assert (rules["copd.deviation"].caught, rules["copd.deviation"].caught_only) == (1, 1)
    assert (rules["common.hr_high"].caught, rules["common.hr_high"].caught_only) == (0, 0)
    assert (rules["dm.falling"].caught, rules["dm.falling"].caught_only) == (0, 0)


def test_groups_add_up_across_cohorts() -> None:
    one = Group(episodes=3, caught=2, caught_only=1, lead_days=[1.0, 2.0], false_alerts=4,
                lookalike_alerts=1, alerts=9, patient_days=90.0)  # fmt: skip
    two = Group(episodes=1, caught=1, lead_days=[5.0], false_alerts=2, alerts=3, patient_days=30.0)
    one.add(two)
    assert one == Group(
        episodes=4, caught=3, caught_only=1, lead_days=[1.0, 2.0, 5.0],
        false_alerts=6, lookalike_alerts=1, alerts=12, patient_days=120.0,
    )  # fmt: skip
    assert one.false_per_patient_month == pytest.approx(6 / 120 * 30)
    assert one.median_lead_days == 2.0


def test_an_alert_just_before_onset_counts_and_one_long_before_does_not() -> None:
    early = [Alert("p1", "hf.hr_rise", "medium", day(10) - timedelta(hours=11))]
    overall, _, _ = score(early, LABELS)
    assert overall.caught == 1 and overall.false_alerts == 0
    too_early = [Alert("p1", "hf.hr_rise", "medium", day(10) - timedelta(hours=13))]
    overall, _, _ = score(too_early, LABELS)
    assert overall.caught == 0 and overall.false_alerts == 1


def test_figures_by_episode_kind_match_a_hand_count() -> None:
    alerts = [
        Alert("p1", "hf.weight_gain", "high", day(13)),  # e1 caught, lead 4 d
        Alert("p2", "copd.spo2_drop", "high", day(7.5)),  # e2 too late, lead 0.5 d
        Alert("p3", "dm.hypo", "low", day(20.1)),  # e3: below the severity floor
    ]
    kinds = score_kinds(alerts, LABELS)
    assert (kinds["hf_decompensation"].episodes, kinds["hf_decompensation"].caught) == (1, 1)
    assert kinds["hf_decompensation"].lead_days == [4.0]
    assert (kinds["copd_exacerbation"].caught, kinds["copd_exacerbation"].lead_days) == (0, [0.5])
    assert (kinds["hypoglycaemia"].episodes, kinds["hypoglycaemia"].lead_days) == (1, [])


def test_labels_carry_the_types_each_episode_moves() -> None:
    document = {
        "generator": {"start": D0.isoformat(), "end": day(30).isoformat()},
        "patients": [{"id": "p1", "programs": ["oncology"]}],
        "episodes": [
            {
                "id": "e1",
                "kind": "symptom_flare",
                "patient_id": "p1",
                "onset": day(10).isoformat(),
                "er_visit": day(14).isoformat(),
                "expected_signals": [
                    {"type": "esas_pain", "direction": "up", "change": 4.0, "unit": "{score}"},
                    {"type": "esas_nausea", "direction": "up", "change": 3.5, "unit": "{score}"},
                ],
            }
        ],
        "lookalikes": [],
    }
    (episode,) = parse_labels(document).episodes
    assert episode.signals == {"esas_pain", "esas_nausea"}
