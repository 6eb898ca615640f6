"""Publisher: devices speaking MQTT v1 — one connection per device, at a given rate.

Each device connects with its own id as MQTT username (and client id), as real devices do, so
the broker's per-device ACL applies to it. Publishing is QoS 1 and the publisher waits for every
PUBACK before it reports done: a message it counts as sent is one the broker accepted.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import paho.mqtt.client as mqtt

from homecare.devices.traffic import Outgoing

__all__ = ["BrokerAddress", "DevicePublisher", "PublishReport"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BrokerAddress:
    """BrokerAddress says where devices connect and how they authenticate."""

    host: str
    port: int
    protocol: str = "5"
    password_for: Callable[[str], str | None] = field(default=lambda device_id: None)


@dataclass
class PublishReport:
    """PublishReport counts what was handed to the broker, by expected outcome."""

    published: int = 0
    by_expected: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0


class DevicePublisher:
    """DevicePublisher holds one MQTT connection per device and publishes Outgoing messages."""

    def __init__(self, broker: BrokerAddress, device_ids: Iterable[str]) -> None:
        self._broker = broker
        self._clients: dict[str, mqtt.Client] = {}
        self._connected: dict[str, threading.Event] = {}
        self._refused: dict[str, str] = {}
        self._lock = threading.Lock()
        self._acks = 0
        for device_id in device_ids:
            self._clients[device_id] = self._client(device_id)

    def connect(self, timeout_s: float = 20.0) -> None:
        """connect opens every device's connection and waits until all are accepted; a refused
        connection (socket or CONNACK) raises at once, as waiting would not change it."""
        for client in self._clients.values():
            client.connect(self._broker.host, self._broker.port, keepalive=60)
            client.loop_start()
        deadline = time.monotonic() + timeout_s
        for device_id, event in self._connected.items():
            while not event.wait(min(0.1, max(0.0, deadline - time.monotonic()))):
                if device_id in self._refused:
                    raise ConnectionRefusedError(
                        f"broker refused device {device_id}: {self._refused[device_id]}"
                    )
                if time.monotonic() >= deadline:
                    raise TimeoutError(f"device {device_id} not connected to the broker in time")

    def publish(
        self,
        messages: Iterable[Outgoing],
        rate_per_s: float | None = None,
        stop: threading.Event | None = None,
    ) -> PublishReport:
        """publish sends messages (optionally paced) and returns once all are acknowledged.

        ``stop`` ends an endless stream early; what was already published is still awaited.
        """
        report = PublishReport()
        started = time.monotonic()
        base = self._acked()
        for index, item in enumerate(messages):
            if stop is not None and stop.is_set():
                break
            if rate_per_s:
                delay = started + index / rate_per_s - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
            self._clients[item.device_id].publish(item.topic, item.payload, qos=1)
            report.published += 1
            report.by_expected[item.expected] = report.by_expected.get(item.expected, 0) + 1
            if report.published - (self._acked() - base) >= 5000:
                self._wait(base + report.published - 1000)
        self._wait(base + report.published)
        report.seconds = time.monotonic() - started
        return report

    def close(self) -> None:
        """close disconnects every device."""
        for client in self._clients.values():
            client.disconnect()
            client.loop_stop()

    def __enter__(self) -> DevicePublisher:
        self.connect()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _client(self, device_id: str) -> mqtt.Client:
        v5 = self._broker.protocol == "5"
        client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,  # type: ignore[attr-defined]
            client_id=device_id,
            protocol=mqtt.MQTTv5 if v5 else mqtt.MQTTv311,
        )
        client.username_pw_set(device_id, self._broker.password_for(device_id))
        client.max_queued_messages_set(0)
        client.max_inflight_messages_set(200)
        client.reconnect_delay_set(min_delay=1, max_delay=5)
        connected = threading.Event()
        self._connected[device_id] = connected

        def on_connect(
            client: mqtt.Client, userdata: object, flags: object, reason: object, props: object
        ) -> None:
            if getattr(reason, "is_failure", False):
                log.error("device connection refused", extra={"device_id": device_id})
                self._refused[device_id] = str(reason)
                return
            connected.set()

        def on_publish(
            client: mqtt.Client, userdata: object, mid: int, reason: object, props: object
        ) -> None:
            with self._lock:
                self._acks += 1

        client.on_connect = on_connect
        client.on_publish = on_publish
        return client

    def _wait(self, published: int, timeout_s: float = 120.0) -> None:
        # Counted through on_publish, not MQTTMessageInfo.wait_for_publish(): that raises at
        # once for a message published while the broker was away, although paho keeps such a
        # message and sends it after reconnecting. Riding out a broker restart is exactly what
        # a device must do, so wait for the broker's PUBACKs to catch up instead.
        deadline = time.monotonic() + timeout_s
        while self._acked() < published:
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"the broker acknowledged {self._acked()} of {published} publishes in time"
                )
            time.sleep(0.005)

    def _acked(self) -> int:
        with self._lock:
            return self._acks
