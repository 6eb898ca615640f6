"""Contract: building v1 messages exactly as docs/contracts.md fixes them, from the device's side.

Kept apart from the ingest's parser on purpose: the device side is written from the contract,
not from the parser, so a test that round-trips one through the other checks both.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

__all__ = ["DeviceMessage", "Measurement", "encode_message", "readings_topic", "rfc3339"]


def readings_topic(device_id: str) -> str:
    """readings_topic is the v1 topic a device publishes its readings on.

    >>> readings_topic("cuff-1")
    'homecare/v1/devices/cuff-1/readings'
    """
    return f"homecare/v1/devices/{device_id}/readings"


def rfc3339(moment: datetime) -> str:
    """rfc3339 formats an aware datetime in UTC with a ``Z`` offset, to the millisecond.

    >>> rfc3339(datetime(2026, 11, 26, 8, 0, 5, tzinfo=UTC))
    '2026-11-26T08:00:05.000Z'
    """
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class Measurement:
    """Measurement is one reading as a device reports it (in the device's own unit)."""

    type: str
    value: float
    unit: str
    time: datetime


@dataclass(frozen=True)
class DeviceMessage:
    """DeviceMessage is one v1 message: an id, readings and an optional shared context."""

    device_id: str
    msg_id: str
    measurements: Sequence[Measurement]
    context: Mapping[str, object] | None = None

    @property
    def topic(self) -> str:
        return readings_topic(self.device_id)


def encode_message(message: DeviceMessage) -> bytes:
    """encode_message serialises a message to the v1 JSON payload."""
    document: dict[str, object] = {
        "msg_id": message.msg_id,
        "readings": [
            {"type": m.type, "value": m.value, "unit": m.unit, "time": rfc3339(m.time)}
            for m in message.measurements
        ],
    }
    if message.context:
        document["context"] = dict(message.context)
    return json.dumps(document, separators=(",", ":")).encode()
