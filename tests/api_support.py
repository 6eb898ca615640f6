"""Helpers for the API tests: an app on the test's database with a settable clock, users of
each role in two care teams, and patients of each team."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient

import store
from api import ApiConfig, accounts, create_app
from rules.packs import DEFAULT_PACKS

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


def api_config(database_url: str, clock: Clock, packs_dir: Path = DEFAULT_PACKS) -> ApiConfig:
    return ApiConfig(database_url=database_url, packs_dir=packs_dir, clock=clock, pool_size=4)


@pytest.fixture
def world(database_url: str, db: psycopg.Connection[Any]) -> Iterator[World]:
    """world: users nurse/physician/analyst/admin of team 'cardio', nurse2 of team 'renal',
    a patient 'own' in cardio and 'other' in renal."""
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
        user_id = add_user(db, name, role, teams)  # type: ignore[arg-type]
        tokens[name] = token_for(db, user_id, clock.now, timedelta(days=1))
    patients = {
        "own": store.create_patient(
            db,
            display_name="Jeanne Tremblay",
            programs=["heart_failure"],
            care_team="cardio",
            birth_date="1948-03-01",
        ),
        "other": store.create_patient(
            db,
            display_name="Paul Gagnon",
            programs=["copd"],
            care_team="renal",
            birth_date="1950-07-14",
        ),
    }
    app = create_app(api_config(database_url, clock))
    with TestClient(app, raise_server_exceptions=False) as client:
        yield World(client, clock, db, tokens, patients)
