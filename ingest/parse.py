"""Parse: bytes from the broker to validated, canonical readings — a pure function.

Everything about the v1 contract (docs/contracts.md) that can be checked without the database is
checked here, so it is trivially testable and replayable. The policy on partial failure: a
problem with the message as a whole (size, encoding, JSON, shape, msg_id) refuses the whole
message; a problem with one reading (unknown type, bad unit, implausible value, bad time)
refuses only that reading, and the others are stored. A BP cuff's good blood pressure is not
thrown away because its heart-rate sensor glitched — and the glitch is still kept, in
quarantine, with its reason.

Whatever the bytes, ``parse_message`` returns; it never raises. A check that raises anyway (a
bug, or an input nobody thought of) refuses the message as ``ingest_error`` with the exception's
type: one hostile message must not stop the commit process that parses every device's messages.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from homecare import catalogue
from homecare.ingest.event_time import BadTime, parse_time
from homecare.ingest.model import (
    Delivery,
    DeviceReading,
    ParsedMessage,
    QuarantineReason,
    RejectedMessage,
    Rejection,
)

__all__ = ["ParseLimits", "device_id_from_topic", "parse_message"]

_TOPIC = re.compile(r"^homecare/v1/devices/(?P<device>[A-Za-z0-9._-]{1,64})/readings$")
_MSG_ID = re.compile(r"^[\x21-\x7e]{1,128}$")  # printable ASCII, no spaces or control chars
_MESSAGE_KEYS = frozenset({"msg_id", "readings", "context"})
_READING_KEYS = frozenset({"type", "value", "unit", "time"})
_MAX_READINGS = 1000
_TYPES = catalogue.CATALOGUE


@dataclass(frozen=True)
class ParseLimits:
    """ParseLimits are the contract's bounds that an operator may tune."""

    max_payload_bytes: int = 64 * 1024
    max_future_skew: timedelta = timedelta(minutes=5)
    max_age: timedelta = timedelta(days=400)


def device_id_from_topic(topic: str) -> str | None:
    """device_id_from_topic returns the device id of a v1 readings topic, else None.

    >>> device_id_from_topic("homecare/v1/devices/cuff-17/readings")
    'cuff-17'
    >>> device_id_from_topic("homecare/v1/devices/a b/readings") is None
    True
    """
    match = _TOPIC.match(topic)
    return match["device"] if match else None


def parse_message(delivery: Delivery, limits: ParseLimits) -> ParsedMessage | RejectedMessage:
    """parse_message validates one delivery against the v1 contract; it never raises."""
    try:
        return _parse(delivery, limits)
    except Exception as exc:  # the contract: every message ends stored or quarantined
        return RejectedMessage(
            delivery,
            device_id_from_topic(delivery.topic),
            None,
            Rejection(QuarantineReason.INGEST_ERROR, f"parser failed: {_describe(exc)}"),
        )


def _parse(delivery: Delivery, limits: ParseLimits) -> ParsedMessage | RejectedMessage:
    device_id = device_id_from_topic(delivery.topic)

    def refuse(reason: QuarantineReason, detail: str, msg_id: str | None = None) -> RejectedMessage:
        return RejectedMessage(delivery, device_id, msg_id, Rejection(reason, detail))

    if device_id is None:
        return refuse(QuarantineReason.BAD_TOPIC, "topic does not match the v1 readings topic")
    if len(delivery.payload) > limits.max_payload_bytes:
        return refuse(
            QuarantineReason.OVERSIZE,
            f"payload is {len(delivery.payload)} bytes, limit {limits.max_payload_bytes}",
        )
    try:
        text = delivery.payload.decode("utf-8")
    except UnicodeDecodeError as exc:
        return refuse(QuarantineReason.BAD_ENCODING, f"not UTF-8: {exc.reason} at {exc.start}")
    try:
        document = _JSON.decode(text)
    except (ValueError, RecursionError) as exc:
        return refuse(QuarantineReason.BAD_JSON, _first_line(exc))
    if not isinstance(document, dict):
        return refuse(QuarantineReason.SCHEMA, "payload is not a JSON object")
    msg_id = document.get("msg_id")
    if not isinstance(msg_id, str) or not _MSG_ID.match(msg_id):
        return refuse(QuarantineReason.SCHEMA, "msg_id must be 1-128 printable ASCII characters")
    problem = _message_shape_problem(document)
    if problem is not None:
        return refuse(QuarantineReason.SCHEMA, problem, msg_id)
    context = document.get("context") or {}
    on_oxygen: bool | None = context.get("on_oxygen")
    consciousness: str | None = context.get("consciousness")

    readings: list[DeviceReading] = []
    rejections: list[Rejection] = []
    for index, item in enumerate(document["readings"]):
        result = _parse_reading(index, item, delivery.received_at, limits, on_oxygen, consciousness)
        if type(result) is DeviceReading:
            readings.append(result)
        else:
            rejections.append(result)  # type: ignore[arg-type]
    return ParsedMessage(delivery, device_id, msg_id, tuple(readings), tuple(rejections))


