"""Window cache: the readings a rules worker loaded for a patient, kept for its next pass.

A live pass evaluates from the earliest newly stored reading (``since``) but needs the patient's
lookback before it (``history_needed``: weeks, for personal baselines). Re-reading those weeks on
every pass cost more than evaluating them (a heart-failure + COPD patient: 329 rows, 2.7 ms to
load; the 7 new ones 0.3 ms). Readings are never updated, only inserted, and every insert is
announced in ``reading_changes`` with its event time, so what a worker loaded before ``since``
is still exactly what the store holds there — as long as no other worker consumed an
announcement in between. That is checked, not assumed: each entry remembers the patient's
evaluation count after this worker's pass (``rule_progress.evaluations``, read under the
patient's lock), and a different count on the next pass means start again from the store.

What is reused: readings in ``[start, min(since, loaded_until))``; everything from there to the
new ``until`` is read again (newly stored readings, and any beyond the previous pass's end).
"""

from __future__ import annotations

import bisect
import uuid
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from homecare.ingest import Reading

__all__ = ["Loader", "WindowCache"]

# load(since, until) -> the patient's readings with since <= time <= until, ordered by time
Loader = Callable[[datetime, datetime], list[Reading]]


@dataclass(frozen=True)
class _Window:
    readings: list[Reading]  # ordered by time, complete over [start, loaded_until]
    times: list[datetime]  # the readings' times, for bisect
    start: datetime
    loaded_until: datetime
    evaluations: int  # rule_progress.evaluations after the pass that loaded this


@dataclass
class CacheStats:
    """CacheStats counts passes served partly from the cache and passes that read everything."""

    hits: int = 0
    misses: int = 0
    rows_reused: int = 0


class WindowCache:
    """WindowCache keeps one window per patient, for at most ``max_patients`` (least recently
    used dropped first). Not thread-safe: one per rules worker."""

    def __init__(self, max_patients: int = 5000) -> None:
        self.max_patients = max_patients
        self.stats = CacheStats()
        self._windows: OrderedDict[uuid.UUID, _Window] = OrderedDict()

    def __len__(self) -> int:
        return len(self._windows)

    def readings(
        self,
        patient_id: uuid.UUID,
        start: datetime,
        since: datetime,
        until: datetime,
        evaluations: int,
        load: Loader,
    ) -> list[Reading]:
        """readings returns the patient's readings over ``[start, until]``, reusing the cached
        ones before ``since`` when the window is still this worker's own."""
        window = self._windows.get(patient_id)
        if window is None or window.evaluations != evaluations or window.start > start:
            self.stats.misses += 1
            return load(start, until)
        reload_from = min(since, window.loaded_until)
        first = bisect.bisect_left(window.times, start)
        last = bisect.bisect_left(window.times, reload_from)
        kept = window.readings[first:last]
        self.stats.hits += 1
        self.stats.rows_reused += len(kept)
        return kept + load(reload_from, until)

    def keep(
        self,
        patient_id: uuid.UUID,
        readings: list[Reading],
        start: datetime,
        until: datetime,
        evaluations: int,
    ) -> None:
        """keep remembers what a committed pass read (``readings`` over ``[start, until]``) and
        the evaluation count it left."""
        self._windows[patient_id] = _Window(
            readings, [r.time for r in readings], start, until, evaluations
        )
        self._windows.move_to_end(patient_id)
        while len(self._windows) > self.max_patients:
            self._windows.popitem(last=False)

    def peek(self, patient_id: uuid.UUID) -> tuple[list[Reading], datetime, datetime] | None:
        """peek shows a patient's window (readings, start, end) without using it."""
        window = self._windows.get(patient_id)
        return None if window is None else (window.readings, window.start, window.loaded_until)

    def forget(self, patient_id: uuid.UUID) -> None:
        """forget drops a patient's window (its pass found no patient to evaluate)."""
        self._windows.pop(patient_id, None)
