"""Helpers for the simulator tests: generate a cohort once and measure it like an analyst would.

Measurements go through the ingest's own parser (canonical units, the times the devices
stated), never through the simulator's parameters: a test that an episode moves a vital must
see it in the readings.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from homecare.devices.sim import SimConfig, SimMessage, Simulation
from homecare.devices.sim.clock import DAY_MS, HOUR_MS
from homecare.ingest import Delivery, ParsedMessage, ParseLimits, parse_message

END = datetime(2026, 3, 1, tzinfo=UTC)
LIMITS = ParseLimits()


def ms(text: str) -> int:
    """ms: an RFC 3339 label time as epoch milliseconds."""
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return round(moment.timestamp() * 1000)


@dataclass
class Cohort:
    """Cohort: one generated run, its labels, and its clean readings per (patient, type)."""

    config: SimConfig
    simulation: Simulation
    messages: list[SimMessage]
    labels: dict[str, Any]
    series: dict[tuple[str, str], list[tuple[int, float]]] = field(default_factory=dict)

    def values(self, patient: str, type_name: str, start: int, end: int) -> list[float]:
        """Cohort.values: clean readings of a type in ``[start, end)``."""
        return [v for t, v in self.series.get((patient, type_name), ()) if start <= t < end]

    def baseline(self, patient: str, type_name: str, before: int, days: float = 7) -> float | None:
        """Cohort.baseline: the median of the clean readings in the days before ``before``."""
        found = self.values(patient, type_name, before - round(days * DAY_MS), before)
        return statistics.median(found) if found else None

    def late(self, patient: str, type_name: str, er: int, hours: float) -> list[float]:
        """Cohort.late: readings in the last ``hours`` before ``er``."""
        return self.values(patient, type_name, er - round(hours * HOUR_MS), er)

    def episodes(self, kind: str) -> list[dict[str, Any]]:
        return [e for e in self.labels["episodes"] if e["kind"] == kind]

    def lookalikes(self, kind: str) -> list[dict[str, Any]]:
        return [x for x in self.labels["lookalikes"] if x["kind"] == kind]


def generate(config: SimConfig) -> Cohort:
    """generate: run ``config`` and parse every message the way the ingest would."""
    simulation = Simulation(config)
    messages = list(simulation.messages())
    cohort = Cohort(config, simulation, messages, simulation.labels())
    series: defaultdict[tuple[str, str], list[tuple[int, float]]] = defaultdict(list)
    for message in messages:
        if message.resend or any(f["kind"].startswith("clock") for f in message.faults):
            continue
        glitched = {f["reading_index"] for f in message.faults if f["kind"] == "glitch"}
        parsed = parse_message(Delivery(message.topic, message.payload, message.sent_at), LIMITS)
        assert isinstance(parsed, ParsedMessage)
        for reading in parsed.readings:
            if reading.position not in glitched:
                moment = round(reading.time.timestamp() * 1000)
                series[(message.patient, reading.type)].append((moment, reading.value))
    for points in series.values():
        points.sort()
    cohort.series = dict(series)
    return cohort
