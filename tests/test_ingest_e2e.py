"""End to end through a real Mosquitto (the project's security config) into a real PostgreSQL."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest

from homecare import store
from homecare.devices import (
    MALFORMED_KINDS,
    BrokerAddress,
    DeviceMessage,
    DevicePublisher,
    Measurement,
    Outgoing,
    TrafficPlan,
    encode_message,
    generate,
    readings_topic,
)
from tests.conftest import enrol
from tests.support.mosquitto import PrivateMosquitto
from tests.support.pipeline import (
    INGEST_PASSWORD,
    INGEST_USER,
    count,
    device_password,
    ingest_config,
    outcomes,
    running_worker,
    wait_for,
)

DEVICES = tuple(f"cuff-{i}" for i in range(4))
GHOST = "ghost-1"  # has broker credentials but is not registered in the database
LONER = "loner-1"  # registered but never assigned to a patient


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[PrivateMosquitto]:
    users = {INGEST_USER: INGEST_PASSWORD}
    users.update({d: device_password(d) for d in (*DEVICES, GHOST, LONER)})
    mosquitto = PrivateMosquitto(tmp_path / "mosquitto", users)
    mosquitto.start()
    yield mosquitto
    mosquitto.stop()


def publisher(broker: PrivateMosquitto, devices: tuple[str, ...] = DEVICES) -> DevicePublisher:
    return DevicePublisher(
        BrokerAddress("127.0.0.1", broker.port, "5", password_for=device_password), devices
    )


def patients_by_device(conn: psycopg.Connection[Any]) -> dict[str, uuid.UUID]:
    return dict(conn.execute("SELECT device_id, patient_id FROM device_assignments").fetchall())


def test_messages_become_readings_of_the_right_patient_once(
    broker: PrivateMosquitto, database_url: str, db: psycopg.Connection[Any]
) -> None:
    for device in DEVICES:
        enrol(db, device, since=datetime.now(UTC) - timedelta(days=2))
    plan = TrafficPlan(
        DEVICES,
        messages=600,
        start=datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1),
        interval=timedelta(seconds=5),
        resend_ratio=0.1,
        malformed_ratio=0.1,
        seed=7,
    )
    expected = list(generate(plan))
    want_readings = sum(o.readings for o in expected)
    want_quarantine: dict[str, int] = {}
    for o in expected:
        if o.expected not in ("stored", "resend"):
            want_quarantine[o.expected] = want_quarantine.get(o.expected, 0) + 1
    assert set(want_quarantine) == set(MALFORMED_KINDS.values())  # every kind was generated
    assert sum(o.expected == "resend" for o in expected) > 20

    with running_worker(ingest_config(database_url, broker.port)), publisher(broker) as devices:
        devices.publish(expected)
        wait_for(
            lambda: (
                outcomes(database_url)[2] >= sum(want_quarantine.values())
                and outcomes(database_url)[0] >= want_readings
            ),
            what="every message stored or quarantined",
        )

    stored, _, _ = outcomes(database_url)
    assert stored == want_readings  # resends stored once, nothing lost
    reasons = dict(db.execute("SELECT reason, count(*) FROM quarantine GROUP BY 1").fetchall())
    assert reasons == want_quarantine
    owners = patients_by_device(db)
    wrong = db.execute(
        "SELECT count(*) FROM readings r JOIN device_assignments a USING (device_id)"
        " WHERE r.patient_id <> a.patient_id"
    ).fetchone()
    assert wrong == (0,) and len(owners) == len(DEVICES)
    units = dict(db.execute("SELECT type, min(unit) FROM readings GROUP BY 1").fetchall())
    assert units == {"systolic_bp": "mm[Hg]", "diastolic_bp": "mm[Hg]", "heart_rate": "/min"}
    first = expected[0]
    assert first.expected == "stored"
    times = db.execute(
        "SELECT DISTINCT time FROM readings WHERE msg_id = %s", (first.msg_id,)
    ).fetchall()
    assert times == [(plan.start,)]  # the event time the device stated, not receipt time


def test_device_level_quarantine_reasons_through_the_broker(
    broker: PrivateMosquitto, database_url: str, db: psycopg.Connection[Any]
) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    enrol(db, "cuff-0", since=now - timedelta(days=1))
    store.register_device(db, LONER)

    def message(device: str, msg_id: str, at: datetime) -> tuple[str, bytes]:
        body = DeviceMessage(device, msg_id, [Measurement("heart_rate", 70, "/min", at)])
        return readings_topic(device), encode_message(body)

    items = [
        Outgoing(GHOST, *message(GHOST, "g1", now), "g1", "unknown_device", 0),
        Outgoing(LONER, *message(LONER, "l1", now), "l1", "unassigned_device", 0),
        # Measured before the device was assigned: not anybody's reading.
        Outgoing("cuff-0", *message("cuff-0", "early", now - timedelta(days=3)), "early", "x", 0),
        Outgoing("cuff-0", *message("cuff-0", "a", now), "a", "stored", 1),
        # Same reading, new msg_id: a duplicate reading, kept in quarantine, not stored twice.
        Outgoing("cuff-0", *message("cuff-0", "b", now), "b", "duplicate_reading", 0),
    ]
    with (
        running_worker(ingest_config(database_url, broker.port)),
        publisher(broker, ("cuff-0", GHOST, LONER)) as devices,
    ):
        devices.publish(items)
        wait_for(lambda: outcomes(database_url)[2] >= 4, what="four quarantine rows")
    rows = db.execute("SELECT device_id, msg_id, reason FROM quarantine ORDER BY id").fetchall()
    assert sorted(rows) == sorted(
        [
            (GHOST, "g1", "unknown_device"),
            (LONER, "l1", "unassigned_device"),
            ("cuff-0", "early", "unassigned_device"),
            ("cuff-0", "b", "duplicate_reading"),
        ]
    )
    assert count(database_url, "SELECT count(*) FROM readings") == 1


def test_a_device_cannot_publish_as_another(
    broker: PrivateMosquitto, database_url: str, db: psycopg.Connection[Any]
) -> None:
    now = datetime.now(UTC)
    enrol(db, "cuff-0")
    enrol(db, "cuff-1")
    forged = DeviceMessage("cuff-1", "forged", [Measurement("heart_rate", 250, "/min", now)])
    honest = DeviceMessage("cuff-0", "honest", [Measurement("heart_rate", 70, "/min", now)])
    with (
        running_worker(ingest_config(database_url, broker.port)),
        publisher(broker, ("cuff-0",)) as devices,
    ):
        devices.publish(
            [
                Outgoing("cuff-0", forged.topic, encode_message(forged), "forged", "denied", 0),
                Outgoing("cuff-0", honest.topic, encode_message(honest), "honest", "stored", 1),
            ]
        )
        wait_for(lambda: count(database_url, "SELECT count(*) FROM readings") >= 1)
    rows = db.execute("SELECT device_id, msg_id FROM readings").fetchall()
    assert rows == [("cuff-0", "honest")]
    assert count(database_url, "SELECT count(*) FROM quarantine") == 0


def test_messages_queued_while_no_worker_runs_are_drained_later(
    broker: PrivateMosquitto, database_url: str, db: psycopg.Connection[Any]
) -> None:
    for device in DEVICES:
        enrol(db, device)
    config = ingest_config(database_url, broker.port, client_id="ingest-persistent")
    with running_worker(config):
        pass  # first connect creates the persistent session and its subscription
    plan = TrafficPlan(DEVICES, messages=300, start=datetime.now(UTC) - timedelta(hours=1), seed=3)
    with publisher(broker) as devices:
        devices.publish(generate(plan))
    assert count(database_url, "SELECT count(*) FROM readings") == 0
    with running_worker(config):
        wait_for(lambda: count(database_url, "SELECT count(*) FROM readings") >= 900)
    assert outcomes(database_url) == (900, 300, 0)


def test_a_backlog_bigger_than_the_handoff_arrives_before_the_suback_and_is_drained(
    broker: PrivateMosquitto, database_url: str, db: psycopg.Connection[Any]
) -> None:
    # On reconnect the broker sends what the session holds before it answers the SUBSCRIBE,
    # and it may send more than the worker's hand-off holds: MQTT 3.1.1 has no Receive Maximum
    # (mosquitto sends up to its max_inflight_messages, 4000 here), and mosquitto 2.0.11 does not
    # always keep to an MQTT 5 one (after a SIGKILL it resent 1,600 to a worker that announced
    # 300). The worker must drain while it waits for the SUBACK, not wait for it first: the
    # hand-off fills, the SUBACK queued behind the messages is never read, and the worker
    # neither started nor stopped.
    for device in DEVICES:
        enrol(db, device)
    base = ingest_config(database_url, broker.port, "ingest-backlog", connect_timeout_s=5.0)
    config = replace(base, mqtt=replace(base.mqtt, protocol="3.1.1", receive_maximum=100))
    with running_worker(config):
        pass  # first connect creates the persistent session and its subscription
    # The hand-off holds 2 x receive_maximum + 1000 = 1200 deliveries; the backlog is 3000.
    plan = TrafficPlan(DEVICES, messages=3000, start=datetime.now(UTC) - timedelta(hours=1), seed=4)
    with publisher(broker) as devices:
        devices.publish(generate(plan))
    with running_worker(config):
        wait_for(lambda: count(database_url, "SELECT count(*) FROM readings") >= 9000)
    assert outcomes(database_url) == (9000, 3000, 0)


def test_two_workers_share_the_load_and_store_everything_once(
    broker: PrivateMosquitto, database_url: str, db: psycopg.Connection[Any]
) -> None:
    for device in DEVICES:
        enrol(db, device)
    plan = TrafficPlan(DEVICES, messages=1000, start=datetime.now(UTC) - timedelta(hours=2), seed=5)
    with (
        running_worker(ingest_config(database_url, broker.port, "w1", "ingest")) as w1,
        running_worker(ingest_config(database_url, broker.port, "w2", "ingest")) as w2,
        publisher(broker) as devices,
    ):
        devices.publish(generate(plan))
        wait_for(lambda: count(database_url, "SELECT count(*) FROM readings") >= 3000)
        shares = [
            w.metrics.snapshot().get("homecare_ingest_messages_total{outcome=new}", 0)
            for w in (w1, w2)
        ]
    assert outcomes(database_url) == (3000, 1000, 0)
    assert sum(shares) == 1000 and min(shares) > 100  # both workers took part


def test_a_message_the_database_refuses_is_isolated_and_quarantined(
    broker: PrivateMosquitto, database_url: str, db: psycopg.Connection[Any]
) -> None:
    enrol(db, "cuff-0")
    # A constraint the parser does not know about stands in for any input the database refuses
    # (SQLSTATE class 23): the batch must be split, only the offending message quarantined.
    db.execute("ALTER TABLE readings ADD CONSTRAINT no_123 CHECK (value <> 123)")
    now = datetime.now(UTC).replace(microsecond=0)
    items = []
    for i, value in enumerate((70, 123, 71)):
        body = DeviceMessage(
            "cuff-0",
            f"m{i}",
            [Measurement("heart_rate", value, "/min", now - timedelta(minutes=i))],
        )
        items.append(Outgoing("cuff-0", body.topic, encode_message(body), f"m{i}", "", 1))
    config = ingest_config(database_url, broker.port, batch_max_wait_s=0.5)
    with running_worker(config) as worker, publisher(broker, ("cuff-0",)) as devices:
        devices.publish(items)
        wait_for(lambda: outcomes(database_url)[2] >= 1, what="the refused message in quarantine")
        wait_for(lambda: outcomes(database_url)[0] >= 2, what="the two good messages stored")
        splits = worker.metrics.snapshot()["homecare_ingest_poison_splits_total"]
    assert outcomes(database_url) == (2, 2, 1)
    (reason, msg_id, detail) = db.execute(
        "SELECT reason, msg_id, detail FROM quarantine"
    ).fetchone()
    assert (reason, msg_id) == ("rejected_by_store", "m1")
    assert "23514" in detail  # check_violation
    assert splits == 1
