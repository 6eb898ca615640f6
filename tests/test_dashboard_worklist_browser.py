"""The worklist in a real browser (Debian's Chromium, driven by Playwright), in both languages:
one row per patient in the right order for a seeded set of patients, a new alert arriving live
with the keyboard focus kept where it was; every page checked with axe-core for WCAG 2.1 AA;
no English sentence or unit code on a French page; at 390 px (a phone) nothing scrolls sideways
and every control is at least 44 px high. Screenshots of the worklist and a patient page at 1280
and 390 px in both languages are saved under ``test-artifacts/``.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from homecare import store
from tests.api_support import add_user
from tests.browser_support import ARTIFACTS, AXE, CHROMIUM, finding, readings, served, sign_in
from tests.support.pipeline import wait_for

__all__ = ["served"]

# What a French page must never say: English the system wrote, and unit codes.
NOT_FRENCH = (
    "every firing was retracted",
    "condition clear for the hold time",
    "system:",
    "late data",
    "silenced",
    "Cel)",
    "mm[Hg]",
    "{score}",
    ">=",
    "<=",
    "24h",
    "Cleared:",
    "from 7 parameters",
    "Weight ",
)
ISO_INSTANT = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d")
WIDTHS = {"desktop": 1280, "phone": 390}
LANGS = {"fr-CA": "fr", "en": "en"}


def _alerts_of(conn: psycopg.Connection[Any], patient: uuid.UUID) -> int:
    row = conn.execute("SELECT count(*) FROM alerts WHERE patient_id = %s", (patient,)).fetchone()
    return int(row[0]) if row else 0


def _threshold(conn: psycopg.Connection[Any], patient: uuid.UUID, minutes_ago: int) -> None:
    """_threshold: a high-severity SpO2 finding (hf.spo2_low) as the rules stage writes it."""
    from psycopg.types.json import Jsonb

    at = datetime.now(UTC) - timedelta(minutes=minutes_ago)
    conn.execute(
        "INSERT INTO findings (patient_id, rule_id, state, severity, evidence_time, received_at,"
        " late, summary, evidence, pack, pack_version) VALUES (%s, 'hf.spo2_low', 'active',"
        " 'medium', %s, %s, false, 'SpO2 89%% below 92%%', %s, 'heart_failure', 1)",
        (patient, at, at, Jsonb({"value": 89.0, "threshold": 92.0, "count": 2, "of": 3})),
    )


@pytest.fixture
def cohort(db: psycopg.Connection[Any]) -> dict[str, uuid.UUID]:
    """cohort: five patients of the nurse's team, one of another team, alerts opened through
    the alerts worker; one patient's earlier alert was retracted by the system, another's
    arrived late."""
    add_user(db, "nurse", "nurse", ("cardio",))
    people = {}
    for name, programs in (
        ("Jeanne Tremblay", ["heart_failure"]),
        ("Luc Roy", ["copd"]),
        ("Marie Côté", ["heart_failure", "hypertension"]),
        ("Paul Gagnon", ["copd"]),
    ):
        people[name] = store.create_patient(
            db, display_name=name, programs=programs, care_team="cardio"
        )
    people["Autre Équipe"] = store.create_patient(
        db, display_name="Autre Équipe", programs=["copd"], care_team="renal"
    )
    readings(db, people["Jeanne Tremblay"])
    readings(db, people["Marie Côté"])
    finding(db, people["Luc Roy"], 9, minutes_ago=10)
    finding(db, people["Jeanne Tremblay"], 8, minutes_ago=30)
    _threshold(db, people["Marie Côté"], 120)
    _threshold(db, people["Paul Gagnon"], 60)
    finding(db, people["Autre Équipe"], 12)
    for patient in people.values():
        wait_for(lambda p=patient: _alerts_of(db, p) >= 1, 10, "alerts opened")
    # Marie's second alert: a NEWS2 one that arrived late (history: not paged).
    finding(db, people["Marie Côté"], 5, minutes_ago=200)
    db.execute(
        "UPDATE alerts SET late = true, suppressed_by = 'late' WHERE patient_id = %s"
        " AND rule_id = 'common.news2_high'",
        (people["Marie Côté"],),
    )
    # Jeanne's earlier alert, retracted by the system.
    db.execute(
        "INSERT INTO alerts (patient_id, rule_id, severity, status, condition, opened_at,"
        " evidence_time, summary, evidence, news2, late, finding_id, fired_count, last_fired_at,"
        " resolved_at, resolved_by, outcome, resolution_note, updated_at)"
        " SELECT patient_id, 'hf.weight_gain', 'high', 'resolved', 'active',"
        " now() - interval '2 days', now() - interval '2 days', 'Weight 84.0 kg',"
        ' \'{"value": 84.0, "delta": 2.5, "baseline": 81.5}\', NULL, false, finding_id, 1,'
        " now() - interval '2 days', now() - interval '1 day', 'system:retracted', 'retracted',"
        " 'every firing was retracted', now() FROM alerts WHERE patient_id = %s LIMIT 1",
        (people["Jeanne Tremblay"],),
    )
    return people


@pytest.fixture
def browser() -> Iterator[Browser]:
    assert CHROMIUM.is_file(), "Debian's chromium is needed: apt-get install chromium"
    assert AXE.is_file(), "run scripts/test (npm ci in tests/browser) first"
    with sync_playwright() as pw:
        launched = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        try:
            yield launched
        finally:
            launched.close()


def _page(browser: Browser, width: int) -> Page:
    page = browser.new_page(viewport={"width": width, "height": 900})
    page.set_default_timeout(10_000)
    return page


def _switch_to_english(page: Page) -> None:
    page.click("button[name=lang][value=en]")
    page.wait_for_selector("html[lang=en]")


def _axe(page: Page) -> list[str]:
    """_axe runs axe-core's WCAG 2.0/2.1 A and AA rules on the page; the violations, named."""
    page.evaluate(AXE.read_text(encoding="utf-8"))  # evaluated, not a <script>: CSP stays on
    found = page.evaluate(
        "async () => (await axe.run(document, {runOnly: {type: 'tag', values:"
        " ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']}})).violations"
        ".map(v => v.id + ': ' + v.nodes.map(n => n.target.join(' ')).join(', '))"
    )
    return list(found)


