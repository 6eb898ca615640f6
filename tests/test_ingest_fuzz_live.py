"""Live fuzz of the running ingest: a few thousand generated messages, valid and hostile mixed,
through a real Mosquitto (the project's broker config) to the real worker and commit process and
a real PostgreSQL. Every message must have exactly one outcome (stored, a harmless resend, or
quarantined), nothing lost, nothing doubled, and the commit process must never die."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest

from homecare.devices import BrokerAddress, DevicePublisher, Outgoing
from homecare.ingest import Delivery, ParsedMessage, ParseLimits, QuarantineBudget, parse_message
from tests.conftest import enrol
from tests.support.mosquitto import PrivateMosquitto
from tests.support.pipeline import (
    INGEST_PASSWORD,
    INGEST_USER,
    device_password,
    ingest_config,
    running_worker,
    wait_for,
)

DEVICES = tuple(f"fuzz-{i}" for i in range(6))
MESSAGES = 3000
NOW = datetime.now(UTC).replace(microsecond=0)


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[PrivateMosquitto]:
    users = {INGEST_USER: INGEST_PASSWORD} | {d: device_password(d) for d in DEVICES}
    mosquitto = PrivateMosquitto(tmp_path / "mosquitto", users)
    mosquitto.start()
    yield mosquitto
    mosquitto.stop()


def hostile_value(rng: random.Random) -> str:
    return rng.choice(
        [
            "1" + "0" * rng.randint(309, 4000),  # no double holds it
            "-" + "9" * 400,
            "NaN",
            "Infinity",
            "-0.0",
            "1e999",
            '"72"',
            "true",
            "[72]",
            '{"v": 72}',
        ]
    )


def hostile_time(rng: random.Random, at: datetime) -> str:
    stamp = at.strftime("%Y-%m-%dT%H:%M:%S")
    return rng.choice(
        [
            stamp + "+23:59",
            stamp + "-16:00",
            stamp + "+05:30:15.123456",
            stamp,
            stamp + "+0530",
            "2026-02-30T08:00:05Z",
            "٢٠٢٦-11-26T08:00:05Z",
            at.strftime("%Y-%m-%d"),
        ]
    )


def reading_json(kind: str, value: str, unit: str, time: str) -> str:
    return f'{{"type": "{kind}", "value": {value}, "unit": "{unit}", "time": "{time}"}}'


def generate(rng: random.Random) -> list[Outgoing]:
    """generate is the mix: mostly valid messages, and every kind of hostile one."""
    out: list[Outgoing] = []
    sent: list[Outgoing] = []
    for n in range(MESSAGES):
        device = DEVICES[n % len(DEVICES)]
        topic = f"homecare/v1/devices/{device}/readings"
        at = NOW - timedelta(minutes=n + 1)
        msg_id = f"f{n}"
        good = reading_json("heart_rate", str(rng.randint(40, 140)), "/min", at.isoformat())
        roll = rng.random()
        readings = [good]
        payload: bytes | None = None
        if roll < 0.05 and sent:  # an exact resend
            out.append(rng.choice(sent))
            continue
        if roll < 0.08 and sent:  # a reused msg_id with other content
            earlier = rng.choice(sent)
            body = json.loads(earlier.payload)
            body["readings"][0]["value"] = 41 if body["readings"][0]["value"] != 41 else 42
            out.append(Outgoing(earlier.device_id, earlier.topic, json.dumps(body).encode(),
                                earlier.msg_id, "conflict", 0))  # fmt: skip
            continue
        if roll < 0.14:
            readings.append(reading_json("spo2", hostile_value(rng), "%", at.isoformat()))
        elif roll < 0.20:
            readings.append(reading_json("spo2", "97", "%", hostile_time(rng, at)))
        elif roll < 0.23:
            payload = b"\xff\xfe" + bytes(rng.randrange(256) for _ in range(40))
        elif roll < 0.26:
            payload = b'{"msg_id": "%s", "readings": ' % msg_id.encode() + b"[" * 100_000
        elif roll < 0.28:
            pad = " " * 70_000
            payload = f'{{"msg_id": "{msg_id}",{pad} "readings": [{good}]}}'.encode()
        elif roll < 0.31:
            note = "".join(chr(rng.choice([0x1F600, 0x202E, 0x0000, 0xFEFF, 0x10FFFF, 0xE9]))
                           for _ in range(30))  # fmt: skip
            readings.append(reading_json(json.dumps(note)[1:-1], "1", "/min", at.isoformat()))
        elif roll < 0.33:
            readings = [good] * 900  # the same reading 900 times: duplicates within a message
        if payload is not None:
            out.append(Outgoing(device, topic, payload, msg_id, "", 0))
            continue
        payload = f'{{"msg_id": "{msg_id}", "readings": [{", ".join(readings)}]}}'.encode()
        item = Outgoing(device, topic, payload, msg_id, "", 0)
        out.append(item)
        sent.append(item)
    return out


def test_hostile_traffic_gives_one_outcome_per_message_and_no_crash(
    broker: PrivateMosquitto, database_url: str, db: psycopg.Connection[Any]
) -> None:
    for device in DEVICES:
        enrol(db, device, since=NOW - timedelta(days=30))
    traffic = generate(random.Random(20261126))
    # What each message should become, from the parser (whose own edges test_parse checks) and
    # the msg_id rules: the first copy of an id is new (or quarantined whole), an identical
    # later copy is a duplicate, a different later copy is a conflicting duplicate.
    first: dict[tuple[str, str | None], bytes] = {}
    want = {"new": 0, "duplicate": 0, "quarantined": 0}
    want_readings = 0
    for item in traffic:
        parsed = parse_message(Delivery(item.topic, item.payload, NOW), ParseLimits())
        if not isinstance(parsed, ParsedMessage):
            want["quarantined"] += 1
            continue
        key = (item.device_id, parsed.msg_id)
        if key not in first:
            first[key] = item.payload
            want["new"] += 1
            want_readings += len({(r.type, r.time) for r in parsed.readings})
        elif first[key] == item.payload:
            want["duplicate"] += 1
        else:
            want["quarantined"] += 1
    assert min(want.values()) > 50

    address = BrokerAddress("127.0.0.1", broker.port, "5", password_for=device_password)
    # An allowance large enough to keep every payload: the versions are compared below.
    config = ingest_config(database_url, broker.port, quarantine_budget=QuarantineBudget(10**9))
    with running_worker(config) as worker:
        with DevicePublisher(address, DEVICES) as devices:
            devices.publish(traffic)

        def counted() -> dict[str, int]:
            snapshot = worker.metrics.snapshot()
            return {
                k: int(snapshot[f"homecare_ingest_messages_total{{outcome={k}}}"]) for k in want
            }

        wait_for(lambda: sum(counted().values()) >= len(traffic), 60, "an outcome per message")
        outcome = counted()
        restarts = worker.commit_restarts
        restart_metric = worker.metrics.snapshot()["homecare_ingest_commit_restarts_total"]

    # Two committers (or two workers) may commit two versions of one msg_id in either order:
    # whichever claims the id first is stored, and every other version — exact resends of the
    # loser included — goes to quarantine. So per class the counts may trade places; in total,
    # and in new messages, they may not.
    assert sum(outcome.values()) == len(traffic)  # one outcome each: nothing lost or doubled
    assert outcome["new"] == want["new"]
    assert outcome["quarantined"] >= want["quarantined"] - want["duplicate"]
    assert restarts == 0 and restart_metric == 0
    row = db.execute(
        "SELECT (SELECT count(*) FROM readings), (SELECT count(*) FROM ingested_messages),"
        " (SELECT count(*) FROM quarantine_reasons WHERE reading_index IS NULL)"
    ).fetchone()
    assert row == (want_readings, want["new"], outcome["quarantined"])
    # Every version of a reused msg_id is kept: the one stored, the others in quarantine.
    stored = dict(
        db.execute(
            "SELECT device_id || '/' || msg_id, value FROM readings WHERE type = 'heart_rate'"
        ).fetchall()
    )
    kept = {
        bytes(payload)
        for (payload,) in db.execute(
            "SELECT payload FROM quarantine WHERE reason = 'conflicting_duplicate'"
        )
    }
    assert len(kept) > 20
    for item in traffic:
        name = f"{item.device_id}/{item.msg_id}"
        if item.payload in kept or name not in stored:
            continue
        value = json.loads(item.payload)["readings"][0]["value"]
        assert stored[name] == value, f"a version of {name} was lost"
