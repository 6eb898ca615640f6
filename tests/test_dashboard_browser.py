"""The dashboard in a real browser: Debian's headless Chromium, driven by Playwright, against the
app served by uvicorn on a loopback port, with a real alerts worker.

A nurse signs in (in French, the default), sees a new alert arrive in her queue without
reloading — a finding written as the rules stage writes it, turned into an alert by the alerts
worker, announced over LISTEN/NOTIFY, streamed by the API's SSE endpoint, and the queue re-read
by the page's script — while an alert of another care team's patient, opened just before, never
shows. She acknowledges it and resolves it with an outcome from the page; the database records
both as hers. Screenshots of the queue and of a patient page (charts drawn by uPlot) are saved
under ``test-artifacts/``. The page must log no error (a Content-Security-Policy violation
would be one).
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import psycopg
from playwright.sync_api import ConsoleMessage, sync_playwright

from homecare import store
from tests.api_support import add_user
from tests.browser_support import ARTIFACTS, CHROMIUM, served, sign_in
from tests.browser_support import finding as _finding
from tests.browser_support import readings as _readings
from tests.support.pipeline import wait_for

__all__ = ["served"]


def _alert_of(conn: psycopg.Connection[Any], patient: uuid.UUID) -> Any:
    return conn.execute(
        "SELECT id, status, acknowledged_by, resolved_by, outcome FROM alerts"
        " WHERE patient_id = %s",
        (patient,),
    ).fetchone()


def test_nurse_sees_a_new_alert_live_then_acknowledges_and_resolves_it(
    db: psycopg.Connection[Any], served: str
) -> None:
    assert CHROMIUM.is_file(), "Debian's chromium is needed: apt-get install chromium"
    add_user(db, "nurse", "nurse", ("cardio",))
    add_user(db, "nurse2", "nurse", ("renal",), password=None)
    own = store.create_patient(
        db, display_name="Jeanne Tremblay", programs=["heart_failure"], care_team="cardio"
    )
    other = store.create_patient(
        db, display_name="Paul Gagnon", programs=["copd"], care_team="renal"
    )
    _readings(db, own)
    ARTIFACTS.mkdir(exist_ok=True)
    errors: list[str] = []

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            errors.append(message.text)

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 860})
            page.on("console", on_console)
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.on(
                "response",
                lambda r: errors.append(f"{r.status} {r.url}") if r.status >= 400 else None,
            )
            page.set_default_timeout(10_000)

            sign_in(page, served)

            # Another team's patient gets an alert first: it must never show.
            _finding(db, other, 9)
            wait_for(lambda: _alert_of(db, other) is not None, 10, "the other team's alert")
            # Then the nurse's patient: it must appear without a reload.
            started = time.monotonic()
            _finding(db, own, 8)
            row = page.wait_for_selector("#worklist [data-alert-id]")
            assert row is not None
            arrival_s = time.monotonic() - started
            alert_id = int(row.get_attribute("data-alert-id") or 0)
            assert page.locator("#worklist [data-alert-id]").count() == 1
            text = page.locator(f"#patient-{own}").inner_text()  # the patient's row
            assert "Critique" in text and "Jeanne Tremblay" in text
            assert "NEWS2 8 (sur 7 paramètres) : risque clinique élevé" in text
            assert "Paul Gagnon" not in page.content()
            page.screenshot(path=str(ARTIFACTS / "dashboard-queue.png"), full_page=True)

            # Acknowledge from the page.
            page.click(f"#alert-{alert_id} button[data-action=ack]")
            page.wait_for_selector(".notice >> text=Alerte prise en charge.")
            assert _alert_of(db, own)[1:3] == ("acknowledged", "user:nurse")
            assert "Prise en charge" in page.locator(f"#alert-{alert_id}").inner_text()

            # Resolve with an outcome from the page.
            page.click(f"#resolve-{alert_id} > summary")
            page.select_option(f"#outcome-{alert_id}", "called_patient")
            page.click(f"#alert-{alert_id} button[data-action=resolve]")
            page.wait_for_selector(".notice >> text=Alerte résolue.")
            assert _alert_of(db, own)[1:] == (
                "resolved",
                "user:nurse",
                "user:nurse",
                "called_patient",
            )
            empty = "Aucun patient n’a d’alerte en attente."
            assert page.locator("#worklist").inner_text().strip() == empty

            # The patient page: charts drawn from local files, alert history with the outcome.
            page.goto(f"{served}/dashboard/patients/{own}?days=30")
            page.wait_for_selector("#plot-spo2 canvas")
            page.wait_for_selector("#plot-news2 canvas")
            assert "Appel au patient" in page.locator("#alert-" + str(alert_id)).inner_text()
            page.screenshot(path=str(ARTIFACTS / "dashboard-patient.png"), full_page=True)
        finally:
            browser.close()
    assert errors == []
    assert (ARTIFACTS / "dashboard-queue.png").stat().st_size > 10_000
    print(f"new alert in the browser's queue {arrival_s * 1000:.0f} ms after the finding")
    assert arrival_s < 5


def test_a_live_update_keeps_the_outcome_and_note_the_nurse_entered(
    db: psycopg.Connection[Any], served: str
) -> None:
    """A new alert re-reads the queue's rows. An outcome chosen and a note typed in a row, the
    focus gone elsewhere (on its way to the button), must survive it: the outcome is required,
    and a reset one would silently keep the form from being sent when she clicks "Résoudre"."""
    add_user(db, "nurse", "nurse", ("cardio",))
    first = store.create_patient(
        db, display_name="Jeanne Tremblay", programs=["heart_failure"], care_team="cardio"
    )
    second = store.create_patient(
        db, display_name="Luc Roy", programs=["heart_failure"], care_team="cardio"
    )
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 860})
            page.set_default_timeout(10_000)
            sign_in(page, served)
            _finding(db, first, 8)
            row = page.wait_for_selector("#worklist [data-alert-id]")
            assert row is not None
            alert_id = int(row.get_attribute("data-alert-id") or 0)
            page.click(f"#resolve-{alert_id} > summary")
            page.select_option(f"#outcome-{alert_id}", "called_patient")
            page.fill(f"#note-{alert_id}", "Rappel demain matin")
            page.evaluate("document.activeElement && document.activeElement.blur()")

            _finding(db, second, 9)
            page.wait_for_selector(f"#worklist [data-alert-id]:not(#alert-{alert_id})")
            assert page.locator("#worklist [data-alert-id]").count() == 2
            assert page.input_value(f"#outcome-{alert_id}") == "called_patient"
            assert page.input_value(f"#note-{alert_id}") == "Rappel demain matin"
            page.click(f"#alert-{alert_id} button[data-action=resolve]")
            page.wait_for_selector(".notice >> text=Alerte résolue.")
        finally:
            browser.close()
    _, status, _, resolved_by, outcome = _alert_of(db, first)
    assert (status, resolved_by, outcome) == ("resolved", "user:nurse", "called_patient")
    note = db.execute("SELECT resolution_note FROM alerts WHERE id = %s", (alert_id,)).fetchone()
    assert note == ("Rappel demain matin",)
