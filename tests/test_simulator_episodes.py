"""Each episode kind produces the change it describes, and look-alikes revert — measured from the
generated readings (through the ingest's parser), not from the simulator's parameters.

Cohorts are fault-free (faults have their own tests) and use a raised episode rate, so a few
dozen patients give dozens of episodes of each kind. Per-episode noise is real (adherence gaps,
day-to-day drift, device noise), so each check is on the cohort: the median change, and the
share of episodes that show it.
"""

from __future__ import annotations

import itertools
import statistics
from collections.abc import Callable

import pytest

from homecare.devices.sim import FaultRates, SimConfig
from homecare.devices.sim.clock import DAY_MS, HOUR_MS
from tests.support.simulated import END, Cohort, generate, ms

_COHORTS: dict[tuple[str, ...], Cohort] = {}


def cohort(*programs: str, scale: float = 8.0) -> Cohort:
    """cohort: 60 patients of these programs over 60 days (cached for the module)."""
    key = (*programs, str(scale))
    if key not in _COHORTS:
        _COHORTS[key] = generate(
            SimConfig(
                patients=60,
                days=60,
                seed=11,
                end=END,
                programs=programs,
                comorbidity=False,
                episode_rate_scale=scale,
                faults=FaultRates.none(),
            )
        )
    return _COHORTS[key]


def changes(
    c: Cohort,
    kind: str,
    type_name: str,
    hours: float = 24,
    summary: Callable[[list[float]], float] = statistics.mean,
) -> list[float]:
    """changes: per episode, summary(readings in the last hours before the ER visit) − baseline."""
    found = []
    for episode in c.episodes(kind):
        onset, er = ms(episode["onset"]), ms(episode["er_visit"])
        before = c.baseline(episode["patient_id"], type_name, onset)
        late = c.late(episode["patient_id"], type_name, er, hours)
        if before is not None and late:
            found.append(summary(late) - before)
    return found


def share(values: list[float], test: Callable[[float], bool]) -> float:
    return sum(1 for v in values if test(v)) / len(values)


def test_heart_failure_decompensation_moves_weight_heart_and_breathing_rate_and_spo2() -> None:
    c = cohort("heart_failure")
    assert len(c.episodes("hf_decompensation")) >= 30
    weight = changes(c, "hf_decompensation", "body_weight")
    assert len(weight) >= 25
    assert 1.0 <= statistics.median(weight) <= 3.0  # +1-3 kg by the ER visit
    assert share(weight, lambda d: 0.5 <= d <= 3.6) >= 0.9
    assert statistics.median(changes(c, "hf_decompensation", "heart_rate")) >= 5
    assert statistics.median(changes(c, "hf_decompensation", "respiratory_rate")) >= 2
    assert statistics.median(changes(c, "hf_decompensation", "spo2")) <= -1.5
    # It builds up: halfway to the ER visit the weight is already up, but less.
    halfway = []
    for episode in c.episodes("hf_decompensation"):
        onset, er = ms(episode["onset"]), ms(episode["er_visit"])
        before = c.baseline(episode["patient_id"], "body_weight", onset)
        mid = c.values(
            episode["patient_id"], "body_weight", (onset + er) // 2 - DAY_MS, (onset + er) // 2
        )
        if before is not None and mid:
            halfway.append(mid[-1] - before)
    assert 0.2 <= statistics.median(halfway) < statistics.median(weight)


def test_copd_exacerbation_drops_spo2_3_to_5_points_raises_heart_and_breathing_rate() -> None:
    c = cohort("copd")
    assert len(c.episodes("copd_exacerbation")) >= 30
    lowest = changes(c, "copd_exacerbation", "spo2", summary=min)
    assert -5.5 <= statistics.median(lowest) <= -3.0
    assert share(lowest, lambda d: d <= -2) >= 0.85
    assert statistics.median(changes(c, "copd_exacerbation", "heart_rate")) >= 6
    assert statistics.median(changes(c, "copd_exacerbation", "respiratory_rate")) >= 3


def test_infection_brings_fever_tachycardia_and_falling_systolic_pressure_within_two_days() -> None:
    c = cohort("oncology")
    episodes = c.episodes("infection")
    assert len(episodes) >= 15
    assert all(ms(e["er_visit"]) - ms(e["onset"]) <= 2 * DAY_MS for e in episodes)
    hottest = [
        max(t)
        for e in episodes
        if (t := c.late(e["patient_id"], "body_temperature", ms(e["er_visit"]), 24))
    ]
    assert share(hottest, lambda t: t > 38.0) >= 0.75
    assert statistics.median(changes(c, "infection", "heart_rate")) >= 12
    assert statistics.median(changes(c, "infection", "systolic_bp")) <= -12


