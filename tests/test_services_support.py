"""The private service helpers (tests/support/) really isolate, secure and persist.

These tests also pin down how the shipped broker config (deploy/mosquitto/) behaves with the
installed mosquitto: authentication, the per-device ACL, shared subscriptions for the ingest user,
and queued messages surviving a restart.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import psycopg
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from tests.support.mosquitto import PrivateMosquitto, derive_mosquitto_options
from tests.support.postgres import PrivatePostgres, find_postgres_bindir
from tests.support.services import find_executable, free_port, port_is_open, wait_for_port

USERS = {"dev-1": "pw1", "homecare-ingest": "pwi"}
READINGS_SHARED = "$share/ingest/homecare/v1/devices/+/readings"
TIMEOUT = 5.0
NOT_AUTHORIZED = 0x87


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[PrivateMosquitto]:
    # No skip when a binary is missing: scripts/test installs Mosquitto and PostgreSQL on every
    # machine it runs on, so a missing one is a broken setup and must fail (FileNotFoundError
    # with the install hint).
    find_executable("mosquitto")
    with PrivateMosquitto(tmp_path / "mosquitto", USERS) as mosquitto:
        yield mosquitto


@pytest.fixture
def postgres(tmp_path: Path) -> Iterator[PrivatePostgres]:
    find_postgres_bindir()
    with PrivatePostgres(tmp_path / "postgres") as pg:
        yield pg


# --- a small synchronous wrapper around paho's callbacks ------------------------------------------


class Client:
    """An MQTT 5 client whose CONNACK, SUBACK, PUBACK and messages can be awaited."""

    def __init__(self, broker: PrivateMosquitto, client_id: str) -> None:
        self.broker = broker
        self.mqtt = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5
        )
        self.connected = threading.Event()
        self.connack: ReasonCode | None = None
        self.session_present: bool | None = None
        self.subscribed = threading.Event()
        self.messages: list[tuple[str, bytes]] = []
        self.message_arrived = threading.Condition()
        self.pubacks: dict[int, ReasonCode] = {}
        self.mqtt.on_connect = self._on_connect
        self.mqtt.on_subscribe = self._on_subscribe
        self.mqtt.on_message = self._on_message
        self.mqtt.on_publish = self._on_publish

    def _on_connect(
        self, client: mqtt.Client, userdata: Any, flags: Any, rc: ReasonCode, props: Any
    ) -> None:
        self.connack = rc
        self.session_present = bool(flags.session_present)
        self.connected.set()

    def _on_subscribe(
        self, client: mqtt.Client, userdata: Any, mid: int, rcs: list[ReasonCode], props: Any
    ) -> None:
        self.subscribed.set()

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        with self.message_arrived:
            self.messages.append((msg.topic, bytes(msg.payload)))
            self.message_arrived.notify_all()

    def _on_publish(
        self, client: mqtt.Client, userdata: Any, mid: int, rc: ReasonCode, props: Any
    ) -> None:
        self.pubacks[mid] = rc

    def connect(
        self,
        username: str | None,
        password: str | None = None,
        *,
        session_expiry: int | None = None,
    ) -> ReasonCode:
        if username is not None:
            self.mqtt.username_pw_set(username, password)
        properties = None
        if session_expiry is not None:
            properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
            properties.SessionExpiryInterval = session_expiry
        self.mqtt.connect(
            "127.0.0.1",
            self.broker.port,
            clean_start=session_expiry is None,
            properties=properties,
        )
        self.mqtt.loop_start()
        assert self.connected.wait(TIMEOUT), "no CONNACK"
        assert self.connack is not None
        return self.connack

    def subscribe(self, topic: str) -> None:
        self.mqtt.subscribe(topic, qos=1)
        assert self.subscribed.wait(TIMEOUT), "no SUBACK"

    def publish(self, topic: str, payload: bytes) -> ReasonCode:
        info = self.mqtt.publish(topic, payload, qos=1)
        info.wait_for_publish(TIMEOUT)
        return self.pubacks[info.mid]

    def wait_for_messages(self, count: int, timeout: float = TIMEOUT) -> list[tuple[str, bytes]]:
        with self.message_arrived:
            self.message_arrived.wait_for(lambda: len(self.messages) >= count, timeout)
            return list(self.messages)

    def close(self) -> None:
        if self.mqtt.is_connected():
            self.mqtt.disconnect()
        self.mqtt.loop_stop()


@contextmanager
def client(broker: PrivateMosquitto, client_id: str | None = None) -> Iterator[Client]:
    c = Client(broker, client_id or f"test-{uuid.uuid4().hex[:8]}")
    try:
        yield c
    finally:
        c.close()


# --- helpers ------------------------------------------------------------------------------------


def test_free_port_and_wait_for_port() -> None:
    port = free_port()
    assert not port_is_open("127.0.0.1", port)
    with pytest.raises(TimeoutError):
        wait_for_port("127.0.0.1", port, timeout=0.2)


# --- Mosquitto --------------------------------------------------------------------------------


def test_mosquitto_config_is_derived_from_deploy_config(broker: PrivateMosquitto) -> None:
    config = broker.config_path.read_text().splitlines()
    assert "allow_anonymous false" in config
    assert "persistence true" in config
    assert f"listener {broker.port} 127.0.0.1" in config
    assert f"listener {broker.device_port} 127.0.0.1" in config
    assert config[config.index(f"listener {broker.device_port} 127.0.0.1") + 1] == (
        "use_username_as_clientid true"
    )
    assert "use_username_as_clientid true" not in derive_mosquitto_options()
    acl = broker.acl_file.read_text().splitlines()
    assert "pattern write homecare/v1/devices/%u/readings" in acl
    assert "pattern write homecare/v1/devices/%u/status" in acl
    assert broker.url_for("dev-1") == f"mqtt://dev-1:pw1@127.0.0.1:{broker.port}"
    assert (
        broker.url_for("dev-1", device=True) == f"mqtt://dev-1:pw1@127.0.0.1:{broker.device_port}"
    )


def test_mosquitto_refuses_anonymous_and_wrong_password(broker: PrivateMosquitto) -> None:
    # mosquitto 2.0 answers all three with CONNACK "Not authorized" (not 0x86 "Bad user name or
    # password"), so a client cannot probe which usernames exist.
    with client(broker) as anonymous:
        assert anonymous.connect(None) == NOT_AUTHORIZED
    with client(broker) as wrong:
        assert wrong.connect("dev-1", "not-the-password") == NOT_AUTHORIZED
    with client(broker) as unknown:
        assert unknown.connect("dev-9", "pw1") == NOT_AUTHORIZED
    with client(broker, "dev-1") as device:
        assert device.connect("dev-1", "pw1") == 0


def test_device_publishes_own_topic_to_ingest_shared_subscription(
    broker: PrivateMosquitto,
) -> None:
    with client(broker, "ingest-1") as ingest, client(broker, "dev-1") as device:
        assert ingest.connect("homecare-ingest", "pwi") == 0
        # mosquitto 2 checks read access per delivered message against the real topic, so the
        # $share/ingest/ prefix does not get in the way of the ACL "topic read .../+/readings".
        ingest.subscribe(READINGS_SHARED)
        assert device.connect("dev-1", "pw1") == 0

        assert device.publish("homecare/v1/devices/dev-1/readings", b"hr=72") == 0
        assert ingest.wait_for_messages(1) == [("homecare/v1/devices/dev-1/readings", b"hr=72")]


def test_device_cannot_publish_as_another_device(broker: PrivateMosquitto) -> None:
    with client(broker, "ingest-1") as ingest, client(broker, "dev-1") as device:
        assert ingest.connect("homecare-ingest", "pwi") == 0
        ingest.subscribe(READINGS_SHARED)
        assert device.connect("dev-1", "pw1") == 0

        # MQTT 5: the broker completes the QoS 1 flow with "Not authorized" and drops the message
        # (an MQTT 3.1.1 publisher would get a plain PUBACK: the drop is silent).
        assert device.publish("homecare/v1/devices/dev-2/readings", b"forged") == NOT_AUTHORIZED
        assert ingest.wait_for_messages(1, timeout=1.0) == []

        # The connection is still usable and its own topic still works.
        assert device.publish("homecare/v1/devices/dev-1/readings", b"real") == 0
        assert ingest.wait_for_messages(1) == [("homecare/v1/devices/dev-1/readings", b"real")]


def test_ingest_user_cannot_publish_readings(broker: PrivateMosquitto) -> None:
    with client(broker, "ingest-1") as ingest:
        assert ingest.connect("homecare-ingest", "pwi") == 0
        topic = "homecare/v1/devices/homecare-ingest/readings"
        assert ingest.publish(topic, b"x") == NOT_AUTHORIZED


def _queue_for_offline_session(broker: PrivateMosquitto, payloads: list[bytes]) -> None:
    """Create a persistent ingest session with a shared subscription, take it offline, and
    publish ``payloads`` so the broker has to queue them."""
    with client(broker, "ingest-persistent") as ingest:
        assert ingest.connect("homecare-ingest", "pwi", session_expiry=3600) == 0
        ingest.subscribe(READINGS_SHARED)
    with client(broker, "dev-1") as device:
        assert device.connect("dev-1", "pw1") == 0
        for payload in payloads:
            assert device.publish("homecare/v1/devices/dev-1/readings", payload) == 0


def test_queued_messages_survive_clean_restart(broker: PrivateMosquitto) -> None:
    payloads = [f"reading-{i}".encode() for i in range(5)]
    _queue_for_offline_session(broker, payloads)
    port = broker.port

    broker.restart()
    assert broker.port == port

    with client(broker, "ingest-persistent") as ingest:
        assert ingest.connect("homecare-ingest", "pwi", session_expiry=3600) == 0
        assert ingest.session_present is True
        received = ingest.wait_for_messages(len(payloads))
    assert sorted(payload for _, payload in received) == sorted(payloads)


def test_killed_broker_loses_what_was_not_saved(broker: PrivateMosquitto) -> None:
    # The documented cost of autosave_interval: a crash loses state since the last save.
    _queue_for_offline_session(broker, [b"unsaved"])
    broker.kill()
    assert not broker.is_running
    broker.start()

    with client(broker, "ingest-persistent") as ingest:
        assert ingest.connect("homecare-ingest", "pwi", session_expiry=3600) == 0
        assert ingest.session_present is False
        assert ingest.wait_for_messages(1, timeout=1.0) == []


# --- PostgreSQL -------------------------------------------------------------------------------


def test_postgres_data_survives_kill_and_restart(postgres: PrivatePostgres) -> None:
    url = postgres.create_database("homecare_services_test")
    with psycopg.connect(url) as conn:
        conn.execute("CREATE TABLE vitals (device text, hr int)")
        conn.execute("INSERT INTO vitals VALUES ('dev-1', 72)")

    port, pid = postgres.port, postgres.pid
    postgres.kill()
    assert not postgres.is_running
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(url, connect_timeout=2).close()

    postgres.restart()
    assert postgres.port == port
    assert postgres.pid != pid
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT device, hr FROM vitals").fetchall() == [("dev-1", 72)]
    assert "database system was interrupted" in postgres.log_text()


def test_postgres_stop_and_start(postgres: PrivatePostgres) -> None:
    postgres.stop()
    assert not postgres.is_running
    postgres.start()
    with psycopg.connect(postgres.url()) as conn:
        assert conn.execute("SHOW fsync").fetchone() == ("off",)
        assert conn.execute("SELECT current_user").fetchone() == ("postgres",)
