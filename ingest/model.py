"""Values the ingest stage hands on: what arrived, what it became, and why not.

    Delivery        one MQTT message as received (bytes, topic, broker bookkeeping)
      └─ parse ──▶  ParsedMessage   a well-formed message: DeviceReadings + per-reading Rejections
               └─▶  RejectedMessage the whole message refused (bad JSON, oversize, …)
    write ──────▶   BatchOutcome    Readings stored (attributed to a patient), counts by outcome

``Reading`` is the noun later stages consume (rules evaluate it), so it is defined here, by the
stage that produces it.
"""

from __future__ import annotations

import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import NamedTuple

__all__ = [
    "BatchOutcome",
    "Delivery",
    "DeviceReading",
    "ParsedMessage",
    "QuarantineReason",
    "Reading",
    "RejectedMessage",
    "Rejection",
]


class QuarantineReason(StrEnum):
    """QuarantineReason is the stable, machine-readable code stored with quarantined input.

    The last three are defences rather than verdicts on the input: ``conflicting_duplicate``
    keeps a message whose msg_id was already stored with other bytes (a device bug must not
    lose data silently); ``ingest_error`` is a message whose parsing or writing raised;
    ``ingest_crash`` one that killed the commit process repeatedly and was isolated by
    splitting its batch.
    """

    OVERSIZE = "oversize"
    BAD_TOPIC = "bad_topic"
    BAD_ENCODING = "bad_encoding"
    BAD_JSON = "bad_json"
    SCHEMA = "schema"
    UNKNOWN_DEVICE = "unknown_device"
    REVOKED_DEVICE = "revoked_device"
    UNASSIGNED_DEVICE = "unassigned_device"
    UNKNOWN_TYPE = "unknown_type"
    BAD_UNIT = "bad_unit"
    IMPLAUSIBLE_VALUE = "implausible_value"
    FUTURE_TIME = "future_time"
    TOO_OLD = "too_old"
    DUPLICATE_READING = "duplicate_reading"
    REJECTED_BY_STORE = "rejected_by_store"
    CONFLICTING_DUPLICATE = "conflicting_duplicate"
    INGEST_ERROR = "ingest_error"
    INGEST_CRASH = "ingest_crash"


@dataclass(frozen=True, slots=True)
class Delivery:
    """Delivery is one message from the broker, not yet acknowledged.

    ``generation`` counts broker connections: an ack for a message received on an earlier
    connection must not be sent on the new one, where its packet id may mean another message.
    """

    topic: str
    payload: bytes
    received_at: datetime
    mid: int = 0
    qos: int = 0
    generation: int = 0


@dataclass(frozen=True, slots=True)
class Rejection:
    """Rejection says why input was quarantined; ``reading_index`` points into the message."""

    reason: QuarantineReason
    detail: str
    reading_index: int | None = None


class DeviceReading(NamedTuple):
    """DeviceReading is a valid reading in canonical units, not yet attributed to a patient.

    A NamedTuple rather than a frozen dataclass: just as immutable and typed, and built several
    times faster, which matters at tens of thousands of readings a second.
    """

    position: int  # index of the reading within its message
    type: str
    time: datetime
    value: float
    unit: str
    original_value: float
    original_unit: str
    on_oxygen: bool | None
    consciousness: str | None


@dataclass(frozen=True, slots=True)
class ParsedMessage:
    """ParsedMessage is a well-formed v1 message: its valid readings and refused ones."""

    delivery: Delivery
    device_id: str
    msg_id: str
    readings: tuple[DeviceReading, ...]
    rejections: tuple[Rejection, ...]


@dataclass(frozen=True, slots=True)
class RejectedMessage:
    """RejectedMessage is a message refused whole; ``device_id`` is None if the topic was bad."""

    delivery: Delivery
    device_id: str | None
    msg_id: str | None
    rejection: Rejection


class Reading(NamedTuple):
    """Reading is a stored measurement of one patient, at its event time, in canonical units.

    A NamedTuple for the same reason as DeviceReading; its field order is the column order of
    the bulk insert.
    """

    patient_id: uuid.UUID
    device_id: str
    msg_id: str
    type: str
    time: datetime
    value: float
    unit: str
    original_value: float
    original_unit: str
    received_at: datetime
    on_oxygen: bool | None = None
    consciousness: str | None = None


@dataclass
class BatchOutcome:
    """BatchOutcome counts what one committed batch did; ``stored`` feeds the next stage."""

    stored: list[Reading] = field(default_factory=list)
    messages_new: int = 0
    messages_duplicate: int = 0
    messages_quarantined: int = 0
    quarantined: Counter[str] = field(default_factory=Counter)
    payloads_dropped: int = 0  # quarantined payloads over their device's allowance, not kept

    def merge(self, other: BatchOutcome) -> None:
        """merge adds another outcome's counts to this one (used when a batch is split)."""
        self.stored.extend(other.stored)
        self.messages_new += other.messages_new
        self.messages_duplicate += other.messages_duplicate
        self.messages_quarantined += other.messages_quarantined
        self.quarantined.update(other.quarantined)
        self.payloads_dropped += other.payloads_dropped
