"""``homecare token create`` and ``homecare api`` as an operator runs them: the first admin
token from the command line, the API served on the configured port, a clean stop on SIGTERM,
and a one-line reason when the port is taken."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from typing import Any

import httpx2
import psycopg

from tests.support.services import free_port


def homecare(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "homecare", *args],
        env=os.environ | {"HOMECARE_LOG_LEVEL": "WARNING"} | env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_token_create_then_the_api_serves_it_and_stops_on_sigterm(
    database_url: str, db: psycopg.Connection[Any]
) -> None:
    made = homecare("token", "create", "--role", "admin", HOMECARE_DATABASE_URL=database_url)
    assert made.returncode == 0, made.stderr
    token = made.stdout.strip()
    assert token.startswith("hc_") and "\n" not in token
    assert "expires" in made.stderr
    nurse = homecare(
        "token",
        "create",
        "--role",
        "nurse",
        "--user",
        "amelie",
        "--care-team",
        "cardio",
        HOMECARE_DATABASE_URL=database_url,
    )
    assert nurse.returncode == 0, nurse.stderr
    clash = homecare(
        "token", "create", "--role", "admin", "--user", "amelie", HOMECARE_DATABASE_URL=database_url
    )
    assert clash.returncode == 2 and "exists with role nurse" in clash.stderr
    actions = {r[0] for r in db.execute("SELECT action FROM audit_log")}
    assert {"user.create", "token.create", "care_team.add_member"} <= actions

    port = free_port()
    env = os.environ | {
        "HOMECARE_DATABASE_URL": database_url,
        "HOMECARE_API_PORT": str(port),
        "HOMECARE_LOG_LEVEL": "WARNING",
    }
    server = subprocess.Popen(
        [sys.executable, "-m", "homecare", "api"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                assert time.monotonic() < deadline and server.poll() is None
                time.sleep(0.1)
        base = f"http://127.0.0.1:{port}/api/v1"
        me = httpx2.get(f"{base}/auth/me", headers={"Authorization": f"Bearer {token}"})
        assert me.status_code == 200 and me.json()["username"] == "cli-admin"
        assert httpx2.get(f"{base}/auth/me").status_code == 401

        taken = homecare("api", HOMECARE_DATABASE_URL=database_url, HOMECARE_API_PORT=str(port))
        assert taken.returncode == 1
        assert len(taken.stderr.strip().splitlines()) == 1 and str(port) in taken.stderr
    finally:
        server.send_signal(signal.SIGTERM)
        assert server.wait(timeout=30) == 0
