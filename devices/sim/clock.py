"""Clock: simulated time as integer milliseconds, the patients' local days, RFC 3339 stamps.

Why integers: the simulator produces hundreds of thousands of timestamps a second; integer
milliseconds since the Unix epoch compare, sort and add exactly and cheaply, and render to the
contract's ``YYYY-MM-DDTHH:MM:SS.mmmZ`` (the same text ``devices.contract.rfc3339`` gives)
without building a datetime per reading. Patients live in one time zone (DST included), so
"weight each morning at 7" means 7 local time all year.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from typing import NamedTuple
from zoneinfo import ZoneInfo

__all__ = [
    "DAY_MS",
    "HOUR_MS",
    "MINUTE_MS",
    "LocalCalendar",
    "LocalDay",
    "from_ms",
    "stamp",
    "to_ms",
]

MINUTE_MS = 60_000
HOUR_MS = 3_600_000
DAY_MS = 86_400_000
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()


def to_ms(moment: datetime) -> int:
    """to_ms: an aware datetime as integer milliseconds since the epoch (floored)."""
    delta = moment.astimezone(UTC) - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1000 + delta.microseconds // 1000


def from_ms(ms: int) -> datetime:
    """from_ms: integer milliseconds since the epoch as an aware UTC datetime."""
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=ms)


@lru_cache(maxsize=4096)
def _date_prefix(days: int) -> str:
    return date.fromordinal(_EPOCH_ORDINAL + days).isoformat() + "T"


def stamp(ms: int) -> str:
    """stamp: RFC 3339 in UTC to the millisecond, as the v1 contract writes event times.

    >>> stamp(0), stamp(1_795_680_005_123)
    ('1970-01-01T00:00:00.000Z', '2026-11-26T08:00:05.123Z')
    """
    days, rest = divmod(ms, DAY_MS)
    seconds, milli = divmod(rest, 1000)
    hours, seconds = divmod(seconds, 3600)
    minutes, seconds = divmod(seconds, 60)
    return f"{_date_prefix(days)}{hours:02d}:{minutes:02d}:{seconds:02d}.{milli:03d}Z"


class LocalDay(NamedTuple):
    """LocalDay: one calendar day where the patients live (23, 24 or 25 hours long)."""

    ordinal: int  # date.toordinal() of the local date
    start_ms: int  # local midnight
    end_ms: int  # next local midnight
    weekday: int  # Monday = 0

    def hour_of(self, ms: int) -> float:
        """LocalDay.hour_of: local clock hour (0-24, fractional) of an instant of this day."""
        return (ms - self.start_ms) / HOUR_MS


class LocalCalendar:
    """LocalCalendar: local midnights in one time zone, cached (every patient shares them)."""

    def __init__(self, timezone: str) -> None:
        self._zone = ZoneInfo(timezone)
        self._days: dict[int, LocalDay] = {}

    def day(self, ordinal: int) -> LocalDay:
        """LocalCalendar.day: the local day with this date ordinal."""
        found = self._days.get(ordinal)
        if found is None:
            found = LocalDay(
                ordinal,
                self._midnight(ordinal),
                self._midnight(ordinal + 1),
                date.fromordinal(ordinal).weekday(),
            )
            self._days[ordinal] = found
        return found

    def day_of(self, ms: int) -> LocalDay:
        """LocalCalendar.day_of: the local day an instant falls in."""
        ordinal = from_ms(ms).astimezone(self._zone).date().toordinal()
        return self.day(ordinal)

    def days(self, start_ms: int, end_ms: int) -> list[LocalDay]:
        """LocalCalendar.days: every local day that overlaps ``[start_ms, end_ms)``."""
        first = self.day_of(start_ms).ordinal
        last = self.day_of(max(start_ms, end_ms - 1)).ordinal
        return [self.day(o) for o in range(first, last + 1)]

    def at(self, day: LocalDay, hour: float) -> int:
        """LocalCalendar.at: the instant at a local clock hour of ``day`` (clamped to the day)."""
        return min(day.end_ms - 1, max(day.start_ms, day.start_ms + round(hour * HOUR_MS)))

    def _midnight(self, ordinal: int) -> int:
        local = datetime.combine(date.fromordinal(ordinal), datetime.min.time(), self._zone)
        return to_ms(local)
