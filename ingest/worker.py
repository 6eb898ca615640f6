"""Worker: the thin shell that drains the broker's hand-off queue into the database.

Loop: take up to N deliveries (or what arrived within T ms), have the commit process parse and
write them in one transaction, and only then acknowledge them to the broker, in order. What
happens when the database fails is the committer's business (``ingest.committer``); what happens
when the child process fails is the commit process's (``ingest.commit_process``). Here: a crash
at any point means the broker redelivers what was not acknowledged, and msg_id de-duplication
makes the redelivery harmless.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field

from homecare import store
from homecare.ingest.commit_process import CommitProcess
from homecare.ingest.commit_wire import CommitSummary
from homecare.ingest.committer import CommitEvent, Stopping
from homecare.ingest.metrics import IngestMetrics
from homecare.ingest.model import Delivery
from homecare.ingest.mqtt import MqttConfig, MqttSource
from homecare.ingest.nats import NatsConfig, NatsSource
from homecare.ingest.parse import ParseLimits
from homecare.ingest.writer import QuarantineBudget

__all__ = ["IngestConfig", "IngestWorker"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class IngestConfig:
    """IngestConfig is everything one worker needs, built from the settings by the CLI."""

    database_url: str
    mqtt: MqttConfig
    # Set: read from the NATS cluster's shared consumer instead of the MQTT subscription
    # (HOMECARE_BROKER_KIND=nats); ``mqtt`` is then unused.
    nats: NatsConfig | None = None
    limits: ParseLimits = field(default_factory=ParseLimits)
    quarantine_budget: QuarantineBudget = field(default_factory=QuarantineBudget)
    batch_max_messages: int = 1000
    batch_max_wait_s: float = 0.05
    connect_timeout_s: float = 20.0
    stats_interval_s: float = 10.0


class IngestWorker:
    """IngestWorker runs one ingest loop; several may run side by side on a shared subscription."""

    def __init__(self, config: IngestConfig, metrics: IngestMetrics | None = None) -> None:
        self.config = config
        self.metrics = metrics or IngestMetrics()
        self._source: MqttSource | NatsSource
        if config.nats is not None:
            self._source = NatsSource(
                config.nats, self.metrics, queue_size=config.nats.max_in_flight + 1000
            )
            self._client_id = config.nats.client_name
        else:
            self._source = MqttSource(
                config.mqtt, self.metrics, queue_size=2 * config.mqtt.receive_maximum + 1000
            )
            self._client_id = config.mqtt.client_id
        self._committer = CommitProcess(
            config.database_url,
            config.limits,
            self._on_committed,
            self._on_commit_event,
            config.connect_timeout_s,
            config.quarantine_budget,
        )
        self._stop = threading.Event()

    @property
    def commit_pid(self) -> int | None:
        """commit_pid is the process id of the child that writes to the database."""
        return self._committer.pid

    @property
    def commit_restarts(self) -> int:
        """commit_restarts counts the commit processes that died and were replaced."""
        return self._committer.restarts

    def run(self, stop: threading.Event | None = None) -> None:
        """run serves until ``stop`` is set; raises StoreUnavailable/BrokerUnavailable at start."""
        if stop is not None:
            self._stop = stop
        store.wait_for_database(
            self.config.database_url, self.config.connect_timeout_s, "homecare-ingest"
        )
        self._committer.start()
        try:
            # Returns at the CONNACK: what the session holds may come before the SUBACK, and
            # is drained below while the subscription is checked (``ingest.mqtt``).
            self._source.start(self.config.connect_timeout_s, self._stop)
        except BaseException:
            self._committer.close()
            raise
        log.info(
            "ingest worker running",
            extra={"client_id": self._client_id, "commit_pid": self._committer.pid},
        )
        next_stats = time.monotonic() + self.config.stats_interval_s
        try:
            subscribed = False
            while not self._stop.is_set():
                if not subscribed:
                    self._source.check_subscription()  # BrokerUnavailable past the timeout
                    subscribed = self._source.subscribed
                batch = self._next_batch()
                if batch:
                    try:
                        self._process(batch)
                    except Stopping:
                        break
                if time.monotonic() >= next_stats:
                    self._log_stats()
                    next_stats = time.monotonic() + self.config.stats_interval_s
        finally:
            self._committer.close()  # lets batches in flight commit and be acknowledged
            self._source.stop()
            self._log_stats()
            log.info("ingest worker stopped")

    def stop(self) -> None:
        """stop asks the loop to finish its current batch and return."""
        self._stop.set()

    def wait_ready(self, timeout_s: float) -> bool:
        """wait_ready blocks until the worker is subscribed at the broker (for tests, the demo)."""
        deadline = time.monotonic() + timeout_s
        while not self._source.connected:
            if time.monotonic() >= deadline or self._stop.is_set():
                return False
            time.sleep(0.02)
        return True

    def _next_batch(self) -> list[Delivery]:
        deliveries = self._source.deliveries
        batch = deliveries.take(
            self.config.batch_max_messages, first_wait_s=0.2, gather_s=self.config.batch_max_wait_s
        )
        self.metrics.queue_depth.set(len(deliveries))
        return batch

    def _process(self, batch: list[Delivery]) -> None:
        self._committer.submit(batch, self._stop)

    def _on_committed(self, batch: list[Delivery], outcome: CommitSummary, seconds: float) -> None:
        """_on_committed runs on the commit process's reader thread, once per batch, in order."""
        stale = sum(1 for delivery in batch if not self._source.ack(delivery))
        self.metrics.stale_acks.inc(stale)
        self.metrics.batch_seconds.observe(seconds)
        self.metrics.messages.labels("new").inc(outcome.messages_new)
        self.metrics.messages.labels("duplicate").inc(outcome.messages_duplicate)
        self.metrics.messages.labels("quarantined").inc(outcome.messages_quarantined)
        self.metrics.readings_stored.inc(outcome.readings_stored)
        self.metrics.quarantine_payloads_dropped.inc(outcome.payloads_dropped)
        for reason, count in outcome.quarantined.items():
            self.metrics.quarantined.labels(reason).inc(count)

    def _on_commit_event(self, event: CommitEvent) -> None:
        if event.kind == "retry":
            self.metrics.db_retries.inc()
            log.log(event.level, "batch not committed; will retry", extra={"error": event.detail})
        elif event.kind == "split":
            self.metrics.poison_splits.inc()
            log.warning("batch refused; isolating the message", extra={"error": event.detail})
        else:
            self.metrics.commit_restarts.inc()
            log.log(event.level, "commit process failed", extra={"error": event.detail})

    def _log_stats(self) -> None:
        log.info("ingest stats", extra={"metrics": self.metrics.snapshot()})
