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

from devices.traffic import Outgoing

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
        for device_id in device_ids:
            self._clients[device_id] = self._client(device_id)

    def connect(self, timeout_s: float = 20.0) -> None:
        """connect opens every device's connection and waits until all are accepted."""
        for client in self._clients.values():
            client.connect(self._broker.host, self._broker.port, keepalive=60)
            client.loop_start()
        deadline = time.monotonic() + timeout_s
        for device_id, event in self._connected.items():
            if not event.wait(max(0.0, deadline - time.monotonic())):
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
        pending: list[mqtt.MQTTMessageInfo] = []
        for index, item in enumerate(messages):
            if stop is not None and stop.is_set():
                break
            if rate_per_s:
                delay = started + index / rate_per_s - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
            info = self._clients[item.device_id].publish(item.topic, item.payload, qos=1)
            pending.append(info)
            report.published += 1
            report.by_expected[item.expected] = report.by_expected.get(item.expected, 0) + 1
            if len(pending) >= 5000:
                self._wait(pending)
                pending.clear()
        self._wait(pending)
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
        connected = threading.Event()
        self._connected[device_id] = connected

        def on_connect(
            client: mqtt.Client, userdata: object, flags: object, reason: object, props: object
        ) -> None:
            if getattr(reason, "is_failure", False):
                log.error("device connection refused", extra={"device_id": device_id})
                return
            connected.set()

        client.on_connect = on_connect
        return client

    @staticmethod
    def _wait(pending: list[mqtt.MQTTMessageInfo], timeout_s: float = 60.0) -> None:
        deadline = time.monotonic() + timeout_s
        for info in pending:
            info.wait_for_publish(max(0.1, deadline - time.monotonic()))
            if not info.is_published():
                raise TimeoutError("the broker did not acknowledge a publish in time")
