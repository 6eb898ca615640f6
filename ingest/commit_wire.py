"""Commit wire: what crosses the pipe between the ingest worker and its commit process.

The parent sends ``(part id, Wire, mode)`` for each run of messages to commit (``mode`` is
``"write"``, or ``"crash"`` for a run to quarantine unparsed, see ``ingest.commit_ledger``), and
``None`` to ask the child to finish. The child answers ``("ready",)`` once, then
``("done", (part id, counts))`` per committed run and ``("event", CommitEvent)`` for retries and
crashes as they happen.

Messages are plain tuples: they pickle several times faster than the frozen dataclasses they
stand for, and under a backlog the pipe carries every message of every batch.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, NamedTuple

from homecare.ingest.model import BatchOutcome, Delivery

__all__ = [
    "READY",
    "CommitSummary",
    "Wire",
    "deliveries_from_wire",
    "summary_counts",
    "to_wire",
]

# A run of deliveries as (topic, payload, received_at), in message order.
Wire = list[tuple[str, bytes, datetime]]
READY = ("ready",)


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


def to_wire(deliveries: list[Delivery]) -> Wire:
    """to_wire is the run of ``deliveries`` as the pipe carries it."""
    return [(d.topic, d.payload, d.received_at) for d in deliveries]


def deliveries_from_wire(wire: Wire) -> list[Delivery]:
    """deliveries_from_wire is the run the parent sent, as deliveries again."""
    return [Delivery(*fields) for fields in wire]


def summary_counts(outcome: BatchOutcome) -> tuple[Any, ...]:
    """summary_counts is a committed run's outcome as the pipe carries it: the fields of a
    ``CommitSummary``, in order, as a plain tuple."""
    return (
        outcome.messages_new,
        outcome.messages_duplicate,
        outcome.messages_quarantined,
        len(outcome.stored),
        dict(outcome.quarantined),
        outcome.payloads_dropped,
    )
