"""Devices through the API against a real Mosquitto with the dynamic-security plugin: the
credentials ``POST /devices`` shows once are the ones the broker accepts, a device publishes
only under its own id, the ingest stores what it sends for the patient it was assigned to at
the reading's time, rotation and revocation cut it off at once, and no password is kept."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.api_support import World, build_world, packs_dir
from tests.support.dynsec_broker import (
    NOT_AUTHORIZED,
    Broker,
    connect,
    dynsec_broker,
    ingest_config,
    reading,
    stored,
    topic,
)
from tests.support.pipeline import running_worker, wait_for

__all__ = ["packs_dir"]
P = "/api/v1"


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    made = dynsec_broker(tmp_path / "mosquitto")
    with made.mosquitto:
        yield made


@pytest.fixture
def device_world(
    database_url: str, db: psycopg.Connection[Any], packs_dir: Path, broker: Broker
) -> Iterator[World]:
    with build_world(database_url, db, packs_dir, broker.accounts) as made:
        yield made


def test_registered_device_publishes_under_its_own_id_and_is_stored_for_its_patient(
    device_world: World, broker: Broker, database_url: str
) -> None:
    world = device_world
    made = world.post("admin", f"{P}/devices", json={"device_id": "cuff-api-1", "model": "A&D"})
    assert made.status_code == 201, made.text
    creds = made.json()
    assert creds["mqtt_username"] == creds["device_id"] == "cuff-api-1"
    other = world.post("admin", f"{P}/devices", json={"device_id": "cuff-api-2"}).json()
    again = world.post("admin", f"{P}/devices", json={"device_id": "cuff-api-1"})
    assert again.status_code == 409 and again.json()["code"] == "credentials_already_issued"
    since = (world.clock.now - timedelta(days=400)).isoformat()
    assigned = world.put(
        "admin",
        f"{P}/devices/cuff-api-1/assignment",
        json={"patient_id": str(world.patients["own"]), "since": since},
    )
    assert assigned.status_code == 200, assigned.text
    shown = world.get("admin", f"{P}/devices/cuff-api-1").json()
    assert shown["patient_id"] == str(world.patients["own"]) and shown["has_credentials"]

    device = connect(broker, creds["mqtt_username"], creds["mqtt_password"])
    try:
        assert device.accepted
        with running_worker(ingest_config(database_url, broker)):
            assert not device.publish(topic("cuff-api-1"), reading("cuff-api-1")).is_failure
            forged = device.publish(topic("cuff-api-2"), reading("cuff-api-2"))
            assert forged.value == NOT_AUTHORIZED
            wait_for(lambda: stored(database_url, "cuff-api-1") == 1, 10, "the reading")
        assert stored(database_url, "cuff-api-2") == 0
    finally:
        device.close()
    assert not connect(broker, "cuff-api-1", other["mqtt_password"]).accepted

    # Rotation: the old password stops, the new one works; revocation ends everything.
    rotated = world.post("admin", f"{P}/devices/cuff-api-1/rotate").json()
    assert rotated["mqtt_password"] != creds["mqtt_password"]
    assert not connect(broker, "cuff-api-1", creds["mqtt_password"]).accepted
    assert connect(broker, "cuff-api-1", rotated["mqtt_password"]).accepted
    revoked = world.post("admin", f"{P}/devices/cuff-api-1/revoke").json()
    assert revoked["status"] == "revoked" and not revoked["has_credentials"]
    assert not connect(broker, "cuff-api-1", rotated["mqtt_password"]).accepted
    refused = world.post("admin", f"{P}/devices/cuff-api-1/rotate")
    assert refused.status_code == 409 and refused.json()["code"] == "device_revoked"
    reassign = world.put(
        "admin",
        f"{P}/devices/cuff-api-1/assignment",
        json={"patient_id": str(world.patients["other"])},
    )
    assert reassign.status_code == 409

    # No password anywhere in the database: only the broker's own hash format.
    dump = str(world.db.execute("SELECT * FROM devices").fetchall()) + str(
        world.db.execute("SELECT * FROM audit_log").fetchall()
    )
    for secret in (creds["mqtt_password"], rotated["mqtt_password"], other["mqtt_password"]):
        assert secret not in dump
    actions = [
        r[0]
        for r in world.db.execute(
            "SELECT action FROM audit_log WHERE action LIKE 'device.%' ORDER BY id"
        )
    ]
    assert actions == [
        "device.register",
        "device.register",
        "device.assign",
        "device.rotate",
        "device.revoke",
    ]


def test_assignment_history_and_conflicts(device_world: World) -> None:
    world = device_world
    world.db.execute("INSERT INTO devices (device_id) VALUES ('scale-1')")
    path = f"{P}/devices/scale-1/assignment"
    t0 = world.clock.now - timedelta(days=10)
    world.put(
        "admin", path, json={"patient_id": str(world.patients["own"]), "since": t0.isoformat()}
    )
    early = world.put(
        "admin",
        path,
        json={
            "patient_id": str(world.patients["other"]),
            "since": (t0 - timedelta(days=1)).isoformat(),
        },
    )
    assert early.status_code == 409 and early.json()["code"] == "assignment_conflict"
    world.put("admin", path, json={"patient_id": str(world.patients["other"])})
    history = world.get("admin", f"{P}/devices/scale-1/assignments").json()["data"]
    assert [(h["patient_id"], h["valid_to"] is None) for h in history] == [
        (str(world.patients["other"]), True),
        (str(world.patients["own"]), False),
    ]
    unknown = world.put("admin", path, json={"patient_id": "00000000-0000-0000-0000-000000000000"})
    assert unknown.status_code == 404


def test_without_a_broker_registration_answers_503_and_changes_nothing(
    database_url: str, db: psycopg.Connection[Any], packs_dir: Path
) -> None:
    with build_world(database_url, db, packs_dir, None) as world:
        answer = world.post("admin", f"{P}/devices", json={"device_id": "cuff-x"})
        assert answer.status_code == 503 and answer.json()["code"] == "broker_unavailable"
        assert world.db.execute("SELECT count(*) FROM devices").fetchone() == (0,)
