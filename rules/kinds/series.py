"""Series: a patient's readings indexed by type in event-time order, and the instants built on
them that several kinds share (readings' times, whole hours, day starts)."""

from __future__ import annotations

import bisect
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from homecare.ingest import Reading

__all__ = ["INSTANT", "Series", "day_start", "hourly", "instants"]

# Series.between excludes its end; readings at the instant itself belong to "recent".
INSTANT = timedelta(microseconds=1)


class Series:
    """Series indexes readings by type, in event-time order, for bisecting by time."""

    def __init__(self, readings: Sequence[Reading]) -> None:
        by_type: dict[str, list[Reading]] = defaultdict(list)
        for reading in sorted(readings, key=lambda r: (r.time, r.type, r.value)):
            by_type[reading.type].append(reading)
        self.by_type = dict(by_type)
        self.times = {t: [r.time for r in rs] for t, rs in self.by_type.items()}
        self.context = sorted(
            (r for r in readings if r.on_oxygen is not None or r.consciousness is not None),
            key=lambda r: r.time,
        )
        # NEWS2 scores by (within, assumptions, minimum parameters, instant): the medium and
        # high bands score the same vitals at the same instants.
        self.news2: dict[tuple[Any, ...], tuple[int | None, dict[str, Any]]] = {}
        # Personal baselines by (kind, type or rule, end of window, span), shared by instants.
        self.memo: dict[tuple[Any, ...], Any] = {}

    def without(self, set_aside: Iterable[Mapping[str, set[int]]]) -> Series:
        """without: these readings less the ones at the given (type, index) positions."""
        left_out: dict[str, set[int]] = defaultdict(set)
        for positions in set_aside:
            for type_name, indexes in positions.items():
                left_out[type_name] |= indexes
        if not any(left_out.values()):
            return self
        return Series(
            [
                reading
                for type_name, readings in self.by_type.items()
                for k, reading in enumerate(readings)
                if k not in left_out.get(type_name, ())
            ]
        )

    def of(self, type_name: str) -> list[Reading]:
        return self.by_type.get(type_name, [])

    def latest(self, type_name: str, at: datetime, within: timedelta) -> Reading | None:
        times = self.times.get(type_name)
        if not times:
            return None
        index = bisect.bisect_right(times, at) - 1
        if index < 0:
            return None
        reading = self.by_type[type_name][index]
        return reading if at - reading.time <= within else None

    def between(self, type_name: str, start: datetime, end: datetime) -> list[Reading]:
        """between returns readings with start <= time < end."""
        times = self.times.get(type_name, [])
        low, high = bisect.bisect_left(times, start), bisect.bisect_left(times, end)
        return self.by_type.get(type_name, [])[low:high]


def instants(
    series: Series, types: Iterable[str], start: datetime, until: datetime
) -> list[tuple[datetime, datetime]]:
    """instants: the times in [start, until] at which any of ``types`` was measured, in order,
    each with the latest time one of its readings was received (what a finding there awaited)."""
    found: dict[datetime, datetime] = {}
    for type_name in types:
        for reading in series.between(type_name, start, until + INSTANT):
            received = found.get(reading.time)
            found[reading.time] = max(received or reading.received_at, reading.received_at)
    return sorted(found.items())


def hourly(
    series: Series, type_name: str, start: datetime, until: datetime
) -> dict[datetime, datetime]:
    """hourly: the instants of a data-completeness rule — each reading of the type and each
    whole hour in [start, until] — with the time each was received (a whole hour: itself)."""
    found = {r.time: r.received_at for r in series.between(type_name, start, until + INSTANT)}
    hour = start.replace(minute=0, second=0, microsecond=0)
    if hour < start:
        hour += timedelta(hours=1)
    while hour <= until:
        found.setdefault(hour, hour)
        hour += timedelta(hours=1)
    return found


def day_start(at: datetime) -> datetime:
    """day_start: midnight UTC of ``at``'s day.

    Personal baselines end at a day boundary, so every instant of a day shares one baseline:
    a patient sending every few minutes costs one median a day, not one per reading.
    """
    return datetime.fromtimestamp(at.timestamp() // 86400 * 86400, UTC)
