"""Writer: commit one batch of parsed messages — readings, quarantine, seen message ids.

One transaction per batch, a handful of set-based statements (``unnest`` of arrays), whatever
the batch size. Order matters for correctness:

1. devices are looked up, so messages from unknown or revoked devices are quarantined whole;
2. message ids are claimed in ``ingested_messages`` (``ON CONFLICT DO NOTHING``) with a digest
   of the raw payload: a message whose id was already claimed with the same bytes — a broker
   redelivery, a device's resend, another worker's copy — is a duplicate and writes nothing
   more; with other bytes it is a device reusing an id, and the message goes to quarantine
   whole as ``conflicting_duplicate`` (its content would otherwise be lost). Two workers
   claiming the same id serialise on the primary key, so exactly one of them stores it;
3. each reading is attributed to the patient the device was assigned to at its event time;
4. readings are inserted; a (device, type, time) already stored under another msg_id is
   quarantined as a duplicate reading rather than silently skipped;
5. everything refused is written to quarantine with its reason, and the raw payload once per
   message, within the device's hourly allowance (``QuarantineBudget``);
6. the patients whose readings changed are announced in ``reading_changes`` (an outbox the rules
   stage consumes), with the earliest event time stored for each.

The caller acknowledges the messages to the broker only after this commits.
"""

from __future__ import annotations

import hashlib
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg

from homecare.ingest.model import (
    BatchOutcome,
    DeviceReading,
    ParsedMessage,
    QuarantineReason,
    Reading,
    RejectedMessage,
    Rejection,
)

__all__ = ["QuarantineBudget", "quarantine_whole", "write_batch"]

_Interval = tuple[datetime, datetime | None, uuid.UUID]
_Source = RejectedMessage | ParsedMessage
_HOUR = timedelta(hours=1)


@dataclass(frozen=True)
class QuarantineBudget:
    """QuarantineBudget bounds the raw bytes quarantine keeps per device and clock hour.

    Past it a message's payload is not kept (its size is), and its refused readings are
    summarised as one row per reason: the refusal is still recorded and counted, but a device
    sending large bad messages cannot fill the database. Several writers check the allowance
    concurrently, so it can be exceeded by what they write at the same instant.
    """

    device_hourly_bytes: int = 1024 * 1024


def write_batch(
    conn: psycopg.Connection[Any],
    items: Sequence[ParsedMessage | RejectedMessage],
    budget: QuarantineBudget | None = None,
) -> BatchOutcome:
    """write_batch stores one batch in one transaction and says what became of it."""
    outcome = BatchOutcome()
    quarantined: list[tuple[_Source, Rejection]] = []
    parsed: list[ParsedMessage] = []
    digests: dict[tuple[str, str], bytes] = {}
    for item in items:
        if isinstance(item, RejectedMessage):
            quarantined.append((item, item.rejection))
            continue
        key, digest = (item.device_id, item.msg_id), _digest(item.delivery.payload)
        if key not in digests:
            digests[key] = digest
            parsed.append(item)
        elif digests[key] == digest:
            outcome.messages_duplicate += 1
        else:
            _conflicting(item, quarantined)

    with conn.transaction():
        status, intervals = _devices(conn, {m.device_id for m in parsed})
        parsed = _usable(parsed, status, quarantined)
        claimed, conflicting = _claim_message_ids(conn, parsed, digests)
        for message in conflicting:
            _conflicting(message, quarantined)
        outcome.messages_duplicate += len(parsed) - len(claimed) - len(conflicting)
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
        outcome.payloads_dropped = _insert_quarantine(conn, quarantined, budget)
        _announce_changes(conn, outcome.stored)
    for source, rejection in quarantined:
        if isinstance(source, RejectedMessage):
            outcome.messages_quarantined += 1
        outcome.quarantined[rejection.reason.value] += 1
    return outcome


def quarantine_whole(
    conn: psycopg.Connection[Any],
    item: ParsedMessage | RejectedMessage,
    rejection: Rejection,
    budget: QuarantineBudget | None = None,
) -> int:
    """quarantine_whole stores one message in quarantine only (used for poison messages);
    returns 1 if its payload was over the device's allowance and not kept."""
    with conn.transaction():
        return _insert_quarantine(conn, [(item, rejection)], budget)


def _digest(payload: bytes) -> bytes:
    return hashlib.blake2b(payload, digest_size=16).digest()