def test_hypertensive_crisis_takes_systolic_pressure_to_crisis_levels() -> None:
    c = cohort("hypertension", scale=25)
    assert len(c.episodes("hypertensive_crisis")) >= 25
    peaks = [
        max(s)
        for e in c.episodes("hypertensive_crisis")
        if (s := c.late(e["patient_id"], "systolic_bp", ms(e["er_visit"]), 24))
    ]
    assert share(peaks, lambda s: s >= 170) >= 0.7
    assert statistics.median(changes(c, "hypertensive_crisis", "systolic_bp", summary=max)) >= 30
    assert statistics.median(changes(c, "hypertensive_crisis", "diastolic_bp", summary=max)) >= 15


def test_hypoglycaemia_reaches_level_2_before_the_er_visit() -> None:
    c = cohort("diabetes", scale=15)
    episodes = c.episodes("hypoglycaemia")
    assert len(episodes) >= 20
    lowest = [
        min(g)
        for e in episodes
        if (g := c.values(e["patient_id"], "blood_glucose", ms(e["onset"]), ms(e["er_visit"])))
    ]
    assert len(lowest) >= 0.9 * len(episodes)  # the patient checks when they feel it
    assert share(lowest, lambda g: g < 3.0) >= 0.7  # ADA level 2: < 3.0 mmol/L
    assert share(lowest, lambda g: g < 3.9) >= 0.95  # ADA level 1: < 3.9 mmol/L


