"""Writer: commit one batch of parsed messages — readings, quarantine, seen message ids.

One transaction per batch, a handful of set-based statements (``unnest`` of arrays), whatever
the batch size. Order matters for correctness:

1. devices are looked up, so messages from unknown or revoked devices are quarantined whole;
2. message ids are claimed in ``ingested_messages`` (``ON CONFLICT DO NOTHING``): a message
   whose id was already claimed — a broker redelivery, a device's resend, another worker's copy
   — is a duplicate and writes nothing more. Two workers claiming the same id serialise on the
   primary key, so exactly one of them stores the readings;
3. each reading is attributed to the patient the device was assigned to at its event time;
4. readings are inserted; a (device, type, time) already stored under another msg_id is
   quarantined as a duplicate reading rather than silently skipped;
5. everything refused is written to quarantine with its reason and the raw payload.

The caller acknowledges the messages to the broker only after this commits.
"""

from __future__ import annotations

import bisect
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import psycopg

from ingest.model import (
    BatchOutcome,
    DeviceReading,
    ParsedMessage,
    QuarantineReason,
    Reading,
    RejectedMessage,
    Rejection,
)

__all__ = ["quarantine_whole", "write_batch"]

_Interval = tuple[datetime, datetime | None, uuid.UUID]


def write_batch(
    conn: psycopg.Connection[Any], items: Sequence[ParsedMessage | RejectedMessage]
) -> BatchOutcome:
    """write_batch stores one batch in one transaction and says what became of it."""
    outcome = BatchOutcome()
    quarantined: list[tuple[RejectedMessage | ParsedMessage, Rejection]] = []
    parsed: list[ParsedMessage] = []
    seen: set[tuple[str, str]] = set()
    for item in items:
        if isinstance(item, RejectedMessage):
            quarantined.append((item, item.rejection))
        elif (item.device_id, item.msg_id) in seen:
            outcome.messages_duplicate += 1
        else:
            seen.add((item.device_id, item.msg_id))
            parsed.append(item)

    with conn.transaction():
        parsed = _drop_unusable_devices(conn, parsed, quarantined)
        claimed = _claim_message_ids(conn, parsed)
        outcome.messages_duplicate += len(parsed) - len(claimed)
        outcome.messages_new = len(claimed)
        intervals = _assignments(conn, {m.device_id for m in claimed})
        candidates: list[tuple[Reading, ParsedMessage, int]] = []
        for message in claimed:
            quarantined.extend((message, r) for r in message.rejections)
            device_intervals = intervals.get(message.device_id, [])
            for reading in message.readings:
                patient = _patient_at(device_intervals, reading.time)
                if patient is None:
                    quarantined.append(
                        (
                            message,
                            Rejection(
                                QuarantineReason.UNASSIGNED_DEVICE,
                                f"device not assigned to a patient at {reading.time.isoformat()}",
                                reading.index,
                            ),
                        )
                    )
                    continue
                candidates.append((_reading(message, reading, patient), message, reading.index))
        stored_keys = _insert_readings(conn, [c[0] for c in candidates])
        for candidate, message, index in candidates:
            key = (candidate.device_id, candidate.type, candidate.time)
            if key in stored_keys:
                outcome.stored.append(candidate)
                stored_keys.discard(key)  # a second identical key in this batch is a duplicate
            else:
                quarantined.append(
                    (
                        message,
                        Rejection(
                            QuarantineReason.DUPLICATE_READING,
                            f"{candidate.type} at {candidate.time.isoformat()} already stored"
                            " for this device under another msg_id",
                            index,
                        ),
                    )
                )
        _insert_quarantine(conn, quarantined)
    for source, rejection in quarantined:
        if isinstance(source, RejectedMessage):
            outcome.messages_quarantined += 1
        outcome.quarantined[rejection.reason.value] += 1
    return outcome


def quarantine_whole(
    conn: psycopg.Connection[Any], item: ParsedMessage | RejectedMessage, rejection: Rejection
) -> None:
    """quarantine_whole stores one message in quarantine only (used for poison messages)."""
    with conn.transaction():
        _insert_quarantine(conn, [(item, rejection)])


def _drop_unusable_devices(
    conn: psycopg.Connection[Any],
    parsed: list[ParsedMessage],
    quarantined: list[tuple[RejectedMessage | ParsedMessage, Rejection]],
) -> list[ParsedMessage]:
    if not parsed:
        return parsed
    status = dict(
        conn.execute(
            "SELECT device_id, status FROM devices WHERE device_id = ANY(%s)",
            (sorted({m.device_id for m in parsed}),),
        ).fetchall()
    )
    usable = []
    for message in parsed:
        state = status.get(message.device_id)
        if state == "active":
            usable.append(message)
            continue
        reason = (
            QuarantineReason.UNKNOWN_DEVICE if state is None else QuarantineReason.REVOKED_DEVICE
        )
        detail = "device is not registered" if state is None else "device credentials revoked"
        rejected = RejectedMessage(
            message.delivery, message.device_id, message.msg_id, Rejection(reason, detail)
        )
        quarantined.append((rejected, rejected.rejection))
    return usable