def _message_shape_problem(document: dict[str, Any]) -> str | None:
    unknown = set(document) - _MESSAGE_KEYS
    if unknown:
        return f"unknown message fields: {', '.join(sorted(unknown))}"
    readings = document.get("readings")
    if not isinstance(readings, list) or not readings:
        return "readings must be a non-empty array"
    if len(readings) > _MAX_READINGS:
        return f"more than {_MAX_READINGS} readings in one message"
    context = document.get("context")
    if context is None:
        return None
    if not isinstance(context, dict):
        return "context must be an object"
    unknown = set(context) - {"on_oxygen", "consciousness"}
    if unknown:
        return f"unknown context fields: {', '.join(sorted(unknown))}"
    if "on_oxygen" in context and not isinstance(context["on_oxygen"], bool):
        return "context.on_oxygen must be true or false"
    if "consciousness" in context and context["consciousness"] not in catalogue.ACVPU:
        return "context.consciousness must be one of A, C, V, P, U"
    return None


class _Refused(Exception):
    """_Refused carries a per-reading rejection out of the checks below."""

    def __init__(self, reason: QuarantineReason, detail: str) -> None:
        self.reason = reason
        self.detail = detail


def _parse_reading(
    index: int,
    item: object,
    received_at: datetime,
    limits: ParseLimits,
    on_oxygen: bool | None,
    consciousness: str | None,
) -> DeviceReading | Rejection:
    try:
        return _checked_reading(index, item, received_at, limits, on_oxygen, consciousness)
    except _Refused as refused:
        return Rejection(refused.reason, refused.detail, index)


def _checked_reading(
    index: int,
    item: object,
    received_at: datetime,
    limits: ParseLimits,
    on_oxygen: bool | None,
    consciousness: str | None,
) -> DeviceReading:
    if not isinstance(item, dict):
        raise _Refused(QuarantineReason.SCHEMA, "reading is not an object")
    if item.keys() != _READING_KEYS:
        missing = _READING_KEYS - set(item)
        if missing:
            raise _Refused(QuarantineReason.SCHEMA, f"reading lacks {', '.join(sorted(missing))}")
        unknown = ", ".join(sorted(set(item) - _READING_KEYS))
        raise _Refused(QuarantineReason.SCHEMA, f"unknown reading fields: {unknown}")
    type_name, value, unit, raw_time = item["type"], item["value"], item["unit"], item["time"]
    if not isinstance(type_name, str) or not isinstance(unit, str) or not isinstance(raw_time, str):
        raise _Refused(QuarantineReason.SCHEMA, "type, unit and time must be strings")
    if type(value) is not int and type(value) is not float:  # bool is refused too
        raise _Refused(QuarantineReason.SCHEMA, "value must be a number")
    try:
        original = float(value)
    except OverflowError:  # an integer of 309 digits or more
        raise _Refused(
            QuarantineReason.IMPLAUSIBLE_VALUE, "value is too large for a double-precision number"
        ) from None
    if not math.isfinite(original):
        raise _Refused(QuarantineReason.SCHEMA, "value must be finite")
    try:
        time = parse_time(raw_time)
    except BadTime as exc:
        raise _Refused(QuarantineReason.SCHEMA, str(exc)) from None
    kind = _TYPES.get(type_name)
    if kind is None:
        raise _Refused(QuarantineReason.UNKNOWN_TYPE, f"unknown type {_clip(type_name)!r}")
    try:
        canonical = kind.to_canonical(original, unit)
    except catalogue.BadUnit:
        raise _Refused(
            QuarantineReason.BAD_UNIT,
            f"unit {_clip(unit)!r} not accepted for {kind.name};"
            f" accepted: {', '.join(kind.accepted_units)}",
        ) from None
    if not kind.is_plausible(canonical):
        raise _Refused(
            QuarantineReason.IMPLAUSIBLE_VALUE,
            f"{kind.name} {canonical:g} {kind.canonical_unit} outside"
            f" {kind.plausible_min:g}..{kind.plausible_max:g}",
        )
    if time > received_at + limits.max_future_skew:
        raise _Refused(
            QuarantineReason.FUTURE_TIME,
            f"time {raw_time} is more than {limits.max_future_skew} after receipt",
        )
    if time < received_at - limits.max_age:
        raise _Refused(
            QuarantineReason.TOO_OLD, f"time {raw_time} is older than {limits.max_age.days} days"
        )
    return DeviceReading(
        index,
        kind.name,
        time,
        canonical,
        kind.canonical_unit,
        original,
        unit,
        on_oxygen,
        consciousness,
    )


def _describe(exc: BaseException) -> str:
    return _clip(f"{type(exc).__name__}: {_first_line(exc)}", 200)


def _refuse_constant(name: str) -> float:
    raise ValueError(f"{name} is not valid JSON")


# One decoder for every message: json.loads with any keyword builds a new JSONDecoder per call
# (about 1 % of the worker's time under load, seen with py-spy).
_JSON = json.JSONDecoder(parse_constant=_refuse_constant)


def _clip(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[:limit] + "…"


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__
