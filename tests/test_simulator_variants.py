"""Simulator variants: the default stays byte for byte, every variant is deterministic, and each
really differs in what it claims — measured on generated data (readings through the ingest's
parser, or the labels), against the default on the same seeds."""

from __future__ import annotations

import hashlib
import io
import json
import statistics
from collections import Counter
from functools import cache

import pytest

from homecare.devices.sim import SimConfig, Simulation, write_messages
from homecare.devices.sim.clock import DAY_MS, HOUR_MS
from homecare.devices.sim.variants import VARIANTS
from tests.support.simulated import END, Cohort, generate, ms


def digests(config: SimConfig) -> tuple[str, str]:
    sim = Simulation(config)
    out = io.StringIO()
    write_messages(sim.messages(), out)
    labels = json.dumps(sim.labels(), indent=1)
    return (
        hashlib.sha256(out.getvalue().encode()).hexdigest()[:16],
        hashlib.sha256(labels.encode()).hexdigest()[:16],
    )


@cache
def cohort(variant: str, scale: float = 1.0, patients: int = 42) -> Cohort:
    return generate(
        SimConfig(
            patients=patients,
            days=60,
            seed=17,
            end=END,
            variant=variant,
            episode_rate_scale=scale,
        )
    )


def test_the_default_variant_writes_the_bytes_it_wrote_before_variants_existed() -> None:
    # Digests of the simulator's messages and labels before variants were added: cached
    # cohorts and published figures rely on them.
    scaled = SimConfig(patients=21, days=45, seed=11, end=END, episode_rate_scale=4)
    assert digests(scaled) == ("c65d6c6814b8bdd1", "f75e82b500f9fb3e")
    worn = SimConfig(patients=8, days=10, seed=2, end=END, wearable=True)
    assert digests(worn) == ("6ec4383a5b9fa5f6", "ddd9eb4e3b509814")
    assert digests(SimConfig(patients=8, days=10, seed=2, end=END, wearable=True,
                             variant="default")) == digests(worn)  # fmt: skip


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_every_variant_gives_the_same_bytes_for_the_same_config(variant: str) -> None:
    config = SimConfig(patients=14, days=20, seed=5, end=END, variant=variant, wearable=True)
    first = digests(config)
    assert digests(config) == first
    assert digests(SimConfig(patients=14, days=20, seed=6, end=END, variant=variant)) != first
    if variant != "default":
        assert first != digests(SimConfig(patients=14, days=20, seed=5, end=END, wearable=True))
        generator = Simulation(config).labels()["generator"]
        assert isinstance(generator, dict) and generator["variant"] == variant


def test_an_unknown_variant_is_refused() -> None:
    with pytest.raises(ValueError, match="variant must be one of"):
        SimConfig(patients=1, days=1, seed=1, end=END, variant="nope")


def _durations(c: Cohort, kind: str) -> list[float]:
    return [(ms(e["er_visit"]) - ms(e["onset"])) / DAY_MS for e in c.episodes(kind)]


def test_slow_burn_courses_are_long_and_sepsis_reaches_every_program() -> None:
    slow, usual = cohort("slow-burn", 6.0), cohort("default", 6.0)
    hf = _durations(slow, "hf_decompensation")
    assert len(hf) >= 5 and all(7.0 <= d <= 12.0 for d in hf)
    assert max(_durations(usual, "hf_decompensation")) <= 10.0
    copd = _durations(slow, "copd_exacerbation")
    assert len(copd) >= 5 and all(4.0 <= d <= 8.0 for d in copd)
    sepsis = _durations(slow, "infection")
    assert len(sepsis) >= 5 and all(1.5 <= d <= 2.5 for d in sepsis)
    programs = {p["id"]: p["programs"][0] for p in slow.labels["patients"]}
    primary = {programs[e["patient_id"]] for e in slow.episodes("infection")}
    assert primary & {"heart_failure", "hypertension", "diabetes"}
    assert not {programs[e["patient_id"]] for e in usual.episodes("infection")} & {
        "heart_failure",
        "hypertension",
        "diabetes",
    }
    # Late acceleration: half-way through a sepsis the default's fever has mostly come (it
    # moves early, progress ** 0.5); slow-burn's has barely begun.
    assert _early_fever(slow) < 0.35 < _early_fever(usual)