def test_wound_infection_grows_the_wound_and_the_pain() -> None:
    c = cohort("wound_care")
    assert len(c.episodes("wound_infection")) >= 25
    assert statistics.median(changes(c, "wound_infection", "pain_score", hours=48)) >= 1.5
    growth = []
    for e in c.episodes("wound_infection"):
        onset, er = ms(e["onset"]), ms(e["er_visit"])
        before = c.values(e["patient_id"], "wound_area", onset - 8 * DAY_MS, onset)
        after = c.values(e["patient_id"], "wound_area", (onset + er) // 2, er)
        if before and after:
            growth.append(after[-1] / before[-1] - 1)
    assert len(growth) >= 8
    assert statistics.median(growth) >= 0.1  # healing wounds shrink; these grow
    assert statistics.median(changes(c, "wound_infection", "body_temperature", hours=48)) > 0.2


def test_oncology_symptom_flare_raises_several_esas_items() -> None:
    c = cohort("oncology")
    items = (
        "esas_pain",
        "esas_tiredness",
        "esas_nausea",
        "esas_appetite",
        "esas_wellbeing",
        "esas_drowsiness",
    )
    risen = []
    for e in c.episodes("symptom_flare"):
        onset, er = ms(e["onset"]), ms(e["er_visit"])
        count = 0
        for item in items:
            before = c.baseline(e["patient_id"], item, onset, days=14)
            late = c.late(e["patient_id"], item, er, 48)
            if before is not None and late and max(late) - before >= 2:
                count += 1
        if any(c.late(e["patient_id"], i, er, 48) for i in items):
            risen.append(count)
    assert len(risen) >= 20
    assert share(risen, lambda n: n >= 2) >= 0.8
    assert statistics.median(risen) >= 3


def test_post_operative_complication_raises_pain_and_loses_range_of_motion() -> None:
    c = cohort("post_surgical_rehab")
    assert len(c.episodes("postop_complication")) >= 25
    assert statistics.median(changes(c, "postop_complication", "pain_score", hours=48)) >= 2
    assert statistics.median(changes(c, "postop_complication", "range_of_motion", hours=48)) <= -5


def test_no_home_data_during_a_hospital_stay() -> None:
    c = cohort("heart_failure")
    for stay in c.labels["hospital_stays"]:
        start, end = ms(stay["start"]), ms(stay["end"])
        for type_name in ("body_weight", "systolic_bp", "spo2"):
            assert not c.values(stay["patient_id"], type_name, start, end)


def test_salty_meal_weight_bump_reverts_within_days() -> None:
    c = cohort("heart_failure")
    bumps, after = [], []
    for x in c.lookalikes("salty_meal"):
        start = ms(x["start"])
        before = c.baseline(x["patient_id"], "body_weight", start, days=4)
        next_morning = c.values(x["patient_id"], "body_weight", start, start + DAY_MS)
        later = c.values(x["patient_id"], "body_weight", start + 3 * DAY_MS, ms(x["end"]) + DAY_MS)
        if before is None:
            continue
        if next_morning:
            bumps.append(next_morning[0] - before)
        if later:
            after.append(statistics.mean(later) - before)
    assert len(bumps) >= 20 and len(after) >= 20
    assert statistics.median(bumps) >= 0.5
    assert abs(statistics.median(after)) <= 0.3
    assert share(after, lambda d: abs(d) <= 0.8) >= 0.75


def test_post_exercise_blood_pressure_is_a_single_high_reading() -> None:
    c = cohort("hypertension", scale=25)
    high, next_ones = [], []
    for x in c.lookalikes("post_exercise_bp"):
        start = ms(x["start"])
        before = c.baseline(x["patient_id"], "systolic_bp", start)
        at = c.values(x["patient_id"], "systolic_bp", start, start + 1)
        following = c.values(x["patient_id"], "systolic_bp", start + 1, start + 2 * DAY_MS)
        if before is None or not at:
            continue
        high.append(at[0] - before)
        if following:
            next_ones.append(max(following[:2]) - before)
    assert len(high) >= 20
    assert statistics.median(high) >= 20
    assert statistics.median(next_ones) <= 10  # not repeated
    assert share(next_ones, lambda d: d < 20) >= 0.8


def test_a_noisy_night_of_oximetry_is_over_by_the_morning() -> None:
    c = cohort("copd")
    dips, mornings = [], []
    for x in c.lookalikes("noisy_oximetry_night"):
        start, end = ms(x["start"]), ms(x["end"])
        before = c.baseline(x["patient_id"], "spo2", start)
        night = c.values(x["patient_id"], "spo2", start, end)
        morning = c.values(x["patient_id"], "spo2", end, end + 12 * HOUR_MS)
        if before is None or not night:
            continue
        dips.append(min(night) - before)
        if morning:
            mornings.append(statistics.mean(morning) - before)
    assert len(dips) >= 8
    assert statistics.median(dips) <= -3  # alarming-looking readings in the night...
    assert abs(statistics.median(mornings)) <= 1.5  # ...and an ordinary morning


@pytest.mark.parametrize("kind", ["hf_decompensation", "copd_exacerbation", "infection"])
def test_labels_state_the_expected_signals(kind: str) -> None:
    c = cohort("heart_failure") if kind == "hf_decompensation" else cohort("copd")
    episode = c.episodes(kind)[0]
    signals = {s["type"]: s for s in episode["expected_signals"]}
    if kind == "hf_decompensation":
        assert signals["body_weight"]["direction"] == "up"
        assert 1.2 <= signals["body_weight"]["change"] <= 3.0
        assert signals["spo2"]["direction"] == "down"
    elif kind == "copd_exacerbation":
        assert -5 <= signals["spo2"]["change"] <= -3
    else:
        assert signals["systolic_bp"]["direction"] == "down"
        assert signals["heart_rate"]["direction"] == "up"
    assert ms(episode["onset"]) < ms(episode["er_visit"]) < ms(episode["discharge"])


def test_a_naive_rule_visibly_fails() -> None:
    """A day-over-day "+1 kg" weight rule misses most decompensations (they build up over a week
    at a fraction of a kilogram a day, under day-to-day noise) and fires on salty meals."""
    c = cohort("heart_failure")
    fired = []
    for (patient, type_name), points in c.series.items():
        if type_name == "body_weight":
            for (t0, w0), (t1, w1) in itertools.pairwise(points):
                if w1 - w0 >= 1.0 and t1 - t0 <= 2 * DAY_MS:
                    fired.append((patient, t1))

    def fired_in(patient: str, start: int, end: int) -> bool:
        return any(p == patient and start <= t <= end for p, t in fired)

    episodes = c.episodes("hf_decompensation")
    caught = [e for e in episodes if fired_in(e["patient_id"], ms(e["onset"]), ms(e["er_visit"]))]
    salty = c.lookalikes("salty_meal")
    fooled = [x for x in salty if fired_in(x["patient_id"], ms(x["start"]), ms(x["end"]))]
    assert len(caught) < 0.5 * len(episodes)
    assert len(fooled) >= 0.15 * len(salty)
