"""The hand-off between the MQTT thread and the worker: bounded, ordered, batched."""

from __future__ import annotations

import threading
import time

from homecare.ingest.handoff import Handoff


def test_items_come_out_in_order_in_batches_of_at_most_max_items() -> None:
    handoff: Handoff[int] = Handoff(capacity=10)
    for i in range(7):
        assert handoff.put(i, timeout_s=0.1)
    assert handoff.take(5, first_wait_s=0.1, gather_s=0.0) == [0, 1, 2, 3, 4]
    assert handoff.take(5, first_wait_s=0.1, gather_s=0.0) == [5, 6]
    assert handoff.take(5, first_wait_s=0.01, gather_s=0.0) == []


def test_a_full_handoff_makes_put_wait_and_never_drops() -> None:
    handoff: Handoff[int] = Handoff(capacity=2)
    assert handoff.put(1, 0.1) and handoff.put(2, 0.1)
    started = time.monotonic()
    assert handoff.put(3, timeout_s=0.1) is False  # refused, not silently dropped or added
    assert time.monotonic() - started >= 0.09
    assert len(handoff) == 2

    def take_later() -> None:
        time.sleep(0.05)
        handoff.take(1, first_wait_s=0.1, gather_s=0.0)

    taker = threading.Thread(target=take_later)
    taker.start()
    assert handoff.put(3, timeout_s=2.0) is True  # room made by the taker
    taker.join()
    assert handoff.take(10, first_wait_s=0.1, gather_s=0.0) == [2, 3]


def test_take_gathers_until_the_batch_is_full_or_the_window_ends() -> None:
    handoff: Handoff[int] = Handoff(capacity=100)

    def produce() -> None:
        for i in range(5):
            time.sleep(0.01)
            handoff.put(i, 0.1)

    producer = threading.Thread(target=produce)
    producer.start()
    batch = handoff.take(5, first_wait_s=1.0, gather_s=2.0)
    producer.join()
    assert batch == [0, 1, 2, 3, 4]  # returned when full, well before the 2 s window
