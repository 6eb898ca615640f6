"""The database tier: a Patroni primary and synchronous standby behind a multi-host URL.
The primary is SIGKILLed (Patroni and PostgreSQL, as a machine dies) while ingest, rules and
alerts workers run; nothing acknowledged is lost or doubled and every worker recovers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest

from homecare import store
from homecare.ingest import Delivery, ParseLimits, parse_message, write_batch
from tests.conftest import enrol
from tests.support.cluster import (
    EtcdCluster,
    Fleet,
    NatsCluster,
    PatroniCluster,
    ingest_workers,
    wait_until,
)

pytestmark = pytest.mark.timeout(300)

DEVICES = 20
PER_DEVICE = 1000  # 20,000 messages
FAILOVER_BOUND_S = 30.0  # measured about 10 s (ttl 10, loop_wait 2); see the HA docs


@pytest.fixture(scope="module")
def tiers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[NatsCluster, PatroniCluster]]:
    etcd = EtcdCluster()
    etcd.start()
    patroni = PatroniCluster(etcd)
    try:
        patroni.start()
        with NatsCluster(tmp_path_factory.mktemp("nats")) as nats_cluster:
            yield nats_cluster, patroni
    finally:
        patroni.stop()
        etcd.stop()


@pytest.fixture
def fresh(tiers: tuple[NatsCluster, PatroniCluster]) -> tuple[NatsCluster, PatroniCluster]:
    nats_cluster, patroni = tiers
    patroni.start()  # a node killed by an earlier test rejoins as the synchronous standby
    nats_cluster.reset()
    nats_cluster.create_consumer()
    return nats_cluster, patroni


def _migrated(patroni: PatroniCluster, name: str) -> str:
    url = patroni.create_database(name)
    with store.connect(url, autocommit=True) as conn:
        store.migrate(conn, "postgres")
    return url


def _read_write_after(patroni: PatroniCluster, killed_at: float) -> float:
    """_read_write_after waits for a primary to accept a write; returns seconds since the kill."""
    while True:
        try:
            with psycopg.connect(patroni.url("postgres"), connect_timeout=1) as conn:
                conn.execute("CREATE TEMP TABLE probe (x int)")
                return time.monotonic() - killed_at
        except psycopg.OperationalError:
            if time.monotonic() - killed_at > 120:
                raise
            time.sleep(0.1)


def _count(url: str, query: str) -> int:
    with psycopg.connect(url, connect_timeout=2) as conn:
        row = conn.execute(query).fetchone()
        assert row is not None
        return int(row[0])


def test_primary_sigkill_mid_stream_loses_and_doubles_nothing(
    fresh: tuple[NatsCluster, PatroniCluster], tmp_path: Path
) -> None:
    nats_cluster, patroni = fresh
    url = _migrated(patroni, "ha_ingest")
    devices = [f"fo-{n:02d}" for n in range(DEVICES)]
    with psycopg.connect(url, autocommit=True) as conn:
        for device in devices:
            enrol(conn, device)
            nats_cluster.add_device(device)
    with ingest_workers(nats_cluster, url, 2, tmp_path) as workers:
        fleet = Fleet(nats_cluster.mqtt_ports, devices, PER_DEVICE).start()
        fleet.wait_acked(5000, 120)
        primary = patroni.leader()
        assert primary is not None
        killed_at = time.monotonic()
        patroni.kill(primary)
        failover_s = _read_write_after(patroni, killed_at)
        stored_at_failover = _count(url, "SELECT count(*) FROM readings")
        fleet.join(240)
        total = DEVICES * PER_DEVICE
        wait_until(lambda: _count(url, "SELECT count(*) FROM readings") >= total, 180, "all stored")
        assert all(worker.process.poll() is None for worker in workers)  # recovered in place
    print(f"failover: a primary accepted writes {failover_s:.1f} s after the SIGKILL")
    assert failover_s < FAILOVER_BOUND_S
    assert stored_at_failover < total  # the failover happened mid-stream
    assert _count(url, "SELECT count(*) FROM readings") == total
    assert _count(url, "SELECT count(DISTINCT (device_id, msg_id)) FROM readings") == total
    assert _count(url, "SELECT count(*) FROM ingested_messages") == total
    assert _count(url, "SELECT count(*) FROM quarantine") == 0


# --- rules and alerts -------------------------------------------------------------------------

PATIENTS = 24
DAYS = 18


def _messages(start: datetime) -> list[tuple[str, bytes]]:
    """_messages: heart-failure patients, one message a day (weight, heart rate, SpO2), half of
    them decompensating from day 12 (weight gain, tachycardia, low saturation)."""
    out = []
    for day in range(DAYS):
        at = (start + timedelta(days=day)).isoformat().replace("+00:00", "Z")
        for p in range(PATIENTS):
            sick = p % 2 == 0 and day >= 12
            weight = 80.0 + p * 0.5 + (day % 2) * 0.2 + (0.9 * (day - 11) if sick else 0)
            heart = 70 + (day % 3) + (30 if sick and day >= 14 else 0)
            spo2 = 96 - (8 if sick and day >= 15 else 0)
            readings = [
                {"type": "body_weight", "value": round(weight, 1), "unit": "kg", "time": at},
                {"type": "heart_rate", "value": heart, "unit": "/min", "time": at},
                {"type": "spo2", "value": spo2, "unit": "%", "time": at},
            ]
            device = f"ra-{p:02d}"
            body = json.dumps({"msg_id": f"{device}-{day}", "readings": readings}).encode()
            out.append((device, body))
    return out


def _feed(url: str, messages: list[tuple[str, bytes]], on_half: Any = None) -> None:
    """_feed writes the messages through the ingest's parse and write path in batches of 24,
    retrying a batch across a failover (msg_id de-duplication makes a retry harmless)."""
    limits = ParseLimits(max_age=timedelta(days=400))
    batches = [messages[i : i + PATIENTS] for i in range(0, len(messages), PATIENTS)]
    for n, batch in enumerate(batches):
        if on_half is not None and n == len(batches) // 2:
            on_half()
        while True:
            try:
                with psycopg.connect(url, autocommit=True, connect_timeout=2) as conn:
                    now = datetime.now(UTC)
                    parsed = [
                        parse_message(
                            Delivery(f"homecare/v1/devices/{d}/readings", body, now), limits
                        )
                        for d, body in batch
                    ]
                    write_batch(conn, parsed)
                break
            except psycopg.OperationalError:
                time.sleep(0.2)
        time.sleep(0.15)


def _workers(url: str, kinds: list[str], log_dir: Path) -> list[subprocess.Popen[bytes]]:
    env = {**os.environ, "HOMECARE_DATABASE_URL": url, "HOMECARE_RULES_POLL_S": "0.2"}
    processes = []
    for n, kind in enumerate(kinds):
        with open(log_dir / f"{kind}-{n}.log", "ab") as log:
            processes.append(
                subprocess.Popen(
                    [sys.executable, "-m", "homecare", kind],
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            )
    return processes


def _wait_running(log_dir: Path) -> None:
    """_wait_running waits until every worker logging to ``log_dir`` is connected and running."""

    def running() -> bool:
        logs = [path.read_text() for path in log_dir.glob("*.log")]
        return all("worker running" in log for log in logs)

    wait_until(running, 60, "workers running")


def _outcome(url: str) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """_outcome is (current findings, open alerts), by device rather than patient id."""
    with psycopg.connect(url, connect_timeout=2) as conn:
        findings = conn.execute(
            "SELECT a.device_id, f.rule_id, f.state, f.severity, f.evidence_time"
            " FROM findings f JOIN device_assignments a USING (patient_id)"
            " WHERE f.retracted_at IS NULL ORDER BY 1, 2, 5, 3"
        ).fetchall()
        alerts = conn.execute(
            "SELECT a.device_id, x.rule_id, x.severity, x.condition, x.evidence_time"
            " FROM alerts x JOIN device_assignments a USING (patient_id)"
            " WHERE x.status = 'open' ORDER BY 1, 2"
        ).fetchall()
    return findings, alerts


def _settled(url: str) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """_settled waits until the outboxes are empty and the outcome stops changing."""
    last: Any = None
    stable_since = time.monotonic()
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            pending = _count(
                url,
                "SELECT (SELECT count(*) FROM reading_changes)"
                " + (SELECT count(*) FROM alert_inbox)",
            )
            outcome = _outcome(url)
        except psycopg.OperationalError:
            time.sleep(0.5)
            continue
        if pending or outcome != last:
            last, stable_since = outcome, time.monotonic()
        elif time.monotonic() - stable_since > 3:
            return outcome
        time.sleep(0.3)
    raise AssertionError("rules and alerts did not settle")


def _enrol_all(url: str, start: datetime) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        for p in range(PATIENTS):
            enrol(conn, f"ra-{p:02d}", since=start - timedelta(days=1), programs=("heart_failure",))


def test_two_rules_and_two_alerts_workers_through_a_failover_equal_one_clean_run(
    fresh: tuple[NatsCluster, PatroniCluster], database_url: str, tmp_path: Path
) -> None:
    _, patroni = fresh
    start = (datetime.now(UTC) - timedelta(days=DAYS + 1)).replace(
        hour=8, minute=0, second=0, microsecond=0
    )
    messages = _messages(start)

    clean_dir = tmp_path / "clean"
    clean_dir.mkdir()
    _enrol_all(database_url, start)
    clean = _workers(database_url, ["rules", "alerts"], clean_dir)
    try:
        _wait_running(clean_dir)
        _feed(database_url, messages)
        expected = _settled(database_url)
    finally:
        for process in clean:
            process.terminate()
            process.wait(15)

    url = _migrated(patroni, "ha_rules")
    _enrol_all(url, start)
    ha_dir = tmp_path / "ha"
    ha_dir.mkdir()
    workers = _workers(url, ["rules", "rules", "alerts", "alerts"], ha_dir)
    try:
        killed: list[str] = []

        def fail_over() -> None:
            primary = patroni.leader()
            assert primary is not None
            assert _count(url, "SELECT count(*) FROM findings") > 0  # mid-work
            patroni.kill(primary)
            killed.append(primary)

        _wait_running(ha_dir)
        _feed(url, messages, on_half=fail_over)
        got = _settled(url)
        assert killed and patroni.leader() not in (None, killed[0])
        assert all(process.poll() is None for process in workers)  # each recovered in place
        logs = [path.read_text() for path in sorted(ha_dir.glob("*.log"))]
        assert all("pass failed; retrying" in log for log in logs)  # each saw the failover
    finally:
        for process in workers:
            process.terminate()
            process.wait(15)

    findings, alerts = expected
    assert findings and alerts  # the stream does produce findings and alerts
    assert got == expected
