"""Wearable: minute-by-minute heart rate from a wrist device, uploaded every 15 minutes.

Why separate: it is optional (``SimConfig.wearable``) and 1,440 readings a day dwarf everything
else, so it has its own, simpler model: the patient's true resting heart rate (circadian,
drift, episodes, fever) plus bouts of activity in the day and per-minute optical-sensor noise.
The watch comes off for an hour a day to charge.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from homecare.devices.sim.clock import HOUR_MS, MINUTE_MS, LocalDay
from homecare.devices.sim.physiology import Effect, Physiology

__all__ = ["BATCH_MINUTES", "watch_batches"]

BATCH_MINUTES = 15
_NOISE_SD = 2.5


def watch_batches(
    physiology: Physiology,
    day: LocalDay,
    effects: Sequence[Effect],
    rng: random.Random,
    activity_gain: float,
    offset_ms: int,
) -> list[tuple[int, list[tuple[int, float]]]]:
    """watch_batches: one day's uploads as (time of upload, [(reading time, true bpm)])."""
    minutes = round((day.end_ms - day.start_ms) / MINUTE_MS)
    activity = [0.0] * minutes
    for _ in range(rng.randint(3, 6)):
        begin = rng.randrange(8 * 60, 21 * 60)
        lift = rng.uniform(10.0, 35.0) * activity_gain
        for minute in range(begin, min(minutes, begin + rng.randint(10, 45))):
            activity[minute] = lift
    charging = rng.randrange(7 * 60, 22 * 60)
    batches: list[tuple[int, list[tuple[int, float]]]] = []
    gauss = rng.gauss
    for first in range(0, minutes, BATCH_MINUTES):
        middle = day.start_ms + (first + BATCH_MINUTES // 2) * MINUTE_MS
        resting = physiology.true_value(
            "heart_rate", middle, (middle - day.start_ms) / HOUR_MS, effects
        )
        readings = [
            (
                day.start_ms + minute * MINUTE_MS + offset_ms,
                resting + activity[minute] + gauss(0.0, _NOISE_SD),
            )
            for minute in range(first, min(minutes, first + BATCH_MINUTES))
            if not charging <= minute < charging + 60
        ]
        if readings:
            batches.append((day.start_ms + (first + BATCH_MINUTES) * MINUTE_MS, readings))
    return batches
