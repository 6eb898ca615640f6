"""Device credentials against a real Mosquitto with its dynamic-security plugin.

The broker is the production mechanism (deploy/mosquitto/mosquitto.conf's plugin, its state
rendered from the database by broker.sync); the ingest is the real worker logging in
as the read-only ingest account. What is checked is what the broker does: CONNACK and PUBACK
reason codes, sessions cut off, readings stored or not.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import psycopg
import pytest
from paho.mqtt.reasoncodes import ReasonCode

import store
from broker.credentials import (
    BrokerAccounts,
    BrokerNotConfigured,
    BrokerUnavailable,
    CredentialsAlreadyIssued,
    DeviceCredentials,
    DeviceRevoked,
    InvalidDeviceId,
    UnknownDevice,
    issue_device_credentials,
    revoke_device,
    rotate_device_credentials,
)
from broker.dynsec import DynsecAdmin
from broker.hashing import verify_password
from broker.sync import (
    ServiceAccount,
    active_device_hashes,
    reconcile,
    render_dynsec_config,
    write_dynsec_config,
)
from devices import DeviceMessage, Measurement, encode_message
from ingest import IngestConfig, MqttConfig
from tests.support.mosquitto import PrivateMosquitto
from tests.support.pipeline import count, running_worker, wait_for
from tests.support.services import free_port

ADMIN, INGEST = "homecare-admin", "homecare-ingest"


@dataclass
class Broker:
    """A dynamic-security broker with its two service accounts' clear passwords."""

    mosquitto: PrivateMosquitto
    admin_password: str
    ingest_password: str
    accounts: BrokerAccounts = field(init=False)

    def __post_init__(self) -> None:
        self.accounts = BrokerAccounts(DynsecAdmin(self.url(ADMIN, self.admin_password)))

    def url(self, user: str, password: str) -> str:
        return f"mqtt://{user}:{password}@127.0.0.1:{self.mosquitto.port}"


def dynsec_broker(
    work_dir: Path, devices: list[tuple[str, str]] | None = None, verbose: bool = False
) -> Broker:
    admin_pw, ingest_pw = secrets.token_urlsafe(16), secrets.token_urlsafe(16)
    config = render_dynsec_config(
        devices or [],
        ServiceAccount.from_password(ADMIN, admin_pw),
        ServiceAccount.from_password(INGEST, ingest_pw),
    )
    mosquitto = PrivateMosquitto(work_dir, {}, dynsec=config, verbose=verbose)
    return Broker(mosquitto, admin_pw, ingest_pw)


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    made = dynsec_broker(tmp_path / "mosquitto", verbose=True)
    with made.mosquitto:
        yield made


