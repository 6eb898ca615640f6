"""Browser test support: the app and an alerts worker on a loopback port, findings written as
the rules stage writes them, readings for the charts, and a nurse signed in with Debian's
Chromium driven by Playwright (no browser download)."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from playwright.sync_api import Page
from psycopg.types.json import Jsonb

from homecare import store
from homecare.alerts import AlertsConfig, AlertsWorker
from homecare.api import ApiConfig, create_app
from homecare.api.serve import serve
from homecare.rules.packs import DEFAULT_PACKS
from tests.api_support import PASSWORD
from tests.support.services import free_port

__all__ = ["ARTIFACTS", "AXE", "CHROMIUM", "finding", "readings", "served", "sign_in"]

AXE = Path(__file__).resolve().parent / "browser" / "node_modules" / "axe-core" / "axe.min.js"
CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"


def finding(
    conn: psycopg.Connection[Any], patient: uuid.UUID, score: int, minutes_ago: int = 2
) -> None:
    """_finding writes a NEWS2 finding as the rules stage does (its trigger wakes the alerts)."""
    now = datetime.now(UTC)
    conn.execute(
        "INSERT INTO findings (patient_id, rule_id, state, severity, evidence_time, received_at,"
        " late, summary, evidence, pack, pack_version) VALUES (%s, 'common.news2_high', 'active',"
        " 'critical', %s, %s, false, %s, %s, 'common', 1)",
        (
            patient,
            now - timedelta(minutes=minutes_ago),
            now,
            f"NEWS2 {score} (from 7 parameters): high clinical risk",
            Jsonb({"score": score, "parameters": 7, "min_score": 7}),
        ),
    )


def readings(conn: psycopg.Connection[Any], patient: uuid.UUID) -> None:
    """readings: 30 days of vitals every 4 hours, for the patient page's charts."""
    now = datetime.now(UTC)
    conn.execute(
        "INSERT INTO readings (time, patient_id, device_id, type, value, unit, original_value,"
        " original_unit, msg_id, received_at)"
        " SELECT t, %(p)s, 'dev-' || %(p)s::text, ty.name,"
        " ty.v + 3 * sin(extract(epoch FROM t) / 40000),"
        " ty.u, ty.v, ty.u, 'm' || extract(epoch FROM t), t"
        " FROM generate_series(%(start)s::timestamptz, %(end)s::timestamptz, '4 hours') AS t,"
        " (VALUES ('spo2', 93.0, '%%'), ('heart_rate', 84.0, '/min'),"
        "  ('respiratory_rate', 19.0, '/min'), ('systolic_bp', 128.0, 'mm[Hg]'),"
        "  ('body_temperature', 37.1, 'Cel'), ('body_weight', 82.0, 'kg')) AS ty(name, v, u)",
        {"p": patient, "start": now - timedelta(days=30), "end": now - timedelta(minutes=30)},
    )
    store.refresh_aggregates(conn)


@pytest.fixture
def served(database_url: str, db: psycopg.Connection[Any]) -> Iterator[str]:
    """served: the app on a loopback port and an alerts worker, both on this test's database."""
    app = create_app(ApiConfig(database_url=database_url, packs_dir=DEFAULT_PACKS, pool_size=4))
    port = free_port()
    stop = threading.Event()
    server = threading.Thread(target=serve, args=(app, "127.0.0.1", port, stop), daemon=True)
    worker = AlertsWorker(AlertsConfig(database_url=database_url, packs_dir=DEFAULT_PACKS))
    worker_thread = threading.Thread(target=worker.run, args=(stop,), daemon=True)
    server.start()
    worker_thread.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        stop.set()
        server.join(timeout=20)
        worker_thread.join(timeout=20)
        assert not server.is_alive() and not worker_thread.is_alive()


def sign_in(
    page: Page, served: str, empty: str | None = "Aucun patient n’a d’alerte en attente."
) -> None:
    """_sign_in signs the nurse in (French by default) and waits for the live queue."""
    page.goto(f"{served}/dashboard/")
    assert page.url.startswith(f"{served}/dashboard/login")
    assert page.locator("h1").inner_text() == "Connexion"
    page.fill("#username", "nurse")
    page.fill("#password", PASSWORD)
    page.click("button.primary")
    page.wait_for_url(f"{served}/dashboard/")
    page.wait_for_selector("#live-status[data-state=live]")
    if empty is not None:
        assert page.locator("#worklist").inner_text().strip() == empty
