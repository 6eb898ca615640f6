"""The ``homecare`` command: wrong configuration and absent services give one line, non-zero."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg

from homecare.store.migrate import available_migrations
from tests.conftest import BASE_URL, url_with_database
from tests.support.mosquitto import PrivateMosquitto
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


@contextlib.contextmanager
def silent_server() -> Iterator[int]:
    """A port that accepts TCP connections and never answers: a server that times out."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        yield listener.getsockname()[1]


def timed(*args: str, **env: str) -> tuple[subprocess.CompletedProcess[str], float]:
    started = time.monotonic()
    result = homecare(*args, **env)
    return result, time.monotonic() - started


def one_line(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 1, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_a_database_that_does_not_answer_is_waited_for_then_reported() -> None:
    with silent_server() as port:
        url = f"postgresql://postgres@127.0.0.1:{port}/homecare"
        result, seconds = timed(
            "migrate", HOMECARE_DATABASE_URL=url, HOMECARE_CONNECT_TIMEOUT_S="2"
        )
    assert "not reachable within 2s" in one_line(result)
    assert seconds >= 2


def test_a_refused_database_connection_fails_at_once() -> None:
    url = f"postgresql://postgres@127.0.0.1:{free_port()}/homecare"
    result, seconds = timed("migrate", HOMECARE_DATABASE_URL=url, HOMECARE_CONNECT_TIMEOUT_S="30")
    line = one_line(result)
    assert "127.0.0.1" in line and "Connection refused" in line
    assert seconds < 10  # the interpreter's start-up; waiting would take 30 s


def test_a_missing_database_fails_at_once() -> None:
    url = url_with_database(BASE_URL, f"hc_missing_{uuid.uuid4().hex[:8]}")
    result, seconds = timed("migrate", HOMECARE_DATABASE_URL=url, HOMECARE_CONNECT_TIMEOUT_S="30")
    assert "does not exist" in one_line(result)
    assert seconds < 10


def test_an_unreachable_broker_is_reported_in_time(database_url: str) -> None:
    with silent_server() as port:
        result, seconds = timed(
            "ingest",
            HOMECARE_DATABASE_URL=database_url,
            HOMECARE_MQTT_URL=f"mqtt://127.0.0.1:{port}",
            HOMECARE_CONNECT_TIMEOUT_S="2",
        )
    line = one_line(result)
    assert "MQTT broker at 127.0.0.1" in line and "within 2s" in line
    assert seconds >= 2


def test_a_refused_broker_connection_fails_at_once(database_url: str) -> None:
    result, seconds = timed(
        "ingest",
        HOMECARE_DATABASE_URL=database_url,
        HOMECARE_MQTT_URL=f"mqtt://127.0.0.1:{free_port()}",
        HOMECARE_CONNECT_TIMEOUT_S="30",
    )
    line = one_line(result)
    assert "MQTT broker at 127.0.0.1" in line and "Connection refused" in line
    assert seconds < 10


def test_a_broker_refusing_the_credentials_fails_at_once(database_url: str, tmp_path: Path) -> None:
    with PrivateMosquitto(tmp_path / "mosquitto", {"homecare-ingest": "right"}) as broker:
        result, seconds = timed(
            "ingest",
            HOMECARE_DATABASE_URL=database_url,
            HOMECARE_MQTT_URL=f"mqtt://homecare-ingest:wrong@127.0.0.1:{broker.port}",
            HOMECARE_CONNECT_TIMEOUT_S="30",
        )
    line = one_line(result)
    assert "refused the connection" in line, line
    assert seconds < 10


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
