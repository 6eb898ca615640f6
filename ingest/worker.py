"""Worker: the thin shell that drains the MQTT hand-off queue into the database.

Loop: take up to N deliveries (or what arrived within T ms), parse them (pure), write them in
one transaction, and only then acknowledge them to the broker. Failure handling is the point:

- a transient database failure (connection lost, server restarting) keeps the batch, backs off
  and retries on a new connection; meanwhile nothing is acknowledged, so the broker keeps every
  message and MQTT flow control stops it sending more;
- a batch the database refuses (a data or integrity error) is split to find the one message
  responsible, which goes to quarantine as ``rejected_by_store`` while the rest are stored;
- an unexpected database error (a bug, a missing table) is logged and retried like a transient
  one: messages stay safe in the broker until an operator fixes it, nothing is quarantined
  by mistake and nothing is lost;
- a crash at any point means the broker redelivers what was not acknowledged, and msg_id
  de-duplication makes the redelivery harmless.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import psycopg

import store
from ingest.metrics import IngestMetrics
from ingest.model import (
    BatchOutcome,
    Delivery,
    ParsedMessage,
    QuarantineReason,
    Reading,
    RejectedMessage,
    Rejection,
)
from ingest.mqtt import MqttConfig, MqttSource
from ingest.parse import ParseLimits, parse_message
from ingest.writer import quarantine_whole, write_batch

__all__ = ["IngestConfig", "IngestWorker"]

log = logging.getLogger(__name__)
_MAX_BACKOFF_S = 10.0


@dataclass(frozen=True)
class IngestConfig:
    """IngestConfig is everything one worker needs, built from the settings by the CLI."""

    database_url: str
    mqtt: MqttConfig
    limits: ParseLimits = field(default_factory=ParseLimits)
    batch_max_messages: int = 1000
    batch_max_wait_s: float = 0.05
    connect_timeout_s: float = 20.0
    stats_interval_s: float = 10.0


class _Stopping(Exception):
    """_Stopping abandons a batch that cannot be committed before shutdown (it stays unacked)."""


class IngestWorker:
    """IngestWorker runs one ingest loop; several may run side by side on a shared subscription."""

    def __init__(
        self,
        config: IngestConfig,
        metrics: IngestMetrics | None = None,
        sink: Callable[[Sequence[Reading]], None] | None = None,
    ) -> None:
        self.config = config
        self.metrics = metrics or IngestMetrics()
        self._sink = sink
        self._source = MqttSource(
            config.mqtt, self.metrics, queue_size=2 * config.mqtt.receive_maximum + 1000
        )
        self._conn: psycopg.Connection[Any] | None = None
        self._stop = threading.Event()

    def run(self, stop: threading.Event | None = None) -> None:
        """run serves until ``stop`` is set; raises StoreUnavailable/BrokerUnavailable at start."""
        if stop is not None:
            self._stop = stop
        store.wait_for_database(
            self.config.database_url, self.config.connect_timeout_s, "homecare-ingest"
        )
        self._source.start(self.config.connect_timeout_s)
        log.info("ingest worker running", extra={"client_id": self.config.mqtt.client_id})
        next_stats = time.monotonic() + self.config.stats_interval_s
        try:
            while not self._stop.is_set():
                batch = self._next_batch()
                if batch:
                    try:
                        self._process(batch)
                    except _Stopping:
                        break
                if time.monotonic() >= next_stats:
                    self._log_stats()
                    next_stats = time.monotonic() + self.config.stats_interval_s
        finally:
            self._source.stop()
            if self._conn is not None:
                self._conn.close()
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
        started = time.perf_counter()
        items = [parse_message(delivery, self.config.limits) for delivery in batch]
        outcome = self._write(items)
        stale = sum(1 for delivery in batch if not self._source.ack(delivery))
        self.metrics.stale_acks.inc(stale)
        self.metrics.batch_seconds.observe(time.perf_counter() - started)
        self.metrics.messages.labels("new").inc(outcome.messages_new)
        self.metrics.messages.labels("duplicate").inc(outcome.messages_duplicate)
        self.metrics.messages.labels("quarantined").inc(outcome.messages_quarantined)
        self.metrics.readings_stored.inc(len(outcome.stored))
        for reason, count in outcome.quarantined.items():
            self.metrics.quarantined.labels(reason).inc(count)
        if self._sink is not None and outcome.stored:
            try:
                self._sink(outcome.stored)
            except Exception:
                log.exception("next stage failed on a stored batch; the readings are stored")

    def _write(self, items: list[ParsedMessage | RejectedMessage]) -> BatchOutcome:
        delay = 0.25
        while True:
            try:
                return write_batch(self._connection(), items)
            except psycopg.Error as exc:
                error = store.classify(exc)
            if isinstance(error, store.Rejected):
                return self._isolate(items, error)
            self._drop_connection()
            self.metrics.db_retries.inc()
            level = logging.WARNING if isinstance(error, store.RetryLater) else logging.ERROR
            log.log(level, "batch not committed; will retry", extra={"error": str(error)})
            if self._stop.wait(delay):
                raise _Stopping
            delay = min(delay * 2, _MAX_BACKOFF_S)

    def _isolate(
        self, items: list[ParsedMessage | RejectedMessage], error: store.Rejected
    ) -> BatchOutcome:
        if len(items) == 1:
            item = items[0]
            rejection = Rejection(
                QuarantineReason.REJECTED_BY_STORE, f"SQLSTATE {error.sqlstate}: {error}"
            )
            self._commit_quarantine(item, rejection)
            outcome = BatchOutcome(messages_quarantined=1)
            outcome.quarantined[rejection.reason.value] += 1
            return outcome
        self.metrics.poison_splits.inc()
        outcome = BatchOutcome()
        for item in items:
            outcome.merge(self._write([item]))
        return outcome

    def _commit_quarantine(
        self, item: ParsedMessage | RejectedMessage, rejection: Rejection
    ) -> None:
        delay = 0.25
        while True:
            try:
                quarantine_whole(self._connection(), item, rejection)
                return
            except psycopg.Error as exc:
                log.warning("quarantine not committed; will retry", extra={"error": str(exc)})
            self._drop_connection()
            if self._stop.wait(delay):
                raise _Stopping
            delay = min(delay * 2, _MAX_BACKOFF_S)

    def _connection(self) -> psycopg.Connection[Any]:
        if self._conn is None or self._conn.closed:
            self._conn = store.connect(
                self.config.database_url,
                autocommit=True,
                application_name="homecare-ingest",
                connect_timeout_s=5,
            )
        return self._conn

    def _drop_connection(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(psycopg.Error):
                self._conn.close()
            self._conn = None

    def _log_stats(self) -> None:
        log.info("ingest stats", extra={"metrics": self.metrics.snapshot()})
