"""Commit process: parse and write in a child process, so the MQTT thread has a core to itself.

Python runs one thread at a time per process. Profiled under a backlog, the worker spent about
half its time in paho (reading packets, sending acknowledgements) and a third parsing and
writing; in one process the two take turns. Here the parent keeps the broker session, the order
of acknowledgements, the logs and the metrics; the child keeps the database connection and runs
``BatchCommitter`` on two connections. Profiled, one committer spent half its time waiting for
PostgreSQL; with two, and the next batch parsed meanwhile, the child's Python work overlaps the
server's instead of waiting for it. Concurrent transactions are what several ingest workers on
a shared subscription do anyway: a message in two of them is stored once (the second waits for
the first's unique key), and a rare deadlock between them is retried like any transient error.

Nothing about what is acknowledged changes: a batch is acknowledged only after the child says it
is committed, and batches are acknowledged in the order they were received (MQTT requires
PUBACKs in PUBLISH order). Failure cases, each with the answer "unacknowledged means the broker
keeps it, and msg_id de-duplication makes a redelivery harmless":

- the child dies (killed, out of memory, a bug): the parent starts a new one and sends it every
  batch still in flight, in order; what the dead one had committed comes back as duplicates;
- a message that kills the child every time (a poison message the parser and writer did not
  catch): every batch uncommitted at a death takes a strike, and while any has one, batches are
  sent one at a time, so the next death names its batch. A batch with two strikes is split in
  halves (each starting with one strike) until the message is alone; alone with two strikes,
  it is quarantined as ``ingest_crash`` without being parsed, and every other message of the
  batch is stored. A batch of N messages costs about 2 + log2(N) restarts, not an endless loop;
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
import queue
import signal
import threading
import time
import traceback
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from multiprocessing.connection import Connection
from typing import Any, NamedTuple

from ingest.committer import BatchCommitter, CommitEvent, Stopping
from ingest.model import Delivery, ParsedMessage, QuarantineReason, RejectedMessage, Rejection
from ingest.parse import ParseLimits, device_id_from_topic, parse_message
from ingest.writer import QuarantineBudget

__all__ = ["CommitProcess", "CommitSummary"]

log = logging.getLogger(__name__)
_MAX_BACKOFF_S = 10.0
_WRITERS = 2  # committers (connections) in the child
_DEPTH = _WRITERS + 1  # batches in flight: one per committer, and the next one being parsed

# What crosses the pipe: plain tuples pickle several times faster than the frozen dataclasses.
_Wire = list[tuple[str, bytes, datetime]]


class CommitSummary(NamedTuple):
    """CommitSummary counts what one committed batch did (the child's BatchOutcome, flattened)."""

    messages_new: int
    messages_duplicate: int
    messages_quarantined: int
    readings_stored: int
    quarantined: dict[str, int]
    payloads_dropped: int = 0

    def merged(self, other: CommitSummary) -> CommitSummary:
        """merged adds the counts of another part of the same batch."""
        reasons = dict(self.quarantined)
        for reason, n in other.quarantined.items():
            reasons[reason] = reasons.get(reason, 0) + n
        return CommitSummary(
            self.messages_new + other.messages_new,
            self.messages_duplicate + other.messages_duplicate,
            self.messages_quarantined + other.messages_quarantined,
            self.readings_stored + other.readings_stored,
            reasons,
            self.payloads_dropped + other.payloads_dropped,
        )


@dataclass
class _Part:
    """_Part is a run of a batch's messages sent to the child as one unit."""

    wire: _Wire
    strikes: int = 0  # child deaths while it was sent and uncommitted
    sent: bool = False
    summary: CommitSummary | None = None


@dataclass
class _InFlight:
    deliveries: list[Delivery]
    sent_at: float
    parts: list[int]  # part ids, in message order; a split replaces one by its halves
    summary: CommitSummary | None = None  # set when committed, possibly before older batches


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
        self._inflight: OrderedDict[int, _InFlight] = OrderedDict()
        self._parts: dict[int, tuple[int, _Part]] = {}  # part id -> (batch seq, part)
        self._next_seq = 0
        self._next_part = 0
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
        return len(self._inflight)

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
        wire: _Wire = [(d.topic, d.payload, d.received_at) for d in deliveries]
        with self._changed:
            while len(self._inflight) >= _DEPTH:
                if stop.is_set():
                    raise Stopping
                self._changed.wait(0.1)
            seq, self._next_seq = self._next_seq, self._next_seq + 1
            self._inflight[seq] = _InFlight(deliveries, time.perf_counter(), [])
            self._add_parts(seq, [_Part(wire)])
            self._pump()

    def close(self, grace_s: float = 5.0) -> None:
        """close lets the batches in flight commit (up to ``grace_s``, unless the database is
        failing), then ends the child: asks nicely, then insists."""
        deadline = time.monotonic() + grace_s
        with self._changed:
            while self._inflight and not self._troubled and time.monotonic() < deadline:
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
            target=_child_main,
            args=(child_end, self._url, self._limits, self._budget),
            name="homecare-ingest-commit",
            daemon=True,
        )
        process.start()
        child_end.close()
        ready = parent_end.poll(self._start_timeout_s) and parent_end.recv() == ("ready",)
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

    def _committed_in_order(self, part_id: int, summary: CommitSummary) -> list[_InFlight]:
        """_committed_in_order records a part's commit and returns the batches now
        acknowledgeable: the oldest ones, up to the first still uncommitted."""
        ready = []
        with self._changed:
            seq, part = self._parts[part_id]
            part.summary = summary
            self._troubled = False
            batch = self._inflight[seq]
            summaries = [self._parts[p][1].summary for p in batch.parts]
            if all(s is not None for s in summaries):
                total = summaries[0]
                assert total is not None
                for other in summaries[1:]:
                    assert other is not None
                    total = total.merged(other)
                batch.summary = total
                for p in batch.parts:
                    del self._parts[p]
            while self._inflight:
                oldest = next(iter(self._inflight.values()))
                if oldest.summary is None:
                    break
                ready.append(self._inflight.popitem(last=False)[1])
            if ready:
                self._changed.notify_all()
            self._pump()
        return ready

    def _add_parts(self, seq: int, parts: list[_Part], instead_of: int | None = None) -> None:
        """_add_parts files ``parts`` under batch ``seq``, in place of part ``instead_of``."""
        ids = []
        for part in parts:
            part_id, self._next_part = self._next_part, self._next_part + 1
            self._parts[part_id] = (seq, part)
            ids.append(part_id)
        batch = self._inflight[seq]
        if instead_of is None:
            batch.parts.extend(ids)
        else:
            at = batch.parts.index(instead_of)
            batch.parts[at : at + 1] = ids
            del self._parts[instead_of]

    def _unfinished(self) -> list[tuple[int, int, _Part]]:
        """_unfinished lists (batch seq, part id, part) not yet committed, in message order."""
        return [
            (seq, part_id, part)
            for seq, batch in self._inflight.items()
            if batch.summary is None
            for part_id in batch.parts
            if (part := self._parts[part_id][1]).summary is None
        ]

    def _pump(self) -> None:
        """_pump sends the child what it may have now. Holds the lock.

        Normally every part goes at once. While a part has a strike (it was uncommitted when a
        child died), parts go one at a time, so that a death is charged to the one part that
        caused it; a part with two strikes is split before it goes, or, alone, quarantined.
        """
        if self._pipe is None:
            return
        unfinished = self._unfinished()
        careful = any(part.strikes for _, _, part in unfinished)
        for seq, part_id, part in unfinished:
            if part.sent:
                if careful:
                    return
                continue
            mode = "write"
            if part.strikes >= 2 and len(part.wire) > 1:
                half = len(part.wire) // 2
                halves = [_Part(part.wire[:half], 1), _Part(part.wire[half:], 1)]
                self._add_parts(seq, halves, instead_of=part_id)
                self._on_event(
                    CommitEvent(
                        "split",
                        logging.WARNING,
                        f"a batch of {len(part.wire)} message(s) was uncommitted at"
                        f" {part.strikes} deaths of the commit process; trying it in halves",
                    )
                )
                self._pump()
                return
            if part.strikes >= 2:
                mode = "crash"
            part.sent = True
            with contextlib.suppress(OSError):  # a dead child: the reader thread resends
                self._pipe.send((part_id, part.wire, mode))
            if careful:
                return

    def _replace_child(self) -> None:
        """_replace_child starts a new child after a death and resends what was in flight."""
        delay = 0.25
        with self._changed:
            reason = self._reap()
            self._restarts += 1
            resent = set()
            for seq, _, part in self._unfinished():
                if part.sent:  # what the dead child committed stays committed
                    part.strikes += 1
                    part.sent = False
                resent.add(seq)
        self._on_event(
            CommitEvent(
                "restart",
                logging.ERROR,
                f"commit process ended ({reason}); starting a new one and resending"
                f" {len(resent)} batch(es)",
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


def _crashed(delivery: Delivery) -> RejectedMessage:
    """_crashed is the quarantine of a message that killed the commit process, unparsed: it is
    parsing or writing it that kills, so it only goes to quarantine, as raw bytes."""
    return RejectedMessage(
        delivery,
        device_id_from_topic(delivery.topic),
        None,
        Rejection(
            QuarantineReason.INGEST_CRASH,
            "the commit process died each time it handled this message; quarantined unparsed",
        ),
    )


def _child_main(
    pipe: Connection, database_url: str, limits: ParseLimits, budget: QuarantineBudget
) -> None:
    """_child_main serves batches until told to stop or the parent is gone.

    The main thread reads and parses; each writer thread commits on its own connection and
    answers with the batch's sequence number. While writers wait for PostgreSQL (which releases
    the GIL), the main thread parses the next batch and the other writer builds its statement.
    """
    stop = threading.Event()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    send_lock = threading.Lock()

    def send(message: tuple[Any, ...]) -> None:
        with send_lock:
            pipe.send(message)

    def report(event: CommitEvent) -> None:
        send(("event", event))

    def crash() -> None:
        # A bug: say what it was where the operator looks (the parent's log), then die; the
        # parent starts a new child and resends what is uncommitted, unacknowledged meanwhile.
        with contextlib.suppress(OSError):
            report(CommitEvent("crash", logging.ERROR, traceback.format_exc(limit=8)))
        os._exit(70)

    parsed: queue.Queue[tuple[int, list[ParsedMessage | RejectedMessage]] | None] = queue.Queue(
        maxsize=1
    )
    committers = [BatchCommitter(database_url, stop, report, budget) for _ in range(_WRITERS)]

    def write(committer: BatchCommitter) -> None:
        try:
            while (job := parsed.get()) is not None:
                seq, items = job
                outcome = committer.write(items)
                counts = (
                    outcome.messages_new,
                    outcome.messages_duplicate,
                    outcome.messages_quarantined,
                    len(outcome.stored),
                    dict(outcome.quarantined),
                    outcome.payloads_dropped,
                )
                send(("done", (seq, counts)))
        except (Stopping, BrokenPipeError, EOFError):
            stop.set()
        except BaseException:
            crash()

    writers = [
        threading.Thread(target=write, args=(committer,), name=f"commit-writer-{n}", daemon=True)
        for n, committer in enumerate(committers)
    ]
    for writer in writers:
        writer.start()
    send(("ready",))

    def put(job: tuple[int, list[ParsedMessage | RejectedMessage]] | None) -> bool:
        while not stop.is_set():
            try:
                parsed.put(job, timeout=0.5)
                return True
            except queue.Full:
                continue
        return False

    try:
        while not stop.is_set() and all(writer.is_alive() for writer in writers):
            if not pipe.poll(0.5):
                continue
            message = pipe.recv()  # EOFError when the parent is gone
            if message is None:
                break
            part_id, wire, mode = message
            if mode == "crash":
                put((part_id, [_crashed(Delivery(*fields)) for fields in wire]))
            else:
                put((part_id, [parse_message(Delivery(*fields), limits) for fields in wire]))
        # Asked to finish: let the writers commit what they have, then end. Asked to stop
        # (SIGTERM): end now; transactions under way roll back, their batches unacknowledged.
        if all(put(None) for _ in writers):
            for writer in writers:
                writer.join()
    except (EOFError, OSError):
        return  # the parent is gone: what is uncommitted was never acknowledged
    except BaseException:
        crash()
    finally:
        for committer in committers:
            committer.close()
