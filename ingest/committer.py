"""Committer: turns a batch of deliveries into one committed outcome, whatever the database does.

Parsed messages in, one transaction out. Failure handling is the point:

- a transient database failure (connection lost, server restarting) keeps the batch, backs off
  and retries on a new connection; the caller acknowledges nothing meanwhile, so the broker keeps
  every message and MQTT flow control stops it sending more;
- a batch the database refuses (a data or integrity error) is split to find the one message
  responsible, which goes to quarantine as ``rejected_by_store`` while the rest are stored;
- a batch whose writing raises anything else (a bug met by one odd message) is split the same
  way, and the message goes to quarantine as ``ingest_error``: one message must not stop every
  device's ingest;
- an unexpected database error (a bug, a missing table) is reported and retried like a transient
  one: messages stay safe in the broker until an operator fixes it, nothing is quarantined by
  mistake and nothing is lost.

It knows nothing of MQTT or of processes: the commit process runs it in a child, and it reports
retries and splits through a callback so that the parent, which owns logs and metrics, can count
them while they happen.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable
from typing import Any, NamedTuple

import psycopg

from homecare import store
from homecare.ingest.model import (
    BatchOutcome,
    ParsedMessage,
    QuarantineReason,
    RejectedMessage,
    Rejection,
)
from homecare.ingest.writer import QuarantineBudget, quarantine_whole, write_batch

__all__ = ["BatchCommitter", "CommitEvent", "Stopping"]

_MAX_BACKOFF_S = 10.0


class Stopping(Exception):
    """Stopping abandons a batch that cannot be committed before shutdown (it stays unacked)."""


class CommitEvent(NamedTuple):
    """CommitEvent is something an operator should see while a batch is being committed."""

    kind: str  # "retry": not committed, will retry; "split": isolating a refused message
    level: int  # a logging level
    detail: str


class BatchCommitter:
    """BatchCommitter owns one database connection and commits batches on it, in order."""

    def __init__(
        self,
        database_url: str,
        stop: threading.Event,
        report: Callable[[CommitEvent], None],
        budget: QuarantineBudget | None = None,
    ) -> None:
        self._url = database_url
        self._budget = budget
        self._stop = stop
        self._report = report
        self._conn: psycopg.Connection[Any] | None = None

    def write(self, items: list[ParsedMessage | RejectedMessage]) -> BatchOutcome:
        """write stores parsed ``items`` in one transaction (or isolates the one the database
        refuses); raises Stopping if asked to stop while the database is failing."""
        return self._write(items)

    def close(self) -> None:
        self._drop_connection()

    def _write(self, items: list[ParsedMessage | RejectedMessage]) -> BatchOutcome:
        delay = 0.25
        while True:
            try:
                return write_batch(self._connection(), items, self._budget)
            except psycopg.Error as exc:
                error = store.classify(exc)
            except Exception as exc:  # not the database's doing: this input met a bug
                return self._isolate(items, _write_failed(exc))
            if isinstance(error, store.Rejected):
                return self._isolate(
                    items,
                    Rejection(
                        QuarantineReason.REJECTED_BY_STORE, f"SQLSTATE {error.sqlstate}: {error}"
                    ),
                )
            self._drop_connection()
            level = logging.WARNING if isinstance(error, store.RetryLater) else logging.ERROR
            self._report(CommitEvent("retry", level, str(error)))
            if self._stop.wait(delay):
                raise Stopping
            delay = min(delay * 2, _MAX_BACKOFF_S)

    def _isolate(
        self, items: list[ParsedMessage | RejectedMessage], rejection: Rejection
    ) -> BatchOutcome:
        if len(items) == 1:
            dropped = self._commit_quarantine(items[0], rejection)
            outcome = BatchOutcome(messages_quarantined=1, payloads_dropped=dropped)
            outcome.quarantined[rejection.reason.value] += 1
            return outcome
        self._report(CommitEvent("split", logging.WARNING, rejection.detail))
        outcome = BatchOutcome()
        for item in items:
            outcome.merge(self._write([item]))
        return outcome

    def _commit_quarantine(
        self, item: ParsedMessage | RejectedMessage, rejection: Rejection
    ) -> int:
        delay = 0.25
        while True:
            try:
                return quarantine_whole(self._connection(), item, rejection, self._budget)
            except psycopg.Error as exc:
                self._report(CommitEvent("retry", logging.WARNING, f"quarantine: {exc}"))
            self._drop_connection()
            if self._stop.wait(delay):
                raise Stopping
            delay = min(delay * 2, _MAX_BACKOFF_S)

    def _connection(self) -> psycopg.Connection[Any]:
        if self._conn is None or self._conn.closed:
            self._conn = store.connect(
                self._url,
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


def _write_failed(exc: Exception) -> Rejection:
    detail = f"writing failed: {type(exc).__name__}: {exc}"
    return Rejection(QuarantineReason.INGEST_ERROR, detail[:300])
