"""Commit process: parse and write in a child process, so the MQTT thread has a core to itself.

Python runs one thread at a time per process. Profiled under a backlog, the worker spent about
half its time in paho (reading packets, sending acknowledgements) and a third parsing and
writing; in one process the two take turns. Here the parent keeps the broker session, the order
of acknowledgements, the logs and the metrics; the child (``ingest.commit_child``) keeps the
database connections.

Nothing about what is acknowledged changes: a batch is acknowledged only after the child says it
is committed, and batches are acknowledged in the order they were received (MQTT requires
PUBACKs in PUBLISH order). Failure cases, each with the answer "unacknowledged means the broker
keeps it, and msg_id de-duplication makes a redelivery harmless":

- the child dies (killed, out of memory, a bug): the parent starts a new one and sends it every
  batch still in flight, in order; what the dead one had committed comes back as duplicates;
- a message that kills the child every time: ``ingest.commit_ledger`` charges each death to
  the batches uncommitted at it and narrows down to the message, which is quarantined as
  ``ingest_crash`` unparsed, after about 2 + log2(N) restarts for a batch of N;
- the parent dies: the child reads end-of-file on its pipe and exits; the broker redelivers;
- stop while the database is down: the parent asks the child to stop (SIGTERM), the child
  abandons its retry loop, and the batches in flight stay unacknowledged.

The child is started with ``spawn``, not ``fork``: the parent has threads (paho's, the metrics
server's) and forking a threaded process copies locks in whatever state they were in.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any

from homecare.ingest.commit_child import WRITERS, serve
from homecare.ingest.commit_ledger import Batch, CommitLedger
from homecare.ingest.commit_wire import READY, CommitSummary, to_wire
from homecare.ingest.committer import CommitEvent, Stopping
from homecare.ingest.model import Delivery
from homecare.ingest.parse import ParseLimits
from homecare.ingest.writer import QuarantineBudget

__all__ = ["CommitProcess", "Committed"]

log = logging.getLogger(__name__)
_MAX_BACKOFF_S = 10.0
_DEPTH = WRITERS + 1  # batches in flight: one per committer, and the next one being parsed


Committed = Callable[[list[Delivery], CommitSummary, float], None]


class CommitProcess:
    """CommitProcess is the parent's handle on the child that commits batches in order.

    ``submit`` hands a batch over (waiting while ``_DEPTH`` are in flight); a reader thread takes
    the child's answers and calls ``on_committed(deliveries, summary, seconds)`` for each batch,
    in submission order even when the child commits them out of order, and ``on_event`` for
    retries, splits and restarts as they happen.
    """

    def __init__(
        self,
        database_url: str,
        limits: ParseLimits,
        on_committed: Committed,
        on_event: Callable[[CommitEvent], None],
        start_timeout_s: float = 60.0,
        budget: QuarantineBudget | None = None,
    ) -> None:
        self._url = database_url
        self._limits = limits
        self._budget = budget or QuarantineBudget()
        self._on_committed = on_committed
        self._on_event = on_event
        self._start_timeout_s = start_timeout_s
        self._context = multiprocessing.get_context("spawn")
        self._process: Any = None  # multiprocessing's SpawnProcess (untyped in typeshed)
        self._pipe: Connection | None = None
        self._ledger = CommitLedger(on_event)
        self._restarts = 0
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._closing = threading.Event()
        self._troubled = False  # the child reported a retry since its last commit
        self._reader: threading.Thread | None = None

    @property
    def pid(self) -> int | None:
        """pid is the child's process id (for operators and tests), None when none runs."""
        process = self._process
        return process.pid if process is not None else None

    @property
    def restarts(self) -> int:
        """restarts counts the children that died and were replaced since ``start``."""
        return self._restarts

    @property
    def in_flight(self) -> int:
        """in_flight counts batches submitted and not yet handed back in order."""
        return len(self._ledger)

    @property
    def depth(self) -> int:
        """depth is how many batches may be in flight before ``submit`` waits."""
        return _DEPTH

    def start(self) -> None:
        """start runs the child, waits until it is ready, and starts reading its answers."""
        self._spawn()
        self._reader = threading.Thread(
            target=self._read_answers, name="ingest-commit-answers", daemon=True
        )
        self._reader.start()

    def submit(self, deliveries: list[Delivery], stop: threading.Event) -> None:
        """submit hands ``deliveries`` to the child; raises Stopping if ``stop`` is set while
        waiting for room (the batch is then not in flight and stays unacknowledged)."""
        wire = to_wire(deliveries)
        with self._changed:
            while len(self._ledger) >= _DEPTH:
                if stop.is_set():
                    raise Stopping
                self._changed.wait(0.1)
            self._ledger.add(deliveries, wire, time.perf_counter())
            self._pump()

    def close(self, grace_s: float = 5.0) -> None:
        """close lets the batches in flight commit (up to ``grace_s``, unless the database is
        failing), then ends the child: asks nicely, then insists."""
        deadline = time.monotonic() + grace_s
        with self._changed:
            while self._ledger and not self._troubled and time.monotonic() < deadline:
                self._changed.wait(0.05)
            self._closing.set()
            process, pipe = self._process, self._pipe
        if process is not None:
            # Under the lock: the reader thread may be resending to a new child right now, and two
            # writers on one pipe would interleave their bytes. Not forever: a child being
            # started can hold the lock for its start timeout.
            if pipe is not None and self._lock.acquire(timeout=1):
                try:
                    with contextlib.suppress(OSError):
                        pipe.send(None)
                finally:
                    self._lock.release()
            process.join(0.5 if self._troubled else 5)
            if process.is_alive():
                os.kill(process.pid, signal.SIGTERM)  # abandons a retry loop
                process.join(5)
            if process.is_alive():
                process.kill()
                process.join(5)
        if self._reader is not None:
            self._reader.join(5)
        with self._changed:
            self._reap()

    def _spawn(self) -> None:
        parent_end, child_end = self._context.Pipe(duplex=True)
        process = self._context.Process(
            target=serve,
            args=(child_end, self._url, self._limits, self._budget),
            name="homecare-ingest-commit",
            daemon=True,
        )
        process.start()
        child_end.close()
        ready = parent_end.poll(self._start_timeout_s) and parent_end.recv() == READY
        if not ready:
            process.kill()
            process.join(5)
            parent_end.close()
            raise RuntimeError(f"commit process not ready within {self._start_timeout_s:g}s")
        self._process, self._pipe = process, parent_end

    def _read_answers(self) -> None:
        while not self._closing.is_set():
            pipe = self._pipe
            try:
                if pipe is None:
                    raise EOFError
                kind, value = pipe.recv()
            except (EOFError, OSError):
                if self._closing.is_set():
                    return
                self._replace_child()
                continue
            if kind == "done":
                part_id, counts = value
                for batch in self._committed_in_order(part_id, CommitSummary(*counts)):
                    assert batch.summary is not None
                    seconds = time.perf_counter() - batch.sent_at
                    try:
                        self._on_committed(batch.deliveries, batch.summary, seconds)
                    except Exception:
                        log.exception("handling a committed batch failed; it is stored")
            else:
                if value.kind == "retry":
                    self._troubled = True
                self._on_event(value)

    def _committed_in_order(self, part_id: int, summary: CommitSummary) -> list[Batch]:
        """_committed_in_order records a part's commit and returns the batches now
        acknowledgeable: the oldest ones, up to the first still uncommitted."""
        with self._changed:
            self._troubled = False
            ready = self._ledger.committed(part_id, summary)
            if ready:
                self._changed.notify_all()
            self._pump()
        return ready

    def _pump(self) -> None:
        """_pump sends the child what the ledger says it may have now. Holds the lock."""
        if self._pipe is None:
            return
        for message in self._ledger.to_send():
            with contextlib.suppress(OSError):  # a dead child: the reader thread resends
                self._pipe.send(message)

    def _replace_child(self) -> None:
        """_replace_child starts a new child after a death and resends what was in flight."""
        delay = 0.25
        with self._changed:
            reason = self._reap()
            self._restarts += 1
            resent = self._ledger.child_died()
        self._on_event(
            CommitEvent(
                "restart",
                logging.ERROR,
                f"commit process ended ({reason}); starting a new one and resending"
                f" {resent} batch(es)",
            )
        )
        while not self._closing.wait(delay):
            with self._changed:
                try:
                    self._spawn()
                except (RuntimeError, OSError) as exc:
                    self._on_event(CommitEvent("restart", logging.ERROR, str(exc)))
                    delay = min(delay * 2, _MAX_BACKOFF_S)
                    continue
                self._pump()
                return

    def _reap(self) -> str:
        """_reap forgets the child (joined if it ended) and says how it ended. Holds the lock."""
        process, pipe = self._process, self._pipe
        self._process, self._pipe = None, None
        if pipe is not None:
            pipe.close()
        if process is None:
            return "never started"
        process.join(1)
        code = process.exitcode
        if code is None:
            return "still running"
        if code < 0:
            return f"killed by signal {-code}"
        return f"exit code {code}"
