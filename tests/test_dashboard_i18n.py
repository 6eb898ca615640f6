"""Dashboard languages: every message in both catalogues, every key a page uses, summaries
rendered again from the evidence in the page's language, numbers, units and durations as the
locale writes them, and no English sentence or UCUM code on a French page."""

from __future__ import annotations

import re
import string
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from homecare import catalogue
from homecare.alerts.model import Outcome
from homecare.api.accounts import ROLES
from homecare.api.dashboard import i18n, pages
from homecare.rules import load_packs
from tests.api_support import World, world
from tests.dashboard_support import (
    alert_for,
    packs_dir,
    sign_in,
)

__all__ = ["packs_dir", "world"]

DASHBOARD = Path(pages.__file__).parent


# --- catalogues --------------------------------------------------------------------------------


def test_every_message_is_in_both_languages() -> None:
    fr, en = i18n.catalogue("fr-CA"), i18n.catalogue("en")
    assert set(fr) == set(en)
    assert all(v.strip() for v in (*fr.values(), *en.values()))
    for key in fr:  # the same placeholders in both
        names = {n for _, n, _, _ in string.Formatter().parse(fr[key]) if n}
        assert names == {n for _, n, _, _ in string.Formatter().parse(en[key]) if n}, key


def test_every_key_the_pages_use_exists() -> None:
    used: set[str] = set()
    sources = [*DASHBOARD.glob("templates/*.html"), *DASHBOARD.glob("*.py")]
    for path in sources:
        text = path.read_text()
        used |= set(re.findall(r"""\b(?:t|self)\(\s*["']([a-z0-9_.]*[a-z0-9_])["']""", text))
        used |= {f"notice.{n}" for n in re.findall(r'_back\(next, "([a-z_]+)"\)', text)}
    # Keys built from values: every value the pages can show.
    used |= {f"severity.{s}" for s in ("low", "medium", "high", "critical")}
    used |= {f"status.{s}" for s in ("open", "acknowledged", "resolved")}
    used |= {f"condition.{c}" for c in ("active", "cleared")}
    used |= {f"outcome.{o}" for o in Outcome.__args__}
    used |= {f"program.{p}" for p in catalogue.PROGRAMS}
    used |= {f"type.{t}" for t in catalogue.CATALOGUE}
    used |= {f"short.{t}" for t in catalogue.CATALOGUE}
    used |= {f"unit.{k.canonical_unit}" for k in catalogue.CATALOGUE.values()}
    used |= {f"role.{r}" for r in ROLES}
    used |= {f"vital.{d}" for d in ("up", "down", "steady", "unknown")}
    used |= {f"suppressed.{r}" for r in ("late", "silence", "inhibited", "flapping")}
    used |= {f"resolution.{o}" for o in ("retracted", "auto_resolved")}
    for locale in i18n.LOCALES:
        missing = sorted(used - set(i18n.catalogue(locale)))
        assert not missing, f"{locale} lacks {missing}"
    assert sorted(set(i18n.catalogue("en")) - used) == [], "messages no page uses"


def test_every_alerting_rule_has_a_french_summary_with_the_packs_placeholders() -> None:
    templates = i18n.rule_templates("fr-CA")
    t = i18n.Translator("fr-CA", i18n.zone("America/Montreal"))
    for pack in load_packs().packs.values():
        for rule in pack.rules:
            if not rule.alert:
                continue
            assert rule.id in templates, f"no French summary for {rule.id}"
            names = {n for _, n, _, _ in string.Formatter().parse(rule.summary) if n}
            french = {n for _, n, _, _ in string.Formatter().parse(templates[rule.id]) if n}
            assert french <= names, f"{rule.id}: {french - names} not in the pack's summary"
            evidence: dict[str, Any] = dict.fromkeys(names, 1.5)
            evidence.update(last_time="2026-11-02T13:05:00+00:00", score=6, parameters=7)
            rendered = t.summary(rule.id, "stored", evidence)
            assert rendered != "stored" and "{" not in rendered, rule.id


def test_french_summary_uses_the_french_decimal_sign_and_the_team_zone() -> None:
    t = i18n.Translator("fr-CA", i18n.zone("America/Montreal"))
    weight = {"value": 82.46, "delta": 2.3, "baseline": 80.16}
    assert t.summary("hf.weight_gain", "x", weight) == (
        "Poids 82,5 kg, +2,3 kg au-dessus du poids habituel du patient (80,2 kg)"
    )
    missing = {"hours": 48.0, "last_time": "2026-11-02T13:05:00+00:00"}
    assert t.summary("hf.missing_weight", "x", missing) == (
        "Aucun poids depuis 48 h (dernier : 2026-11-02 08 h 05)"
    )
    assert t.summary("hf.weight_gain", "stored text", {"value": 1}) == "stored text"
    english = i18n.Translator("en", i18n.zone("America/Montreal"))
    assert english.summary("hf.weight_gain", "stored text", weight) == "stored text"


