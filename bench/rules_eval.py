"""Benchmark: what one live evaluation pass of a patient costs, shipped packs against plain ones.

Run on demand, not in the tests:  .venv/bin/python -m bench.rules_eval

The rules worker re-evaluates a patient from the earliest reading of each stored batch, with the
lookback the packs need (``history_needed``), so its cost per pass is what decides whether it
keeps up with the ingest. Two synthetic patients, both evaluated pass after pass as the live path
would: *home* (heart failure and COPD: weight, BP, heart rate, SpO2, respiratory rate and
temperature twice a day for 60 days, one measurement time — 7 readings — a pass) and *dense*
(a BP cuff every 33 minutes for 7 days, 15 new messages a pass). The baseline, measured in the
same run, is the plain-threshold pack set of ``homecare evaluate`` (population thresholds and
NEWS2 bands on single readings): the ratio is what the personal-baseline rules cost on top.
The packs are then timed again with an anomaly model in force (a personal directed model
fitted on the patient's readings): the difference is what scoring the anomaly
rules adds to a pass (budget: 2 ms).
"""

from __future__ import annotations

import random
import statistics
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from homecare.evaluation.anomaly import split_packs
from homecare.evaluation.cohorts import baseline_packs
from homecare.ingest import Reading
from homecare.rules import PackSet, load_packs
from homecare.rules.anomaly import DirectedDetector, build_features, vitals_for
from homecare.rules.evaluate import PatientContext, evaluate_patient, history_needed
from homecare.rules.kinds.base import ModelVersion

T0 = datetime(2026, 9, 1, tzinfo=UTC)
PATIENT = uuid.uuid4()


def _reading(type_: str, value: float, at: datetime) -> Reading:
    return Reading(
        PATIENT, "bench-dev", f"m-{type_}-{at.timestamp()}", type_, at, value, "u", value, "u",
        at + timedelta(seconds=30), None, None,
    )  # fmt: skip


def home_patient() -> list[Reading]:
    rng = random.Random(1)
    readings = []
    for day in range(60):
        for hour in (8, 20):
            at = T0 + timedelta(days=day, hours=hour)
            for type_, mean, sd in (
                ("body_weight", 82.0, 0.4), ("systolic_bp", 128, 8), ("diastolic_bp", 78, 5),
                ("heart_rate", 74, 5), ("spo2", 94, 1.2), ("respiratory_rate", 18, 1.5),
                ("body_temperature", 36.7, 0.2),
            ):  # fmt: skip
                readings.append(_reading(type_, round(rng.gauss(mean, sd), 1), at))
    return readings


def dense_patient() -> list[Reading]:
    rng = random.Random(2)
    readings = []
    for i in range(300):
        at = T0 + timedelta(minutes=33 * i)
        readings += [
            _reading("systolic_bp", round(rng.gauss(130, 8)), at),
            _reading("diastolic_bp", round(rng.gauss(80, 5)), at),
            _reading("heart_rate", round(rng.gauss(72, 5)), at),
        ]
    return readings


def passes_ms(packs: PackSet, context: PatientContext, readings: list[Reading], per: int) -> float:
    """passes_ms: median milliseconds of one live pass over the readings' second half."""
    need = history_needed(packs, context.programs)
    times = sorted({r.time for r in readings})
    timings = []
    for first in range(len(times) // 2, len(times), per):
        start, until = times[first], times[min(first + per, len(times)) - 1]
        window = [r for r in readings if start - need <= r.time <= until]
        began = time.perf_counter()
        evaluate_patient(packs, context, window, start, until, {}, timedelta(hours=6))
        timings.append((time.perf_counter() - began) * 1000)
    return statistics.median(timings)


def main() -> int:
    shipped = load_packs()
    plain = baseline_packs(shipped)["single readings, no persistence"]
    cases: list[tuple[str, tuple[str, ...], Callable[[], list[Reading]], int]] = [
        ("home", ("heart_failure", "copd"), home_patient, 1),
        ("dense", ("hypertension",), dense_patient, 15),
    ]
    rules_only = split_packs(shipped)["rules only"]
    for name, programs, make, per in cases:
        context = PatientContext(PATIENT, programs)
        readings = make()
        ours = passes_ms(rules_only, context, readings, per)
        base = passes_ms(plain, context, readings, per)
        print(
            f"{name:<6} {len(readings):>6,} readings  rules only {ours:7.2f} ms/pass"
            f"  plain thresholds {base:7.2f} ms/pass  ratio {ours / base:4.1f}x"
        )
        # Fitted on all the readings (what it learned does not change what a pass costs), in
        # force throughout.
        model = DirectedDetector().fit(build_features(readings, vitals_for(programs)))
        version = ModelVersion(readings[0].time, model.info, model)
        judged = PatientContext(PATIENT, programs, models={"directed": (version,)})
        both = passes_ms(shipped, judged, readings, per)
        print(
            f"{'':<6} {'':>6}           rules + anomaly {both:7.2f} ms/pass"
            f"  anomaly adds {both - ours:+.2f} ms/pass (budget 2 ms)"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