def _claim_message_ids(
    conn: psycopg.Connection[Any], parsed: list[ParsedMessage]
) -> list[ParsedMessage]:
    if not parsed:
        return []
    rows = conn.execute(
        "INSERT INTO ingested_messages (device_id, msg_id, received_at)"
        " SELECT * FROM unnest(%s::text[], %s::text[], %s::timestamptz[])"
        " ON CONFLICT DO NOTHING RETURNING device_id, msg_id",
        (
            [m.device_id for m in parsed],
            [m.msg_id for m in parsed],
            [m.delivery.received_at for m in parsed],
        ),
    ).fetchall()
    new = {(device_id, msg_id) for device_id, msg_id in rows}
    return [m for m in parsed if (m.device_id, m.msg_id) in new]


def _assignments(conn: psycopg.Connection[Any], devices: set[str]) -> dict[str, list[_Interval]]:
    if not devices:
        return {}
    intervals: dict[str, list[_Interval]] = {}
    for device_id, patient_id, valid_from, valid_to in conn.execute(
        "SELECT device_id, patient_id, valid_from, valid_to FROM device_assignments"
        " WHERE device_id = ANY(%s) ORDER BY device_id, valid_from",
        (sorted(devices),),
    ):
        intervals.setdefault(device_id, []).append((valid_from, valid_to, patient_id))
    return intervals


def _patient_at(intervals: list[_Interval], time: datetime) -> uuid.UUID | None:
    position = bisect.bisect_right([start for start, _, _ in intervals], time) - 1
    if position < 0:
        return None
    _, end, patient = intervals[position]
    return patient if end is None or time < end else None


def _reading(message: ParsedMessage, reading: DeviceReading, patient: uuid.UUID) -> Reading:
    return Reading(
        patient_id=patient,
        device_id=message.device_id,
        msg_id=message.msg_id,
        type=reading.type,
        time=reading.time,
        value=reading.value,
        unit=reading.unit,
        original_value=reading.original_value,
        original_unit=reading.original_unit,
        received_at=message.delivery.received_at,
        on_oxygen=reading.on_oxygen,
        consciousness=reading.consciousness,
    )


def _insert_readings(
    conn: psycopg.Connection[Any], readings: list[Reading]
) -> set[tuple[str, str, datetime]]:
    if not readings:
        return set()
    rows = conn.execute(
        "INSERT INTO readings (time, patient_id, device_id, type, value, unit, original_value,"
        " original_unit, msg_id, received_at, on_oxygen, consciousness)"
        " SELECT * FROM unnest(%s::timestamptz[], %s::uuid[], %s::text[], %s::text[],"
        " %s::float8[], %s::text[], %s::float8[], %s::text[], %s::text[], %s::timestamptz[],"
        " %s::boolean[], %s::text[])"
        " ON CONFLICT (device_id, type, time) DO NOTHING RETURNING device_id, type, time",
        (
            [r.time for r in readings],
            [r.patient_id for r in readings],
            [r.device_id for r in readings],
            [r.type for r in readings],
            [r.value for r in readings],
            [r.unit for r in readings],
            [r.original_value for r in readings],
            [r.original_unit for r in readings],
            [r.msg_id for r in readings],
            [r.received_at for r in readings],
            [r.on_oxygen for r in readings],
            [r.consciousness for r in readings],
        ),
    ).fetchall()
    return {(device_id, type_, time) for device_id, type_, time in rows}


def _insert_quarantine(
    conn: psycopg.Connection[Any],
    quarantined: list[tuple[RejectedMessage | ParsedMessage, Rejection]],
) -> None:
    if not quarantined:
        return
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO quarantine (received_at, topic, device_id, msg_id, reading_index,"
            " reason, detail, payload) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
            [
                (
                    source.delivery.received_at,
                    _text(source.delivery.topic),
                    source.device_id,
                    source.msg_id,
                    rejection.reading_index,
                    rejection.reason.value,
                    _text(rejection.detail),
                    source.delivery.payload,
                )
                for source, rejection in quarantined
            ],
        )


def _text(value: str) -> str:
    """_text makes any string storable in a text column (PostgreSQL refuses NUL)."""
    return value.replace("\x00", "\\x00")