def test_french_deviation_summary_names_the_vitals_that_moved() -> None:
    # rules.evaluate's deviation evidence: every vital's move; those of 1 spread or more count.
    evidence = {
        "score": 5.8,
        "explanation": "heart_rate +14 (usual 78), spo2 -2.5 (usual 95)",
        "vitals": [
            {"type": "spo2", "usual": 95.0, "change": -2.5, "score": 2.5},
            {"type": "respiratory_rate", "usual": 17.0, "change": 0.5, "score": 0.3},
            {"type": "heart_rate", "usual": 78.0, "change": 14.0, "score": 3.0},
        ],
    }
    t = i18n.Translator("fr-CA", i18n.zone("America/Montreal"))
    assert t.summary("hf.deviation", "x", evidence) == (
        "Écart par rapport aux valeurs habituelles du patient : Fréquence cardiaque +14"
        " (habituellement 78), Saturation en oxygène (SpO2) -2,5 (habituellement 95)"
    )


# --- sign-in, language, time zone ---------------------------------------------------------


def test_english_summaries_show_times_in_the_team_zone_not_utc() -> None:
    english = i18n.Translator(
        "en",
        i18n.zone("America/Montreal"),
        {"x.missing": "No weight for {hours:.0f} h (last {last_time})"},
    )
    text = english.summary(
        "x.missing", "stored", {"hours": 48.0, "last_time": "2026-12-02T23:15:24.325000+00:00"}
    )
    assert text == "No weight for 48 h (last 2026-12-02, 6:15\u202fp.m.)"


def test_english_page_renders_the_summary_from_the_pack(world: World) -> None:
    alert_for(world, "own", world.clock.now - timedelta(hours=1))
    world.db.execute("UPDATE users SET locale = 'en' WHERE username = 'nurse'")
    sign_in(world)
    page = world.client.get("/dashboard/").text
    assert "SpO2 89% below 92% in 2 of the last 3 readings" in page
    assert "stored summary of hf.spo2_low" not in page


def test_durations_units_and_comparisons_are_written_as_the_locale_does() -> None:
    fr = i18n.Translator("fr-CA", i18n.zone("America/Montreal"))
    evidence = {"readings": "SpO2 70 %, Systolic BP 250 mm[Hg]", "confirm_within": "24h"}
    assert fr.summary("common.suspect_reading", "x", evidence) == (
        "Saturation en oxygène (SpO2) 70 %, Pression artérielle systolique 250 mmHg non confirmé"
        " par une deuxième mesure dans les 24\u00a0h : artefact possible, demander au patient de"
        " reprendre la mesure"
    )
    assert fr.unit("Cel") == "°C" and fr.unit("mm[Hg]") == "mmHg" and fr.unit("{score}") == "/10"
    assert fr.op(">=") == "≥"
    assert fr.actor("system:retracted") == "le système" and fr.actor("user:nurse") == "nurse"


@pytest.mark.parametrize(
    ("reason", "french"),
    [
        ("late", "reçue en retard : historique, pas de notification"),
        ("silence:4", "en sourdine"),
        ("inhibited:12", "expliquée par l’alerte n° 12 : pas de notification"),
        ("flapping", "répétée peu après : pas de nouvelle notification"),
    ],
)
def test_why_an_alert_was_not_paged_is_said_as_it_is(reason: str, french: str) -> None:
    assert i18n.Translator("fr-CA", i18n.zone("America/Montreal")).reason(reason) == french


def test_a_late_alert_is_not_shown_as_silenced(world: World) -> None:
    """A late alert is held back from paging with reason ``late``; the page said "en sourdine"
    (silenced) while no silence was in force. It must say what happened, once."""
    alert = alert_for(world, "own", world.clock.now - timedelta(hours=1))
    world.db.execute(
        "UPDATE alerts SET late = true, suppressed_by = 'late' WHERE id = %s", (alert,)
    )
    sign_in(world)
    for path in (
        "/dashboard/",
        "/dashboard/alerts",
        f"/dashboard/patients/{world.patients['own']}",
    ):
        page = world.client.get(path).text
        assert "en sourdine</span>" not in page, path
        assert page.count("reçue en retard : historique, pas de notification") == 1, path
        assert "données tardives" not in page, path


def test_a_system_resolution_reads_in_french(world: World) -> None:
    alert = alert_for(world, "own", world.clock.now - timedelta(hours=1))
    world.db.execute(
        "UPDATE alerts SET status = 'resolved', resolved_by = 'system:retracted',"
        " outcome = 'retracted', resolution_note = 'every firing was retracted', resolved_at = %s"
        " WHERE id = %s",
        (world.clock.now, alert),
    )
    sign_in(world)
    page = world.client.get(f"/dashboard/patients/{world.patients['own']}").text
    for english in (
        "every firing was retracted",
        "system:retracted",
        "condition toujours présente",
    ):
        assert english not in page
    assert "résolue par le système" in page
    assert "Les mesures qui l’avaient déclenchée ont été retirées ou corrigées." in page
