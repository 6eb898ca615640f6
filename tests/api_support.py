"""Helpers for the API tests: an app on the test's database with a settable clock, users of
each role in two care teams, and patients of each team."""

from __future__ import annotations

import shutil
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from homecare import store
from homecare.alerts import AlertsConfig, AlertService
from homecare.api import ApiConfig, accounts, create_app
from homecare.api.throttle import Policy
from homecare.broker.credentials import BrokerAccounts
from homecare.rules.packs import DEFAULT_PACKS
from tests.alerts_support import finding

T0 = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)
PASSWORD = "correct horse battery staple"


@dataclass
class Clock:
    """Clock is a settable ``now``."""

    now: datetime = T0

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> None:
        self.now += delta


@dataclass
class World:
    """World: an app client, a clock, and tokens of users of every role, by name."""

    client: TestClient
    clock: Clock
    db: psycopg.Connection[Any]
    tokens: dict[str, str] = field(default_factory=dict)
    patients: dict[str, uuid.UUID] = field(default_factory=dict)
    packs_dir: Path = DEFAULT_PACKS

    def headers(self, user: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[user]}"}

    def get(self, user: str, path: str, **kw: Any) -> Any:
        return self.client.get(path, headers=self.headers(user), **kw)

    def post(self, user: str, path: str, **kw: Any) -> Any:
        return self.client.post(path, headers=self.headers(user), **kw)

    def put(self, user: str, path: str, **kw: Any) -> Any:
        return self.client.put(path, headers=self.headers(user), **kw)

    def patch(self, user: str, path: str, **kw: Any) -> Any:
        return self.client.patch(path, headers=self.headers(user), **kw)

    def delete(self, user: str, path: str, **kw: Any) -> Any:
        return self.client.delete(path, headers=self.headers(user), **kw)


def add_user(
    conn: psycopg.Connection[Any],
    username: str,
    role: accounts.Role,
    teams: tuple[str, ...] = (),
    password: str | None = PASSWORD,
) -> uuid.UUID:
    """add_user creates a user in ``teams`` (teams created if needed)."""
    user_id = accounts.create_user(
        conn,
        username=username,
        display_name=username.title(),
        role=role,
        password=password,
        locale="fr-CA",
        time_zone="America/Montreal",
    )
    for team in teams:
        accounts.create_care_team(conn, team, team.title(), "America/Montreal")
        accounts.add_member(conn, team, user_id, "test")
    return user_id


def token_for(
    conn: psycopg.Connection[Any], user_id: uuid.UUID, now: datetime, ttl: timedelta
) -> str:
    return accounts.issue_token(conn, user_id, "api", ttl, now).token


PSEUDONYM_KEY = "a test pseudonym key, 16+ chars"


def api_config(
    database_url: str,
    clock: Clock,
    packs_dir: Path = DEFAULT_PACKS,
    broker: BrokerAccounts | None = None,
) -> ApiConfig:
    return ApiConfig(
        database_url=database_url,
        packs_dir=packs_dir,
        clock=clock,
        pool_size=4,
        broker=broker,
        pseudonym_key=PSEUDONYM_KEY,
        # Small buckets: each failed sign-in costs an argon2 verification.
        sign_in=Policy(per_address=6, per_pair=3, per_account=5, leak=timedelta(minutes=1)),
    )


