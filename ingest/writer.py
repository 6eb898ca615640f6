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
5. everything refused is written to quarantine with its reason and the raw payload;
6. the patients whose readings changed are announced in ``reading_changes`` (an outbox the rules
   stage consumes), with the earliest event time stored for each.

The caller acknowledges the messages to the broker only after this commits.
"""

from __future__ import annotations

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
        status, intervals = _devices(conn, {m.device_id for m in parsed})
        parsed = _usable(parsed, status, quarantined)
        claimed = _claim_message_ids(conn, parsed)
        outcome.messages_duplicate += len(parsed) - len(claimed)
        outcome.messages_new = len(claimed)
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
                                reading.position,
                            ),
                        )
                    )
                    continue
                candidates.append((_reading(message, reading, patient), message, reading.position))
        stored = _insert_readings(conn, [c[0] for c in candidates])
        for (candidate, message, index), was_stored in zip(candidates, stored, strict=True):
            if was_stored:
                outcome.stored.append(candidate)
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
        _announce_changes(conn, outcome.stored)
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


def _devices(
    conn: psycopg.Connection[Any], device_ids: set[str]
) -> tuple[dict[str, str], dict[str, list[_Interval]]]:
    """_devices reads each device's status and assignment history in one round trip."""
    status: dict[str, str] = {}
    intervals: dict[str, list[_Interval]] = {}
    if not device_ids:
        return status, intervals
    for device_id, state, patient_id, valid_from, valid_to in conn.execute(
        "SELECT d.device_id, d.status, a.patient_id, a.valid_from, a.valid_to"
        " FROM devices d LEFT JOIN device_assignments a USING (device_id)"
        " WHERE d.device_id = ANY(%s) ORDER BY d.device_id, a.valid_from",
        (sorted(device_ids),),
    ):
        status[device_id] = state
        if patient_id is not None:
            intervals.setdefault(device_id, []).append((valid_from, valid_to, patient_id))
    return status, intervals


def _usable(
    parsed: list[ParsedMessage],
    status: dict[str, str],
    quarantined: list[tuple[RejectedMessage | ParsedMessage, Rejection]],
) -> list[ParsedMessage]:
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
        " SELECT * FROM unnest(%b::text[], %b::text[], %b::timestamptz[])"
        " ON CONFLICT DO NOTHING RETURNING device_id, msg_id",
        (
            [m.device_id for m in parsed],
            [m.msg_id for m in parsed],
            [m.delivery.received_at for m in parsed],
        ),
    ).fetchall()
    if len(rows) == len(parsed):
        return parsed
    new = {(device_id, msg_id) for device_id, msg_id in rows}
    return [m for m in parsed if (m.device_id, m.msg_id) in new]


def _patient_at(intervals: list[_Interval], time: datetime) -> uuid.UUID | None:
    # A device has a handful of assignments in its life: the newest that started at or before
    # the reading decides, unless it had already ended by then.
    for start, end, patient in reversed(intervals):
        if time >= start:
            return patient if end is None or time < end else None
    return None


def _reading(message: ParsedMessage, reading: DeviceReading, patient: uuid.UUID) -> Reading:
    return Reading(
        patient,
        message.device_id,
        message.msg_id,
        reading.type,
        reading.time,
        reading.value,
        reading.unit,
        reading.original_value,
        reading.original_unit,
        message.delivery.received_at,
        reading.on_oxygen,
        reading.consciousness,
    )


def _insert_readings(conn: psycopg.Connection[Any], readings: list[Reading]) -> list[bool]:
    """_insert_readings stores the readings; returns, for each, whether it was stored.

    The common case (nothing conflicts) costs one statement and no result rows; only when the
    row count says some were skipped is the table asked which, by comparing msg_ids: a row that
    is there under another message's id was a duplicate of something stored earlier.
    """
    if not readings:
        return []
    columns = list(zip(*readings, strict=True))
    cursor = conn.execute(
        "INSERT INTO readings (patient_id, device_id, msg_id, type, time, value, unit,"
        " original_value, original_unit, received_at, on_oxygen, consciousness)"
        " SELECT * FROM unnest(%b::uuid[], %b::text[], %b::text[], %b::text[],"
        " %b::timestamptz[], %b::float8[], %b::text[], %b::float8[], %b::text[],"
        " %b::timestamptz[], %b::boolean[], %b::text[])"
        " ON CONFLICT (device_id, type, time) DO NOTHING",
        [list(column) for column in columns],
    )
    if cursor.rowcount == len(readings):
        return [True] * len(readings)
    owners = {
        (device_id, type_, time): msg_id
        for device_id, type_, time, msg_id in conn.execute(
            "SELECT r.device_id, r.type, r.time, r.msg_id FROM readings r"
            " JOIN unnest(%s::text[], %s::text[], %s::timestamptz[]) AS k(device_id, type, time)"
            " ON r.device_id = k.device_id AND r.type = k.type AND r.time = k.time",
            (list(columns[1]), list(columns[3]), list(columns[4])),
        )
    }
    stored: list[bool] = []
    claimed: set[tuple[str, str, datetime]] = set()
    for reading in readings:
        key = (reading.device_id, reading.type, reading.time)
        mine = owners.get(key) == reading.msg_id and key not in claimed
        claimed.add(key)
        stored.append(mine)
    return stored


def _announce_changes(conn: psycopg.Connection[Any], stored: list[Reading]) -> None:
    """_announce_changes notes, per patient, the earliest event time just stored.

    The next stage (rules) reads this outbox; writing it in the same transaction as the readings
    means no stored reading can go unevaluated, whatever crashes afterwards. Patients are sorted
    so that two workers touching the same patients lock the rows in the same order.
    """
    if not stored:
        return
    earliest: dict[uuid.UUID, datetime] = {}
    for reading in stored:
        known = earliest.get(reading.patient_id)
        if known is None or reading.time < known:
            earliest[reading.patient_id] = reading.time
    patients = sorted(earliest)
    conn.execute(
        "INSERT INTO reading_changes (patient_id, earliest_time)"
        " SELECT * FROM unnest(%b::uuid[], %b::timestamptz[])"
        " ON CONFLICT (patient_id) DO UPDATE SET"
        " earliest_time = least(reading_changes.earliest_time, EXCLUDED.earliest_time),"
        " version = reading_changes.version + 1, noted_at = now()",
        (patients, [earliest[p] for p in patients]),
    )


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
