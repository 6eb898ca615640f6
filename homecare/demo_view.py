"""Demo view: what ``homecare demo`` prints while it runs — for people, not for log parsers.

The terminal shows what runs and the counts; the services' logs go to a file (see
``homecare.logs``). A counts line is printed when a count changes (at most every 5 s) and once
a minute when nothing does, so a still screen never looks like a hang. When the simulated
history catches up with the clock the view says that live time has begun and what to expect:
live readings come on the patients' own schedules, which for a small cohort means minutes
between messages, not seconds.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import psycopg

from homecare.devices.sim import SimMessage

__all__ = ["Counts", "DemoView", "Progress", "expected_rate", "tracked"]

_EVERY_S = 5.0  # at most one counts line this often while counts change
_QUIET_S = 60.0  # and one this often while they do not


@dataclass
class Progress:
    """Progress: how far the devices' stream has gone (written by the publishing thread)."""

    published: int = 0
    simulated_ms: int = 0


def tracked(messages: Iterable[SimMessage], progress: Progress) -> Iterator[SimMessage]:
    """tracked passes the messages through, noting the count and the simulated time."""
    for message in messages:
        progress.published += 1
        progress.simulated_ms = message.sent_ms
        yield message


@dataclass(frozen=True)
class Counts:
    """Counts: what the pipeline has done so far, as the terminal shows it."""

    readings: int
    new: int
    duplicate: int
    quarantined: int
    findings: int
    alerts_open: int

    @classmethod
    def read(
        cls, metrics: dict[str, float], conn: psycopg.Connection[Any], id_prefix: str
    ) -> Counts:
        """read: the ingest's counters and this demo's patients' findings and open alerts (a
        database may hold an earlier demo's patients too)."""
        row = conn.execute(
            "WITH ours AS (SELECT id FROM patients WHERE starts_with(display_name, %(prefix)s))"
            " SELECT (SELECT count(*) FROM findings WHERE state = 'active'"
            " AND retracted_at IS NULL AND patient_id IN (SELECT id FROM ours)),"
            " (SELECT count(*) FROM alerts WHERE status <> 'resolved'"
            " AND patient_id IN (SELECT id FROM ours))",
            {"prefix": id_prefix},
        ).fetchone()
        findings, alerts = row if row else (0, 0)
        return cls(
            readings=int(metrics.get("homecare_ingest_readings_stored_total", 0)),
            new=int(metrics.get("homecare_ingest_messages_total{outcome=new}", 0)),
            duplicate=int(metrics.get("homecare_ingest_messages_total{outcome=duplicate}", 0)),
            quarantined=sum(
                int(v)
                for k, v in metrics.items()
                if k.startswith("homecare_ingest_quarantined_total{")
            ),
            findings=int(findings),
            alerts_open=int(alerts),
        )

    def text(self) -> str:
        return (
            f"readings stored {self.readings:>6} | messages {self.new:>5} new"
            f" {self.duplicate:>3} duplicate {self.quarantined:>3} quarantined"
            f" | findings {self.findings:>4} | alerts open {self.alerts_open:>3}"
        )


def expected_rate(messages: int, days: float, devices: int) -> str:
    """expected_rate says, from the history just played, how often live messages will come.

    >>> expected_rate(1176, 7, 60)
    'about 7 messages an hour from 60 devices (one every 9 min or so), as in the history'
    >>> expected_rate(0, 7, 3)
    'none in the history: the devices may stay silent for a long while'
    """
    if messages <= 0 or days <= 0:
        return "none in the history: the devices may stay silent for a long while"
    per_hour = messages / (days * 24)
    if per_hour >= 60:
        rate = f"about {per_hour / 60:.0f} messages a minute"
    else:
        rate = f"about {per_hour:.0f} messages an hour"
    gap = 60 / per_hour
    every = f"{gap:.0f} min" if gap >= 1 else f"{gap * 60:.0f} s"
    return f"{rate} from {devices} devices (one every {every} or so), as in the history"


@dataclass
class DemoView:
    """DemoView prints the counts while the demo runs and says when live time begins."""

    caught_up: datetime
    days: float
    devices: int
    progress: Progress
    clock: Any = field(default=time.monotonic)
    _last: Counts | None = None
    _printed_at: float = float("-inf")
    _live: bool = False

    def update(self, counts: Counts, now: datetime | None = None) -> None:
        """update prints the live-time notice once, then the counts if they changed (or once
        a minute when they did not)."""
        now = now or datetime.now(UTC)
        if not self._live and now >= self.caught_up:
            self._live = True
            rate = expected_rate(self.progress.published, self.days, self.devices)
            print(
                f"live       {_clock(now)} caught up with the clock: readings now arrive on"
                f" the patients' schedules, {rate}",
                flush=True,
            )
        ticks = self.clock()
        since = ticks - self._printed_at
        if since < _EVERY_S or (counts == self._last and since < _QUIET_S):
            return
        self._last, self._printed_at = counts, ticks
        print(f"  {_clock(now)} {self._phase()}  {counts.text()}", flush=True)

    def _phase(self) -> str:
        if self._live:
            phase = "live"
        elif not self.progress.simulated_ms:
            phase = "history (starting)"
        else:
            simulated = datetime.fromtimestamp(self.progress.simulated_ms / 1000, UTC)
            phase = f"history {simulated.astimezone().strftime('%a %d %b %H:%M')}"
        return f"{phase:<24}"


def _clock(moment: datetime) -> str:
    return moment.astimezone().strftime("%H:%M:%S")
