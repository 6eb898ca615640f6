"""Device credentials against a real Mosquitto with its dynamic-security plugin.

The broker is the production mechanism (deploy/mosquitto/mosquitto.conf's plugin, its state
rendered from the database by broker.sync); the ingest is the real worker logging in
as the read-only ingest account. What is checked is what the broker does: CONNACK and PUBACK
reason codes, sessions cut off, readings stored or not. Rebuilding the broker from the database
and the operator's commands are in tests/test_device_credentials_sync.py.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import psycopg
import pytest
from paho.mqtt.reasoncodes import ReasonCode

from homecare import store
from homecare.broker.credentials import (
    BrokerAccounts,
    BrokerNotConfigured,
    BrokerUnavailable,
    CredentialsAlreadyIssued,
    DeviceRevoked,
    InvalidDeviceId,
    UnknownDevice,
    issue_device_credentials,
    revoke_device,
    rotate_device_credentials,
)
from homecare.broker.dynsec import DynsecAdmin
from homecare.broker.hashing import verify_password
from tests.support.dynsec_broker import (
    ADMIN,
    INGEST,
    NOT_AUTHORIZED,
    Broker,
    connect,
    dynsec_broker,
    enrol,
    ingest_config,
    reading,
    stored,
    topic,
)
from tests.support.pipeline import count, running_worker, wait_for
from tests.support.services import free_port


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    made = dynsec_broker(tmp_path / "mosquitto", verbose=True)
    with made.mosquitto:
        yield made


# --- the credentials are the broker's -------------------------------------------------------------


def test_issued_credentials_publish_readings_the_ingest_stores_and_only_under_their_own_id(
    broker: Broker, database_url: str, db: psycopg.Connection[Any]
) -> None:
    alice = issue_device_credentials(db, "cuff-alice", "BP cuff", broker.accounts)
    bob = issue_device_credentials(db, "cuff-bob", None, broker.accounts)
    assert alice.mqtt_username == alice.device_id == "cuff-alice"
    assert alice.mqtt_password != bob.mqtt_password and len(alice.mqtt_password) >= 43
    assert alice.mqtt_password not in repr(alice)
    enrol(db, alice)
    enrol(db, bob)
    with running_worker(ingest_config(database_url, broker)):
        device = connect(broker, alice.mqtt_username, alice.mqtt_password)
        try:
            assert device.accepted
            # First the forgery: Alice's credentials publishing a reading under Bob's id.
            forged = device.publish(topic("cuff-bob"), reading("cuff-bob", 190))
            assert forged.value == NOT_AUTHORIZED
            # Then her own reading; once it is stored, the forgery would have been too.
            assert not device.publish(topic("cuff-alice"), reading("cuff-alice")).is_failure
            wait_for(lambda: stored(database_url, "cuff-alice") == 1, 10, "Alice's reading")
        finally:
            device.close()
    assert stored(database_url, "cuff-bob") == 0
    assert count(database_url, "SELECT count(*) FROM quarantine") == 0  # dropped by the broker


def test_wrong_or_unknown_credentials_are_refused(
    broker: Broker, db: psycopg.Connection[Any]
) -> None:
    creds = issue_device_credentials(db, "oxi-1", "oximeter", broker.accounts)
    for username, password in [
        (creds.mqtt_username, creds.mqtt_password + "x"),
        (creds.mqtt_username, ""),
        ("oxi-2", creds.mqtt_password),  # right password, someone else's name
    ]:
        attempt = connect(broker, username, password)
        attempt.close()
        assert attempt.connack is not None and attempt.connack.value == NOT_AUTHORIZED


def test_service_accounts_have_least_privilege(
    broker: Broker, database_url: str, db: psycopg.Connection[Any]
) -> None:
    creds = issue_device_credentials(db, "scale-1", "scale", broker.accounts)
    enrol(db, creds)
    ingest = connect(broker, INGEST, broker.ingest_password)
    admin = connect(broker, ADMIN, broker.admin_password)
    device = connect(broker, creds.mqtt_username, creds.mqtt_password)
    try:
        # The ingest account reads; it may not write readings for any device.
        assert ingest.publish(topic("scale-1"), reading("scale-1")).value == NOT_AUTHORIZED
        # The admin account administers; it may not inject readings either.
        assert admin.publish(topic("scale-1"), reading("scale-1")).value == NOT_AUTHORIZED
        # A device may not administer the broker.
        grab = json.dumps({"commands": [{"command": "listClients"}]}).encode()
        assert device.publish("$CONTROL/dynamic-security/v1", grab).value == NOT_AUTHORIZED
    finally:
        for client in (ingest, admin, device):
            client.close()


def test_a_device_cannot_read_other_devices_readings(
    broker: Broker, db: psycopg.Connection[Any]
) -> None:
    spy = issue_device_credentials(db, "spy-1", None, broker.accounts)
    victim = issue_device_credentials(db, "victim-1", None, broker.accounts)
    received: list[str] = []
    listener = mqtt.Client(
        mqtt.CallbackAPIVersion.VERSION2,  # type: ignore[attr-defined]
        client_id="spy-1",
        protocol=mqtt.MQTTv5,
    )
    listener.username_pw_set(spy.mqtt_username, spy.mqtt_password)
    granted: list[list[ReasonCode]] = []
    listener.on_subscribe = lambda c, u, mid, codes, p: granted.append(codes)
    listener.on_message = lambda c, u, message: received.append(message.topic)
    listener.connect("127.0.0.1", broker.mosquitto.device_port)
    listener.loop_start()
    try:
        listener.subscribe("homecare/v1/devices/+/readings", qos=1)
        wait_for(lambda: bool(granted), 5, "SUBACK")
        assert granted[0][0].value == NOT_AUTHORIZED
        sender = connect(broker, victim.mqtt_username, victim.mqtt_password)
        assert not sender.publish(topic("victim-1"), reading("victim-1")).is_failure
        sender.close()
        time.sleep(0.3)
        assert received == []
    finally:
        listener.disconnect()
        listener.loop_stop()


# --- rotate and revoke ----------------------------------------------------------------------------


def test_rotation_refuses_the_old_password_and_ends_its_session(
    broker: Broker, db: psycopg.Connection[Any]
) -> None:
    old = issue_device_credentials(db, "glucometer-7", None, broker.accounts)
    session = connect(broker, old.mqtt_username, old.mqtt_password)
    assert session.accepted
    new = rotate_device_credentials(db, "glucometer-7", broker.accounts)
    assert new.mqtt_password != old.mqtt_password
    wait_for(lambda: bool(session.disconnects), 5, "the old session to be cut off")
    session.close()
    stale = connect(broker, old.mqtt_username, old.mqtt_password)
    stale.close()
    assert stale.connack is not None and stale.connack.value == NOT_AUTHORIZED
    fresh = connect(broker, new.mqtt_username, new.mqtt_password)
    try:
        assert fresh.accepted
        assert not fresh.publish(topic("glucometer-7"), reading("glucometer-7")).is_failure
    finally:
        fresh.close()
    (stored_hash,) = db.execute(
        "SELECT mqtt_password_hash FROM devices WHERE device_id = 'glucometer-7'"
    ).fetchone() or (None,)
    assert stored_hash is not None
    assert verify_password(new.mqtt_password, stored_hash)
    assert not verify_password(old.mqtt_password, stored_hash)


def test_revocation_cuts_off_a_live_session_and_is_final(
    broker: Broker, db: psycopg.Connection[Any]
) -> None:
    creds = issue_device_credentials(db, "thermo-3", None, broker.accounts)
    session = connect(broker, creds.mqtt_username, creds.mqtt_password)
    assert session.accepted
    started = time.monotonic()
    revoke_device(db, "thermo-3", broker.accounts)
    wait_for(lambda: bool(session.disconnects), 5, "the live session to be cut off")
    cut_after = time.monotonic() - started
    session.close()
    assert cut_after < 1.0
    again = connect(broker, creds.mqtt_username, creds.mqtt_password)
    again.close()
    assert again.connack is not None and again.connack.value == NOT_AUTHORIZED
    assert db.execute(
        "SELECT status, mqtt_password_hash FROM devices WHERE device_id = 'thermo-3'"
    ).fetchone() == ("revoked", None)
    revoke_device(db, "thermo-3", broker.accounts)  # idempotent
    with pytest.raises(DeviceRevoked):
        rotate_device_credentials(db, "thermo-3", broker.accounts)
    with pytest.raises(DeviceRevoked):
        issue_device_credentials(db, "thermo-3", None, broker.accounts)


# --- rules and failures ---------------------------------------------------------------------------


def test_issue_refuses_bad_or_reserved_ids_and_a_second_issue(
    broker: Broker, db: psycopg.Connection[Any]
) -> None:
    for bad in ("homecare-ingest", "HOMECARE-admin", "a/b", "dev#", "", "x" * 65):
        with pytest.raises(InvalidDeviceId):
            issue_device_credentials(db, bad, None, broker.accounts)
    issue_device_credentials(db, "cuff-9", None, broker.accounts)
    with pytest.raises(CredentialsAlreadyIssued):
        issue_device_credentials(db, "cuff-9", None, broker.accounts)
    with pytest.raises(UnknownDevice):
        rotate_device_credentials(db, "never-registered", broker.accounts)
    with pytest.raises(UnknownDevice):
        revoke_device(db, "never-registered", broker.accounts)
    # A device registered earlier without credentials (provisioning) gets its first ones.
    store.register_device(db, "pre-registered", model="cuff")
    creds = issue_device_credentials(db, "pre-registered", None, broker.accounts)
    device = connect(broker, creds.mqtt_username, creds.mqtt_password)
    device.close()
    assert device.accepted
    model = db.execute("SELECT model FROM devices WHERE device_id = 'pre-registered'").fetchone()
    assert model == ("cuff",)


def test_unreachable_or_unconfigured_broker_changes_nothing(
    broker: Broker, db: psycopg.Connection[Any]
) -> None:
    dead = BrokerAccounts(DynsecAdmin(f"mqtt://{ADMIN}:x@127.0.0.1:{free_port()}", timeout_s=1.0))
    with pytest.raises(BrokerUnavailable):
        issue_device_credentials(db, "cuff-new", None, dead)
    assert db.execute("SELECT count(*) FROM devices").fetchone() == (0,)

    creds = issue_device_credentials(db, "cuff-old", None, broker.accounts)
    (before,) = db.execute("SELECT mqtt_password_hash FROM devices").fetchone() or (None,)
    with pytest.raises(BrokerUnavailable):
        rotate_device_credentials(db, "cuff-old", dead)
    with pytest.raises(BrokerUnavailable):
        revoke_device(db, "cuff-old", dead)
    assert db.execute("SELECT status, mqtt_password_hash FROM devices").fetchone() == (
        "active",
        before,
    )
    wrong_admin = BrokerAccounts(DynsecAdmin(broker.url(ADMIN, "not-the-password")))
    with pytest.raises(BrokerUnavailable, match="refused the admin login"):
        rotate_device_credentials(db, "cuff-old", wrong_admin)
    with pytest.raises(BrokerNotConfigured, match="HOMECARE_MQTT_ADMIN_URL"):
        rotate_device_credentials(db, "cuff-old", BrokerAccounts(DynsecAdmin(None)))
    device = connect(broker, creds.mqtt_username, creds.mqtt_password)
    device.close()
    assert device.accepted  # still the issued password
