"""What a device holding valid credentials can do to the broker, against the real Mosquitto.

The broker is the shipped config (two listeners, dynamic-security plugin, state rendered from
the database), the ingest the real worker. A device is a hostile party here: it may present any
client id, clean start or not, and publish anything under any topic.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import psycopg
import pytest
from paho.mqtt.enums import MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from homecare.broker.credentials import issue_device_credentials
from homecare.broker.hashing import hash_password, parse_hash
from homecare.ingest import IngestConfig, MqttConfig
from tests.support.dynsec_broker import (
    NOT_AUTHORIZED,
    Broker,
    connect,
    dynsec_broker,
    enrol,
    reading,
    stored,
    topic,
)
from tests.support.mosquitto import PrivateMosquitto
from tests.support.pipeline import running_worker, wait_for

WORKER_ID = "homecare-ingest-w1"
AUDITOR, AUDITOR_PASSWORD = "auditor", "auditor-pw"


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    made = dynsec_broker(tmp_path / "mosquitto")
    with made.mosquitto:
        yield made


def worker_config(database_url: str, broker: Broker) -> IngestConfig:
    """A production-like worker: stable client id, persistent session, shared subscription."""
    return IngestConfig(
        database_url=database_url,
        mqtt=MqttConfig(
            host="127.0.0.1",
            port=broker.mosquitto.port,
            username="homecare-ingest",
            password=broker.ingest_password,
            tls=False,
            client_id=WORKER_ID,
            shared_group="ingest",
            session_expiry_s=3600,
        ),
        batch_max_wait_s=0.02,
        connect_timeout_s=10.0,
    )


def raw_connect(
    port: int,
    username: str,
    password: str,
    client_id: str,
    protocol: MQTTProtocolVersion = mqtt.MQTTv5,
) -> int:
    """One CONNECT with a clean start (MQTT 5: session expiry 0; 3.1.1: clean session) and the
    given client id; returns the CONNACK reason code (0 = accepted)."""
    answer: list[int] = []
    done = threading.Event()
    client = mqtt.Client(
        mqtt.CallbackAPIVersion.VERSION2,  # type: ignore[attr-defined]
        client_id=client_id,
        protocol=protocol,
        clean_session=True if protocol != mqtt.MQTTv5 else None,
    )
    client.username_pw_set(username, password)

    def on_connect(c: mqtt.Client, u: object, f: object, reason: ReasonCode, p: object) -> None:
        answer.append(reason.value)
        done.set()

    client.on_connect = on_connect
    client.on_disconnect = lambda *args: done.set()
    if protocol == mqtt.MQTTv5:
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = 0
        client.connect("127.0.0.1", port, clean_start=True, properties=props)
    else:
        client.connect("127.0.0.1", port)
    client.loop_start()
    try:
        assert done.wait(5), "no CONNACK"
        time.sleep(0.2)  # stay connected a moment: a takeover would have happened by now
    finally:
        client.disconnect()
        client.loop_stop()
    return answer[0] if answer else -1


# --- client ids -----------------------------------------------------------------------------------


def test_a_device_presenting_the_ingest_client_id_leaves_the_ingest_session_and_backlog_alone(
    broker: Broker, database_url: str, db: psycopg.Connection[Any]
) -> None:
    cuff = issue_device_credentials(db, "cuff-1", None, broker.accounts)
    enrol(db, cuff)
    rogue = issue_device_credentials(db, "rogue-1", None, broker.accounts)
    mosquitto = broker.mosquitto

    # The worker subscribes once, then goes away: its persistent session queues what comes in.
    with running_worker(worker_config(database_url, broker)):
        pass
    device = connect(broker, cuff.mqtt_username, cuff.mqtt_password)
    try:
        for i in range(200):
            assert not device.publish(topic("cuff-1"), reading("cuff-1", 100 + i % 60)).is_failure
    finally:
        device.close()

    # The attack, in every form: the worker's client id with a clean start, MQTT 5 and 3.1.1,
    # on the device listener (where the broker replaces the id by the device's username) and on
    # the service listener (where the device's account is bound to its own id).
    answers = {
        (port, protocol): raw_connect(
            port, rogue.mqtt_username, rogue.mqtt_password, WORKER_ID, protocol
        )
        for port in (mosquitto.device_port, mosquitto.port)
        for protocol in (mqtt.MQTTv5, mqtt.MQTTv311)
    }

    with running_worker(worker_config(database_url, broker)):
        wait_for(lambda: stored(database_url, "cuff-1") == 200, 30, "all 200 queued readings")
    assert stored(database_url, "cuff-1") == 200
    # A device may send any client id to the device listener; the service listener refuses it.
    refused = (NOT_AUTHORIZED, mqtt.CONNACK_REFUSED_NOT_AUTHORIZED)
    assert answers[mosquitto.device_port, mqtt.MQTTv5] == 0
    assert answers[mosquitto.device_port, mqtt.MQTTv311] == 0
    assert answers[mosquitto.port, mqtt.MQTTv5] in refused
    assert answers[mosquitto.port, mqtt.MQTTv311] in refused


def test_a_device_keeps_working_with_any_client_id_on_the_device_listener(
    broker: Broker, database_url: str, db: psycopg.Connection[Any]
) -> None:
    """The MQTT contract leaves the client id free: empty (clean start), random, another
    device's or a service's id all connect, and publish as the device itself."""
    cuff = issue_device_credentials(db, "cuff-2", None, broker.accounts)
    enrol(db, cuff)
    other = issue_device_credentials(db, "cuff-3", None, broker.accounts)
    port = broker.mosquitto.device_port
    for client_id in ("", "anything-at-all", "cuff-3", WORKER_ID, "homecare-admin"):
        for protocol in (mqtt.MQTTv5, mqtt.MQTTv311):
            assert (
                raw_connect(port, cuff.mqtt_username, cuff.mqtt_password, client_id, protocol) == 0
            )
    # ...while on the service listener a device is held to its own id.
    service = broker.mosquitto.port
    assert raw_connect(service, cuff.mqtt_username, cuff.mqtt_password, "cuff-2") == 0
    assert raw_connect(service, cuff.mqtt_username, cuff.mqtt_password, "cuff-3") == NOT_AUTHORIZED
    assert raw_connect(service, other.mqtt_username, other.mqtt_password, "") == NOT_AUTHORIZED

    with running_worker(worker_config(database_url, broker)):
        device = connect(broker, cuff.mqtt_username, cuff.mqtt_password)
        try:
            assert not device.publish(topic("cuff-2"), reading("cuff-2")).is_failure
        finally:
            device.close()
        wait_for(lambda: stored(database_url, "cuff-2") == 1, 10, "the reading stored")


def test_a_device_cannot_disconnect_a_running_ingest_worker(
    broker: Broker,
    database_url: str,
    db: psycopg.Connection[Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    rogue = issue_device_credentials(db, "rogue-2", None, broker.accounts)
    mosquitto = broker.mosquitto
    with running_worker(worker_config(database_url, broker)):
        caplog.clear()
        for port in (mosquitto.device_port, mosquitto.port):
            raw_connect(port, rogue.mqtt_username, rogue.mqtt_password, WORKER_ID)
        time.sleep(0.5)
    # A takeover closes the worker's connection, which it logs before reconnecting.
    lost = [r for r in caplog.records if "connection lost" in r.getMessage()]
    assert lost == []


# --- retained messages ----------------------------------------------------------------------------


@pytest.fixture
def audited_broker(tmp_path: Path) -> Iterator[Broker]:
    """The broker plus an auditor account that may read everything under homecare/v1/devices/
    (which no production account may): to see what the broker retains."""
    made = dynsec_broker(tmp_path / "mosquitto")
    state_file = made.mosquitto.dynsec_file
    assert state_file is not None
    state = json.loads(state_file.read_text())
    state["roles"].append(
        {
            "rolename": "auditor",
            "acls": [
                {"acltype": kind, "topic": "homecare/v1/devices/#", "allow": True, "priority": 0}
                for kind in ("subscribePattern", "publishClientReceive")
            ],
        }
    )
    state["clients"].append(
        {
            "username": AUDITOR,
            "roles": [{"rolename": "auditor"}],
            **parse_hash(hash_password(AUDITOR_PASSWORD)).dynsec_fields(),
        }
    )
    state_file.write_text(json.dumps(state))
    with made.mosquitto:
        yield made


def retained_topics(mosquitto: PrivateMosquitto) -> dict[str, int]:
    """Every retained message under homecare/v1/devices/: topic -> payload size."""
    found: dict[str, int] = {}
    granted = threading.Event()
    client = mqtt.Client(
        mqtt.CallbackAPIVersion.VERSION2,  # type: ignore[attr-defined]
        client_id="auditor",
        protocol=mqtt.MQTTv5,
    )
    client.username_pw_set(AUDITOR, AUDITOR_PASSWORD)

    def on_message(c: mqtt.Client, u: object, message: mqtt.MQTTMessage) -> None:
        if message.retain:
            found[message.topic] = len(message.payload)

    client.on_message = on_message
    client.on_subscribe = lambda *args: granted.set()
    client.connect("127.0.0.1", mosquitto.port)
    client.loop_start()
    try:
        client.subscribe("homecare/v1/devices/#", qos=1)
        assert granted.wait(5), "no SUBACK"
        time.sleep(0.5)
    finally:
        client.disconnect()
        client.loop_stop()
    return found


def test_a_device_may_publish_exactly_its_readings_and_status_so_its_retained_store_is_bounded(
    audited_broker: Broker, db: psycopg.Connection[Any]
) -> None:
    cuff = issue_device_credentials(db, "cuff-4", None, audited_broker.accounts)
    base = "homecare/v1/devices/cuff-4"
    blob = b"x" * 250_000
    device = connect(audited_broker, cuff.mqtt_username, cuff.mqtt_password)
    try:
        # The contract's retained status works.
        status = json.dumps({"battery": 0.8, "firmware": "1.2.3"}).encode()
        assert not device.publish(f"{base}/status", status, retain=True).is_failure
        # Anything else under the device's id is refused, retained or not.
        for leaf in ("blob/1", "blob/2", "readings/extra", "status/extra", "other"):
            assert device.publish(f"{base}/{leaf}", blob, retain=True).value == NOT_AUTHORIZED
    finally:
        device.close()
    assert retained_topics(audited_broker.mosquitto) == {f"{base}/status": len(status)}
