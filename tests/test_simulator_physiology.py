"""Simulated patients look like each program's patients: baselines, medication, rhythms,
correlations, schedules and adherence — measured from the generated readings."""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from zoneinfo import ZoneInfo

import pytest

from homecare.devices.sim import FaultRates, SimConfig
from homecare.devices.sim.clock import DAY_MS
from tests.support.simulated import END, Cohort, generate, ms

ZONE = ZoneInfo("America/Toronto")


@pytest.fixture(scope="module")
def clean() -> Cohort:
    """140 patients (20 per program) for 30 days, no faults, no episodes: physiology alone."""
    return generate(
        SimConfig(
            patients=140,
            days=30,
            seed=21,
            end=END,
            comorbidity=False,
            episode_rate_scale=0,
            faults=FaultRates.none(),
        )
    )


def program_of(c: Cohort) -> dict[str, str]:
    return {p["id"]: p["programs"][0] for p in c.labels["patients"]}


def patient_medians(c: Cohort, program: str, type_name: str) -> list[float]:
    programs = program_of(c)
    return [
        statistics.median(v for _, v in points)
        for (patient, name), points in c.series.items()
        if name == type_name and programs[patient] == program and points
    ]


def local_hour(moment_ms: int) -> float:
    from datetime import UTC, datetime

    local = datetime.fromtimestamp(moment_ms / 1000, UTC).astimezone(ZONE)
    return local.hour + local.minute / 60


@pytest.mark.parametrize(
    ("program", "type_name", "low", "high"),
    [
        ("heart_failure", "body_weight", 60, 95),
        ("heart_failure", "systolic_bp", 110, 135),
        ("heart_failure", "spo2", 93, 97),
        ("heart_failure", "heart_rate", 62, 80),  # most on beta-blockers
        ("copd", "spo2", 89, 95),
        ("copd", "respiratory_rate", 17, 23),
        ("copd", "heart_rate", 76, 92),
        ("hypertension", "systolic_bp", 132, 152),
        ("hypertension", "diastolic_bp", 78, 94),
        ("diabetes", "blood_glucose", 7, 11),
        ("post_surgical_rehab", "range_of_motion", 35, 85),
        ("wound_care", "wound_area", 4, 16),
        ("oncology", "esas_tiredness", 2, 6),
        ("oncology", "body_temperature", 36.4, 37.0),
    ],
)
def test_program_baselines_are_plausible(
    clean: Cohort, program: str, type_name: str, low: float, high: float
) -> None:
    medians = patient_medians(clean, program, type_name)
    assert len(medians) >= 15, (program, type_name)
    assert low <= statistics.median(medians) <= high


def test_each_program_measures_what_its_plan_says(clean: Cohort) -> None:
    programs = program_of(clean)
    types: dict[str, set[str]] = defaultdict(set)
    for patient, type_name in clean.series:
        types[programs[patient]].add(type_name)
    assert {"body_weight", "systolic_bp", "spo2", "respiratory_rate"} <= types["heart_failure"]
    assert {"spo2", "body_temperature", "systolic_bp"} <= types["copd"]
    assert {"blood_glucose"} <= types["diabetes"]
    assert {"pain_score", "range_of_motion", "body_temperature"} <= types["post_surgical_rehab"]
    assert {"wound_area", "pain_score"} <= types["wound_care"]
    assert {"esas_wellbeing", "esas_nausea", "body_temperature"} <= types["oncology"]
    assert "blood_glucose" not in types["heart_failure"]


def test_copd_patients_at_risk_of_hypercapnia_live_at_88_to_92(clean: Cohort) -> None:
    hypercapnic = [p["id"] for p in clean.labels["patients"] if p["hypercapnic"]]
    assert hypercapnic
    for patient in hypercapnic:
        values = [v for _, v in clean.series[(patient, "spo2")]]
        assert 86.5 <= statistics.median(values) <= 93


def test_beta_blockers_lower_the_resting_heart_rate(clean: Cohort) -> None:
    medications = {p["id"]: p["medications"] for p in clean.labels["patients"]}
    programs = program_of(clean)
    groups: dict[tuple[str, bool], list[float]] = defaultdict(list)
    for (patient, type_name), points in clean.series.items():
        if type_name == "heart_rate" and points:
            blocked = "beta_blocker" in medications[patient]
            groups[(programs[patient], blocked)].append(statistics.median(v for _, v in points))
    # Compared within each program, so that programs' own heart rates do not confound it.
    weighted = weights = 0.0
    for program in {p for p, _ in groups}:
        on, off = groups.get((program, True), []), groups.get((program, False), [])
        if on and off:
            weight = min(len(on), len(off))
            weighted += weight * (statistics.mean(off) - statistics.mean(on))
            weights += weight
    assert weights >= 15
    assert weighted / weights >= 5


