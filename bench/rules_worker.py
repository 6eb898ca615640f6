"""Benchmark: how many patients a rules worker evaluates per second, with and without its window
cache, on a real PostgreSQL.

Run on demand, not in the tests:  .venv/bin/python -m bench.rules_worker [--patients N]

N heart-failure + COPD patients, each with 30 days of home readings twice a day (weight, BP,
heart rate, SpO2, respiratory rate, temperature: the ``bench.rules_eval`` home patient). One
worker evaluates the backlog once (every pass reads the whole lookback), then, ``--rounds`` times,
one new measurement is stored for every patient and the worker catches up — the live case the
cache is for. Two identical databases, one worker each, rounds alternating between them: one
worker's cache keeps nothing (``max_patients=0``, the behaviour before the cache), the other has
the default cache. It prints patients evaluated per second for each and the ratio.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg

from bench.support import BASE_URL
from homecare import store
from homecare.ingest import Delivery, ParseLimits, parse_message, write_batch
from homecare.rules import RulesConfig, RulesWorker
from homecare.rules.window_cache import WindowCache
from homecare.rules.worker import wait_idle

T0 = datetime(2026, 9, 1, 7, 0, tzinfo=UTC)
TYPES = (
    ("body_weight", 82.0, 0.3, "kg"),
    ("systolic_bp", 128.0, 6.0, "mm[Hg]"),
    ("diastolic_bp", 78.0, 4.0, "mm[Hg]"),
    ("heart_rate", 72.0, 4.0, "/min"),
    ("oxygen_saturation", 95.0, 1.0, "%"),
    ("respiratory_rate", 16.0, 1.0, "/min"),
    ("body_temperature", 36.7, 0.2, "Cel"),
)


# The readings are weeks old when stored: accept them as the ingest accepts a device's backlog.
LIMITS = ParseLimits(max_age=timedelta(days=3650))


def measurement(device: str, at: datetime, n: int) -> Delivery:
    """measurement is one time's seven readings as the device sends them, deterministic and
    ordinary (no episode)."""
    wobble = ((n * 7919) % 11 - 5) / 5
    readings = [
        {"type": t, "value": round(v + s * wobble, 1), "unit": u, "time": at.isoformat()}
        for t, v, s, u in TYPES
    ]
    payload = json.dumps({"msg_id": f"{device}-{n}", "readings": readings}).encode()
    return Delivery(f"homecare/v1/devices/{device}/readings", payload, at)


def store_messages(conn: psycopg.Connection[Any], deliveries: list[Delivery]) -> None:
    """store_messages stores and announces them through the ingest's own writer."""
    write_batch(conn, [parse_message(delivery, LIMITS) for delivery in deliveries])


def populate(url: str, count: int, days: int) -> list[tuple[uuid.UUID, str]]:
    """populate migrates a fresh database and stores ``days`` of readings for each patient."""
    patients = []
    with store.connect(url, autocommit=True) as conn:
        store.migrate(conn, "auto")
        for i in range(count):
            patient = store.create_patient(
                conn, display_name=f"p{i}", programs=("heart_failure", "copd")
            )
            device = f"home-{i:04d}"
            store.register_device(conn, device, model="bench hub")
            store.assign_device(conn, device, patient, T0 - timedelta(days=1))
            patients.append((patient, device))
            store_messages(
                conn,
                [measurement(device, T0 + timedelta(hours=12 * n), n) for n in range(2 * days)],
            )
    return patients


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=200)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()

    suffix = uuid.uuid4().hex[:6]
    labels = ("no cache", "cache")
    names = {label: f"hc_bench_rules_{n}_{suffix}" for n, label in enumerate(labels)}
    with psycopg.connect(BASE_URL, autocommit=True) as admin:
        for name in names.values():
            admin.execute(f"CREATE DATABASE {name}")
    urls = {label: BASE_URL.rsplit("/", 1)[0] + f"/{name}" for label, name in names.items()}
    try:
        now = T0 + timedelta(days=args.days, hours=12 * args.rounds + 1)
        workers: dict[str, RulesWorker] = {}
        patients: dict[str, list[tuple[uuid.UUID, str]]] = {}
        for label in labels:
            patients[label] = populate(urls[label], args.patients, args.days)
            workers[label] = RulesWorker(RulesConfig(database_url=urls[label], clock=lambda: now))
        workers["no cache"].windows = WindowCache(max_patients=0)
        for label in labels:
            started = time.perf_counter()
            wait_idle(workers[label], timeout_s=3600)
            rate = args.patients / (time.perf_counter() - started)
            print(f"backlog pass, {label}: {rate:,.0f} patients/s (every pass reads its lookback)")

        results: dict[str, list[float]] = {label: [] for label in labels}
        for round_ in range(args.rounds):
            n = 2 * args.days + round_
            at = T0 + timedelta(hours=12 * n)
            for label in labels:
                with store.connect(urls[label], autocommit=True) as conn:
                    store_messages(conn, [measurement(d, at, n) for _, d in patients[label]])
                started = time.perf_counter()
                wait_idle(workers[label], timeout_s=3600)
                results[label].append(args.patients / (time.perf_counter() - started))
        for worker in workers.values():
            worker.close()
        stats = workers["cache"].windows.stats
        plain, cached = (statistics.median(results[label]) for label in labels)
        print(
            f"live rounds, one new measurement per patient, median of {args.rounds}:\n"
            f"  without the window cache {plain:>8,.0f} patients/s"
            f"  (rounds: {', '.join(f'{r:,.0f}' for r in results['no cache'])})\n"
            f"  with the window cache    {cached:>8,.0f} patients/s"
            f"  (rounds: {', '.join(f'{r:,.0f}' for r in results['cache'])})\n"
            f"  ratio {cached / plain:.2f}; cache hits {stats.hits:,}, misses {stats.misses:,},"
            f" rows reused {stats.rows_reused:,}"
        )
    finally:
        with psycopg.connect(BASE_URL, autocommit=True) as admin:
            for name in names.values():
                admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
