"""The v1 contract's validation (docs/contracts.md), checked on the pure parser, one reason
at a time."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from homecare.ingest import (
    Delivery,
    ParsedMessage,
    ParseLimits,
    QuarantineReason,
    RejectedMessage,
    parse_message,
)

NOW = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)
TOPIC = "homecare/v1/devices/cuff-1/readings"
LIMITS = ParseLimits()


def deliver(payload: object, topic: str = TOPIC) -> ParsedMessage | RejectedMessage:
    raw = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return parse_message(Delivery(topic=topic, payload=raw, received_at=NOW), LIMITS)


def reading(**overrides: object) -> dict[str, object]:
    base: dict[str, object] = {
        "type": "heart_rate",
        "value": 72,
        "unit": "/min",
        "time": "2026-11-26T08:00:05Z",
    }
    base.update(overrides)
    return base


def message(*readings: dict[str, object], **extra: object) -> dict[str, object]:
    return {"msg_id": "m-1", "readings": list(readings) or [reading()], **extra}


def test_the_contract_example_parses_in_canonical_units() -> None:
    result = deliver(
        {
            "msg_id": "4f1c2b9e-0c55-4e0a-9d7e-3f3a1f0f8a21",
            "readings": [
                {
                    "type": "systolic_bp",
                    "value": 128,
                    "unit": "mm[Hg]",
                    "time": "2026-11-26T08:00:05Z",
                },
                {
                    "type": "diastolic_bp",
                    "value": 84,
                    "unit": "mm[Hg]",
                    "time": "2026-11-26T08:00:05Z",
                },
                {"type": "heart_rate", "value": 72, "unit": "/min", "time": "2026-11-26T08:00:05Z"},
            ],
            "context": {"on_oxygen": False, "consciousness": "A"},
        }
    )
    assert isinstance(result, ParsedMessage)
    assert result.device_id == "cuff-1"
    assert [(r.type, r.value, r.unit) for r in result.readings] == [
        ("systolic_bp", 128.0, "mm[Hg]"),
        ("diastolic_bp", 84.0, "mm[Hg]"),
        ("heart_rate", 72.0, "/min"),
    ]
    assert all(r.time == datetime(2026, 11, 26, 8, 0, 5, tzinfo=UTC) for r in result.readings)
    assert all(r.on_oxygen is False and r.consciousness == "A" for r in result.readings)
    assert result.rejections == ()


def test_other_units_are_converted_and_the_original_kept() -> None:
    result = deliver(message(reading(type="body_weight", value=220, unit="[lb_av]")))
    assert isinstance(result, ParsedMessage)
    (weight,) = result.readings
    assert weight.value == pytest.approx(99.790321, abs=1e-6)  # 220 lb × 0.45359237 kg/lb
    assert (weight.unit, weight.original_value, weight.original_unit) == ("kg", 220, "[lb_av]")


def test_offsets_are_kept_as_instants() -> None:
    result = deliver(message(reading(time="2026-11-26T03:00:05-05:00")))
    assert isinstance(result, ParsedMessage)
    assert result.readings[0].time == datetime(2026, 11, 26, 8, 0, 5, tzinfo=UTC)


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"{not json", QuarantineReason.BAD_JSON),
        (b'{"msg_id": "a", "readings": [NaN]}', QuarantineReason.BAD_JSON),
        (b"\xff\xfe{}", QuarantineReason.BAD_ENCODING),
        (b"[1, 2]", QuarantineReason.SCHEMA),
        (json.dumps({"readings": [reading()]}).encode(), QuarantineReason.SCHEMA),
        (json.dumps({"msg_id": "", "readings": [reading()]}).encode(), QuarantineReason.SCHEMA),
        (
            json.dumps({"msg_id": "x" * 129, "readings": [reading()]}).encode(),
            QuarantineReason.SCHEMA,
        ),
        (
            json.dumps({"msg_id": "a\u0000b", "readings": [reading()]}).encode(),
            QuarantineReason.SCHEMA,
        ),
        (json.dumps({"msg_id": "a", "readings": []}).encode(), QuarantineReason.SCHEMA),
        (json.dumps({"msg_id": "a", "readings": {}}).encode(), QuarantineReason.SCHEMA),
        (json.dumps(message(patient="p-1")).encode(), QuarantineReason.SCHEMA),
        (json.dumps(message(context={"consciousness": "X"})).encode(), QuarantineReason.SCHEMA),
        (json.dumps(message(context={"on_oxygen": "yes"})).encode(), QuarantineReason.SCHEMA),
    ],
)
def test_whole_message_refusals(payload: bytes, reason: QuarantineReason) -> None:
    result = deliver(payload)
    assert isinstance(result, RejectedMessage)
    assert result.rejection.reason is reason
    assert result.rejection.detail


def test_oversize_is_refused_before_parsing() -> None:
    payload = json.dumps(message(*[reading()] * 1000)).encode()
    assert len(payload) > LIMITS.max_payload_bytes
    result = deliver(payload)
    assert isinstance(result, RejectedMessage)
    assert result.rejection.reason is QuarantineReason.OVERSIZE


def test_a_topic_that_is_not_a_device_readings_topic_is_refused() -> None:
    result = deliver(message(), topic="homecare/v1/devices/a+b/readings")
    assert isinstance(result, RejectedMessage)
    assert result.rejection.reason is QuarantineReason.BAD_TOPIC
    assert result.device_id is None


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        (reading(type="blood_pressure"), QuarantineReason.UNKNOWN_TYPE),
        (reading(unit="bpm "), QuarantineReason.BAD_UNIT),
        (reading(type="systolic_bp", unit="mmhg"), QuarantineReason.BAD_UNIT),
        (reading(value=19.9), QuarantineReason.IMPLAUSIBLE_VALUE),
        (reading(value=300.1), QuarantineReason.IMPLAUSIBLE_VALUE),
        (
            reading(type="body_temperature", value=120, unit="[degF]"),
            QuarantineReason.IMPLAUSIBLE_VALUE,
        ),
        (reading(time="2026-11-26T09:05:01Z"), QuarantineReason.FUTURE_TIME),
        (reading(time="2025-10-01T00:00:00Z"), QuarantineReason.TOO_OLD),
        (reading(time="2026-11-26T08:00:05"), QuarantineReason.SCHEMA),
        (reading(time="2026-11-26"), QuarantineReason.SCHEMA),
        (reading(value="72"), QuarantineReason.SCHEMA),
        (reading(value=True), QuarantineReason.SCHEMA),
        ({"type": "heart_rate", "value": 72, "unit": "/min"}, QuarantineReason.SCHEMA),
        (reading(note="x"), QuarantineReason.SCHEMA),
        ("heart_rate 72", QuarantineReason.SCHEMA),
    ],
)
def test_one_bad_reading_is_refused_and_the_others_kept(
    bad: object, reason: QuarantineReason
) -> None:
    result = deliver(
        {"msg_id": "m-1", "readings": [reading(), bad, reading(type="spo2", value=95, unit="%")]}
    )
    assert isinstance(result, ParsedMessage)
    assert [r.type for r in result.readings] == ["heart_rate", "spo2"]
    assert [(r.reason, r.reading_index) for r in result.rejections] == [(reason, 1)]


def test_plausible_edges_and_skew_edges_are_accepted() -> None:
    # heart_rate plausible range 20–300 /min inclusive (docs/contracts.md); 5 min clock skew
    # allowed.
    result = deliver(
        message(
            reading(value=20),
            reading(value=300, time="2026-11-26T08:00:06Z"),
            reading(value=60, time=(NOW + timedelta(minutes=5)).isoformat()),
        )
    )
    assert isinstance(result, ParsedMessage)
    assert len(result.readings) == 3 and result.rejections == ()


def test_an_integer_too_large_for_a_float_is_refused_not_raised() -> None:
    # 10**309 has no double: float() raises OverflowError, which once killed the commit process.
    payload = b'{"msg_id": "m-1", "readings": [{"type": "heart_rate", "value": 1' + b"0" * 309
    payload += b', "unit": "/min", "time": "2026-11-26T08:00:05Z"}]}'
    result = deliver(payload)
    assert isinstance(result, ParsedMessage)
    assert [(r.reason, r.reading_index) for r in result.rejections] == [
        (QuarantineReason.IMPLAUSIBLE_VALUE, 0)
    ]


def test_an_unforeseen_exception_refuses_the_message_instead_of_raising() -> None:
    class Exploding(bytes):
        def __len__(self) -> int:
            raise RuntimeError("boom")

    delivery = Delivery(topic=TOPIC, payload=Exploding(b"{}"), received_at=NOW)
    result = parse_message(delivery, LIMITS)
    assert isinstance(result, RejectedMessage)
    assert result.rejection.reason is QuarantineReason.INGEST_ERROR
    assert "RuntimeError: boom" in result.rejection.detail


@pytest.mark.parametrize(
    ("time", "utc"),
    [
        ("2026-11-26T08:00:05Z", "2026-11-26T08:00:05"),
        ("2026-11-26t08:00:05z", "2026-11-26T08:00:05"),
        ("2026-11-26 08:00:05+00:00", "2026-11-26T08:00:05"),
        ("2026-11-26T08:00:05-00:00", "2026-11-26T08:00:05"),
        ("2026-11-26T23:59:05+15:59", "2026-11-26T08:00:05"),  # PostgreSQL's largest offset
        ("2026-11-25T16:01:05-15:59", "2026-11-26T08:00:05"),
        ("2026-11-26T13:30:05+05:30", "2026-11-26T08:00:05"),
        ("2026-11-26T08:00:05.1Z", "2026-11-26T08:00:05.100000"),
        ("2026-11-26T08:00:05.123456789Z", "2026-11-26T08:00:05.123456"),  # truncated to µs
    ],
)
def test_rfc3339_times_within_the_stores_range_are_accepted(time: str, utc: str) -> None:
    result = deliver(message(reading(time=time)))
    assert isinstance(result, ParsedMessage) and result.rejections == ()
    assert result.readings[0].time.astimezone(UTC).replace(tzinfo=None).isoformat() == utc


@pytest.mark.parametrize(
    ("time", "detail"),
    [
        ("2026-11-26T08:00:05+16:00", "outside -15:59..+15:59"),
        ("2026-11-26T08:00:05+23:59", "outside -15:59..+15:59"),
        ("2026-11-26T08:00:05-23:59", "outside -15:59..+15:59"),
        ("2026-11-26T08:00:05+05:60", "more than 59 minutes"),
        ("2026-11-26T08:00:05+05:30:15", "RFC 3339"),  # seconds in an offset
        ("2026-11-26T08:00:05+05:30:15.123456", "RFC 3339"),
        ("2026-11-26T08:00:05+0530", "RFC 3339"),
        ("2026-11-26T08:00:05+05", "RFC 3339"),
        ("2026-11-26T08:00:05", "RFC 3339"),
        ("2026-11-26T08:00Z", "RFC 3339"),
        ("2026-W48-4T08:00:05Z", "RFC 3339"),
        ("2026-11-26T08:00:05.Z", "RFC 3339"),
        ("2026-11-26T08:00:05.1234567890Z", "RFC 3339"),
        ("２０２６-11-26T08:00:05Z", "RFC 3339"),  # full-width digits
        ("2026-11-26T08:00:60Z", "not a valid date"),  # a leap second
        ("2026-02-30T08:00:05Z", "not a valid date"),
        ("2026-11-26T24:00:05Z", "not a valid date"),
        ("0000-11-26T08:00:05Z", "not a valid date"),
        ("2026-11-26T08:00:05Z" + " " * 30, "RFC 3339"),
    ],
)
def test_times_the_store_cannot_take_are_refused_by_the_parser(time: str, detail: str) -> None:
    result = deliver(message(reading(time=time)))
    assert isinstance(result, ParsedMessage) and result.readings == ()
    (rejection,) = result.rejections
    assert rejection.reason is QuarantineReason.SCHEMA
    assert detail in rejection.detail
