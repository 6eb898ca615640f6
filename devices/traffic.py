"""Traffic: a deterministic stream of BP-cuff messages, with resends and malformed ones on request.

This is the foundation's load and fault generator (the realistic patient simulator builds on
the same contract). Every malformed kind maps to one quarantine reason the ingest must give, so
tests and the benchmark can check that nothing was lost: each message generated is either
stored, a known duplicate, or quarantined with the expected reason.
"""

from __future__ import annotations

import itertools
import json
import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

from homecare.devices.contract import DeviceMessage, Measurement, encode_message, readings_topic

__all__ = ["MALFORMED_KINDS", "Outgoing", "TrafficPlan", "generate"]

# Malformed kind -> the quarantine reason the ingest must record for it.
MALFORMED_KINDS: dict[str, str] = {
    "bad_json": "bad_json",
    "bad_encoding": "bad_encoding",
    "missing_msg_id": "schema",
    "unknown_type": "unknown_type",
    "bad_unit": "bad_unit",
    "implausible_value": "implausible_value",
    "future_time": "future_time",
    "oversize": "oversize",
}


@dataclass(frozen=True)
class Outgoing:
    """Outgoing is one publish: topic, bytes, and what the ingest should make of it."""

    device_id: str
    topic: str
    payload: bytes
    msg_id: str | None
    expected: str  # "stored", "resend" or the quarantine reason
    readings: int  # readings the ingest should store from it


@dataclass(frozen=True)
class TrafficPlan:
    """TrafficPlan says how many messages, from which devices, with which faults."""

    device_ids: tuple[str, ...]
    messages: int | None  # None: an endless stream (the demo)
    start: datetime
    interval: timedelta = timedelta(seconds=1)
    resend_ratio: float = 0.0
    malformed_ratio: float = 0.0
    seed: int = 0


def generate(plan: TrafficPlan) -> Iterator[Outgoing]:
    """generate yields the plan's messages; the same plan always yields the same bytes."""
    rng = random.Random(plan.seed)
    kinds = sorted(MALFORMED_KINDS)
    previous: Outgoing | None = None
    indexes = itertools.count() if plan.messages is None else range(plan.messages)
    for index in indexes:
        device_id = plan.device_ids[index % len(plan.device_ids)]
        when = plan.start + plan.interval * index
        msg_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        roll = rng.random()
        if previous is not None and roll < plan.resend_ratio:
            yield Outgoing(
                previous.device_id, previous.topic, previous.payload, previous.msg_id, "resend", 0
            )
            previous = None
            continue
        message = _bp_cuff_message(rng, device_id, msg_id, when)
        if roll < plan.resend_ratio + plan.malformed_ratio:
            kind = kinds[rng.randrange(len(kinds))]
            yield _malformed(kind, message, when)
            continue
        previous = Outgoing(device_id, message.topic, encode_message(message), msg_id, "stored", 3)
        yield previous


def _bp_cuff_message(
    rng: random.Random, device_id: str, msg_id: str, when: datetime
) -> DeviceMessage:
    systolic = round(rng.gauss(130, 12))
    diastolic = round(min(systolic - 20, rng.gauss(80, 8)))
    pulse = round(rng.gauss(72, 9))
    return DeviceMessage(
        device_id,
        msg_id,
        [
            Measurement("systolic_bp", systolic, "mm[Hg]", when),
            Measurement("diastolic_bp", diastolic, "mm[Hg]", when),
            Measurement("heart_rate", pulse, "/min", when),
        ],
    )


def _malformed(kind: str, message: DeviceMessage, when: datetime) -> Outgoing:
    reason = MALFORMED_KINDS[kind]
    topic = readings_topic(message.device_id)
    good = json.loads(encode_message(message))
    stored = 0
    msg_id: str | None = message.msg_id
    if kind == "bad_json":
        payload = encode_message(message)[:-7]
    elif kind == "bad_encoding":
        payload = b'{"msg_id": "\xff\xfe", "readings": []}'
    elif kind == "missing_msg_id":
        del good["msg_id"]
        payload = json.dumps(good).encode()
        msg_id = None
    elif kind == "oversize":
        good["readings"] = good["readings"] * 600
        payload = json.dumps(good).encode()
    else:
        # One bad reading among good ones: the other two are stored.
        first = good["readings"][0]
        if kind == "unknown_type":
            first["type"] = "blood_pressure_combined"
        elif kind == "bad_unit":
            first["unit"] = "psi"
        elif kind == "implausible_value":
            first["value"] = 999
        elif kind == "future_time":
            first["time"] = (when + timedelta(days=3650)).isoformat()
        payload = json.dumps(good).encode()
        stored = 2
    return Outgoing(message.device_id, topic, payload, msg_id, reason, stored)
