"""Handoff: the bounded queue between the MQTT network thread and the worker.

``queue.Queue`` takes two lock round-trips per item on each side; at tens of thousands of
messages a second that is a visible share of the one core Python gets. Here the network thread
appends under one lock and the worker takes a whole batch under one lock. The bound is kept: a
full hand-off makes ``put`` wait (the caller counts it), never drop.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from typing import Generic, TypeVar

__all__ = ["Handoff"]

T = TypeVar("T")


class Handoff(Generic[T]):
    """Handoff holds at most ``capacity`` items; ``take`` returns them in arrival order."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._items: deque[T] = deque()
        self._lock = threading.Lock()
        self._arrived = threading.Condition(self._lock)
        self._room = threading.Condition(self._lock)
        self._wanted = 1

    def __len__(self) -> int:
        return len(self._items)

    def put(self, item: T, timeout_s: float) -> bool:
        """put appends ``item``; False if no room came within ``timeout_s`` (not added)."""
        with self._lock:
            if len(self._items) >= self.capacity and not self._room.wait_for(
                lambda: len(self._items) < self.capacity, timeout_s
            ):
                return False
            self._items.append(item)
            if len(self._items) >= self._wanted:
                self._arrived.notify()
            return True

    def take(self, max_items: int, first_wait_s: float, gather_s: float) -> list[T]:
        """take waits up to ``first_wait_s`` for one item, then up to ``gather_s`` for a full
        batch of ``max_items``, and returns what it has (possibly nothing)."""
        with self._lock:
            self._wanted = 1
            if not self._items and not self._arrived.wait_for(
                lambda: bool(self._items), first_wait_s
            ):
                return []
            deadline = time.monotonic() + gather_s
            self._wanted = max_items
            while len(self._items) < max_items:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not self._arrived.wait(remaining):
                    break
            self._wanted = 1
            count = min(max_items, len(self._items))
            batch = [self._items.popleft() for _ in range(count)]
            self._room.notify_all()
            return batch
