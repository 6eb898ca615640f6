"""Commit ledger: the batches in flight to the commit process, and which child deaths hit which.

Unacknowledged means the broker keeps a message, and msg_id de-duplication makes a redelivery
harmless, so every failure of the commit process is answered by sending again what it had not
committed. What must not happen is an endless loop on a message that kills the child every time
(a poison message the parser and writer did not catch). The ledger isolates it:

- every part (a run of a batch's messages) uncommitted at a child's death takes a strike, and
  while any part has one, parts are sent one at a time, so the next death names its part;
- a part with two strikes is split in halves (each starting with one strike) until the message
  is alone; alone with two strikes, it is sent in ``"crash"`` mode: quarantined as
  ``ingest_crash`` without being parsed, and every other message of the batch is stored.

A batch of N messages costs about 2 + log2(N) restarts. The ledger also puts commits back in
submission order: the child's writers may commit batches out of order, but MQTT requires
PUBACKs in PUBLISH order, so a batch is handed back only once every older one has been.

The ledger is plain bookkeeping with no lock of its own: ``ingest.commit_process`` calls it
under its lock and does the sending.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from homecare.ingest.commit_wire import CommitSummary, Wire
from homecare.ingest.committer import CommitEvent
from homecare.ingest.model import Delivery

__all__ = ["Batch", "CommitLedger"]


@dataclass
class _Part:
    """_Part is a run of a batch's messages sent to the child as one unit."""

    wire: Wire
    strikes: int = 0  # child deaths while it was sent and uncommitted
    sent: bool = False
    summary: CommitSummary | None = None


@dataclass
class Batch:
    """Batch is one submitted batch: its deliveries, when it was sent, and its parts."""

    deliveries: list[Delivery]
    sent_at: float
    parts: list[int]  # part ids, in message order; a split replaces one by its halves
    summary: CommitSummary | None = None  # set when committed, possibly before older batches


class CommitLedger:
    """CommitLedger keeps the batches in flight, in submission order, and their parts."""

    def __init__(self, on_event: Callable[[CommitEvent], None]) -> None:
        self._on_event = on_event
        self._batches: OrderedDict[int, Batch] = OrderedDict()
        self._parts: dict[int, tuple[int, _Part]] = {}  # part id -> (batch seq, part)
        self._next_seq = 0
        self._next_part = 0

    def __len__(self) -> int:
        """The number of batches submitted and not yet handed back in order."""
        return len(self._batches)

    def add(self, deliveries: list[Delivery], wire: Wire, sent_at: float) -> None:
        """add files a new batch, as one part, after every batch in flight."""
        seq, self._next_seq = self._next_seq, self._next_seq + 1
        self._batches[seq] = Batch(deliveries, sent_at, [])
        self._add_parts(seq, [_Part(wire)])

    def committed(self, part_id: int, summary: CommitSummary) -> list[Batch]:
        """committed records a part's commit and returns the batches now acknowledgeable: the
        oldest ones, up to the first still uncommitted."""
        seq, part = self._parts[part_id]
        part.summary = summary
        batch = self._batches[seq]
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
        ready = []
        while self._batches:
            oldest = next(iter(self._batches.values()))
            if oldest.summary is None:
                break
            ready.append(self._batches.popitem(last=False)[1])
        return ready

    def to_send(self) -> list[tuple[int, Wire, str]]:
        """to_send marks sent, and returns as ``(part id, wire, mode)``, what the child may have
        now.

        Normally every part goes at once. While a part has a strike (it was uncommitted when a
        child died), parts go one at a time, so that a death is charged to the one part that
        caused it; a part with two strikes is split before it goes, or, alone, quarantined.
        """
        unfinished = self._unfinished()
        careful = any(part.strikes for _, _, part in unfinished)
        sends: list[tuple[int, Wire, str]] = []
        for seq, part_id, part in unfinished:
            if part.sent:
                if careful:
                    return sends
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
                return sends + self.to_send()
            if part.strikes >= 2:
                mode = "crash"
            part.sent = True
            sends.append((part_id, part.wire, mode))
            if careful:
                return sends
        return sends

    def child_died(self) -> int:
        """child_died charges a strike to every part the dead child had and did not commit, to
        be sent again; returns how many batches are to be resent."""
        resent = set()
        for seq, _, part in self._unfinished():
            if part.sent:  # what the dead child committed stays committed
                part.strikes += 1
                part.sent = False
            resent.add(seq)
        return len(resent)

    def _add_parts(self, seq: int, parts: list[_Part], instead_of: int | None = None) -> None:
        """_add_parts files ``parts`` under batch ``seq``, in place of part ``instead_of``."""
        ids = []
        for part in parts:
            part_id, self._next_part = self._next_part, self._next_part + 1
            self._parts[part_id] = (seq, part)
            ids.append(part_id)
        batch = self._batches[seq]
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
            for seq, batch in self._batches.items()
            if batch.summary is None
            for part_id in batch.parts
            if (part := self._parts[part_id][1]).summary is None
        ]
