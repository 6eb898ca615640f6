"""Property-based fuzz of the parser over the whole v1 payload schema (hypothesis).

Whatever the bytes — numbers of any size, NaN/Infinity tokens, negative zero, any string, times
with any offset, nesting, unicode, payloads up to and past 64 KiB — ``parse_message`` returns
stored-to-be readings or quarantine reasons, one outcome per reading, and never raises.
Derandomized with a bounded number of examples: the same inputs on every run, so CI cannot flake.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from homecare import catalogue
from homecare.ingest import Delivery, ParsedMessage, ParseLimits, RejectedMessage, parse_message
from homecare.ingest.event_time import MAX_OFFSET

NOW = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)
LIMITS = ParseLimits()
TOPIC = "homecare/v1/devices/cuff-1/readings"

numbers = st.one_of(
    st.integers(min_value=-(10**400), max_value=10**400),
    st.integers(min_value=-400, max_value=400),
    st.floats(allow_nan=True, allow_infinity=True),  # json.dumps writes NaN / Infinity tokens
    st.just(-0.0),
    st.just(1e308),
    st.just(5e-324),
)
offsets = st.one_of(
    st.just("Z"),
    st.just("z"),
    st.builds(
        lambda sign, h, m: f"{sign}{h:02d}:{m:02d}",
        st.sampled_from("+-"),
        st.integers(0, 99),
        st.integers(0, 99),
    ),
    st.builds(
        lambda sign, h, m, s, f: f"{sign}{h:02d}:{m:02d}:{s:02d}.{f}",
        st.sampled_from("+-"),
        st.integers(0, 23),
        st.integers(0, 59),
        st.integers(0, 59),
        st.integers(0, 999999),
    ),
    st.text(max_size=8),
)
times = st.one_of(
    st.builds(
        lambda at, frac, sep, off: at.strftime(f"%Y-%m-%d{sep}%H:%M:%S") + frac + off,
        st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31)),
        st.sampled_from(["", ".5", ".123456", ".123456789", ".1234567890"]),
        st.sampled_from(["T", "t", " ", "_"]),
        offsets,
    ),
    st.builds(
        lambda minutes, off: (NOW - timedelta(minutes=minutes)).strftime("%Y-%m-%dT%H:%M:%S") + off,
        st.integers(-600, 10**6),
        offsets,
    ),
    st.text(),
)
json_values = st.recursive(
    st.none() | st.booleans() | numbers | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(), children),
    max_leaves=20,
)
readings = st.one_of(
    st.fixed_dictionaries(
        {
            "type": st.sampled_from(sorted(catalogue.CATALOGUE)) | st.text(),
            "value": numbers,
            "unit": st.sampled_from(["/min", "mm[Hg]", "kPa", "%", "Cel", "[degF]", "kg", "g"])
            | st.text(),
            "time": times,
        },
        optional={"extra": json_values},
    ),
    st.dictionaries(st.sampled_from(["type", "value", "unit", "time"]), json_values),
    json_values,
)
messages = st.fixed_dictionaries(
    {
        "msg_id": st.text(min_size=1, max_size=130) | st.integers() | st.none(),
        "readings": st.lists(readings, min_size=0, max_size=12),
    },
    optional={
        "context": st.fixed_dictionaries(
            {},
            optional={
                "on_oxygen": st.booleans() | json_values,
                "consciousness": st.sampled_from(list("ACVPUX")) | json_values,
            },
        )
        | json_values,
        "patient": json_values,
    },
)


def padded(document: dict[str, Any], pad: int) -> bytes:
    """padded serialises ``document`` with ``pad`` spaces of whitespace inside it (sizes up to
    and past the 64 KiB limit without generating megabytes of data)."""
    return json.dumps(document).replace(",", "," + " " * pad, 1).encode()


def huge_integer_message(digits: int) -> bytes:
    value = b"1" + b"0" * digits
    return (
        b'{"msg_id": "m", "readings": [{"type": "heart_rate", "value": '
        + value
        + (b', "unit": "/min", "time": "2026-11-26T08:00:05Z"}]}')
    )


payloads = st.one_of(
    st.builds(padded, messages, st.sampled_from([0, 0, 0, 1000, 65_000, 65_536, 70_000])),
    st.builds(lambda m: json.dumps(m, ensure_ascii=False).encode(), messages),
    st.binary(max_size=300),
    st.builds(lambda depth: b'{"msg_id": "m", "readings": ' + b"[" * depth, st.integers(0, 5000)),
    st.builds(
        lambda digits: (
            b'{"msg_id": "m", "readings": [{"type": "heart_rate", "value": 1'
            + b"0" * digits
            + b', "unit": "/min", "time": "2026-11-26T08:00:05Z"}]}'
        ),
        st.integers(300, 5000),
    ),
)


@settings(
    max_examples=400,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(payload=payloads)
def test_every_payload_ends_as_readings_or_reasons_and_never_raises(payload: bytes) -> None:
    result = parse_message(Delivery(TOPIC, payload, NOW), LIMITS)
    if isinstance(result, RejectedMessage):
        assert result.rejection.detail
        return
    assert isinstance(result, ParsedMessage)
    document = json.loads(payload)
    positions = [r.position for r in result.readings]
    refused = [r.reading_index for r in result.rejections]
    assert sorted(positions + refused) == list(range(len(document["readings"])))  # type: ignore[type-var]
    for reading in result.readings:
        offset = reading.time.utcoffset()
        assert offset is not None and abs(offset) <= MAX_OFFSET
        assert -(2**53) < reading.value < 2**53 and reading.original_value == reading.original_value
        assert reading.time <= NOW + LIMITS.max_future_skew
    for rejection in result.rejections:
        assert rejection.detail
