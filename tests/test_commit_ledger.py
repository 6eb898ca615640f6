"""The commit ledger on its own: in-order hand-back, strikes, halving and the poison message.

tests/test_ingest_commit_process.py kills real child processes; here the same bookkeeping is
driven step by step, so each rule (what is sent when, what a death costs) is checked exactly.
"""

from __future__ import annotations

from datetime import UTC, datetime

from homecare.ingest.commit_ledger import CommitLedger
from homecare.ingest.commit_wire import CommitSummary, to_wire
from homecare.ingest.committer import CommitEvent
from homecare.ingest.model import Delivery

AT = datetime(2026, 1, 1, tzinfo=UTC)
DONE = CommitSummary(1, 0, 0, 1, {})


def deliveries(*names: str) -> list[Delivery]:
    return [Delivery(f"homecare/v1/devices/{n}/readings", n.encode(), AT) for n in names]


def ledger_with(*batches: list[Delivery]) -> tuple[CommitLedger, list[CommitEvent]]:
    events: list[CommitEvent] = []
    ledger = CommitLedger(events.append)
    for batch in batches:
        ledger.add(batch, to_wire(batch), 0.0)
    return ledger, events


def payloads(send: tuple[int, list[tuple[str, bytes, datetime]], str]) -> list[bytes]:
    return [payload for _, payload, _ in send[1]]


def test_batches_come_back_in_submission_order_even_when_committed_out_of_order() -> None:
    first, second = deliveries("a"), deliveries("b")
    ledger, _ = ledger_with(first, second)
    sends = ledger.to_send()
    assert [payloads(s) for s in sends] == [[b"a"], [b"b"]]
    assert ledger.to_send() == []  # nothing twice
    assert ledger.committed(sends[1][0], DONE) == []  # the younger one waits
    ready = ledger.committed(sends[0][0], DONE)
    assert [b.deliveries for b in ready] == [first, second]
    assert len(ledger) == 0


def test_a_death_strikes_what_was_uncommitted_and_then_parts_go_one_at_a_time() -> None:
    ledger, _ = ledger_with(deliveries("a"), deliveries("b"))
    assert len(ledger.to_send()) == 2
    assert ledger.child_died() == 2
    careful = ledger.to_send()
    assert [payloads(s) for s in careful] == [[b"a"]] and careful[0][2] == "write"
    assert ledger.to_send() == []  # one in flight while any part has a strike
    ledger.committed(careful[0][0], DONE)
    assert [payloads(s) for s in ledger.to_send()] == [[b"b"]]


def test_a_poison_message_is_narrowed_down_by_halving_and_sent_to_quarantine_alone() -> None:
    batch = deliveries("m1", "m2", "m3", "m4")
    ledger, events = ledger_with(batch)
    poison = b"m3"
    deaths = 0
    committed: list[bytes] = []
    crashed: list[bytes] = []
    while len(ledger):
        (send,) = ledger.to_send()
        part_id, _, mode = send
        if mode == "crash":
            crashed += payloads(send)
            ledger.committed(part_id, DONE)
        elif poison in payloads(send):
            deaths += 1
            ledger.child_died()
        else:
            committed += payloads(send)
            ledger.committed(part_id, DONE)
        assert deaths < 10, "no endless loop"
    assert crashed == [poison]
    assert sorted(committed) == [b"m1", b"m2", b"m4"]
    # Two deaths for the whole batch, then one per halving: 4 -> 2 -> 1.
    assert deaths == 4
    assert [e.kind for e in events] == ["split", "split"]
