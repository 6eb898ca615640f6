"""NATS source: one durable JetStream pull consumer shared by every ingest worker.

The clustered broker tier is nats-server with JetStream and its MQTT listener. A device's
QoS 1 PUBLISH on ``homecare/v1/devices/{id}/readings`` is stored by the server in its own
replicated stream (``$MQTT_msgs``, file storage, ``mqtt.stream_replicas`` copies) under the
subject ``$MQTT.msgs.homecare.v1.devices.{id}.readings`` *before* the PUBACK goes back: that
stream is the only place a reading is durable before the device forgets it, so the ingest reads
from it, not from a second stream fed asynchronously.

Every worker binds to the same durable consumer (``HOMECARE_NATS_DURABLE``): JetStream hands
each message to one of them, and a message a worker took but did not acknowledge within the
consumer's ``ack_wait`` goes to another (a SIGKILLed worker's messages included). A message is
acknowledged only after the commit process says its batch is committed; a lost ack means a
redelivery, which msg_id de-duplication makes harmless. Flow control is the consumer's
``max_ack_pending`` (for all workers together) and, per worker, ``max_in_flight``: a worker
fetches only while it holds fewer unacknowledged messages than that, so the hand-off queue
(sized above it) never blocks the client's event loop.

The stream keeps messages by interest: it holds a message while a consumer whose filter matches
has not acknowledged it. The durable consumer must therefore exist before devices publish; the
worker creates it if missing (``ensure_consumer``), and ``scripts/cluster up`` does so before any
device connects.

nats-py is asyncio; the worker is threads. The client runs on an event loop in a thread of its
own, which only fetches into the bounded hand-off and sends acks scheduled from other threads.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote, urlsplit

import nats
import nats.errors
import nats.js.errors
from nats.aio.msg import Msg
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from homecare.ingest.errors import BrokerUnavailable
from homecare.ingest.handoff import Handoff
from homecare.ingest.metrics import IngestMetrics
from homecare.ingest.model import Delivery

__all__ = [
    "MQTT_STREAM",
    "READINGS_SUBJECT",
    "NatsConfig",
    "NatsSource",
    "ensure_consumer",
    "parse_nats_urls",
    "subject_to_topic",
]

log = logging.getLogger(__name__)

MQTT_STREAM = "$MQTT_msgs"  # nats-server's stream of QoS 1 MQTT messages (one per account)
_PREFIX = "$MQTT.msgs."
READINGS_SUBJECT = _PREFIX + "homecare.v1.devices.*.readings"


@dataclass(frozen=True)
class NatsConfig:
    """NatsConfig says which nodes to reach, as whom, and how the shared consumer behaves."""

    servers: tuple[str, ...]
    username: str | None
    password: str | None
    client_name: str
    durable: str = "homecare-ingest"
    stream: str = MQTT_STREAM
    filter_subject: str = READINGS_SUBJECT
    max_ack_pending: int = 20000
    ack_wait_s: float = 60.0
    max_in_flight: int = 4000
    fetch_batch: int = 500
    tls_ca_file: str | None = None


def parse_nats_urls(urls: str) -> tuple[tuple[str, ...], str | None, str | None]:
    """parse_nats_urls splits ``nats://user:pw@h1:4222,nats://h2:4222`` into servers without
    credentials and the credentials (the first URL that carries them).

    >>> parse_nats_urls("nats://ingest:s%40c@10.0.0.1:4222, nats://10.0.0.2:4223")
    (('nats://10.0.0.1:4222', 'nats://10.0.0.2:4223'), 'ingest', 's@c')
    """
    servers: list[str] = []
    user = password = None
    for url in (u.strip() for u in urls.split(",") if u.strip()):
        parts = urlsplit(url)
        if parts.username and user is None:
            user = unquote(parts.username)
            password = unquote(parts.password) if parts.password else None
        servers.append(f"{parts.scheme}://{parts.hostname}:{parts.port or 4222}")
    return tuple(servers), user, password


def subject_to_topic(subject: str) -> str:
    """subject_to_topic turns a stored subject back into the device's MQTT topic.

    nats-server maps the MQTT level separator ``/`` to ``.``; 2.9 refuses ``.`` in a topic
    (so an id with a dot cannot publish through it), later versions write it as ``//``.

    >>> subject_to_topic("$MQTT.msgs.homecare.v1.devices.bp-7.readings")
    'homecare/v1/devices/bp-7/readings'
    """
    body = subject.removeprefix(_PREFIX)
    return body.replace("//", "\0").replace(".", "/").replace("\0", ".")


async def ensure_consumer(js: Any, config: NatsConfig) -> None:
    """ensure_consumer creates the shared durable pull consumer unless it exists (it is
    replicated like its stream, so it survives a node and keeps its acknowledgement state)."""
    try:
        await js.consumer_info(config.stream, config.durable)
        return
    except nats.js.errors.NotFoundError:
        pass
    await js.add_consumer(
        config.stream,
        ConsumerConfig(
            durable_name=config.durable,
            filter_subject=config.filter_subject,
            deliver_policy=DeliverPolicy.ALL,
            ack_policy=AckPolicy.EXPLICIT,
            ack_wait=config.ack_wait_s,
            max_ack_pending=config.max_ack_pending,
            max_deliver=-1,
        ),
    )
    log.info("created the shared ingest consumer", extra={"durable": config.durable})


class NatsSource:
    """NatsSource fetches readings from the shared consumer and acknowledges them on demand.

    It has the shape of ``ingest.mqtt.MqttSource`` (``deliveries``, ``start``, ``ack``, ``stop``)
    so that the worker and the commit process are the same for both brokers.
    """

    def __init__(self, config: NatsConfig, metrics: IngestMetrics, queue_size: int) -> None:
        self.config = config
        self.deliveries: Handoff[Delivery] = Handoff(max(queue_size, config.max_in_flight + 1))
        self._metrics = metrics
        self._loop = asyncio.new_event_loop()
        self._thread: threading.Thread | None = None
        self._pending: dict[int, Msg] = {}  # delivery mid -> message, until acknowledged
        self._pending_lock = threading.Lock()
        self._next_mid = 0
        self._ready = threading.Event()
        self._stopping = threading.Event()
        self._failure: str = "no answer"
        self._nc: Any = None

    @property
    def generation(self) -> int:
        """generation is constant: an ack names the consumer's delivery, valid across nodes."""
        return 0

    @property
    def connected(self) -> bool:
        """connected is True while bound to the consumer over a live connection."""
        return self._ready.is_set() and self._nc is not None and self._nc.is_connected

    @property
    def subscribed(self) -> bool:
        """subscribed is True once bound to the consumer."""
        return self._ready.is_set()

    def start(self, timeout_s: float, stop: threading.Event | None = None) -> None:
        """start connects, makes sure the consumer exists, binds to it and starts fetching;
        raises BrokerUnavailable if that did not happen within ``timeout_s``."""
        stop = stop or threading.Event()
        self._thread = threading.Thread(
            target=self._run_loop, args=(timeout_s,), name="ingest-nats", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + timeout_s
        while not self._ready.wait(0.1):
            if stop.is_set():
                return
            if time.monotonic() >= deadline or not self._thread.is_alive():
                self.stop()
                raise BrokerUnavailable(
                    f"NATS at {','.join(self.config.servers)} not usable within {timeout_s:g}s:"
                    f" {self._failure}"
                )

    def check_subscription(self) -> None:
        """check_subscription has nothing to check: ``start`` returns bound or raises."""

    def stop(self) -> None:
        """stop closes the connection; unacknowledged messages go to the other workers after
        the consumer's ack_wait."""
        self._stopping.set()
        if self._thread is not None and self._thread.is_alive():
            self._thread.join(10)

    def ack(self, delivery: Delivery) -> bool:
        """ack acknowledges a committed delivery (sent from the client's loop, not waited for)."""
        with self._pending_lock:
            msg = self._pending.pop(delivery.mid, None)
        if msg is None:
            return False
        if self._loop.is_closed():
            return False
        try:
            asyncio.run_coroutine_threadsafe(_ack(msg), self._loop)
        except RuntimeError:  # the loop stopped meanwhile: the message will be redelivered
            return False
        return True

    def _run_loop(self, timeout_s: float) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self._serve(timeout_s))
        except Exception as exc:  # reported through start() or the log
            self._failure = f"{type(exc).__name__}: {exc}"
            log.error("NATS source stopped", extra={"error": self._failure})
        finally:
            with contextlib.suppress(Exception):
                self._loop.run_until_complete(self._loop.shutdown_asyncgens())
            self._loop.close()

    async def _serve(self, timeout_s: float) -> None:
        nc = await self._connect(timeout_s)
        self._nc = nc
        try:
            js = nc.jetstream()
            await ensure_consumer(js, self.config)
            sub = await js.pull_subscribe_bind(
                durable=self.config.durable, stream=self.config.stream
            )
            self._ready.set()
            self._metrics.broker_connects.inc()
            log.info(
                "bound to the shared consumer",
                extra={"client_id": self.config.client_name, "durable": self.config.durable},
            )
            await self._fetch_forever(sub)
        finally:
            with contextlib.suppress(Exception):
                await nc.flush(timeout=2)  # acks scheduled before stop
            with contextlib.suppress(Exception):
                await nc.close()

    async def _connect(self, timeout_s: float) -> Any:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                return await nats.connect(
                    servers=list(self.config.servers),
                    user=self.config.username,
                    password=self.config.password,
                    name=self.config.client_name,
                    connect_timeout=2,
                    allow_reconnect=True,
                    max_reconnect_attempts=-1,
                    reconnect_time_wait=0.5,
                    disconnected_cb=self._on_disconnected,
                    reconnected_cb=self._on_reconnected,
                    error_cb=self._on_error,
                    tls=_tls_context(self.config.tls_ca_file),
                )
            except Exception as exc:
                self._failure = f"{type(exc).__name__}: {exc}"
            if self._stopping.is_set() or time.monotonic() >= deadline:
                raise BrokerUnavailable(self._failure)
            await asyncio.sleep(0.5)

    async def _fetch_forever(self, sub: Any) -> None:
        delay = 0.1
        while not self._stopping.is_set():
            with self._pending_lock:
                room = self.config.max_in_flight - len(self._pending)
            if room <= 0:
                self._metrics.backpressure_waits.inc()
                await asyncio.sleep(0.02)
                continue
            try:
                msgs = await sub.fetch(min(room, self.config.fetch_batch), timeout=1.0)
            except nats.errors.TimeoutError:
                continue
            except Exception as exc:  # a node went away, a leader is being elected, ...
                if self._stopping.is_set():
                    break
                log.warning("fetch failed; retrying", extra={"error": f"{type(exc).__name__}"})
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)
                continue
            delay = 0.1
            await self._hand_over(msgs)

    async def _hand_over(self, msgs: list[Msg]) -> None:
        now = datetime.now(UTC)
        for msg in msgs:
            with self._pending_lock:
                mid, self._next_mid = self._next_mid, self._next_mid + 1
                self._pending[mid] = msg
            delivery = Delivery(subject_to_topic(msg.subject), msg.data, now, mid, 1, 0)
            while not self.deliveries.put(delivery, timeout_s=0):
                self._metrics.backpressure_waits.inc()
                await asyncio.sleep(0.02)

    async def _on_disconnected(self) -> None:
        if not self._stopping.is_set():
            self._metrics.broker_disconnects.inc()
            log.warning("NATS connection lost; reconnecting to another node")

    async def _on_reconnected(self) -> None:
        self._metrics.broker_connects.inc()
        log.info("NATS reconnected", extra={"server": str(self._nc.connected_url.netloc)})

    async def _on_error(self, exc: Exception) -> None:
        self._failure = f"{type(exc).__name__}: {exc}"


async def _ack(msg: Msg) -> None:
    with contextlib.suppress(Exception):  # not acknowledged: redelivered, de-duplicated
        await msg.ack()


def _tls_context(ca_file: str | None) -> Any:
    if ca_file is None:
        return None
    import ssl

    return ssl.create_default_context(cafile=ca_file)
