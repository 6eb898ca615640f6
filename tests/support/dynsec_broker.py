"""A broker with per-device credentials, and a device's view of it, for tests.

The broker is the production mechanism: Mosquitto with its dynamic-security plugin, its state
rendered by ``broker.sync`` with a fresh admin and ingest account. :class:`Device` is one raw
MQTT 5 connection that records what the broker answered (CONNACK, PUBACK reason codes,
disconnects), because what these tests check is what the broker does.
"""

from __future__ import annotations

import secrets
import threading
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import psycopg
from paho.mqtt.reasoncodes import ReasonCode

from homecare import store
from homecare.broker.credentials import BrokerAccounts, DeviceCredentials
from homecare.broker.dynsec import DynsecAdmin
from homecare.broker.sync import ServiceAccount, render_dynsec_config
from homecare.devices import DeviceMessage, Measurement, encode_message
from homecare.ingest import IngestConfig, MqttConfig
from tests.support.mosquitto import PrivateMosquitto
from tests.support.pipeline import count, wait_for

__all__ = [
    "ADMIN",
    "INGEST",
    "NOT_AUTHORIZED",
    "Broker",
    "Device",
    "connect",
    "dynsec_broker",
    "enrol",
    "ingest_config",
    "reading",
    "stored",
    "topic",
]


ADMIN, INGEST = "homecare-admin", "homecare-ingest"
NOT_AUTHORIZED = 0x87  # the CONNACK, PUBACK and SUBACK reason code for a refusal


@dataclass
class Broker:
    """A dynamic-security broker with its two service accounts' clear passwords."""

    mosquitto: PrivateMosquitto
    admin_password: str
    ingest_password: str
    accounts: BrokerAccounts = field(init=False)

    def __post_init__(self) -> None:
        self.accounts = BrokerAccounts(DynsecAdmin(self.url(ADMIN, self.admin_password)))

    def url(self, user: str, password: str) -> str:
        return f"mqtt://{user}:{password}@127.0.0.1:{self.mosquitto.port}"


def dynsec_broker(
    work_dir: Path, devices: list[tuple[str, str]] | None = None, verbose: bool = False
) -> Broker:
    admin_pw, ingest_pw = secrets.token_urlsafe(16), secrets.token_urlsafe(16)
    config = render_dynsec_config(
        devices or [],
        ServiceAccount.from_password(ADMIN, admin_pw),
        ServiceAccount.from_password(INGEST, ingest_pw),
    )
    mosquitto = PrivateMosquitto(work_dir, {}, dynsec=config, verbose=verbose)
    return Broker(mosquitto, admin_pw, ingest_pw)


class Device:
    """One raw MQTT 5 connection, recording CONNACK, PUBACK reasons and disconnects."""

    def __init__(self, port: int, username: str, password: str, client_id: str | None = None):
        self.connack: ReasonCode | None = None
        self.pubacks: dict[int, ReasonCode] = {}
        self.disconnects: list[str] = []
        self._answered = threading.Event()
        self._client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,  # type: ignore[attr-defined]
            client_id=client_id or f"{username}-{uuid.uuid4().hex[:6]}",
            protocol=mqtt.MQTTv5,
        )
        self._client.username_pw_set(username, password)
        self._client.on_connect = self._on_connect
        self._client.on_publish = self._on_publish
        self._client.on_disconnect = self._on_disconnect
        self._client.connect("127.0.0.1", port)
        self._client.loop_start()
        assert self._answered.wait(5), "no CONNACK"

    def _on_connect(self, c: Any, u: Any, f: Any, reason: ReasonCode, p: Any) -> None:
        self.connack = reason
        self._answered.set()

    def _on_publish(self, c: Any, u: Any, mid: int, reason: ReasonCode, p: Any) -> None:
        self.pubacks[mid] = reason

    def _on_disconnect(self, c: Any, u: Any, f: Any, reason: ReasonCode, p: Any) -> None:
        self.disconnects.append(str(reason))
        self._answered.set()

    @property
    def accepted(self) -> bool:
        return self.connack is not None and not self.connack.is_failure

    def publish(self, topic: str, payload: bytes, *, retain: bool = False) -> ReasonCode:
        """publish at QoS 1 and return the broker's PUBACK reason."""
        mid = self._client.publish(topic, payload, qos=1, retain=retain).mid
        wait_for(lambda: mid in self.pubacks, 5, "PUBACK")
        return self.pubacks[mid]

    def close(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()


def connect(broker: Broker, username: str, password: str) -> Device:
    """connect as a device to the device listener, or as a service account to the service one."""
    service = username in (ADMIN, INGEST)
    return Device(
        broker.mosquitto.port if service else broker.mosquitto.device_port, username, password
    )


def reading(device_id: str, value: float = 120) -> bytes:
    at = datetime.now(UTC) - timedelta(minutes=1)
    return encode_message(
        DeviceMessage(
            device_id, str(uuid.uuid4()), [Measurement("systolic_bp", value, "mm[Hg]", at)]
        )
    )


def topic(device_id: str) -> str:
    return f"homecare/v1/devices/{device_id}/readings"


def ingest_config(database_url: str, broker: Broker) -> IngestConfig:
    """The real worker, logging in as the ingest account through a shared subscription."""
    return IngestConfig(
        database_url=database_url,
        mqtt=MqttConfig(
            host="127.0.0.1",
            port=broker.mosquitto.port,
            username=INGEST,
            password=broker.ingest_password,
            tls=False,
            client_id="ingest-cred-test",
            shared_group="ingest",
            session_expiry_s=60,
        ),
        batch_max_wait_s=0.02,
        connect_timeout_s=10.0,
    )


def enrol(db: psycopg.Connection[Any], creds: DeviceCredentials) -> None:
    patient = store.create_patient(db, display_name="Test patient", programs=["hypertension"])
    store.assign_device(db, creds.device_id, patient, datetime.now(UTC) - timedelta(days=1))


def stored(database_url: str, device_id: str) -> int:
    return count(database_url, f"SELECT count(*) FROM readings WHERE device_id = '{device_id}'")
