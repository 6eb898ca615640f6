"""MQTT source: a persistent, shared, manually acknowledged subscription to device readings.

The paho network thread only puts deliveries into a bounded queue; everything else happens in
the worker. Flow control comes from the protocol: with MQTT 5 the client announces a
``Receive Maximum``, so the broker should never have more unacknowledged messages in flight to
us than that, and the queue (sized above it) rarely blocks the network thread. It can fill:
MQTT 3.1.1 has no such limit, mosquitto 2.0.11 does not always keep to it (after a worker was
SIGKILLed it resent 1,600 messages to a successor that announced 300), and deliveries of several
connections pile up after reconnects. Then the put waits, and every wait is counted:
backpressure is deliberate, never a silent drop. Two consequences for starting and stopping:

- on connect the broker sends what the session holds *before* it answers the SUBSCRIBE, so the
  worker drains from the CONNACK on (``start`` returns then) and checks for the SUBACK while it
  runs (``check_subscription``); waiting for the SUBACK first deadlocks on a full queue, the
  SUBACK being queued behind the messages the network thread cannot hand over;
- the network thread may be waiting for room when we stop it, so ``_stopping`` is set before
  it is joined, on every path.

The session is persistent (MQTT 5 clean start off with a session expiry; 3.1.1 clean session
off) and subscriptions are re-applied on every connect, so a broker restart or network cut
costs nothing: unacknowledged messages come back and msg_id de-duplication makes them harmless.
"""

from __future__ import annotations

import logging
import socket
import ssl
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote, urlsplit

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from homecare.ingest.errors import BrokerUnavailable
from homecare.ingest.handoff import Handoff
from homecare.ingest.metrics import IngestMetrics
from homecare.ingest.model import Delivery

__all__ = ["READINGS_TOPIC", "MqttConfig", "MqttSource", "parse_mqtt_url"]

READINGS_TOPIC = "homecare/v1/devices/+/readings"
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class MqttConfig:
    """MqttConfig is what the source needs to know about the broker and the session."""

    host: str
    port: int
    username: str | None
    password: str | None
    tls: bool
    client_id: str
    protocol: str = "5"
    shared_group: str = ""
    session_expiry_s: int = 7 * 24 * 3600
    # True discards the broker's session at the first connect (queued messages and any
    # subscription left by an earlier configuration, e.g. another shared group); reconnects
    # after that resume the session as usual. For demos, never for a production worker.
    fresh_session: bool = False
    receive_maximum: int = 4000
    keepalive_s: int = 30
    tls_ca_file: str | None = None

    @property
    def subscription(self) -> str:
        """subscription is the topic filter, shared when a group is set."""
        if self.shared_group:
            return f"$share/{self.shared_group}/{READINGS_TOPIC}"
        return READINGS_TOPIC


def parse_mqtt_url(url: str) -> tuple[str, int, str | None, str | None, bool]:
    """parse_mqtt_url splits ``mqtt[s]://user:password@host:port`` into its parts.

    >>> parse_mqtt_url("mqtts://ingest:s%40cret@broker:8883")
    ('broker', 8883, 'ingest', 's@cret', True)
    """
    parts = urlsplit(url)
    tls = parts.scheme == "mqtts"
    user = unquote(parts.username) if parts.username else None
    password = unquote(parts.password) if parts.password else None
    return parts.hostname or "127.0.0.1", parts.port or (8883 if tls else 1883), user, password, tls


