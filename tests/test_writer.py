"""The writer against a real PostgreSQL: attribution, de-duplication, quarantine."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg

from homecare import store
from homecare.ingest import Delivery, ParseLimits, parse_message, write_batch
from tests.conftest import enrol

NOW = datetime.now(UTC).replace(microsecond=0)


def delivery(device_id: str, msg_id: str, *readings: dict[str, object]) -> Delivery:
    payload = json.dumps({"msg_id": msg_id, "readings": list(readings)}).encode()
    return Delivery(f"homecare/v1/devices/{device_id}/readings", payload, NOW)


def hr(value: float, at: datetime) -> dict[str, object]:
    return {"type": "heart_rate", "value": value, "unit": "/min", "time": at.isoformat()}


def write(conn: psycopg.Connection[Any], *deliveries: Delivery) -> Any:
    return write_batch(conn, [parse_message(d, ParseLimits()) for d in deliveries])


def quarantine(conn: psycopg.Connection[Any]) -> list[tuple[Any, ...]]:
    return conn.execute(
        "SELECT device_id, msg_id, reading_index, reason FROM quarantine ORDER BY id"
    ).fetchall()


def test_a_reading_belongs_to_the_patient_assigned_at_its_event_time(
    db: psycopg.Connection[Any],
) -> None:
    first = enrol(db, "cuff-1", since=NOW - timedelta(days=10))
    second = store.create_patient(db, display_name="Second", programs=["copd"])
    store.assign_device(db, "cuff-1", second, NOW - timedelta(days=2))

    outcome = write(
        db,
        # A backlog uploaded after the reassignment: the old reading is still the first's.
        delivery("cuff-1", "a", hr(70, NOW - timedelta(days=3)), hr(80, NOW - timedelta(hours=1))),
    )

    assert [r.patient_id for r in outcome.stored] == [first, second]
    rows = db.execute("SELECT patient_id, value FROM readings ORDER BY time").fetchall()
    assert rows == [(first, 70.0), (second, 80.0)]


def test_a_reading_before_any_assignment_is_quarantined_as_unassigned(
    db: psycopg.Connection[Any],
) -> None:
    enrol(db, "cuff-1", since=NOW - timedelta(days=1))
    outcome = write(db, delivery("cuff-1", "a", hr(70, NOW - timedelta(days=2)), hr(71, NOW)))
    assert len(outcome.stored) == 1
    assert quarantine(db) == [("cuff-1", "a", 0, "unassigned_device")]


def test_unknown_and_revoked_devices_are_quarantined_whole(db: psycopg.Connection[Any]) -> None:
    enrol(db, "cuff-2")
    db.execute("UPDATE devices SET status = 'revoked' WHERE device_id = 'cuff-2'")
    outcome = write(db, delivery("ghost", "a", hr(70, NOW)), delivery("cuff-2", "b", hr(70, NOW)))
    assert outcome.stored == [] and outcome.messages_quarantined == 2
    assert quarantine(db) == [
        ("ghost", "a", None, "unknown_device"),
        ("cuff-2", "b", None, "revoked_device"),
    ]
    assert db.execute("SELECT count(*) FROM ingested_messages").fetchone() == (0,)


def test_a_resent_message_is_stored_once_across_batches_and_within_one(
    db: psycopg.Connection[Any],
) -> None:
    enrol(db, "cuff-1")
    message = delivery("cuff-1", "same-id", hr(70, NOW))
    first = write(db, message, message)
    second = write(db, message)
    assert (len(first.stored), first.messages_new, first.messages_duplicate) == (1, 1, 1)
    assert (len(second.stored), second.messages_new, second.messages_duplicate) == (0, 0, 1)
    assert db.execute("SELECT count(*) FROM readings").fetchone() == (1,)
    assert quarantine(db) == []


def test_the_same_reading_under_another_msg_id_is_quarantined_not_doubled(
    db: psycopg.Connection[Any],
) -> None:
    enrol(db, "cuff-1")
    write(db, delivery("cuff-1", "a", hr(70, NOW)))
    outcome = write(db, delivery("cuff-1", "b", hr(70, NOW), hr(71, NOW - timedelta(minutes=1))))
    assert len(outcome.stored) == 1
    assert db.execute("SELECT count(*) FROM readings").fetchone() == (2,)
    assert quarantine(db) == [("cuff-1", "b", 0, "duplicate_reading")]


def test_quarantine_keeps_the_raw_payload_and_a_readable_reason(
    db: psycopg.Connection[Any],
) -> None:
    enrol(db, "cuff-1")
    raw = b'{"msg_id": "x", "readings": [}'
    write(db, Delivery("homecare/v1/devices/cuff-1/readings", raw, NOW))
    reason, detail, payload = db.execute(
        "SELECT reason, detail, payload FROM quarantine"
    ).fetchone() or (None, None, None)
    assert reason == "bad_json"
    assert "Expecting value" in detail
    assert bytes(payload) == raw


def test_canonical_and_original_values_and_context_are_stored(db: psycopg.Connection[Any]) -> None:
    enrol(db, "scale-1")
    payload = json.dumps(
        {
            "msg_id": "w",
            "readings": [
                {"type": "body_weight", "value": 176, "unit": "[lb_av]", "time": NOW.isoformat()}
            ],
            "context": {"on_oxygen": True, "consciousness": "A"},
        }
    ).encode()
    write(db, Delivery("homecare/v1/devices/scale-1/readings", payload, NOW))
    row = db.execute(
        "SELECT type, value, unit, original_value, original_unit, on_oxygen, consciousness,"
        " time FROM readings"
    ).fetchone()
    assert row is not None
    assert row[0] == "body_weight" and abs(row[1] - 79.8322571) < 1e-6  # 176 × 0.45359237
    assert row[2:7] == ("kg", 176.0, "[lb_av]", True, "A")
    assert row[7] == NOW
