"""Device credentials kept by the database: the broker rebuilt and reconciled from it.

The database is the source of truth for broker accounts: a broker whose disk is lost is rebuilt
from it, accounts it does not know are removed, and the operator's ``homecare broker`` commands
render and sync that state. No password is ever stored in clear, in the database, the broker's
files or its logs. The broker is the production mechanism (tests/support/dynsec_broker.py).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from homecare import store
from homecare.broker.credentials import (
    issue_device_credentials,
    revoke_device,
    rotate_device_credentials,
)
from homecare.broker.hashing import verify_password
from homecare.broker.sync import (
    ServiceAccount,
    active_device_hashes,
    reconcile,
    render_dynsec_config,
    write_dynsec_config,
)
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
from tests.support.mosquitto import PrivateMosquitto
from tests.support.pipeline import count, running_worker, wait_for


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    made = dynsec_broker(tmp_path / "mosquitto", verbose=True)
    with made.mosquitto:
        yield made


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

    from homecare.broker.hashing import hash_password, parse_hash
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
