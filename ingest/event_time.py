"""Event time: the contract's ``time`` field (RFC 3339 with an offset) to an aware datetime.

The grammar is RFC 3339's ``date-time`` (section 5.6), read strictly:
``YYYY-MM-DDTHH:MM:SS[.fraction](Z|+HH:MM|-HH:MM)``, with ``t``/``z`` in lower case and a space
for the ``T`` also accepted (section 5.6's note). Python's ``datetime.fromisoformat`` accepts
more — offsets with seconds and microseconds (``+05:30:15.123456``), offsets of up to 24 hours,
week dates, non-ASCII digits in some versions — and PostgreSQL's ``timestamptz`` accepts less:
its offsets end at ±15:59 (``+16:00`` is "time zone displacement out of range"). A reading
must be refused here, with a reason, rather than by the database later, so the offsets taken
are RFC 3339's (hours and minutes) within PostgreSQL's range, which holds every real zone
(−12:00 to +14:00). A fraction finer than the microsecond the store keeps is truncated; a leap
second (``:60``) is refused, as Python and PostgreSQL cannot hold it.

>>> parse_time("2026-11-26T08:00:05Z").isoformat()
'2026-11-26T08:00:05+00:00'
>>> parse_time("2026-11-26t08:00:05.1234567-05:00").isoformat()
'2026-11-26T08:00:05.123456-05:00'
>>> parse_time("2026-11-26T08:00:05+23:59")
Traceback (most recent call last):
...
homecare.ingest.event_time.BadTime: time offset +23:59 is outside -15:59..+15:59
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone
from functools import lru_cache

__all__ = ["MAX_OFFSET", "BadTime", "parse_time"]

MAX_OFFSET = timedelta(hours=15, minutes=59)

_RFC3339 = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?"
    r"(?:[Zz]|([+-])(\d{2}):(\d{2}))",
    re.ASCII,
)


class BadTime(ValueError):
    """BadTime says why a ``time`` string is not an instant the store can hold."""


def parse_time(raw: str) -> datetime:
    """parse_time returns the aware instant ``raw`` names, or raises BadTime saying why not."""
    if len(raw) > 40:  # the longest valid form is 35 characters
        raise BadTime("time must be RFC 3339 with an offset")
    return _parse(raw)


@lru_cache(maxsize=4096)  # a message's readings usually share one time string
def _parse(raw: str) -> datetime:
    match = _RFC3339.fullmatch(raw)
    if match is None:
        raise BadTime("time must be RFC 3339 with an offset")
    year, month, day, hour, minute, second, fraction, sign, off_h, off_m = match.groups()
    zone = UTC if sign is None else _zone(sign, int(off_h), int(off_m))
    micro = int((fraction or "0")[:6].ljust(6, "0"))
    try:
        return datetime(
            int(year), int(month), int(day), int(hour), int(minute), int(second), micro, zone
        )
    except ValueError as exc:  # 30 February, hour 24, second 60, year 0
        raise BadTime(f"time is not a valid date and time: {exc}") from None


@lru_cache(maxsize=128)
def _zone(sign: str, hours: int, minutes: int) -> timezone:
    if minutes > 59:
        raise BadTime(f"time offset {sign}{hours:02d}:{minutes:02d} has more than 59 minutes")
    offset = timedelta(hours=hours, minutes=minutes)
    if offset > MAX_OFFSET:
        raise BadTime(f"time offset {sign}{hours:02d}:{minutes:02d} is outside -15:59..+15:59")
    if not offset:
        return UTC
    return timezone(-offset if sign == "-" else offset)
