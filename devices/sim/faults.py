"""Faults: what goes wrong with home devices, planned per device and labelled.

Why plan per device: real faults belong to a device, not to a reading — a scale set to
pounds stays in pounds, a hub that lost Wi-Fi holds every reading until it is back, a clock
that drifted stays wrong until it syncs. Planning them up front (from the device's own random
stream) makes them deterministic and lets the labels say exactly which device, when, and what
the ingest should make of each affected reading:

- offline period -> the readings are uploaded as a backlog when it ends (stored: the ingest
  accepts event times in the past);
- clock skew -> event times shifted by the offset (stored at the wrong time, or
  ``future_time`` when more than 5 minutes ahead of the moment it is sent);
- clock reset -> event times in the year 2000 (``too_old``);
- glitch -> an artefact value: 300 bpm, SpO2 70 (stored: physically possible, so it is the
  rules' job to distrust it) or 0 (``implausible_value``);
- wrong unit -> lb / °F / mg/dL on the wire (stored after conversion);
- resend -> the same bytes and msg_id again (a duplicate, stored once);
- reassignment -> planned at cohort level (``plan``).
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from types import MappingProxyType

from homecare.devices.sim.clock import DAY_MS, HOUR_MS, MINUTE_MS, to_ms
from homecare.devices.sim.config import FaultRates
from homecare.devices.sim.equipment import DEVICE_KINDS, WRONG_UNITS

__all__ = [
    "GLITCH_TYPES",
    "RESET_EPOCH_MS",
    "ClockFault",
    "DevicePlan",
    "draw_glitch",
    "plan_device",
]

RESET_EPOCH_MS = to_ms(datetime(2000, 1, 1, tzinfo=UTC))
GLITCH_TYPES = frozenset({"heart_rate", "spo2", "body_temperature"})


@dataclass(frozen=True)
class ClockFault:
    """ClockFault: a period during which a device stamps readings with a wrong time."""

    kind: str  # "clock_skew" or "clock_reset"
    start_ms: int
    end_ms: int
    offset_ms: int  # clock_skew only: reported = true + offset

    def reported(self, ms: int) -> int:
        """ClockFault.reported: the time the device writes for a reading taken at ``ms``."""
        if self.kind == "clock_reset":
            return RESET_EPOCH_MS + (ms - self.start_ms)
        return ms + self.offset_ms


@dataclass(frozen=True)
class DevicePlan:
    """DevicePlan: one device, its units and its planned faults."""

    device_id: str
    kind: str
    model: str
    units: Mapping[str, str]
    wrong_unit: str | None  # the measurement type sent in a non-canonical unit, if any
    offline: tuple[tuple[int, int], ...]
    clock: tuple[ClockFault, ...]

    def clock_fault(self, ms: int) -> ClockFault | None:
        """DevicePlan.clock_fault: the clock fault in force at ``ms``, if any."""
        for fault in self.clock:
            if fault.start_ms <= ms < fault.end_ms:
                return fault
        return None

    def reconnects(self, ms: int) -> int | None:
        """DevicePlan.reconnects: when the device comes back, if it is offline at ``ms``."""
        for start, end in self.offline:
            if start <= ms < end:
                return end
        return None


def plan_device(
    device_id: str,
    kind: str,
    rng: random.Random,
    rates: FaultRates,
    start_ms: int,
    end_ms: int,
    clock_faults: bool = True,
) -> DevicePlan:
    """plan_device: a device's units and faults over ``[start_ms, end_ms)``.

    ``clock_faults`` is off for a device that changes hands, so that no reading of one patient
    is stamped into the other's assignment interval (a real ambiguity the labels could not
    resolve).
    """
    spec = DEVICE_KINDS[kind]
    units = dict(spec.unit_styles[rng.randrange(len(spec.unit_styles))])
    wrong_unit: str | None = None
    for type_name in spec.types:
        if type_name in WRONG_UNITS and rng.random() < rates.wrong_unit:
            units[type_name] = WRONG_UNITS[type_name]
            wrong_unit = type_name
    offline: list[tuple[int, int]] = []
    if rates.offline_per_day > 0:
        moment = start_ms
        while True:
            moment += round(rng.expovariate(rates.offline_per_day) * DAY_MS)
            if moment >= end_ms:
                break
            days = min(10.0, max(0.125, math.exp(rng.gauss(0.0, 0.8))))
            offline.append((moment, moment + round(days * DAY_MS)))
            moment = offline[-1][1]
    clock: list[ClockFault] = []
    span = end_ms - start_ms
    skew = rng.random() < rates.clock_skew
    reset = rng.random() < rates.clock_reset
    if clock_faults and skew and span > DAY_MS:
        begin = start_ms + rng.randrange(span)
        length = round(rng.uniform(1.0, 14.0) * DAY_MS)
        offset = round(rng.uniform(10.0, 180.0) * MINUTE_MS) * rng.choice((-1, 1))
        clock.append(ClockFault("clock_skew", begin, min(end_ms, begin + length), offset))
    if clock_faults and reset and span > DAY_MS:
        begin = start_ms + rng.randrange(span)
        length = round(rng.uniform(2.0, 48.0) * HOUR_MS)
        fault = ClockFault("clock_reset", begin, min(end_ms, begin + length), 0)
        if all(fault.end_ms <= c.start_ms or fault.start_ms >= c.end_ms for c in clock):
            clock.append(fault)
    return DevicePlan(
        device_id=device_id,
        kind=kind,
        model=spec.model,
        units=MappingProxyType(units),
        wrong_unit=wrong_unit,
        offline=tuple(offline),
        clock=tuple(sorted(clock, key=lambda c: c.start_ms)),
    )


def draw_glitch(rng: random.Random, type_name: str) -> tuple[str, float]:
    """draw_glitch: an artefact for one reading, as (artefact name, canonical value).

    Most are physically possible values a device really shows (a motion artefact of 300 bpm,
    an SpO2 of 70 from cold fingers, a thermometer left in the air); one in five is a 0 a
    device sends when it found no signal, which the ingest refuses as implausible.
    """
    if type_name == "body_temperature":
        return "ambient_reading", round(rng.uniform(31.0, 34.5), 1)
    if rng.random() < 0.2:
        return "no_signal", 0
    if type_name == "spo2":
        return "cold_fingers", rng.randint(65, 78)
    return "motion_artefact", rng.randint(250, 300)