def _early_fever(c: Cohort) -> float:
    """Median rise of temperature in the first half of each sepsis over the 7 days before it."""
    rises = []
    for e in c.episodes("infection"):
        onset, er = ms(e["onset"]), ms(e["er_visit"])
        before = c.baseline(e["patient_id"], "body_temperature", onset)
        early = c.values(e["patient_id"], "body_temperature", onset, (onset + er) // 2)
        if before is not None and early:
            rises.append(max(early) - before)
    assert len(rises) >= 4
    return statistics.median(rises)


def test_abrupt_episodes_are_short_and_most_of_the_change_comes_first() -> None:
    abrupt, usual = cohort("abrupt", 10.0, 70), cohort("default", 10.0, 70)
    copd = _durations(abrupt, "copd_exacerbation")
    assert len(copd) >= 5 and all(1.0 <= d <= 2.5 for d in copd)
    crisis = _durations(abrupt, "hypertensive_crisis")
    assert crisis and all(0.5 <= d <= 1.5 for d in crisis)
    # In the first 12 h of a COPD exacerbation SpO2 has already fallen most of its way.
    assert _early_spo2_fall(abrupt) >= 1.2 > 0.6 >= _early_spo2_fall(usual)


def _early_spo2_fall(c: Cohort) -> float:
    """Mean fall of SpO2, over every reading in the first 12 h of a COPD exacerbation, from the
    median of the patient's 7 days before it."""
    falls = []
    for e in c.episodes("copd_exacerbation"):
        onset = ms(e["onset"])
        before = c.baseline(e["patient_id"], "spo2", onset)
        if before is not None:
            early = c.values(e["patient_id"], "spo2", onset, onset + 12 * HOUR_MS)
            falls += [before - value for value in early]
    assert len(falls) >= 8
    return statistics.mean(falls)


def test_other_physiology_wanders_more_sits_elsewhere_and_glitches_more() -> None:
    other, usual = cohort("other-physiology"), cohort("default")
    assert _daily_spread(other) > 1.3 * _daily_spread(usual)
    assert _median_of(other, "spo2") <= _median_of(usual, "spo2") - 0.7
    assert _glitches(other) > 2.5 * max(1, _glitches(usual))


def _daily_spread(c: Cohort) -> float:
    """Median over patients of the SD of their daily median systolic pressure."""
    spreads = []
    for (_, type_name), points in c.series.items():
        if type_name != "systolic_bp":
            continue
        days: dict[int, list[float]] = {}
        for t, v in points:
            days.setdefault(t // DAY_MS, []).append(v)
        medians = [statistics.median(v) for v in days.values()]
        if len(medians) >= 10:
            spreads.append(statistics.stdev(medians))
    return statistics.median(spreads)


def _median_of(c: Cohort, type_name: str) -> float:
    return statistics.median(v for (_, t), p in c.series.items() if t == type_name for _, v in p)


def _glitches(c: Cohort) -> int:
    return sum(1 for f in c.labels["faults"] if f["kind"] == "glitch")


def test_devices_and_habits_use_other_units_resend_go_offline_and_measure_less() -> None:
    habits, usual = cohort("devices-and-habits"), cohort("default")
    assert _wrong_unit_share(habits) >= 0.6 > 0.3 >= _wrong_unit_share(usual)
    units = Counter(u for d in habits.labels["devices"] for u in d["units"].values())
    assert units["[lb_av]"] and units["[degF]"] and units["mg/dL"]
    assert _resend_share(habits) >= 3 * _resend_share(usual) > 0
    offline = Counter(f["kind"] for f in habits.labels["faults"])["offline"]
    assert offline >= 2 * Counter(f["kind"] for f in usual.labels["faults"])["offline"]
    # Evening, midday and bedtime sessions dropped, the rest later: fewer readings, a first
    # reading of the day (local time) later.
    assert _readings(habits) < 0.6 * _readings(usual)
    assert _first_hour(habits) >= _first_hour(usual) + 1.0


def _wrong_unit_share(c: Cohort) -> float:
    devices = [d for d in c.labels["devices"] if d["kind"] in ("scale", "thermo", "gluco")]
    wrong = {"[lb_av]", "[degF]", "mg/dL"}
    return sum(1 for d in devices if set(d["units"].values()) & wrong) / len(devices)


def _resend_share(c: Cohort) -> float:
    return sum(1 for m in c.messages if m.resend) / len(c.messages)


def _readings(c: Cohort) -> int:
    return sum(len(points) for points in c.series.values())


def _first_hour(c: Cohort) -> float:
    """Median local hour of each patient-day's first reading."""
    first: dict[tuple[str, int], float] = {}
    for (patient, _), points in c.series.items():
        for t, _value in points:
            day = c.simulation.calendar.day_of(t)
            hour = (t - day.start_ms) / HOUR_MS
            key = (patient, day.ordinal)
            first[key] = min(hour, first.get(key, 24.0))
    return statistics.median(first.values())


def test_varied_draws_each_patient_and_episode_around_the_default() -> None:
    varied = Simulation(SimConfig(patients=60, days=60, seed=17, end=END, variant="varied"))
    usual = Simulation(SimConfig(patients=60, days=60, seed=17, end=END, episode_rate_scale=4))
    noise = [p.profile.noise for p in varied.plans]
    assert min(noise) >= 0.85 and max(noise) <= 1.25 and statistics.stdev(noise) > 0.05
    assert {p.profile.noise for p in usual.plans} == {1.0}
    shapes = Simulation(
        SimConfig(patients=60, days=60, seed=17, end=END, variant="varied", episode_rate_scale=4)
    ).plans
    hf = [e.shape for p in shapes for e in p.episodes if e.kind == "hf_decompensation"]
    assert len(set(hf)) == len(hf) >= 3 and all(0.8 <= s <= 1.7 for s in hf)
    assert {e.shape for p in usual.plans for e in p.episodes if e.kind == "hf_decompensation"} == {
        1.5
    }
    # Same courses as the default: the tuning set's durations are the default's.
    assert all(
        5 * DAY_MS <= e.er_ms - e.onset_ms <= 10 * DAY_MS
        for p in shapes
        for e in p.episodes
        if e.kind == "hf_decompensation"
    )