class Device:
    """One raw MQTT 5 connection, recording CONNACK, PUBACK reasons and disconnects."""

    def __init__(self, port: int, username: str, password: str, client_id: str | None = None):
        self.connack: ReasonCode | None = None
        self.pubacks: dict[int, ReasonCode] = {}
        self.disconnects: list[str] = []
        self._answered = threading.Event()
        self._client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,  # type: ignore[attr-defined]
            client_id=client_id or f"{username}-{uuid.uuid4().hex[:6]}",
            protocol=mqtt.MQTTv5,
        )
        self._client.username_pw_set(username, password)
        self._client.on_connect = self._on_connect
        self._client.on_publish = self._on_publish
        self._client.on_disconnect = self._on_disconnect
        self._client.connect("127.0.0.1", port)
        self._client.loop_start()
        assert self._answered.wait(5), "no CONNACK"

    def _on_connect(self, c: Any, u: Any, f: Any, reason: ReasonCode, p: Any) -> None:
        self.connack = reason
        self._answered.set()

    def _on_publish(self, c: Any, u: Any, mid: int, reason: ReasonCode, p: Any) -> None:
        self.pubacks[mid] = reason

    def _on_disconnect(self, c: Any, u: Any, f: Any, reason: ReasonCode, p: Any) -> None:
        self.disconnects.append(str(reason))
        self._answered.set()

    @property
    def accepted(self) -> bool:
        return self.connack is not None and not self.connack.is_failure

    def publish(self, topic: str, payload: bytes, *, retain: bool = False) -> ReasonCode:
        """publish at QoS 1 and return the broker's PUBACK reason."""
        mid = self._client.publish(topic, payload, qos=1, retain=retain).mid
        wait_for(lambda: mid in self.pubacks, 5, "PUBACK")
        return self.pubacks[mid]

    def close(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()


def connect(broker: Broker, username: str, password: str) -> Device:
    """connect as a device to the device listener, or as a service account to the service one."""
    service = username in (ADMIN, INGEST)
    return Device(
        broker.mosquitto.port if service else broker.mosquitto.device_port, username, password
    )


def reading(device_id: str, value: float = 120) -> bytes:
    at = datetime.now(UTC) - timedelta(minutes=1)
    return encode_message(
        DeviceMessage(
            device_id, str(uuid.uuid4()), [Measurement("systolic_bp", value, "mm[Hg]", at)]
        )
    )


def topic(device_id: str) -> str:
    return f"homecare/v1/devices/{device_id}/readings"


def ingest_config(database_url: str, broker: Broker) -> IngestConfig:
    """The real worker, logging in as the ingest account through a shared subscription."""
    return IngestConfig(
        database_url=database_url,
        mqtt=MqttConfig(
            host="127.0.0.1",
            port=broker.mosquitto.port,
            username=INGEST,
            password=broker.ingest_password,
            tls=False,
            client_id="ingest-cred-test",
            shared_group="ingest",
            session_expiry_s=60,
        ),
        batch_max_wait_s=0.02,
        connect_timeout_s=10.0,
    )


def enrol(db: psycopg.Connection[Any], creds: DeviceCredentials) -> None:
    patient = store.create_patient(db, display_name="Test patient", programs=["hypertension"])
    store.assign_device(db, creds.device_id, patient, datetime.now(UTC) - timedelta(days=1))


def stored(database_url: str, device_id: str) -> int:
    return count(database_url, f"SELECT count(*) FROM readings WHERE device_id = '{device_id}'")


NOT_AUTHORIZED = 0x87


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


# --- the database rebuilds the broker -------------------------------------------------------------


def test_sync_rebuilds_a_fresh_broker_from_the_database(
    broker: Broker, tmp_path: Path, database_url: str, db: psycopg.Connection[Any]
) -> None:
    kept = [issue_device_credentials(db, f"cuff-{i}", None, broker.accounts) for i in range(3)]
    gone = issue_device_credentials(db, "cuff-stolen", None, broker.accounts)
    revoke_device(db, "cuff-stolen", broker.accounts)
    rotated = rotate_device_credentials(db, "cuff-2", broker.accounts)
    kept[2] = rotated
    enrol(db, kept[0])

    # The broker's disk is lost: a fresh one starts from the file rendered from the database.
    fresh = dynsec_broker(tmp_path / "fresh")
    assert fresh.mosquitto.dynsec_file is not None
    config = render_dynsec_config(
        active_device_hashes(db),
        ServiceAccount.from_password(ADMIN, fresh.admin_password),
        ServiceAccount.from_password(INGEST, fresh.ingest_password),
    )
    write_dynsec_config(fresh.mosquitto.dynsec_file, config)
    write_dynsec_config(fresh.mosquitto.dynsec_file, config)  # idempotent
    assert fresh.mosquitto.dynsec_file.stat().st_mode & 0o077 == 0
    with fresh.mosquitto, running_worker(ingest_config(database_url, fresh)):
        for creds in kept:
            device = connect(fresh, creds.mqtt_username, creds.mqtt_password)
            try:
                assert device.accepted, creds.device_id
                assert not device.publish(topic(creds.device_id), reading("x")).is_failure
                other = topic("cuff-0" if creds.device_id != "cuff-0" else "cuff-1")
                assert device.publish(other, reading("x")).value == NOT_AUTHORIZED
            finally:
                device.close()
        wait_for(lambda: stored(database_url, "cuff-0") == 1, 10, "cuff-0's reading")
        stolen = connect(fresh, gone.mqtt_username, gone.mqtt_password)
        stolen.close()
        assert stolen.connack is not None and stolen.connack.value == NOT_AUTHORIZED
        # ...and the rebuilt broker is administrable: the API works against it at once.
        later = issue_device_credentials(db, "cuff-later", None, fresh.accounts)
        device = connect(fresh, later.mqtt_username, later.mqtt_password)
        device.close()
        assert device.accepted


def test_reconcile_removes_accounts_the_database_does_not_know_and_reports_missing(
    broker: Broker, db: psycopg.Connection[Any]
) -> None:
    issue_device_credentials(db, "cuff-a", None, broker.accounts)
    ghost = "cuff-ghost"  # at the broker only, e.g. an issue whose transaction rolled back
    broker.accounts.put_device(ghost, "ghost-password")
    ghost_session = connect(broker, ghost, "ghost-password")
    assert ghost_session.accepted
    store.register_device(
        db, "cuff-missing", mqtt_password_hash="$7$101$" + "A" * 16 + "$" + "B" * 88
    )

    admin = broker.accounts.admin
    report = reconcile(db, admin, service_accounts=(ADMIN, INGEST))
    assert report.removed == (ghost,)
    assert report.missing == ("cuff-missing",)
    wait_for(lambda: bool(ghost_session.disconnects), 5, "the ghost's session to be cut off")
    ghost_session.close()
    assert sorted(admin.list_clients()) == sorted([ADMIN, INGEST, "cuff-a"])
    again = reconcile(db, admin, service_accounts=(ADMIN, INGEST))
    assert again.removed == () and again.missing == ("cuff-missing",)


# --- no password in clear anywhere ----------------------------------------------------------------


def test_passwords_never_appear_in_clear_in_database_broker_files_or_logs(
    broker: Broker, database_url: str, db: psycopg.Connection[Any], tmp_path: Path
) -> None:
    first = issue_device_credentials(db, "wearable-1", "wearable", broker.accounts)
    second = rotate_device_credentials(db, "wearable-1", broker.accounts)
    third = issue_device_credentials(db, "wearable-2", None, broker.accounts)
    revoke_device(db, "wearable-2", broker.accounts)
    for creds in (second,):
        device = connect(broker, creds.mqtt_username, creds.mqtt_password)
        device.publish(topic(creds.device_id), reading(creds.device_id))
        device.close()
    broker.mosquitto.stop()  # writes mosquitto.db
    secrets_issued = [c.mqtt_password for c in (first, second, third)]

    tables = [
        row[0]
        for row in db.execute("SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")
    ]
    dump = "\n".join(
        str(row[0]) for table in tables for row in db.execute(f'SELECT t::text FROM "{table}" t')
    )
    assert "wearable-1" in dump  # the dump does hold the devices table
    broker_files = {
        path.name: path.read_bytes().decode(errors="replace")
        for path in broker.mosquitto.work_dir.rglob("*")
        if path.is_file()
    }
    assert {"dynamic-security.json", "mosquitto.log"} <= set(broker_files)
    assert "createClient" in broker_files["mosquitto.log"]  # verbose log of the admin commands
    for password in secrets_issued:
        assert password not in dump
        for name, text in broker_files.items():
            assert password not in text, name


# --- the operator's commands ---------------------------------------------------------------------


def test_broker_commands_render_a_working_state_file_and_sync_a_running_broker(
    broker: Broker,
    tmp_path: Path,
    database_url: str,
    db: psycopg.Connection[Any],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from homecare.cli import main

    creds = issue_device_credentials(db, "cuff-cli", None, broker.accounts)
    monkeypatch.setenv("HOMECARE_DATABASE_URL", database_url)
    monkeypatch.setenv("HOMECARE_MQTT_URL", broker.url(INGEST, broker.ingest_password))
    monkeypatch.setenv("HOMECARE_MQTT_ADMIN_URL", broker.url(ADMIN, broker.admin_password))
    assert main(["broker", "sync"]) == 0
    store.register_device(db, "cuff-lost", mqtt_password_hash=creds_hash(db, "cuff-cli"))
    assert main(["broker", "sync"]) == 3  # an active device the broker lacks
    assert "cuff-lost" in capsys.readouterr().out

    out = tmp_path / "dynamic-security.json"
    assert main(["broker", "render", "--out", str(out)]) == 0
    rebuilt = PrivateMosquitto(tmp_path / "rebuilt", {}, dynsec=json.loads(out.read_text()))
    with rebuilt:
        fresh = Broker(rebuilt, broker.admin_password, broker.ingest_password)
        device = connect(fresh, creds.mqtt_username, creds.mqtt_password)
        device.close()
        assert device.accepted
        monkeypatch.setenv("HOMECARE_MQTT_ADMIN_URL", fresh.url(ADMIN, fresh.admin_password))
        monkeypatch.setenv("HOMECARE_MQTT_URL", fresh.url(INGEST, fresh.ingest_password))
        assert main(["broker", "sync"]) == 0  # both devices are there now
    monkeypatch.delenv("HOMECARE_MQTT_ADMIN_URL")
    assert main(["broker", "render", "--out", str(out)]) == 2
    assert "HOMECARE_MQTT_ADMIN_URL" in capsys.readouterr().err


def creds_hash(db: psycopg.Connection[Any], device_id: str) -> str:
    row = db.execute(
        "SELECT mqtt_password_hash FROM devices WHERE device_id = %s", (device_id,)
    ).fetchone()
    assert row is not None
    return str(row[0])


def test_hash_format_is_mosquitto_passwd_s(tmp_path: Path) -> None:
    """Our $7$ hashes and mosquitto_passwd's are one format (the broker accepting ours is
    checked by the rebuild test above)."""
    import subprocess

    from broker.hashing import hash_password, parse_hash
    from tests.support.services import find_executable

    passwd = tmp_path / "passwd"
    passwd.write_text("dev-1:pw-from-mosquitto\n")
    subprocess.run([str(find_executable("mosquitto_passwd")), "-U", str(passwd)], check=True)
    theirs = passwd.read_text().strip().split(":", 1)[1]
    assert verify_password("pw-from-mosquitto", theirs)
    assert not verify_password("pw-from-mosquitt0", theirs)
    ours, parsed = hash_password("x"), parse_hash(theirs)
    assert ours.split("$")[1:3] == theirs.split("$")[1:3] == ["7", str(parsed.iterations)]
    assert len(parse_hash(ours).salt) == len(parsed.salt) == 12


def test_homecare_simulate_issues_each_device_its_own_credentials(
    broker: Broker, database_url: str, db: psycopg.Connection[Any]
) -> None:
    """With an admin account configured, ``homecare simulate`` gives every simulated device its
    own password through the plugin (no shared --device-password), and the readings arrive."""
    with running_worker(ingest_config(database_url, broker)):
        result = subprocess.run(
            [sys.executable, "-m", "homecare", "simulate", "--patients", "2", "--days", "1"],
            env=os.environ
            | {
                "HOMECARE_DATABASE_URL": database_url,
                "HOMECARE_MQTT_URL": broker.url(INGEST, broker.ingest_password),
                "HOMECARE_MQTT_ADMIN_URL": broker.url(ADMIN, broker.admin_password),
                "HOMECARE_LOG_LEVEL": "WARNING",
            },
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0, result.stderr
        assert "issued broker credentials to" in result.stdout
        wait_for(
            lambda: count(database_url, "SELECT count(*) FROM readings") > 20,
            what="simulated readings stored",
        )
    hashes = db.execute("SELECT device_id, mqtt_password_hash FROM devices").fetchall()
    assert hashes and all(h is not None and h.startswith("$7$") for _, h in hashes)
    assert len({h for _, h in hashes}) == len(hashes)  # one password per device
