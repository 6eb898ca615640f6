"""Shared fixtures: a fresh, migrated PostgreSQL database per test, and data factories.

Isolation is a new database per test, cloned from a template migrated once per session
(``CREATE DATABASE … TEMPLATE`` takes milliseconds), so no test sees another's rows and none
needs cleaning up after itself.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest

from homecare import store

BASE_URL = os.environ.get(
    "HOMECARE_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)


def url_with_database(url: str, name: str) -> str:
    """url_with_database returns ``url`` pointing at database ``name``."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))


def _admin() -> psycopg.Connection[Any]:
    return psycopg.connect(BASE_URL, autocommit=True)


@pytest.fixture(scope="session")
def template_database() -> Iterator[str]:
    name = f"hc_template_{os.getpid()}"
    with _admin() as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {name}")
        admin.execute(f"CREATE DATABASE {name}")
    with store.connect(url_with_database(BASE_URL, name), autocommit=True) as conn:
        store.migrate(conn, "postgres")
    yield name
    with _admin() as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture
def database_url(template_database: str) -> Iterator[str]:
    """database_url is a fresh migrated database for this test only."""
    name = f"hc_test_{uuid.uuid4().hex[:12]}"
    with _admin() as admin:
        admin.execute(f"CREATE DATABASE {name} TEMPLATE {template_database}")
    yield url_with_database(BASE_URL, name)
    with _admin() as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture
def db(database_url: str) -> Iterator[psycopg.Connection[Any]]:
    """db is an autocommit connection to this test's database."""
    with store.connect(database_url, autocommit=True) as conn:
        yield conn


def enrol(
    conn: psycopg.Connection[Any],
    device_id: str,
    since: datetime | None = None,
    programs: tuple[str, ...] = ("hypertension",),
) -> uuid.UUID:
    """enrol creates a patient, registers ``device_id`` and assigns it from ``since``."""
    patient = store.create_patient(conn, display_name=f"Patient of {device_id}", programs=programs)
    store.register_device(conn, device_id, model="test cuff")
    store.assign_device(conn, device_id, patient, since or datetime.now(UTC) - timedelta(days=30))
    return patient
