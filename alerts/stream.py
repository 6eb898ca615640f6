"""Stream: the live stream of alert changes, for the dashboard (served as Server-Sent Events).

Changes are announced with PostgreSQL NOTIFY in the transaction that made them
(``alerts.outbox.announce``), so every process — whichever committed the change — can feed its
own clients. ``AlertStream`` is an in-process broadcaster: one thread LISTENs on its own
connection and fans each change out to subscribers' bounded queues. A subscriber too slow to
keep up loses its oldest events, not the others' (``Subscription.dropped`` counts them, and the
client should then re-read the queue from ``GET /alerts``). The connection is re-opened when it
drops; changes made while it was down are not replayed (the dashboard re-reads on reconnect).

``sse`` formats one change as a Server-Sent Events frame.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
from typing import Any

import psycopg

from homecare import store
from homecare.alerts.outbox import STREAM_CHANNEL

__all__ = ["AlertStream", "Subscription", "sse"]

log = logging.getLogger(__name__)


def sse(change: dict[str, Any]) -> bytes:
    """sse is one Server-Sent Events frame for a change (``event: alert``)."""
    alert = change.get("alert") or {}
    data = json.dumps(change, separators=(",", ":"))
    return f"id: {alert.get('id', '')}\nevent: alert\ndata: {data}\n\n".encode()


class Subscription:
    """Subscription is one client's bounded queue of changes."""

    def __init__(self, stream: AlertStream, maxsize: int) -> None:
        self._stream = stream
        self._queue: queue.Queue[dict[str, Any]] = queue.Queue(maxsize)
        self.dropped = 0

    def get(self, timeout: float | None = None) -> dict[str, Any] | None:
        """get waits up to ``timeout`` seconds for the next change (None: nothing came)."""
        try:
            return self._queue.get(timeout=timeout)
        except queue.Empty:
            return None

    def _put(self, change: dict[str, Any]) -> None:
        while True:
            try:
                self._queue.put_nowait(change)
                return
            except queue.Full:
                try:
                    self._queue.get_nowait()
                    self.dropped += 1
                except queue.Empty:
                    pass

    def close(self) -> None:
        """close stops delivery to this subscription."""
        self._stream._unsubscribe(self)


class AlertStream:
    """AlertStream LISTENs for alert changes and broadcasts them to subscribers."""

    def __init__(self, database_url: str, reconnect_s: float = 1.0) -> None:
        self.database_url = database_url
        self.reconnect_s = reconnect_s
        self._subscribers: set[Subscription] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> AlertStream:
        """start begins listening (in a daemon thread); returns once LISTEN is in place."""
        self._thread = threading.Thread(target=self._run, name="alert-stream", daemon=True)
        self._thread.start()
        self._ready.wait(10)
        return self

    def stop(self) -> None:
        """stop ends the listening thread."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def subscribe(self, maxsize: int = 1000) -> Subscription:
        """subscribe returns a new subscription receiving every change from now on."""
        subscription = Subscription(self, maxsize)
        with self._lock:
            self._subscribers.add(subscription)
        return subscription

    def _unsubscribe(self, subscription: Subscription) -> None:
        with self._lock:
            self._subscribers.discard(subscription)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                with store.connect(
                    self.database_url, autocommit=True, application_name="homecare-alert-stream"
                ) as conn:
                    conn.execute(f"LISTEN {STREAM_CHANNEL}")
                    self._ready.set()
                    while not self._stop.is_set():
                        for notify in conn.notifies(timeout=0.5):
                            self._broadcast(notify.payload)
            except psycopg.Error as exc:
                log.warning("alert stream connection lost", extra={"error": str(exc)})
                self._stop.wait(self.reconnect_s)

    def _broadcast(self, payload: str) -> None:
        try:
            change = json.loads(payload)
        except ValueError:
            return
        with self._lock:
            subscribers = list(self._subscribers)
        for subscription in subscribers:
            subscription._put(change)