def _phone_problems(page: Page) -> list[str]:
    """_phone_problems: sideways scrolling, and visible controls under 44 px high."""
    problems = []
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    if overflow > 0:
        problems.append(f"scrolls sideways by {overflow} px")
    small = page.evaluate(
        """() => Array.from(document.querySelectorAll(
             'button, select, input:not([type=hidden]), summary, a'))
           .filter(el => el.offsetParent !== null && !el.closest('p, footer, .skip'))
           .map(el => [el.outerHTML.slice(0, 80), el.getBoundingClientRect().height])
           .filter(([, h]) => h < 44)"""
    )
    problems += [f"{h:.0f} px: {html}" for html, h in small]
    return problems


def _french_problems(page: Page) -> list[str]:
    text = page.inner_text("body")
    found = [s for s in NOT_FRENCH if s in text]
    found += ISO_INSTANT.findall(text)
    return found


@pytest.mark.parametrize("lang", list(LANGS))
def test_worklist_order_live_update_and_focus(
    served: str,
    cohort: dict[str, uuid.UUID],
    browser: Browser,
    db: psycopg.Connection[Any],
    lang: str,
) -> None:
    page = _page(browser, 1280)
    sign_in(page, served, empty=None)
    if lang == "en":
        _switch_to_english(page)
        page.wait_for_selector("#live-status[data-state=live]")
    order = page.eval_on_selector_all(
        "#worklist > li.patient", "rows => rows.map(r => r.dataset.patientId)"
    )
    expected = ["Luc Roy", "Jeanne Tremblay", "Marie Côté", "Paul Gagnon"]
    assert order == [str(cohort[n]) for n in expected]  # one row per patient, most urgent first
    marie = page.locator(f"#patient-{cohort['Marie Côté']} [data-alert-id]")
    assert marie.count() == 2  # both her alerts under her row
    assert "Autre Équipe" not in page.content()

    # The keyboard is on Paul's "acknowledge" button when a new alert arrives.
    paul_alert = page.get_attribute(
        f"#patient-{cohort['Paul Gagnon']} [data-alert-id]", "data-alert-id"
    )
    button = f"#ack-{paul_alert}"
    page.focus(button)
    newcomer = store.create_patient(
        db, display_name="Rose Nadeau", programs=["copd"], care_team="cardio"
    )
    finding(db, newcomer, 11)
    page.wait_for_selector(f"#patient-{newcomer}")
    first = page.eval_on_selector("#worklist > li.patient", "r => r.dataset.patientId")
    assert first == str(newcomer)
    assert page.evaluate("document.activeElement.id") == button.lstrip("#")
    page.close()


@pytest.mark.parametrize("lang", list(LANGS))
@pytest.mark.parametrize("device", list(WIDTHS))
def test_pages_screenshots_accessibility_language_and_phone(
    served: str, cohort: dict[str, uuid.UUID], browser: Browser, lang: str, device: str
) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page = _page(browser, WIDTHS[device])
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    sign_in(page, served, empty=None)
    if lang == "en":
        _switch_to_english(page)
    suffix = f"{LANGS[lang]}-{WIDTHS[device]}"
    problems: dict[str, list[str]] = {}
    pages = {
        "worklist": "/dashboard/",
        "alerts": "/dashboard/alerts",
        "patient": f"/dashboard/patients/{cohort['Jeanne Tremblay']}?days=7",
        "patient-30": f"/dashboard/patients/{cohort['Marie Côté']}?days=30",
    }
    for name, path in pages.items():
        page.goto(served + path)
        if name.startswith("patient"):
            page.wait_for_selector("#plot-news2 canvas, .charts figure canvas")
        else:
            page.wait_for_selector("#live-status[data-state=live]")
        if name in ("worklist", "patient"):
            page.screenshot(path=str(ARTIFACTS / f"dashboard-{name}-{suffix}.png"), full_page=True)
        problems[f"{name} axe"] = _axe(page)
        if lang == "fr-CA":
            problems[f"{name} French"] = _french_problems(page)
        if device == "phone":
            problems[f"{name} phone"] = _phone_problems(page)
    page.close()
    assert {k: v for k, v in problems.items() if v} == {}
    assert errors == []