@contextmanager
def build_world(
    database_url: str,
    db: psycopg.Connection[Any],
    packs_dir: Path,
    broker: BrokerAccounts | None = None,
) -> Iterator[World]:
    """build_world: users nurse/physician/analyst/admin of team 'cardio', nurse2 of team
    'renal', a patient 'own' (heart failure) in cardio and 'other' (COPD) in renal."""
    clock = Clock()
    users = {
        "nurse": ("nurse", ("cardio",)),
        "physician": ("physician", ("cardio",)),
        "analyst": ("analyst", ()),
        "admin": ("admin", ()),
        "nurse2": ("nurse", ("renal",)),
    }
    tokens = {}
    for name, (role, teams) in users.items():
        # Only the nurse signs in with a password (argon2 is slow on purpose; tokens are not).
        password = PASSWORD if name == "nurse" else None
        user_id = add_user(db, name, role, teams, password)  # type: ignore[arg-type]
        tokens[name] = token_for(db, user_id, clock.now, timedelta(days=1))
    patients = {
        "own": store.create_patient(
            db,
            display_name="Jeanne Tremblay",
            programs=["heart_failure"],
            care_team="cardio",
            birth_date=date(1948, 3, 1),
        ),
        "other": store.create_patient(
            db,
            display_name="Paul Gagnon",
            programs=["copd"],
            care_team="renal",
            birth_date=date(1950, 7, 14),
        ),
    }
    app = create_app(api_config(database_url, clock, packs_dir, broker))
    with TestClient(app, raise_server_exceptions=False) as client:
        yield World(client, clock, db, tokens, patients, packs_dir)


@contextmanager
def shared_world(
    template_database: str, work_dir: Path, broker: BrokerAccounts | None
) -> Iterator[World]:
    """shared_world is a world on a database of its own for a whole module (tests that make
    their own fresh objects each call, so they need not pay one setup each)."""
    from tests.conftest import BASE_URL, url_with_database

    name = f"hc_shared_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(BASE_URL, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name} TEMPLATE {template_database}")
    url = url_with_database(BASE_URL, name)
    packs = work_dir / "packs"
    shutil.copytree(DEFAULT_PACKS, packs)
    try:
        with store.connect(url, autocommit=True) as db, build_world(url, db, packs, broker) as made:
            yield made
    finally:
        with psycopg.connect(BASE_URL, autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture
def packs_dir(tmp_path: Path) -> Path:
    """packs_dir is a private copy of the shipped packs (activation writes there)."""
    target = tmp_path / "packs"
    shutil.copytree(DEFAULT_PACKS, target)
    return target


@pytest.fixture
def world(database_url: str, db: psycopg.Connection[Any], packs_dir: Path) -> Iterator[World]:
    """world: see ``build_world``; no broker (device registration answers 503)."""
    with build_world(database_url, db, packs_dir) as made:
        yield made


@contextmanager
def live_server(app: FastAPI) -> Iterator[str]:
    """live_server serves ``app`` on a free loopback port; yields its base URL."""
    from homecare.api.serve import serve
    from tests.support.services import free_port

    port = free_port()
    stop = threading.Event()
    thread = threading.Thread(target=serve, args=(app, "127.0.0.1", port, stop), daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        stop.set()
        thread.join(timeout=20)


def open_alert(
    world: World,
    patient: str,
    rule_id: str = "common.news2_high",
    severity: str = "high",
    score: int | None = None,
) -> int:
    """open_alert makes the patient's finding and lets the alerts stage open its alert."""
    patient_id = world.patients[patient]
    finding(
        world.db,
        patient_id,
        rule_id,
        "active",
        world.clock.now - timedelta(minutes=5),
        severity=severity,
        score=score,
    )
    svc = AlertService(AlertsConfig(database_url="unused", clock=world.clock))
    svc.process_patient(world.db, patient_id)
    row = world.db.execute(
        "SELECT id FROM alerts WHERE patient_id = %s AND rule_id = %s AND status <> 'resolved'",
        (patient_id, rule_id),
    ).fetchone()
    assert row is not None
    return int(row[0])


def add_readings(
    conn: psycopg.Connection[Any],
    patient_id: uuid.UUID,
    device_id: str,
    rows: list[tuple[datetime, str, float, str]],
) -> None:
    """add_readings stores readings (time, type, value, unit) as the ingest would."""
    store.register_device(conn, device_id, model="test")
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO readings (time, patient_id, device_id, type, value, unit,"
            " original_value, original_unit, msg_id, received_at)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            [
                (t, patient_id, device_id, ty, v, u, v, u, f"m{i}", t)
                for i, (t, ty, v, u) in enumerate(rows)
            ],
        )
