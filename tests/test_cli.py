"""The ``homecare`` command: wrong configuration and absent services give one line, non-zero."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid

import psycopg

from store.migrate import available_migrations
from tests.conftest import BASE_URL, url_with_database
from tests.support.services import free_port


def homecare(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "homecare", *args],
        env=os.environ | {"HOMECARE_LOG_LEVEL": "WARNING"} | env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_an_invalid_setting_is_named_in_one_line() -> None:
    result = homecare("migrate", HOMECARE_DATABASE_URL="mysql://root@127.0.0.1/x")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("homecare: configuration error: HOMECARE_DATABASE_URL")


def test_production_refuses_the_default_database_url() -> None:
    result = homecare("migrate", HOMECARE_ENV="production")
    assert result.returncode == 2
    assert "HOMECARE_DATABASE_URL must be set explicitly in production" in result.stderr


def test_an_unreachable_database_is_reported_in_time() -> None:
    url = f"postgresql://postgres@127.0.0.1:{free_port()}/homecare"
    result = homecare("migrate", HOMECARE_DATABASE_URL=url, HOMECARE_CONNECT_TIMEOUT_S="1")
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "not reachable within 1s" in lines[0], result.stderr


def test_an_unreachable_broker_is_reported_in_time(database_url: str) -> None:
    result = homecare(
        "ingest",
        HOMECARE_DATABASE_URL=database_url,
        HOMECARE_MQTT_URL=f"mqtt://127.0.0.1:{free_port()}",
        HOMECARE_CONNECT_TIMEOUT_S="1",
    )
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "MQTT broker at 127.0.0.1" in lines[0], result.stderr


def test_migrate_applies_then_reports_up_to_date() -> None:
    name = f"hc_cli_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(BASE_URL, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    url = url_with_database(BASE_URL, name)
    try:
        first = homecare("migrate", HOMECARE_DATABASE_URL=url)
        second = homecare("migrate", HOMECARE_DATABASE_URL=url)
    finally:
        with psycopg.connect(BASE_URL, autocommit=True) as admin:
            admin.execute(f"DROP DATABASE {name} WITH (FORCE)")
    assert first.returncode == 0, first.stderr
    versions = ", ".join(f"{m.version:04d}" for m in available_migrations("postgres"))
    assert f"(postgres): applied {versions}" in first.stdout
    assert second.returncode == 0, second.stderr
    assert "(postgres): applied none (up to date)" in second.stdout
