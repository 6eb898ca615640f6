"""Cuffs: a deterministic stream of realistic BP-cuff messages, for load tests and benchmarks.

Why beside the simulator: a benchmark needs a fixed number of messages of a fixed shape (three
readings each, all valid) at a steady pace, not a cohort's irregular days — but its values
should still look like patients' (each device has its own hypertensive patient's baseline,
circadian swing and measurement noise), so that storage and compression see realistic data.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import datetime, timedelta

from homecare.devices.contract import readings_topic
from homecare.devices.sim.clock import HOUR_MS, stamp, to_ms
from homecare.devices.sim.equipment import NOISE_SD
from homecare.devices.sim.population import stream
from homecare.devices.sim.programs import PROGRAM_PROFILES
from homecare.devices.traffic import Outgoing

__all__ = ["cuff_messages"]


def cuff_messages(
    device_ids: tuple[str, ...],
    messages: int,
    start: datetime,
    interval: timedelta = timedelta(seconds=10),
    seed: int = 0,
) -> Iterator[Outgoing]:
    """cuff_messages: ``messages`` BP-cuff messages, the devices in turn, every one stored.

    Message ``i`` comes from ``device_ids[i % len(device_ids)]`` at ``start + i * interval``;
    each carries systolic_bp, diastolic_bp and heart_rate (mm[Hg], /min). The same arguments
    always give the same bytes.

    >>> from datetime import UTC, datetime
    >>> first = next(cuff_messages(("cuff-1",), 1, datetime(2026, 1, 1, tzinfo=UTC)))
    >>> first.expected, first.readings, first.topic
    ('stored', 3, 'homecare/v1/devices/cuff-1/readings')
    """
    if not device_ids:
        raise ValueError("cuff_messages needs at least one device")
    profile = PROGRAM_PROFILES["hypertension"]
    rngs = [stream(seed, "cuff", i) for i in range(len(device_ids))]
    baselines = [
        (
            profile.baseline["systolic_bp"].draw(rng),
            profile.baseline["diastolic_bp"].draw(rng),
            profile.baseline["heart_rate"].draw(rng),
        )
        for rng in rngs
    ]
    topics = [readings_topic(d) for d in device_ids]
    start_ms = to_ms(start)
    step_ms = round(interval.total_seconds() * 1000)
    sd_sys, sd_dia, sd_hr = (
        NOISE_SD["systolic_bp"],
        NOISE_SD["diastolic_bp"],
        NOISE_SD["heart_rate"],
    )
    for index in range(messages):
        which = index % len(device_ids)
        rng = rngs[which]
        systolic0, diastolic0, pulse0 = baselines[which]
        when = start_ms + index * step_ms
        swing = math.cos(2 * math.pi * ((when % (24 * HOUR_MS)) / HOUR_MS - 10) / 24)
        systolic = round(systolic0 + 6 * swing + rng.gauss(0, sd_sys))
        diastolic = min(systolic - 10, round(diastolic0 + 4 * swing + rng.gauss(0, sd_dia)))
        pulse = round(pulse0 + 5 * swing + rng.gauss(0, sd_hr))
        msg_id = f"{rng.getrandbits(128):032x}"
        at = stamp(when)
        payload = (
            f'{{"msg_id":"{msg_id}","readings":['
            f'{{"type":"systolic_bp","value":{systolic},"unit":"mm[Hg]","time":"{at}"}},'
            f'{{"type":"diastolic_bp","value":{diastolic},"unit":"mm[Hg]","time":"{at}"}},'
            f'{{"type":"heart_rate","value":{pulse},"unit":"/min","time":"{at}"}}]}}'
        ).encode()
        yield Outgoing(device_ids[which], topics[which], payload, msg_id, "stored", 3)
