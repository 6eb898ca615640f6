"""Benchmark: how fast the patient simulator generates a cohort, and in how much memory.

Run on demand, not in the tests:  .venv/bin/python -m bench.simulate [--patients N] [--days D]

It generates the cohort (default 1,000 patients x 90 days, no minute-level wearable data,
default fault rates) exactly as ``homecare simulate --out`` does — plan, physiology, faults,
payload bytes, JSON lines written to a file — then the labels, and prints the wall time, the
rate in readings/s and messages/s, and the peak memory of the process (ru_maxrss: everything,
interpreter included). Target: under a minute, bounded memory. Memory is bounded
because messages are streamed: only the plan (per patient, no readings) and one local day of
messages per patient are held at once, so peak memory grows with the number of patients, not
with the number of days or readings (``--days 360`` shows it).
"""

from __future__ import annotations

import argparse
import os
import resource
import tempfile
import time
from datetime import UTC, datetime

from homecare.devices.sim import SimConfig, Simulation, write_messages


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=1000)
    parser.add_argument("--days", type=float, default=90)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--wearable", action="store_true")
    args = parser.parse_args()

    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    config = SimConfig(
        patients=args.patients,
        days=args.days,
        seed=args.seed,
        end=datetime(2026, 1, 1, tzinfo=UTC),
        wearable=args.wearable,
    )
    with tempfile.TemporaryDirectory(prefix="hc-sim-bench-") as work:
        messages_path = os.path.join(work, "messages.jsonl")
        started = time.perf_counter()
        simulation = Simulation(config)
        planned = time.perf_counter()
        with open(messages_path, "w", encoding="utf-8") as out:
            write_messages(simulation.messages(), out)
        generated = time.perf_counter()
        peak_messages = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        simulation.write_labels(os.path.join(work, "labels.json"))
        finished = time.perf_counter()
        size_mb = os.path.getsize(messages_path) / 1e6
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    counts = simulation.counts
    seconds = finished - started
    episodes = sum(len(p.episodes) for p in simulation.plans)
    print(
        f"cohort      {config.patients:,} patients x {config.days:g} days"
        f"{' with wearables' if config.wearable else ''}: {counts.messages:,} messages,"
        f" {counts.readings:,} readings ({size_mb:.0f} MB of JSON lines), {episodes} episodes"
    )
    print(
        f"time        {seconds:.1f} s (plan {planned - started:.2f} s, messages"
        f" {generated - planned:.1f} s, labels {finished - generated:.2f} s)"
    )
    print(
        f"rate        {counts.readings / seconds:,.0f} readings/s,"
        f" {counts.messages / seconds:,.0f} messages/s"
    )
    print(
        f"peak memory {peak:.0f} MB RSS; {peak_messages:.0f} MB until the messages were written"
        f" (the interpreter and imports: {rss_before:.0f} MB)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
