"""Benchmark: what fitting and scoring the anomaly detectors cost on a simulated cohort.

Run on demand, not in the tests:  .venv/bin/python -m bench.anomaly_models [--patients N]
                                  .venv/bin/python -m bench.anomaly_models --database

With ``--database`` it measures the path the scheduler runs instead (``rules.training.train``):
the cohort is stored in a scratch database (HOMECARE_BENCH_DATABASE_URL's server), then one
training run reads every patient's readings and findings, fits every detector per program and
per patient, and registers the models; the figure is that run's wall clock, by phase.

The cohort (default 1,000 patients x 90 days, seed 1) comes from the simulator through the
real ingest parser (``bench.anomaly_cohort``). For every patient: build the feature rows of
their whole history, fit each detector on them, and score and explain a sample of instants
(each judged as the live path would: the instant and the detector's lookback before it). The
baseline, measured in the same run on the same features, is the simplest personal model: the
median and MAD of each feature (numpy), scored as the largest robust z of the instant. Targets:
training every patient in <= 60 s, scoring one instant in <= 2 ms. Timings are wall clock of
this one process; the machine's other load shows in them.
"""

from __future__ import annotations

import argparse
import statistics
import time
from datetime import UTC, datetime

import numpy as np

from bench.anomaly_cohort import simulated_patients
from homecare.devices.sim import SimConfig, Simulation
from homecare.rules.anomaly import DETECTORS, Detector, Features, build_features, vitals_for
from homecare.rules.anomaly._scale import robust_center_scale

_SAMPLE = 20  # instants scored per patient


class Baseline:
    """Baseline: per-feature median and MAD; an instant's score is its largest robust z."""

    def fit(self, features: Features) -> Baseline:
        self.center, self.scale = robust_center_scale(features.values, features.columns)
        return self

    def score(self, recent: Features) -> float:
        z = np.abs((recent.values[-1] - self.center) / self.scale)
        return float(np.nanmax(z, initial=0.0))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=1000)
    parser.add_argument("--days", type=float, default=90)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--database", action="store_true", help="read, fit and store (see above)")
    args = parser.parse_args()
    if args.database:
        return database_path(args.patients, args.days, args.seed)
    config = SimConfig(
        patients=args.patients, days=args.days, seed=args.seed, end=datetime(2026, 1, 1, tzinfo=UTC)
    )
    names = [d.kind for d in DETECTORS]
    fit_s = dict.fromkeys([*names, "baseline"], 0.0)
    score_ms: dict[str, list[float]] = {n: [] for n in [*names, "baseline"]}
    explain_ms: dict[str, list[float]] = {n: [] for n in names}
    features_s = 0.0
    patients = instants = readings = 0
    started = time.perf_counter()
    for patient in simulated_patients(Simulation(config)):
        began = time.perf_counter()
        features = build_features(patient.readings, vitals_for(patient.programs))
        features_s += time.perf_counter() - began
        patients += 1
        instants += len(features)
        readings += len(patient.readings)
        began = time.perf_counter()
        baseline = Baseline().fit(features)
        fit_s["baseline"] += time.perf_counter() - began
        sample = np.linspace(len(features) // 2, len(features) - 1, _SAMPLE).astype(int)
        for index in sample:
            recent = features.rows(int(index), int(index) + 1)
            began = time.perf_counter()
            baseline.score(recent)
            score_ms["baseline"].append((time.perf_counter() - began) * 1000)
        for kind in DETECTORS:
            detector: Detector = kind()
            began = time.perf_counter()
            fitted = detector.fit(features)
            fit_s[kind.kind] += time.perf_counter() - began
            for index in sample:
                recent = features.upto(int(index), fitted.lookback)
                began = time.perf_counter()
                fitted.score(recent)
                score_ms[kind.kind].append((time.perf_counter() - began) * 1000)
                began = time.perf_counter()
                fitted.explain(recent)
                explain_ms[kind.kind].append((time.perf_counter() - began) * 1000)
    total = time.perf_counter() - started
    print(
        f"cohort {patients:,} patients x {args.days:g} days (seed {args.seed}): {readings:,} "
        f"readings, {instants:,} instants; whole run {total:.0f} s (simulation included)"
    )
    print(f"features     {features_s:6.1f} s for every patient")
    base_fit, base_score = fit_s["baseline"], statistics.median(score_ms["baseline"])
    for name in names:
        fit, score = fit_s[name], statistics.median(score_ms[name])
        p99 = float(np.quantile(score_ms[name], 0.99))
        print(
            f"{name:<18} fit every patient {fit:6.1f} s (features + fit {features_s + fit:5.1f} s,"
            f" {fit / base_fit:5.0f}x baseline)  score one instant median {score:.3f} ms"
            f" p99 {p99:.3f} ms ({score / base_score:4.0f}x baseline)"
            f"  explain median {statistics.median(explain_ms[name]):.3f} ms"
        )
    print(
        f"{'baseline':<18} fit every patient {base_fit:6.1f} s"
        f"  score one instant median {base_score:.3f} ms"
    )
    both = sum(fit_s[n] for n in names)
    print(f"all detectors: features + fit every patient {features_s + both:.1f} s (target <= 60 s)")
    return 0


def database_path(patients: int, days: float, seed: int) -> int:
    """database_path: one training run over a stored cohort, as the scheduler runs it."""
    import psycopg

    from bench.support import drop_database, fresh_database
    from homecare import store
    from homecare.rules.training import TrainingConfig, train

    end = datetime(2026, 1, 1, tzinfo=UTC)
    config = SimConfig(patients=patients, days=days, seed=seed, end=end)
    url = fresh_database("bench_anomaly_models")
    stored = 0
    try:
        with store.connect(url, autocommit=True) as conn:
            began = time.perf_counter()
            for patient in simulated_patients(Simulation(config)):
                if not patient.readings:
                    continue
                with conn.transaction():
                    conn.execute(
                        "INSERT INTO patients (id, display_name, programs) VALUES (%s, %s, %s)",
                        (patient.readings[0].patient_id, patient.key, list(patient.programs)),
                    )
                    with conn.cursor().copy(
                        "COPY readings (patient_id, device_id, msg_id, type, time, value, unit,"
                        " original_value, original_unit, received_at, on_oxygen, consciousness)"
                        " FROM STDIN"
                    ) as copy:
                        for reading in patient.readings:
                            copy.write_row(reading)
                stored += len(patient.readings)
            conn.execute("ANALYZE readings")
            print(f"stored {stored:,} readings in {time.perf_counter() - began:.0f} s (not timed)")
            began = time.perf_counter()
            report = train(conn, end, TrainingConfig(trained_by="bench"))
            total = time.perf_counter() - began
        phases = ", ".join(f"{k} {v:.1f} s" for k, v in report.seconds.items())
        print(
            f"training run: {report.patients:,} patients, {report.readings:,} readings,"
            f" {len(report.registered)} models registered ({report.too_little_history} fits"
            f" with too little history): {total:.1f} s wall clock ({phases}; target <= 60 s)"
        )
    except psycopg.Error as exc:
        print(f"bench failed: {exc}")
        return 1
    finally:
        drop_database("bench_anomaly_models")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