def test_temperature_follows_the_circadian_rhythm(clean: Cohort) -> None:
    morning, evening = [], []
    for (_, type_name), points in clean.series.items():
        if type_name != "body_temperature":
            continue
        for moment, value in points:
            hour = local_hour(moment)
            if 6 <= hour < 10:
                morning.append(value)
            elif 18 <= hour < 22:
                evening.append(value)
    assert len(morning) > 200 and len(evening) > 100
    assert 0.2 <= statistics.mean(evening) - statistics.mean(morning) <= 0.7


def test_scheduled_times_and_frequencies(clean: Cohort) -> None:
    programs = program_of(clean)
    weights = [
        local_hour(t)
        for (patient, name), points in clean.series.items()
        if name == "body_weight" and programs[patient] == "heart_failure"
        for t, _ in points
    ]
    assert 6.3 <= statistics.median(weights) <= 7.7  # weight each morning
    per_day: Counter[tuple[str, int]] = Counter()
    for (patient, name), points in clean.series.items():
        if name == "systolic_bp" and programs[patient] == "hypertension":
            for t, _ in points:
                per_day[(patient, t // DAY_MS)] += 1
    assert max(per_day.values()) <= 3 and statistics.mean(per_day.values()) >= 1.5  # twice daily
    wounds = [
        len(points) for (patient, name), points in clean.series.items() if name == "wound_area"
    ]
    assert max(wounds) <= 5  # weekly, over 30 days


def test_adherence_varies_by_patient_and_fades(clean: Cohort) -> None:
    long = generate(
        SimConfig(
            patients=42, days=120, seed=5, end=END, episode_rate_scale=0, faults=FaultRates.none()
        )
    )
    start = ms(long.labels["generator"]["start"])
    early = late = 0
    per_patient: Counter[str] = Counter()
    for (patient, _), points in long.series.items():
        for t, _ in points:
            day = (t - start) / DAY_MS
            per_patient[patient] += 1
            early += day < 30
            late += day >= 90
    assert late < 0.9 * early
    adherence = [p["adherence"]["initial"] for p in long.labels["patients"]]
    assert statistics.pstdev(adherence) > 0.04 and 0.7 <= statistics.mean(adherence) <= 0.92


def test_fever_raises_the_heart_rate() -> None:
    c = generate(
        SimConfig(
            patients=100,
            days=40,
            seed=4,
            end=END,
            programs=("oncology",),
            comorbidity=False,
            episode_rate_scale=20,
            faults=FaultRates.none(),
        )
    )
    baseline = {p["id"]: p["baseline"] for p in c.labels["patients"]}
    fever, pulse = [], []
    for (patient, name), points in c.series.items():
        if name != "body_temperature":
            continue
        rates = dict(c.series.get((patient, "heart_rate"), []))
        for t, temperature in points:
            # The cuff is used a few minutes after the thermometer each morning.
            near = [v for u, v in rates.items() if 0 <= u - t <= 30 * 60_000]
            if near:
                fever.append(temperature - baseline[patient]["body_temperature"])
                pulse.append(near[0] - baseline[patient]["heart_rate"])
    assert len(fever) > 300
    febrile = [p for f, p in zip(fever, pulse, strict=True) if f >= 1.0]
    usual = [p for f, p in zip(fever, pulse, strict=True) if abs(f) <= 0.3]
    assert len(febrile) >= 8
    assert statistics.mean(febrile) - statistics.mean(usual) >= 12
    slope = statistics.linear_regression(fever, pulse).slope
    assert 6 <= slope <= 25  # ~10 bpm per °C, plus the infection's own tachycardia


def test_wearable_heart_rate_is_minute_by_minute() -> None:
    c = generate(SimConfig(patients=2, days=2, seed=1, end=END, faults=FaultRates.none()))
    watch = generate(
        SimConfig(patients=2, days=2, seed=1, end=END, faults=FaultRates.none(), wearable=True)
    )
    extra = sum(len(v) for v in watch.series.values()) - sum(len(v) for v in c.series.values())
    assert extra >= 2 * 2 * 1000  # minus charging and the odd missed day
    watches = [m for m in watch.messages if m.device_id.endswith("-watch")]
    assert watches and all(m.payload.count(b'"heart_rate"') <= 15 for m in watches)
