"""Quarantine against hostile input, on a real PostgreSQL: a payload is kept once per message,
within a per-device hourly allowance; a reused msg_id with other content is kept, not dropped."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg

from homecare.ingest import Delivery, ParseLimits, QuarantineBudget, parse_message, write_batch
from tests.conftest import enrol

NOW = datetime.now(UTC).replace(microsecond=0)
LIMITS = ParseLimits(max_payload_bytes=2 * 1024 * 1024)


def bad_message(msg_id: str, readings: int = 800, pad: int = 1500) -> bytes:
    """bad_message is a large message whose every reading is refused (unknown type)."""
    item = {"type": "x" * pad, "value": 1, "unit": "/min", "time": NOW.isoformat()}
    return json.dumps({"msg_id": msg_id, "readings": [item] * readings}).encode()


def write(
    conn: psycopg.Connection[Any], device: str, payloads: list[bytes], budget: QuarantineBudget
) -> Any:
    topic = f"homecare/v1/devices/{device}/readings"
    items = [parse_message(Delivery(topic, p, NOW), LIMITS) for p in payloads]
    return write_batch(conn, items, budget)


def size(conn: psycopg.Connection[Any], relation: str) -> int:
    row = conn.execute("SELECT pg_total_relation_size(%s)", (relation,)).fetchone()
    return int(row[0]) if row else 0


def test_a_payload_is_kept_once_per_message_not_once_per_refused_reading(
    db: psycopg.Connection[Any],
) -> None:
    enrol(db, "cuff-1")
    payload = bad_message("m-1")
    assert len(payload) > 1_000_000
    outcome = write(db, "cuff-1", [payload], QuarantineBudget(device_hourly_bytes=10**9))
    assert outcome.quarantined == {"unknown_type": 800} and outcome.payloads_dropped == 0
    rows = db.execute(
        "SELECT count(*), count(DISTINCT payload_id), min(reading_index), max(reading_index)"
        " FROM quarantine"
    ).fetchone()
    assert rows == (800, 1, 0, 799)
    assert db.execute("SELECT payload FROM quarantine LIMIT 1").fetchone() == (payload,)
    # Once, not 800 times (800 × 1.2 MB would be about a gigabyte).
    assert size(db, "quarantine_payloads") + size(db, "quarantine_reasons") < 3 * len(payload)


def test_past_its_hourly_allowance_a_device_keeps_reasons_and_counts_not_payloads(
    db: psycopg.Connection[Any],
) -> None:
    enrol(db, "cuff-1")
    enrol(db, "cuff-2")
    budget = QuarantineBudget(device_hourly_bytes=3 * 1024 * 1024)
    payloads = [bad_message(f"m-{i}") for i in range(20)]
    outcome = write(db, "cuff-1", payloads[:10], budget)
    outcome.merge(write(db, "cuff-1", payloads[10:], budget))
    kept = (3 * 1024 * 1024) // len(payloads[0])
    assert outcome.payloads_dropped == 20 - kept
    assert outcome.quarantined == {"unknown_type": 20 * 800}  # every refusal is counted
    per_message = db.execute(
        "SELECT msg_id, count(*), bool_or(payload IS NOT NULL), min(detail) FROM quarantine"
        " GROUP BY msg_id ORDER BY min(id)"
    ).fetchall()
    assert [(m, n, has) for m, n, has, _ in per_message] == [
        (f"m-{i}", 800 if i < kept else 1, i < kept) for i in range(20)
    ]
    assert per_message[-1][3].startswith("800 readings refused; the first: unknown type")
    assert db.execute(
        "SELECT count(*), sum(bytes) FROM quarantine_payloads WHERE payload IS NULL"
    ).fetchone() == (20 - kept, sum(len(p) for p in payloads[kept:]))
    # The 20 messages of 1.2 MB cost at most the allowance, not 20 × 800 copies.
    assert size(db, "quarantine_payloads") < 5 * 1024 * 1024
    # Another device has its own allowance.
    other = write(db, "cuff-2", [bad_message("m-0")], budget)
    assert other.payloads_dropped == 0


def hr_message(msg_id: str, value: int) -> bytes:
    at = NOW - timedelta(minutes=int(msg_id.rsplit("-", 1)[1]))
    reading = {"type": "heart_rate", "value": value, "unit": "/min", "time": at.isoformat()}
    return json.dumps({"msg_id": msg_id, "readings": [reading]}).encode()


def test_a_reused_msg_id_with_other_content_is_quarantined_and_an_exact_resend_is_not(
    db: psycopg.Connection[Any],
) -> None:
    enrol(db, "cuff-1")
    budget = QuarantineBudget()
    first = write(db, "cuff-1", [hr_message("m-1", 70)], budget)
    assert first.messages_new == 1
    again = write(db, "cuff-1", [hr_message("m-1", 70), hr_message("m-1", 95)], budget)
    assert (again.messages_new, again.messages_duplicate, again.messages_quarantined) == (0, 1, 1)
    assert again.quarantined == {"conflicting_duplicate": 1}
    # Within one batch too: the first copy is stored, the differing second kept in quarantine.
    batch = write(db, "cuff-1", [hr_message("m-2", 71), hr_message("m-2", 99)], budget)
    assert (batch.messages_new, batch.messages_quarantined) == (1, 1)
    rows = db.execute("SELECT msg_id, reason, payload FROM quarantine ORDER BY id").fetchall()
    assert [(m, r, json.loads(bytes(p))["readings"][0]["value"]) for m, r, p in rows] == [
        ("m-1", "conflicting_duplicate", 95),
        ("m-2", "conflicting_duplicate", 99),
    ]
    values = db.execute("SELECT msg_id, value FROM readings ORDER BY msg_id").fetchall()
    assert values == [("m-1", 70.0), ("m-2", 71.0)]
