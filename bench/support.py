"""Support: what several benchmarks need — a scratch database, stopping workers, percentiles."""

from __future__ import annotations

import math
import os
import signal
import subprocess
from collections.abc import Sequence

import psycopg

from homecare import store

__all__ = ["BASE_URL", "drop_database", "fresh_database", "percentile", "stop_processes"]

# The server the benchmarks create their scratch databases on (never the one they are named in).
BASE_URL = os.environ.get(
    "HOMECARE_BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)


def fresh_database(name: str) -> str:
    """fresh_database (re)creates database ``name`` beside BASE_URL's, migrated; returns its URL."""
    drop_database(name)
    with psycopg.connect(BASE_URL, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    url = BASE_URL.rsplit("/", 1)[0] + f"/{name}"
    with store.connect(url, autocommit=True) as conn:
        store.migrate(conn, "auto")
    return url


def drop_database(name: str) -> None:
    """drop_database drops ``name`` even while a stopped worker's connection lingers."""
    with psycopg.connect(BASE_URL, autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def stop_processes(processes: Sequence[subprocess.Popen[bytes]]) -> None:
    """stop_processes sends SIGTERM (workers finish their batch), then kills after 30 s."""
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    for process in processes:
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def percentile(values: Sequence[float], p: float) -> float:
    """percentile is the nearest-rank p-th percentile (p in 0–100) of ``values``."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]
