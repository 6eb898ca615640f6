"""Pipeline helpers for end-to-end tests: an ingest worker in a thread, polling, counting."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import psycopg

from homecare.ingest import IngestConfig, IngestWorker, MqttConfig

INGEST_USER = "homecare-ingest"
INGEST_PASSWORD = "ingest-secret"


def device_password(device_id: str) -> str:
    """device_password is each test device's own broker password."""
    return f"pw-{device_id}"


def ingest_config(
    database_url: str,
    broker_port: int,
    client_id: str = "ingest-test-1",
    shared_group: str = "",
    **overrides: Any,
) -> IngestConfig:
    """ingest_config points a worker at a test broker (MQTT 5) and database."""
    mqtt = MqttConfig(
        host="127.0.0.1",
        port=broker_port,
        username=INGEST_USER,
        password=INGEST_PASSWORD,
        tls=False,
        client_id=client_id,
        shared_group=shared_group,
        session_expiry_s=3600,
        receive_maximum=500,
    )
    settings: dict[str, Any] = {"batch_max_wait_s": 0.02, "connect_timeout_s": 15.0}
    settings.update(overrides)
    return IngestConfig(database_url=database_url, mqtt=mqtt, **settings)


@contextmanager
def running_worker(config: IngestConfig) -> Iterator[IngestWorker]:
    """running_worker runs a worker in a thread until the block ends; re-raises its failure."""
    worker = IngestWorker(config)
    stop = threading.Event()
    failure: list[BaseException] = []

    def run() -> None:
        try:
            worker.run(stop)
        except BaseException as exc:
            failure.append(exc)

    thread = threading.Thread(target=run, name=f"ingest-{config.mqtt.client_id}", daemon=True)
    thread.start()
    try:
        if not worker.wait_ready(20):
            raise AssertionError(f"ingest worker not ready: {failure or 'timeout'}")
        yield worker
    finally:
        stop.set()
        thread.join(timeout=30)
    if failure:
        raise failure[0]


def wait_for(
    condition: Callable[[], bool], timeout_s: float = 30.0, what: str = "condition"
) -> None:
    """wait_for polls ``condition`` until true; fails the test with ``what`` if it never is."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s:g}s waiting for {what}")
        time.sleep(0.05)


def count(url: str, sql: str) -> int:
    """count runs a one-number query on a fresh connection (safe across outages)."""
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(sql).fetchone()
    return int(row[0]) if row else 0


def outcomes(url: str) -> tuple[int, int, int]:
    """outcomes is (readings stored, message ids seen, quarantine rows)."""
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT (SELECT count(*) FROM readings), (SELECT count(*) FROM ingested_messages),"
            " (SELECT count(*) FROM quarantine)"
        ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1]), int(row[2])
