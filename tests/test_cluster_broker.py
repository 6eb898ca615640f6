"""The clustered broker tier: a 3-node NATS cluster with JetStream and its MQTT listener,
read by ingest workers sharing one durable consumer. Faults are injected mid-stream of 20,000
messages; every reading must be stored exactly once."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import psycopg
import pytest

from tests.conftest import enrol
from tests.support.cluster import (
    Fleet,
    NatsCluster,
    device_password,
    ingest_workers,
    nodes_running,
    reading_payload,
    wait_until,
)
from tests.support.services import LOCALHOST

pytestmark = pytest.mark.timeout(300)

DEVICES = 20
PER_DEVICE = 1000  # 20,000 messages


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsCluster]:
    with NatsCluster(tmp_path_factory.mktemp("nats")) as running:
        yield running


@pytest.fixture
def fresh(cluster: NatsCluster) -> NatsCluster:
    """fresh is the shared cluster with every node up and no consumer or backlog left over."""
    cluster.reset()
    cluster.create_consumer()
    return cluster


def _devices(db: psycopg.Connection[Any], cluster: NatsCluster, prefix: str) -> list[str]:
    devices = [f"{prefix}-{n:02d}" for n in range(DEVICES)]
    for device in devices:
        enrol(db, device)
        cluster.add_device(device)
    return devices


def _stored(db: psycopg.Connection[Any]) -> tuple[int, int, int]:
    row = db.execute(
        "SELECT count(*), count(DISTINCT (device_id, msg_id)), "
        "(SELECT count(*) FROM quarantine) FROM readings"
    ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1]), int(row[2])


def _assert_exactly_once(db: psycopg.Connection[Any], total: int) -> None:
    wait_until(lambda: _stored(db)[0] >= total, 120, f"{total} readings stored")
    readings, distinct, quarantined = _stored(db)
    reasons = db.execute("SELECT reason, count(*) FROM quarantine GROUP BY 1").fetchall()
    assert (readings, distinct, quarantined) == (total, total, 0), reasons
    messages = db.execute("SELECT count(*) FROM ingested_messages").fetchone()
    assert messages is not None and messages[0] == total


def test_sigkill_of_the_stream_leader_loses_and_doubles_nothing(
    fresh: NatsCluster, db: psycopg.Connection[Any], database_url: str, tmp_path: Path
) -> None:
    devices = _devices(db, fresh, "bk")
    with ingest_workers(fresh, database_url, 2, tmp_path):
        fleet = Fleet(fresh.mqtt_ports, devices, PER_DEVICE).start()
        fleet.wait_acked(5000, 120)
        victim = fresh.stream_leader()
        fresh.kill(victim)
        assert victim not in nodes_running(fresh)
        fleet.join(240)
        _assert_exactly_once(db, DEVICES * PER_DEVICE)
    # A third of the devices were on the killed node: they reconnected elsewhere by themselves.
    assert fleet.reconnects >= DEVICES // 3


def test_sigkill_of_one_ingest_worker_of_three_hands_its_messages_to_the_others(
    fresh: NatsCluster, db: psycopg.Connection[Any], database_url: str, tmp_path: Path
) -> None:
    devices = _devices(db, fresh, "wk")
    with ingest_workers(fresh, database_url, 3, tmp_path) as workers:
        fleet = Fleet(fresh.mqtt_ports, devices, PER_DEVICE).start()
        fleet.wait_acked(6000, 120)
        workers[0].kill()
        fleet.join(240)
        _assert_exactly_once(db, DEVICES * PER_DEVICE)
        wait_until(lambda: fresh.consumer_pending() == (0, 0), 60, "the consumer drained")
    # What the killed worker held unacknowledged was delivered again, to the others.
    assert fresh.consumer_deliveries() > DEVICES * PER_DEVICE


def _connect(port: int, user: str, client_id: str, password: str | None = None) -> mqtt.Client:
    client = mqtt.Client(
        mqtt.CallbackAPIVersion.VERSION2,  # type: ignore[attr-defined]
        client_id=client_id,
        protocol=mqtt.MQTTv311,
    )
    client.username_pw_set(user, password or device_password(user))
    client.connect(LOCALHOST, port, keepalive=10)
    client.loop_start()
    wait_until(client.is_connected, 10, f"{user} connected")
    return client


def test_a_device_publishes_only_its_own_readings_and_reads_nothing(
    fresh: NatsCluster, db: psycopg.Connection[Any], database_url: str, tmp_path: Path
) -> None:
    enrol(db, "perm-a")
    enrol(db, "perm-b")
    fresh.add_device("perm-a")
    fresh.add_device("perm-b")
    received: list[bytes] = []
    with ingest_workers(fresh, database_url, 1, tmp_path):
        a = _connect(fresh.mqtt_ports[0], "perm-a", "perm-a")
        spy = _connect(fresh.mqtt_ports[1], "perm-b", "perm-b-spy")
        spy.on_message = lambda c, u, m: received.append(m.payload)
        spy.subscribe("#", qos=1)
        spy.subscribe("homecare/v1/devices/perm-a/readings", qos=1)
        base = Fleet([], [], 1).base
        # Under another device's id: dropped by the broker (3.1.1 has no refusal in PUBACK).
        a.publish("homecare/v1/devices/perm-b/readings", reading_payload("perm-b", 1, base), 1)
        a.publish("homecare/v1/devices/perm-a/readings", reading_payload("perm-a", 2, base), 1)
        wait_until(lambda: _stored(db)[0] >= 1, 30, "perm-a's reading stored")
        spy.loop_stop()
        a.loop_stop()
    rows = db.execute("SELECT device_id, msg_id FROM readings").fetchall()
    assert rows == [("perm-a", "perm-a-2")]
    assert received == []  # no subscription of a device receives anything


def test_another_devices_client_id_only_takes_the_session_over(
    fresh: NatsCluster, db: psycopg.Connection[Any]
) -> None:
    """The engine cannot bind a client id to a user: a device using another's client id
    disconnects it (and is disconnected in turn when it reconnects); it gains nothing else."""
    fresh.add_device("take-a")
    fresh.add_device("take-b")
    victim = _connect(fresh.mqtt_ports[0], "take-a", "take-a")
    intruder = _connect(fresh.mqtt_ports[1], "take-b", "take-a")
    wait_until(lambda: not victim.is_connected(), 10, "the victim disconnected")
    assert intruder.is_connected()
    intruder.loop_stop()
    victim.loop_stop()


def test_rotation_and_revocation_cut_a_live_device_off(fresh: NatsCluster) -> None:
    fresh.add_device("cut-a")
    live = _connect(fresh.mqtt_ports[2], "cut-a", "cut-a")
    fresh.accounts.put_device("cut-a", "a-new-password-of-enough-length")
    wait_until(lambda: not live.is_connected(), 10, "old password's session cut")
    live.loop_stop()
    renewed = _connect(fresh.mqtt_ports[0], "cut-a", "cut-a", "a-new-password-of-enough-length")
    fresh.accounts.remove_device("cut-a")
    wait_until(lambda: not renewed.is_connected(), 10, "revoked device's session cut")
    renewed.loop_stop()
    refused = mqtt.Client(
        mqtt.CallbackAPIVersion.VERSION2,  # type: ignore[attr-defined]
        client_id="cut-a",
        protocol=mqtt.MQTTv311,
    )
    refused.username_pw_set("cut-a", "a-new-password-of-enough-length")
    refused.connect(LOCALHOST, fresh.mqtt_ports[1])
    for _ in range(30):
        refused.loop(0.1)
    assert not refused.is_connected()
