"""Commit child: the process that parses and writes the ingest worker's batches.

It keeps the database connections and runs ``BatchCommitter`` on two of them. Profiled, one
committer spent half its time waiting for PostgreSQL; with two, and the next batch parsed
meanwhile, the child's Python work overlaps the server's instead of waiting for it. Concurrent
transactions are what several ingest workers on a shared subscription do anyway: a message in
two of them is stored once (the second waits for the first's unique key), and a rare deadlock
between them is retried like any transient error.

How it ends, each time leaving unacknowledged what it had not committed (the broker keeps it):

- the parent sends ``None``: the writers commit what they have, then the child exits;
- the parent dies: the child reads end-of-file on its pipe and exits;
- SIGTERM (the parent stopping while the database is down): the child abandons its retry loop
  at once, and transactions under way roll back;
- a bug: the child reports the traceback to the parent, which logs it, and exits with code 70;
  the parent starts a new one (``ingest.commit_ledger`` keeps that from looping forever).
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import signal
import threading
import traceback
from multiprocessing.connection import Connection
from typing import Any

from homecare.ingest.commit_wire import READY, deliveries_from_wire, summary_counts
from homecare.ingest.committer import BatchCommitter, CommitEvent, Stopping
from homecare.ingest.model import (
    Delivery,
    ParsedMessage,
    QuarantineReason,
    RejectedMessage,
    Rejection,
)
from homecare.ingest.parse import ParseLimits, device_id_from_topic, parse_message
from homecare.ingest.writer import QuarantineBudget

__all__ = ["WRITERS", "serve"]

WRITERS = 2  # committers (connections) in the child


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


def serve(
    pipe: Connection, database_url: str, limits: ParseLimits, budget: QuarantineBudget
) -> None:
    """serve handles batches until told to stop or the parent is gone (the child's main).

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
    committers = [BatchCommitter(database_url, stop, report, budget) for _ in range(WRITERS)]

    def write(committer: BatchCommitter) -> None:
        try:
            while (job := parsed.get()) is not None:
                seq, items = job
                send(("done", (seq, summary_counts(committer.write(items)))))
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
    send(READY)

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
            deliveries = deliveries_from_wire(wire)
            if mode == "crash":
                put((part_id, [_crashed(delivery) for delivery in deliveries]))
            else:
                put((part_id, [parse_message(delivery, limits) for delivery in deliveries]))
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
