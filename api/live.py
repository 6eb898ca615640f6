"""Live: the alert changes of ``alerts.AlertStream`` fanned out to SSE clients, each filtered to
the patients its principal may see.

One ``AlertStream`` (one LISTEN connection) per API process, started with the first client.
A pump thread takes each change, looks up the patient's care team (one indexed query per change
— alert changes are few, and a cache would keep showing a transferred patient to the old team),
and hands the change to the event loop of every client allowed to see it. Each client has a
bounded queue: a client too slow to read loses its oldest changes, not the others' (the
dashboard re-reads the queue on reconnect, as for any gap), and holding a client costs no
thread — 200 clients are 200 small queues and one thread.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import uuid
from collections.abc import Collection
from typing import Any

import psycopg

from homecare import store
from homecare.alerts import AlertStream, Subscription

__all__ = ["LiveClient", "LiveHub"]

log = logging.getLogger(__name__)


class LiveClient:
    """LiveClient is one SSE client's bounded queue and the care teams it may see."""

    def __init__(
        self,
        hub: LiveHub,
        teams: Collection[str] | None,
        maxsize: int,
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        self._hub = hub
        self.teams = None if teams is None else frozenset(teams)
        self.loop = loop
        self.queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(maxsize)
        self.dropped = 0
        self.ended = False

    def allows(self, team: str | None) -> bool:
        """allows: the client may see a change of a patient of ``team``."""
        return self.teams is None or (team is not None and team in self.teams)

    def _put(self, change: dict[str, Any]) -> None:  # runs on the client's event loop
        if self.queue.full():
            self.queue.get_nowait()
            self.dropped += 1
        self.queue.put_nowait(change)

    def _end(self) -> None:  # runs on the client's event loop
        self.ended = True
        if self.queue.full():
            self.queue.get_nowait()
        self.queue.put_nowait({})

    async def get(self, timeout: float) -> dict[str, Any] | None:
        """get waits up to ``timeout`` seconds for the next change (None: none came); an
        empty dict means the server is shutting down and the stream should end."""
        try:
            return await asyncio.wait_for(self.queue.get(), timeout)
        except TimeoutError:
            return None

    def close(self) -> None:
        """close stops delivery to this client."""
        self._hub._remove(self)


class LiveHub:
    """LiveHub owns the process's alert stream and its clients."""

    def __init__(self, database_url: str) -> None:
        self.database_url = database_url
        self._clients: set[LiveClient] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._stream: AlertStream | None = None
        self._thread: threading.Thread | None = None

    @property
    def client_count(self) -> int:
        with self._lock:
            return len(self._clients)

    def start(self) -> None:
        """start opens the LISTEN connection and the pump once (blocking: call it from a
        worker thread, not the event loop); later calls return at once."""
        with self._lock:
            if self._thread is not None:
                return
            self._stream = AlertStream(self.database_url).start()
            subscription = self._stream.subscribe(maxsize=10_000)
            self._thread = threading.Thread(
                target=self._pump, args=(subscription,), name="api-live", daemon=True
            )
            self._thread.start()

    def subscribe(self, teams: Collection[str] | None, maxsize: int = 1000) -> LiveClient:
        """subscribe adds a client on the running event loop (after ``start``)."""
        client = LiveClient(self, teams, maxsize, asyncio.get_running_loop())
        with self._lock:
            self._clients.add(client)
        return client

    def end_streams(self) -> None:
        """end_streams tells every client's stream to finish (server shutting down), so the
        server's graceful shutdown does not wait out its timeout on open streams."""
        with self._lock:
            clients = list(self._clients)
        for client in clients:
            try:
                client.loop.call_soon_threadsafe(client._end)
            except RuntimeError:
                self._remove(client)

    def stop(self) -> None:
        """stop ends the streams, the pump and the LISTEN connection (app shutdown)."""
        self.end_streams()
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self._stream is not None:
            self._stream.stop()

    def _remove(self, client: LiveClient) -> None:
        with self._lock:
            self._clients.discard(client)

    def _pump(self, subscription: Subscription) -> None:
        conn: psycopg.Connection[Any] | None = None
        while not self._stop.is_set():
            change = subscription.get(timeout=0.5)
            if change is None:
                continue
            try:
                if conn is None or conn.closed:
                    conn = store.connect(
                        self.database_url, autocommit=True, application_name="homecare-api-live"
                    )
                team = _care_team(conn, change)
            except psycopg.Error as exc:
                log.warning("live stream: care team lookup failed", extra={"error": str(exc)})
                conn = None
                continue  # not knowing the team, show it to nobody rather than to everybody
            with self._lock:
                clients = [c for c in self._clients if c.allows(team)]
            for client in clients:
                try:
                    client.loop.call_soon_threadsafe(client._put, change)
                except RuntimeError:  # the client's loop is closed: it has gone
                    self._remove(client)
        if conn is not None:
            conn.close()


def _care_team(conn: psycopg.Connection[Any], change: dict[str, Any]) -> str | None:
    patient = (change.get("alert") or {}).get("patient_id")
    try:
        patient_id = uuid.UUID(str(patient))
    except ValueError:
        return None
    row = conn.execute("SELECT care_team FROM patients WHERE id = %s", (patient_id,)).fetchone()
    return row[0] if row else None