class MqttSource:
    """MqttSource delivers readings messages into ``deliveries`` and acknowledges them on demand."""

    def __init__(self, config: MqttConfig, metrics: IngestMetrics, queue_size: int) -> None:
        self.config = config
        self.deliveries: Handoff[Delivery] = Handoff(queue_size)
        self._metrics = metrics
        self._generation = 0
        self._session = threading.Event()  # a CONNACK accepted the connection (first or later)
        self._connected = threading.Event()  # subscribed on the current connection
        self._subscribed_once = threading.Event()
        self._refused = threading.Event()  # a CONNACK refused us for good (e.g. credentials)
        self._stopping = threading.Event()
        self._last_refusal = "no answer"
        self._subscribe_deadline = 0.0
        self._subscribe_timeout_s = 0.0
        self._client = self._build_client()

    @property
    def generation(self) -> int:
        """generation counts successful connects; acks are only valid within one."""
        return self._generation

    @property
    def connected(self) -> bool:
        """connected is True while subscribed on the current connection."""
        return self._connected.is_set()

    @property
    def subscribed(self) -> bool:
        """subscribed is True once the first SUBACK came (later connects re-subscribe)."""
        return self._subscribed_once.is_set()

    def start(self, timeout_s: float, stop: threading.Event | None = None) -> None:
        """start connects (retrying time-outs within ``timeout_s``; a refusal raises at once),
        runs the network thread and returns once the broker accepted the connection, without
        waiting for the SUBACK: deliveries
        may come first and must be drained (see ``check_subscription``). Returns early, not
        connected, if ``stop`` is set meanwhile."""
        stop = stop or threading.Event()
        deadline = time.monotonic() + timeout_s
        self._subscribe_deadline, self._subscribe_timeout_s = deadline, timeout_s
        delay = 0.2
        while True:
            try:
                self._client.connect(
                    self.config.host,
                    self.config.port,
                    keepalive=self.config.keepalive_s,
                    **self._connect_kwargs(),
                )
                break
            except OSError as exc:
                self._last_refusal = str(exc) or type(exc).__name__
                if not transient_socket_error(exc):
                    raise BrokerUnavailable(self._unreachable(None)) from None
            if time.monotonic() + delay > deadline:
                raise BrokerUnavailable(self._unreachable(timeout_s))
            if stop.wait(delay):
                return
            delay = min(delay * 2, 2.0)
        self._client.loop_start()
        while not self._session.wait(0.1):
            if stop.is_set():
                return
            if self._refused.is_set():
                self.stop()
                raise BrokerUnavailable(self._unreachable(None))
            if time.monotonic() >= deadline:
                self.stop()
                raise BrokerUnavailable(self._unreachable(timeout_s))

    def check_subscription(self) -> None:
        """check_subscription raises BrokerUnavailable if the first SUBACK did not come within
        the start timeout (or refused the subscription); the worker calls it while it drains."""
        if self._subscribed_once.is_set() or time.monotonic() < self._subscribe_deadline:
            return
        raise BrokerUnavailable(self._unreachable(self._subscribe_timeout_s))

    def stop(self) -> None:
        """stop disconnects cleanly; unacknowledged messages stay in the broker's session."""
        self._stopping.set()  # first: the network thread may be waiting for room in the queue
        self._client.disconnect()
        self._client.loop_stop()

    def ack(self, delivery: Delivery) -> bool:
        """ack acknowledges a committed delivery; False if it came on an earlier connection."""
        if delivery.qos == 0:
            return True
        if delivery.generation != self._generation:
            return False
        self._client.ack(delivery.mid, delivery.qos)
        return True

    def _build_client(self) -> mqtt.Client:
        v5 = self.config.protocol == "5"
        client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,  # type: ignore[attr-defined]
            client_id=self.config.client_id,
            protocol=mqtt.MQTTv5 if v5 else mqtt.MQTTv311,
            clean_session=None if v5 else False,  # 3.1.1 has no "first connect only"
            manual_ack=True,
        )
        if self.config.username:
            client.username_pw_set(self.config.username, self.config.password)
        if self.config.tls:
            context = ssl.create_default_context(cafile=self.config.tls_ca_file)
            client.tls_set_context(context)
        client.reconnect_delay_set(min_delay=1, max_delay=30)
        client.on_connect = self._on_connect
        client.on_subscribe = self._on_subscribe
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        return client

    def _connect_kwargs(self) -> dict[str, Any]:
        if self.config.protocol != "5":
            return {}
        properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        properties.SessionExpiryInterval = self.config.session_expiry_s
        properties.ReceiveMaximum = self.config.receive_maximum
        return {
            "clean_start": mqtt.MQTT_CLEAN_START_FIRST_ONLY if self.config.fresh_session else False,
            "properties": properties,
        }

    def _on_connect(
        self,
        client: mqtt.Client,
        userdata: object,
        flags: mqtt.ConnectFlags,
        reason_code: ReasonCode,
        properties: Properties | None,
    ) -> None:
        if reason_code.is_failure:
            self._last_refusal = f"broker refused the connection: {reason_code}"
            if self._generation == 0 and str(reason_code) not in TRANSIENT_CONNACKS:
                self._refused.set()  # start() raises with the reason: one line, no log
                return
            log.error("broker refused connection", extra={"reason": str(reason_code)})
            return
        self._generation += 1
        self._session.set()
        client.subscribe(self.config.subscription, qos=1)
        self._metrics.broker_connects.inc()
        log.info(
            "connected to broker",
            extra={
                "client_id": self.config.client_id,
                "session_present": flags.session_present,
                "subscription": self.config.subscription,
            },
        )

    def _on_subscribe(
        self,
        client: mqtt.Client,
        userdata: object,
        mid: int,
        reason_codes: list[ReasonCode],
        properties: Properties | None,
    ) -> None:
        if any(code.is_failure for code in reason_codes):
            self._last_refusal = f"broker refused the subscription: {reason_codes[0]}"
            log.error("subscription refused", extra={"reason": str(reason_codes[0])})
            return
        # Ready only once the subscription is in place: before that, messages would be missed.
        self._connected.set()
        self._subscribed_once.set()

    def _on_disconnect(
        self,
        client: mqtt.Client,
        userdata: object,
        flags: mqtt.DisconnectFlags,
        reason_code: ReasonCode,
        properties: Properties | None,
    ) -> None:
        self._connected.clear()
        if not self._stopping.is_set() and not self._refused.is_set():
            self._metrics.broker_disconnects.inc()
            log.warning(
                "broker connection lost; paho reconnects", extra={"reason": str(reason_code)}
            )

    def _on_message(self, client: mqtt.Client, userdata: object, message: mqtt.MQTTMessage) -> None:
        delivery = Delivery(
            topic=message.topic,
            payload=bytes(message.payload),
            received_at=datetime.now(UTC),
            mid=message.mid,
            qos=message.qos,
            generation=self._generation,
        )
        while not self._stopping.is_set():
            if self.deliveries.put(delivery, timeout_s=0.5):
                return
            self._metrics.backpressure_waits.inc()
        # Stopping: the message is not acknowledged, so the broker keeps it for the next run.

    def _unreachable(self, timeout_s: float | None) -> str:
        within = "" if timeout_s is None else f" within {timeout_s:g}s"
        return (
            f"MQTT broker at {self.config.host}:{self.config.port} not reachable{within}: "
            f"{self._last_refusal}"
        )


# CONNACK reasons that may change within seconds; any other refusal (bad credentials, not
# authorised, bad client id) will not, so the worker stops at once.
TRANSIENT_CONNACKS = frozenset({"Server unavailable", "Server busy", "Connection rate exceeded"})


def transient_socket_error(exc: OSError) -> bool:
    """transient_socket_error: a connect failure worth retrying (time-out, DNS not answering);
    a refused connection or an unknown host is reported at once."""
    if isinstance(exc, TimeoutError):
        return True
    return isinstance(exc, socket.gaierror) and exc.errno == socket.EAI_AGAIN