def _conflicting(message: ParsedMessage, quarantined: list[tuple[_Source, Rejection]]) -> None:
    rejection = Rejection(
        QuarantineReason.CONFLICTING_DUPLICATE,
        "msg_id already stored for this device with a different payload",
    )
    whole = RejectedMessage(message.delivery, message.device_id, message.msg_id, rejection)
    quarantined.append((whole, rejection))


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
    conn: psycopg.Connection[Any],
    parsed: list[ParsedMessage],
    digests: dict[tuple[str, str], bytes],
) -> tuple[list[ParsedMessage], list[ParsedMessage]]:
    """_claim_message_ids returns the messages claimed now, and those whose id was claimed
    before with other bytes (the rest were claimed before with the same bytes: resends)."""
    if not parsed:
        return [], []
    rows = conn.execute(
        "INSERT INTO ingested_messages (device_id, msg_id, received_at, digest)"
        " SELECT * FROM unnest(%b::text[], %b::text[], %b::timestamptz[], %b::bytea[])"
        " ON CONFLICT DO NOTHING RETURNING device_id, msg_id",
        (
            [m.device_id for m in parsed],
            [m.msg_id for m in parsed],
            [m.delivery.received_at for m in parsed],
            [digests[m.device_id, m.msg_id] for m in parsed],
        ),
    ).fetchall()
    if len(rows) == len(parsed):
        return parsed, []
    new = {(device_id, msg_id) for device_id, msg_id in rows}
    seen = [m for m in parsed if (m.device_id, m.msg_id) not in new]
    earlier = {
        (device_id, msg_id): digest
        for device_id, msg_id, digest in conn.execute(
            "SELECT i.device_id, i.msg_id, i.digest FROM ingested_messages i"
            " JOIN unnest(%s::text[], %s::text[]) AS k(device_id, msg_id)"
            " ON i.device_id = k.device_id AND i.msg_id = k.msg_id",
            ([m.device_id for m in seen], [m.msg_id for m in seen]),
        )
    }
    conflicting = [
        m
        for m in seen
        if earlier.get((m.device_id, m.msg_id)) not in (None, digests[m.device_id, m.msg_id])
    ]
    return [m for m in parsed if (m.device_id, m.msg_id) in new], conflicting


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
    quarantined: list[tuple[_Source, Rejection]],
    budget: QuarantineBudget | None,
) -> int:
    """_insert_quarantine writes each message's payload once and a row per refusal; returns
    how many payloads were over their device's allowance and not kept."""
    if not quarantined:
        return 0
    budget = budget or QuarantineBudget()
    by_message: dict[int, list[tuple[_Source, Rejection]]] = {}
    for source, rejection in quarantined:
        by_message.setdefault(id(source.delivery), []).append((source, rejection))
    messages = list(by_message.values())
    spent = _bytes_kept(conn, [group[0][0] for group in messages])
    ids = [
        row[0]
        for row in conn.execute(
            "SELECT nextval(pg_get_serial_sequence('quarantine_payloads', 'id'))"
            " FROM generate_series(1, %s)",
            (len(messages),),
        )
    ]
    payloads: list[tuple[int, datetime, str | None, int, bytes | None]] = []
    reasons: list[tuple[Any, ...]] = []
    dropped = 0
    for payload_id, group in zip(ids, messages, strict=True):
        source = group[0][0]
        delivery = source.delivery
        size = len(delivery.payload)
        account = (source.device_id, _hour(delivery.received_at))
        keep = spent.get(account, 0) + size <= budget.device_hourly_bytes
        if keep:
            spent[account] = spent.get(account, 0) + size
        else:
            dropped += 1
            group = _summarised(group)
        payloads.append(
            (payload_id, delivery.received_at, source.device_id, size,
             delivery.payload if keep else None)
        )  # fmt: skip
        reasons.extend(
            (
                delivery.received_at,
                _text(delivery.topic),
                item.device_id,
                item.msg_id,
                rejection.reading_index,
                rejection.reason.value,
                _text(rejection.detail),
                payload_id,
            )
            for item, rejection in group
        )
    conn.execute(
        "INSERT INTO quarantine_payloads (id, received_at, device_id, bytes, payload)"
        " SELECT * FROM unnest(%s::bigint[], %s::timestamptz[], %s::text[], %s::integer[],"
        " %s::bytea[])",
        [list(column) for column in zip(*payloads, strict=True)],
    )
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO quarantine_reasons (received_at, topic, device_id, msg_id,"
            " reading_index, reason, detail, payload_id) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
            reasons,
        )
    return dropped


def _bytes_kept(
    conn: psycopg.Connection[Any], sources: list[_Source]
) -> dict[tuple[str | None, datetime], int]:
    """_bytes_kept reads what each device already has kept in quarantine in the clock hours
    of ``sources``."""
    hours = {_hour(s.delivery.received_at) for s in sources}
    devices = sorted({s.device_id or "" for s in sources})
    spent: dict[tuple[str | None, datetime], int] = {}
    for device_id, hour, total in conn.execute(
        "SELECT device_id, date_trunc('hour', received_at, 'UTC'), sum(bytes)"
        " FROM quarantine_payloads"
        " WHERE payload IS NOT NULL AND coalesce(device_id, '') = ANY(%s)"
        " AND received_at >= %s AND received_at < %s GROUP BY 1, 2",
        (devices, min(hours), max(hours) + _HOUR),
    ):
        spent[device_id, hour] = int(total)
    return spent


def _hour(at: datetime) -> datetime:
    return at.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def _summarised(group: list[tuple[_Source, Rejection]]) -> list[tuple[_Source, Rejection]]:
    """_summarised keeps one row per reason of a message whose payload is not kept."""
    counts = Counter(rejection.reason for _, rejection in group)
    first: dict[QuarantineReason, tuple[_Source, Rejection]] = {}
    for item, rejection in group:
        first.setdefault(rejection.reason, (item, rejection))
    summary = []
    for reason, (item, rejection) in first.items():
        if counts[reason] > 1:
            detail = f"{counts[reason]} readings refused; the first: {rejection.detail}"
            rejection = Rejection(reason, detail, rejection.reading_index)
        summary.append((item, rejection))
    return summary


def _text(value: str) -> str:
    """_text makes any string storable in a text column (PostgreSQL refuses NUL)."""
    return value.replace("\x00", "\\x00")
