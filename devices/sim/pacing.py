"""Pacing: publish simulated messages at real time, accelerated, or as fast as possible.

Why a window that ends when the clocks meet: an accelerated run must never publish a reading
from the future (the ingest would rightly quarantine it). With acceleration ``S`` and ``D``
days of simulated time starting at wall time ``W0``, the window is chosen to end at
``W0 + D/S``: simulated time runs ``S`` times faster than the wall clock and catches up with
it exactly at the end, so every message is published at or after its own send time. After
that point (a demo that keeps running) messages go out in real time.

    simulated  A ─────────────────────────────▶ B = W0 + D/S
    wall            W0 ──────▶ W0 + D/S  (= B: the clocks meet)
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime, timedelta

from homecare.devices.sim.timeline import SimMessage

__all__ = ["live_window", "paced"]


def live_window(days: float, speed: float | None, now: datetime) -> tuple[datetime, datetime]:
    """live_window: (start, end) of a ``days``-long window published at ``speed`` from ``now``.

    ``speed`` None is "as fast as possible": the window simply ends now.

    >>> from datetime import UTC, datetime
    >>> now = datetime(2026, 1, 1, tzinfo=UTC)
    >>> [t.isoformat() for t in live_window(1, 24, now)]
    ['2025-12-31T01:00:00+00:00', '2026-01-01T01:00:00+00:00']
    """
    if speed is not None and speed <= 0:
        raise ValueError("speed must be positive")
    span = timedelta(days=days)
    end = now if speed is None else now + span / speed
    return end - span, end


def paced(
    messages: Iterable[SimMessage],
    window_start: datetime,
    speed: float | None,
    stop: threading.Event | None = None,
    wall_start: float | None = None,
    clock: Callable[[], float] = time.time,
) -> Iterator[SimMessage]:
    """paced: yield each message when it is due (never before its send time); stop on ``stop``.

    ``speed`` None yields at once. Otherwise a message sent at simulated ``s`` is due at wall
    time ``max(wall_start + (s - window_start) / speed, s)``.
    """
    waiter = stop if stop is not None else threading.Event()
    origin_s = window_start.timestamp()
    wall_origin = clock() if wall_start is None else wall_start
    for message in messages:
        if waiter.is_set():
            return
        if speed is not None:
            sent_s = message.sent_ms / 1000
            due = max(wall_origin + (sent_s - origin_s) / speed, sent_s)
            delay = due - clock()
            if delay > 0 and waiter.wait(delay):
                return
        yield message
