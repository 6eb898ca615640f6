"""``homecare simulate`` against the real pipeline: a private Mosquitto with the project's
security config, an ingest worker and a fresh PostgreSQL database. The simulated patients are
enrolled by the command itself, and every reading lands on the patient the labels say."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest

from homecare.devices.sim import SimConfig, Simulation
from homecare.ingest import Delivery, ParsedMessage, ParseLimits, parse_message
from tests.support.mosquitto import PrivateMosquitto
from tests.support.pipeline import (
    INGEST_PASSWORD,
    INGEST_USER,
    ingest_config,
    outcomes,
    running_worker,
    wait_for,
)
from tests.support.simulated import ms

DEVICE_PASSWORD = "sim-device-secret"
ARGS = ("--patients", "3", "--days", "2", "--seed", "1", "--device-password", DEVICE_PASSWORD)


def cohort(end: datetime) -> Simulation:
    return Simulation(SimConfig(patients=3, days=2, seed=1, end=end))


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[PrivateMosquitto]:
    devices = cohort(datetime.now(UTC)).device_ids()  # ids do not depend on the window
    users = {INGEST_USER: INGEST_PASSWORD} | {d: DEVICE_PASSWORD for d in devices}
    mosquitto = PrivateMosquitto(tmp_path / "mosquitto", users)
    mosquitto.start()
    yield mosquitto
    mosquitto.stop()


def test_homecare_simulate_feeds_the_pipeline_the_right_patients(
    broker: PrivateMosquitto, database_url: str, db: psycopg.Connection[Any], tmp_path: Path
) -> None:
    labels_path = tmp_path / "labels.json"
    with running_worker(ingest_config(database_url, broker.port)):
        result = subprocess.run(
            [sys.executable, "-m", "homecare", "simulate", *ARGS, "--labels", str(labels_path)],
            env=os.environ
            | {
                "HOMECARE_DATABASE_URL": database_url,
                "HOMECARE_MQTT_URL": f"mqtt://127.0.0.1:{broker.port}",
                "HOMECARE_LOG_LEVEL": "WARNING",
            },
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0, result.stderr
        labels = json.loads(labels_path.read_text())

        # The same run again, from its labels: the messages the command published.
        end = datetime.fromisoformat(labels["generator"]["end"].replace("Z", "+00:00"))
        messages = [m for m in cohort(end).messages() if not m.resend]
        now = datetime.now(UTC)
        want_stored = want_quarantined = 0
        for message in messages:
            parsed = parse_message(Delivery(message.topic, message.payload, now), ParseLimits())
            assert isinstance(parsed, ParsedMessage)
            want_stored += len(parsed.readings)
            want_quarantined += len(parsed.rejections)
        assert want_stored > 50
        wait_for(
            lambda: (
                outcomes(database_url)[0] >= want_stored
                and outcomes(database_url)[2] >= want_quarantined
            ),
            what="every simulated reading stored or quarantined",
        )
    stored, message_ids, quarantined = outcomes(database_url)
    assert (stored, quarantined) == (want_stored, want_quarantined)
    assert message_ids == len(messages)  # resends were duplicates

    patients = dict(db.execute("SELECT id, display_name FROM patients").fetchall())
    assert sorted(patients.values()) == sorted(p["id"] for p in labels["patients"])
    intervals = [
        (a["device_id"], a["patient_id"], ms(a["from"]), ms(a["to"]) if a["to"] else 2**62)
        for a in labels["assignments"]
    ]
    rows = db.execute("SELECT device_id, patient_id, time FROM readings").fetchall()
    for device_id, patient_id, moment in rows:
        at = round(moment.timestamp() * 1000)
        owner = [p for d, p, s, e in intervals if d == device_id and s <= at < e]
        assert owner == [patients[patient_id]]
    assert {patients[p] for _, p, _ in rows} == {p["id"] for p in labels["patients"]}
    programs = dict(db.execute("SELECT display_name, programs FROM patients").fetchall())
    assert programs == {p["id"]: p["programs"] for p in labels["patients"]}
