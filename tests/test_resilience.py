"""Failures in the middle of a stream: a killed worker, a database outage, a broker restart.

Each test publishes a known stream, breaks something real while it flows, and then checks the
only thing that matters: every reading stored exactly once, nothing quarantined, and the worker
recovered without help.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from homecare import store
from homecare.devices import BrokerAddress, DevicePublisher, PublishReport, TrafficPlan, generate
from tests.conftest import enrol
from tests.support.mosquitto import PrivateMosquitto
from tests.support.pipeline import (
    INGEST_PASSWORD,
    INGEST_USER,
    count,
    device_password,
    ingest_config,
    outcomes,
    running_worker,
    wait_for,
)
from tests.support.postgres import PrivatePostgres
from tests.support.services import children_of

pytestmark = pytest.mark.slow

DEVICES = tuple(f"cuff-{i}" for i in range(5))
MESSAGES = 3000
READINGS = 3 * MESSAGES
CRASH_CLIENT_ID = "crash-test-worker"


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[PrivateMosquitto]:
    users = {INGEST_USER: INGEST_PASSWORD} | {d: device_password(d) for d in DEVICES}
    mosquitto = PrivateMosquitto(tmp_path / "mosquitto", users)
    mosquitto.start()
    yield mosquitto
    mosquitto.stop()


def enrol_devices(database_url: str) -> None:
    with store.connect(database_url, autocommit=True) as conn:
        for device in DEVICES:
            enrol(conn, device, since=datetime.now(UTC) - timedelta(days=1))


class Stream:
    """Stream publishes the plan in a background thread, paced so a failure lands mid-way."""

    def __init__(self, broker: PrivateMosquitto, rate_per_s: float) -> None:
        plan = TrafficPlan(DEVICES, MESSAGES, start=datetime.now(UTC) - timedelta(hours=2), seed=11)
        address = BrokerAddress("127.0.0.1", broker.port, "5", password_for=device_password)
        self._publisher = DevicePublisher(address, DEVICES)
        self._publisher.connect()
        self.report: PublishReport | None = None
        self._thread = threading.Thread(
            target=lambda: setattr(
                self, "report", self._publisher.publish(generate(plan), rate_per_s)
            )
        )
        self._thread.start()

    def finish(self) -> PublishReport:
        self._thread.join(timeout=180)
        self._publisher.close()
        assert self.report is not None, "publishing did not finish"
        return self.report


def ingest_process(database_url: str, broker: PrivateMosquitto) -> subprocess.Popen[bytes]:
    env = os.environ | {
        "HOMECARE_DATABASE_URL": database_url,
        "HOMECARE_MQTT_URL": broker.url_for(INGEST_USER),
        "HOMECARE_MQTT_CLIENT_ID": CRASH_CLIENT_ID,
        "HOMECARE_MQTT_RECEIVE_MAXIMUM": "300",
        "HOMECARE_INGEST_BATCH_MAX_MESSAGES": "100",
        "HOMECARE_LOG_LEVEL": "WARNING",
    }
    return subprocess.Popen(
        [sys.executable, "-m", "homecare", "ingest"], env=env, stderr=subprocess.PIPE
    )


def test_sigkill_mid_stream_then_restart_stores_every_reading_once(
    broker: PrivateMosquitto, database_url: str
) -> None:
    enrol_devices(database_url)
    # The worker's persistent session exists before the stream starts, as in production:
    # messages published before any subscription exists are not anybody's to lose.
    with running_worker(ingest_config(database_url, broker.port, client_id=CRASH_CLIENT_ID)):
        pass
    worker = ingest_process(database_url, broker)
    stream = Stream(broker, rate_per_s=1500)
    wait_for(lambda: count(database_url, "SELECT count(*) FROM readings") > READINGS // 4)
    orphans = children_of(worker.pid)
    # The commit process (and multiprocessing's resource tracker, which spawn starts).
    assert orphans, "the worker writes through a commit process"
    worker.send_signal(signal.SIGKILL)
    worker.communicate(timeout=10)
    killed_at = count(database_url, "SELECT count(*) FROM readings")
    assert killed_at < READINGS, "the kill should land in the middle of the stream"
    # Its children must not outlive it (the commit process would hold a database connection).
    wait_for(lambda: not any(Path(f"/proc/{pid}").exists() for pid in orphans), timeout_s=10)

    restarted = ingest_process(database_url, broker)
    try:
        stream.finish()
        wait_for(lambda: outcomes(database_url)[0] >= READINGS, timeout_s=60)
    finally:
        restarted.send_signal(signal.SIGTERM)
        try:
            _, stderr = restarted.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            # A failure all the same, but not one that leaves a worker running (and its pipe
            # open) into the tests after this one.
            restarted.kill()
            restarted.communicate()
            raise
    assert restarted.returncode == 0, stderr.decode()[-2000:]
    assert outcomes(database_url) == (READINGS, MESSAGES, 0)


def test_commit_process_killed_mid_stream_is_replaced_and_stores_every_reading_once(
    broker: PrivateMosquitto, database_url: str
) -> None:
    enrol_devices(database_url)
    config = ingest_config(database_url, broker.port, batch_max_messages=100)
    with running_worker(config) as worker:
        stream = Stream(broker, rate_per_s=1500)
        wait_for(lambda: count(database_url, "SELECT count(*) FROM readings") > READINGS // 4)
        first = worker.commit_pid
        assert first is not None
        os.kill(first, signal.SIGKILL)
        assert count(database_url, "SELECT count(*) FROM readings") < READINGS
        stream.finish()
        wait_for(lambda: outcomes(database_url)[0] >= READINGS, timeout_s=60)
        assert worker.commit_pid not in (None, first)
        assert worker.metrics.snapshot()["homecare_ingest_commit_restarts_total"] >= 1
    assert outcomes(database_url) == (READINGS, MESSAGES, 0)


def test_database_outage_mid_stream_loses_and_doubles_nothing(
    broker: PrivateMosquitto, tmp_path: Path
) -> None:
    postgres = PrivatePostgres(tmp_path / "pg")
    postgres.start()
    try:
        database_url = postgres.create_database("homecare")
        with store.connect(database_url, autocommit=True) as conn:
            store.migrate(conn, "postgres")
        enrol_devices(database_url)
        with running_worker(ingest_config(database_url, broker.port)) as worker:
            stream = Stream(broker, rate_per_s=1000)
            wait_for(lambda: count(database_url, "SELECT count(*) FROM readings") > READINGS // 5)
            postgres.kill()  # a crash, not a polite shutdown
            threading.Event().wait(3)
            postgres.start()
            stream.finish()
            wait_for(lambda: outcomes(database_url)[0] >= READINGS, timeout_s=90)
            retries = worker.metrics.snapshot()["homecare_ingest_db_retries_total"]
        assert outcomes(database_url) == (READINGS, MESSAGES, 0)
        assert retries > 0, "the outage should have been seen by the worker"
    finally:
        postgres.stop()


def test_broker_restart_mid_stream_loses_and_doubles_nothing(
    broker: PrivateMosquitto, database_url: str
) -> None:
    enrol_devices(database_url)
    with running_worker(ingest_config(database_url, broker.port)) as worker:
        stream = Stream(broker, rate_per_s=1000)
        wait_for(lambda: count(database_url, "SELECT count(*) FROM readings") > READINGS // 5)
        broker.restart()
        stream.finish()
        wait_for(lambda: outcomes(database_url)[0] >= READINGS, timeout_s=90)
        connects = worker.metrics.snapshot()["homecare_ingest_broker_connects_total"]
    assert outcomes(database_url) == (READINGS, MESSAGES, 0)
    assert connects >= 2, "the worker should have reconnected by itself"
