"""Dispatch: delivers the notification outbox through the channels, with one retry policy.

A dispatcher claims due rows (``FOR UPDATE SKIP LOCKED``, then a lease: ``next_attempt_at`` moved
past the claim so another dispatcher leaves them alone while this one sends), commits, sends
outside any transaction, and records the outcome: ``sent``; or, on ``Retryable``, the next try
after the policy's backoff (stored, not slept); or ``dead`` after ``max_attempts`` tries or at
once on ``Permanent``. Every try is a ``notification_attempts`` row. A process that dies mid-send
leaves the row to be retried when its lease runs out (at-least-once: webhook receivers get a
delivery id to de-duplicate). ``replay_dead`` puts dead letters back in the queue.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import psycopg

from homecare.alerts import repository as repo
from homecare.alerts.config import AlertsConfig
from homecare.alerts.errors import Permanent, Retryable

__all__ = ["Channel", "Dispatcher", "OutgoingNotification", "replay_dead"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class OutgoingNotification:
    """OutgoingNotification is one notification to send: its id, where to, and the exact body
    (named apart from the ingest's ``Delivery``, an MQTT message)."""

    id: int
    target: str
    body: str
    attempt: int  # 1-based number of this try


class Channel(Protocol):
    """Channel: one way to notify; raises only ``Retryable`` or ``Permanent``."""

    def send(self, delivery: OutgoingNotification) -> None: ...


class Dispatcher:
    """Dispatcher sends due notifications through ``channels`` (by channel name)."""

    def __init__(self, config: AlertsConfig, channels: Mapping[str, Channel]) -> None:
        self.config = config
        self.channels = dict(channels)

    def run_once(self, conn: psycopg.Connection[Any]) -> int:
        """run_once sends up to ``dispatch_batch`` due notifications; returns how many it tried."""
        now = self.config.clock()
        with conn.transaction():
            claimed = conn.execute(
                "UPDATE notifications SET next_attempt_at = %s WHERE id IN (SELECT id FROM"
                " notifications WHERE status = 'pending' AND next_attempt_at <= %s"
                " ORDER BY next_attempt_at, id LIMIT %s FOR UPDATE SKIP LOCKED)"
                " RETURNING id, channel, target, body, attempts",
                (now + self.config.claim_lease, now, self.config.dispatch_batch),
            ).fetchall()
        for nid, channel, target, body, attempts in sorted(claimed):
            self._deliver(conn, channel, OutgoingNotification(nid, target, body, attempts + 1))
        return len(claimed)

    def _deliver(
        self, conn: psycopg.Connection[Any], channel: str, delivery: OutgoingNotification
    ) -> None:
        started = time.monotonic()
        outcome, error = "sent", None
        sender = self.channels.get(channel)
        try:
            if sender is None:
                raise Permanent(f"no channel {channel!r} configured")
            sender.send(delivery)
        except Retryable as exc:
            outcome, error = "retryable", str(exc)
        except Permanent as exc:
            outcome, error = "permanent", str(exc)
        except Exception as exc:  # a channel bug: keep the notification, retry later
            log.exception("channel %s raised outside its contract", channel)
            outcome, error = "retryable", f"{type(exc).__name__}: {exc}"
        now = self.config.clock()
        elapsed = int((time.monotonic() - started) * 1000)
        with conn.transaction():
            conn.execute(
                "INSERT INTO notification_attempts (notification_id, at, outcome, error,"
                " duration_ms) VALUES (%s, %s, %s, %s, %s)",
                (delivery.id, now, outcome, error, elapsed),
            )
            if outcome == "sent":
                conn.execute(
                    "UPDATE notifications SET status = 'sent', attempts = %s, sent_at = %s,"
                    " last_error = NULL WHERE id = %s",
                    (delivery.attempt, now, delivery.id),
                )
            elif outcome == "permanent" or delivery.attempt >= self.config.retry.max_attempts:
                conn.execute(
                    "UPDATE notifications SET status = 'dead', attempts = %s, last_error = %s"
                    " WHERE id = %s",
                    (delivery.attempt, error, delivery.id),
                )
                log.warning(
                    "notification dead-lettered",
                    extra={"notification": delivery.id, "attempts": delivery.attempt},
                )
            else:
                conn.execute(
                    "UPDATE notifications SET attempts = %s, last_error = %s,"
                    " next_attempt_at = %s WHERE id = %s",
                    (
                        delivery.attempt,
                        error,
                        now + self.config.retry.delay(delivery.attempt),
                        delivery.id,
                    ),
                )


def replay_dead(
    conn: psycopg.Connection[Any],
    actor: str,
    now: datetime,
    notification_ids: list[int] | None = None,
) -> int:
    """replay_dead re-queues dead letters (all, or the given ids) with fresh attempts; audited."""
    with conn.transaction():
        rows = conn.execute(
            "UPDATE notifications SET status = 'pending', attempts = 0, next_attempt_at = %s"
            " WHERE status = 'dead' AND (%s::bigint[] IS NULL OR id = ANY(%s)) RETURNING id",
            (now, notification_ids, notification_ids),
        ).fetchall()
        ids = [int(r[0]) for r in rows]
        if ids:
            repo.audit(conn, actor, "notification.replay", "notifications", {"ids": ids})
    return len(ids)
