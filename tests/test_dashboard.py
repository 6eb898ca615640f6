"""Nurse dashboard pages with the real app and PostgreSQL: sign-in, the queue, a patient page,
the actions and their protection, languages (fr-CA by default, every message in both), times
in the care team's zone, and the API's scoping and audit."""

from __future__ import annotations

import json
import re
import string
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg.types.json import Jsonb

import catalogue
import store
from alerts.model import OUTCOMES, Outcome
from api.accounts import ROLES
from api.dashboard import i18n, pages
from api.dashboard.charts import WINDOWS
from api.dashboard.static import VENDOR, vendor_missing
from rules import load_packs
from tests.alerts_support import drain
from tests.api_support import PASSWORD, World, world

__all__ = ["world"]

DASHBOARD = Path(pages.__file__).parent

# Small fixed packs, so these tests do not move with the clinical tuning of the shipped ones
# (the French summaries of the shipped packs are checked against the packs themselves below).
COMMON = """
pack: common
version: 1
rules:
  - {id: common.news2_medium, kind: news2, min_score: 5, within: 12h, severity: high,
     summary: "NEWS2 {score}"}
  - {id: common.news2_high, kind: news2, min_score: 7, within: 12h, severity: critical,
     summary: "NEWS2 {score}"}
  - {id: common.hr_high, kind: threshold, type: heart_rate, op: ">", value: 120,
     severity: medium, summary: "HR {value:.0f}"}
  - {id: common.hr_low, kind: threshold, type: heart_rate, op: "<", value: 40,
     severity: medium, summary: "HR {value:.0f}"}
"""
HEART_FAILURE = """
pack: heart_failure
version: 1
rules:
  - {id: hf.spo2_low, kind: threshold, type: spo2, op: "<", value: 92, severity: medium,
     summary: "SpO2 {value:.0f}% below {threshold:.0f}% in {count} of the last {of} readings"}
  - {id: hf.weight_gain, kind: baseline_change, type: body_weight, change: 2.0, over: 3d,
     baseline: 7d, severity: high,
     summary: "Weight {value:.1f} kg, {delta:+.1f} kg above the patient's baseline"}
"""


@pytest.fixture
def packs_dir(tmp_path: Path) -> Path:
    """packs_dir: the fixed packs above (the world's app reads them)."""
    target = tmp_path / "packs"
    target.mkdir()
    (target / "common.yaml").write_text(COMMON)
    (target / "heart_failure.yaml").write_text(HEART_FAILURE)
    return target


def finding(
    conn: psycopg.Connection[Any],
    patient_id: uuid.UUID,
    rule_id: str,
    at: datetime,
    evidence: dict[str, Any],
    severity: str = "high",
) -> None:
    """finding writes an active finding as the rules stage does (the trigger wakes alerts)."""
    conn.execute(
        "INSERT INTO findings (patient_id, rule_id, state, severity, evidence_time, received_at,"
        " late, summary, evidence, pack, pack_version)"
        " VALUES (%s, %s, 'active', %s, %s, %s, false, %s, %s, 'common', 1)",
        (patient_id, rule_id, severity, at, at, f"stored summary of {rule_id}", Jsonb(evidence)),
    )


def alert_for(w: World, patient: str, at: datetime, **kw: Any) -> int:
    """alert_for opens an hf.spo2_low alert for the world's patient through the alerts stage."""
    evidence = {"value": 89.0, "threshold": 92.0, "count": 2, "of": 3}
    finding(w.db, w.patients[patient], kw.pop("rule_id", "hf.spo2_low"), at, evidence, **kw)
    drain(w.client.app.state.alerts, w.db)  # type: ignore[attr-defined]
    row = w.db.execute(
        "SELECT max(id) FROM alerts WHERE patient_id = %s", (w.patients[patient],)
    ).fetchone()
    assert row is not None and row[0] is not None
    return int(row[0])


def sign_in(w: World, user: str = "nurse") -> None:
    """sign_in gives the browser the user's token as its session cookie (what the sign-in form
    does, without paying an argon2 check in every test; the form has tests of its own)."""
    w.client.cookies.set("homecare_session", w.tokens[user])


def sign_in_with_password(w: World, user: str = "nurse") -> None:
    answer = w.client.post(
        "/dashboard/login",
        data={"username": user, "password": PASSWORD, "next": "/dashboard/"},
        follow_redirects=False,
    )
    assert answer.status_code == 303, answer.text
    assert answer.headers["location"] == "/dashboard/"


def csrf(html: str) -> str:
    found = re.search(r'name="csrf" value="([0-9a-f]{64})"', html)
    assert found, "every signed-in page carries the form token"
    return found.group(1)


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
    sources = [*DASHBOARD.glob("templates/*.html"), DASHBOARD / "pages.py", DASHBOARD / "i18n.py"]
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
    used |= {f"role.{r}" for r in ROLES}
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


def test_pages_need_sign_in_and_default_to_french(world: World) -> None:
    answer = world.client.get("/dashboard/", follow_redirects=False)
    assert answer.status_code == 303 and answer.headers["location"].startswith("/dashboard/login")
    login = world.client.get("/dashboard/login")
    assert login.status_code == 200 and '<html lang="fr-CA">' in login.text
    assert "Connexion" in login.text and "Mot de passe" in login.text
    assert login.headers["cache-control"] == "no-store"
    assert "script-src 'self'" in login.headers["content-security-policy"]


def test_wrong_password_is_refused_in_the_page_language(world: World) -> None:
    answer = world.client.post(
        "/dashboard/login", data={"username": "nurse", "password": "wrong"}, follow_redirects=False
    )
    assert answer.status_code == 401
    assert "Utilisateur inconnu ou mot de passe erroné." in answer.text
    assert "homecare_session" not in answer.headers.get("set-cookie", "")


def test_sign_in_sets_the_api_session_cookie(world: World) -> None:
    sign_in_with_password(world)
    assert world.client.get("/api/v1/auth/me").json()["username"] == "nurse"
    page = world.client.get("/dashboard/")
    assert page.status_code == 200 and "File de triage" in page.text
    assert "Aucune alerte en attente." in page.text


def test_language_is_switchable_and_remembered_for_the_user(world: World) -> None:
    sign_in(world)
    token = csrf(world.client.get("/dashboard/").text)
    switched = world.client.post(
        "/dashboard/language",
        data={"lang": "en", "csrf": token, "next": "/dashboard/"},
        follow_redirects=False,
    )
    assert switched.status_code == 303
    row = world.db.execute("SELECT locale FROM users WHERE username = 'nurse'").fetchone()
    assert row == ("en",)
    assert "Triage queue" in world.client.get("/dashboard/").text
    # Remembered for the user, not the browser: a new session elsewhere is in English too.
    world.client.cookies.clear()
    sign_in_with_password(world)
    assert '<html lang="en">' in world.client.get("/dashboard/").text
    audit = world.db.execute("SELECT actor FROM audit_log WHERE action = 'user.locale'").fetchall()
    assert audit == [("user:nurse",)]


def test_sign_in_page_language_switch_before_sign_in(world: World) -> None:
    answer = world.client.post(
        "/dashboard/language",
        data={"lang": "en", "next": "/dashboard/login"},
        follow_redirects=False,
    )
    assert answer.status_code == 303
    assert '<html lang="en">' in world.client.get("/dashboard/login").text


@pytest.mark.parametrize(
    ("evidence_time", "french", "english"),
    [
        # Eastern Standard Time (UTC-5) in November, Eastern Daylight Time (UTC-4) in July.
        # (CLDR puts a narrow no-break space before a.m. and p.m.)
        (
            datetime(2026, 11, 2, 13, 5, tzinfo=UTC),
            "2026-11-02 08 h 05",
            "2026-11-02, 8:05\u202fa.m.",
        ),
        (
            datetime(2026, 7, 1, 3, 30, tzinfo=UTC),
            "2026-06-30 23 h 30",
            "2026-06-30, 11:30\u202fp.m.",
        ),
    ],
)
def test_times_are_shown_in_the_care_teams_zone(
    world: World, evidence_time: datetime, french: str, english: str
) -> None:
    alert_for(world, "own", evidence_time)
    sign_in(world)
    page = world.client.get("/dashboard/").text
    assert f'<time datetime="{evidence_time.isoformat()}">{french}</time>' in page
    assert "heure de l’Est" in page  # the footer names the zone
    world.db.execute("UPDATE users SET locale = 'en' WHERE username = 'nurse'")
    assert f">{english}</time>" in world.client.get("/dashboard/").text


def test_a_team_in_another_zone_sees_its_own_times(world: World) -> None:
    world.db.execute("UPDATE care_teams SET time_zone = 'America/Vancouver' WHERE id = 'cardio'")
    alert_for(world, "own", datetime(2026, 11, 2, 13, 5, tzinfo=UTC))
    sign_in(world)
    assert ">2026-11-02 05 h 05</time>" in world.client.get("/dashboard/").text


# --- scope, roles, audit -----------------------------------------------------------------------


def test_queue_shows_only_the_nurses_care_teams_most_urgent_first(world: World) -> None:
    at = world.clock.now - timedelta(hours=1)
    medium = alert_for(world, "own", at, severity="medium")
    critical = alert_for(world, "own", at, severity="critical", rule_id="common.hr_high")
    alert_for(world, "other", at, severity="critical", rule_id="common.hr_high")
    sign_in(world)
    rows = re.findall(r'data-alert-id="(\d+)"', world.client.get("/dashboard/queue").text)
    assert rows == [str(critical), str(medium)]
    assert "Paul Gagnon" not in world.client.get("/dashboard/").text
    reads = world.db.execute(
        "SELECT DISTINCT subject FROM audit_log"
        " WHERE actor = 'user:nurse' AND action = 'alerts.read'"
    ).fetchall()
    assert reads == [(f"patient/{world.patients['own']}",)]


def test_another_teams_patient_and_alert_are_not_found(world: World) -> None:
    other_alert = alert_for(world, "other", world.clock.now - timedelta(hours=1))
    sign_in(world)
    token = csrf(world.client.get("/dashboard/").text)
    page = world.client.get(f"/dashboard/patients/{world.patients['other']}")
    missing = world.client.get(f"/dashboard/patients/{uuid.uuid4()}")
    assert page.status_code == missing.status_code == 404
    assert "Paul Gagnon" not in page.text and "Introuvable" in page.text
    for action in ("ack", "resolve", "notes"):
        answer = world.client.post(
            f"/dashboard/alerts/{other_alert}/{action}",
            data={"csrf": token, "outcome": "false_alarm", "body": "x"},
            follow_redirects=False,
        )
        assert answer.status_code == 404, action
    silence = world.client.post(
        f"/dashboard/patients/{world.patients['other']}/silences",
        data={"csrf": token, "hours": 1, "reason": "x"},
        follow_redirects=False,
    )
    assert silence.status_code == 404
    row = world.db.execute("SELECT status FROM alerts WHERE id = %s", (other_alert,)).fetchone()
    assert row == ("open",)
    assert world.db.execute("SELECT count(*) FROM silences").fetchone() == (0,)
    assert world.db.execute("SELECT count(*) FROM alert_notes").fetchone() == (0,)


@pytest.mark.parametrize("user", ["admin", "analyst"])
def test_roles_without_patients_get_a_forbidden_page(world: World, user: str) -> None:
    sign_in(world, user)
    answer = world.client.get("/dashboard/")
    assert answer.status_code == 403 and "Non accessible à votre rôle" in answer.text
    patient = world.client.get(f"/dashboard/patients/{world.patients['own']}")
    assert patient.status_code == 403 and "Jeanne Tremblay" not in patient.text


# --- actions -------------------------------------------------------------------------------------


def test_acknowledge_and_resolve_from_the_page(world: World) -> None:
    alert = alert_for(world, "own", world.clock.now - timedelta(hours=1))
    sign_in(world)
    token = csrf(world.client.get("/dashboard/").text)
    ack = world.client.post(
        f"/dashboard/alerts/{alert}/ack",
        data={"csrf": token, "next": "/dashboard/"},
        follow_redirects=False,
    )
    assert ack.status_code == 303 and ack.headers["location"] == "/dashboard/?notice=acknowledged"
    assert "Alerte prise en charge." in world.client.get(ack.headers["location"]).text
    no_outcome = world.client.post(
        f"/dashboard/alerts/{alert}/resolve",
        data={"csrf": token, "outcome": "auto_resolved"},
        follow_redirects=False,
    )
    assert no_outcome.headers["location"].endswith("notice=outcome_required")
    resolved = world.client.post(
        f"/dashboard/alerts/{alert}/resolve",
        data={"csrf": token, "outcome": "called_patient", "note": "rappel demain"},
        follow_redirects=False,
    )
    assert resolved.headers["location"].endswith("notice=resolved")
    row = world.db.execute(
        "SELECT status, acknowledged_by, resolved_by, outcome, resolution_note FROM alerts"
        " WHERE id = %s",
        (alert,),
    ).fetchone()
    assert row == ("resolved", "user:nurse", "user:nurse", "called_patient", "rappel demain")
    again = world.client.post(
        f"/dashboard/alerts/{alert}/ack", data={"csrf": token}, follow_redirects=False
    )
    assert again.headers["location"].endswith("notice=stale")
    assert "Aucune alerte en attente." in world.client.get("/dashboard/").text


def test_the_resolve_form_offers_every_nurse_outcome(world: World) -> None:
    alert_for(world, "own", world.clock.now - timedelta(hours=1))
    sign_in(world)
    page = world.client.get("/dashboard/").text
    offered = set(re.findall(r'<option value="([a-z_]+)">', page))
    assert offered == set(OUTCOMES)


def test_forms_need_the_session_token_and_this_origin(world: World) -> None:
    alert = alert_for(world, "own", world.clock.now - timedelta(hours=1))
    sign_in(world)
    token = csrf(world.client.get("/dashboard/").text)
    missing = world.client.post(f"/dashboard/alerts/{alert}/ack", follow_redirects=False)
    wrong = world.client.post(
        f"/dashboard/alerts/{alert}/ack", data={"csrf": "0" * 64}, follow_redirects=False
    )
    foreign = world.client.post(
        f"/dashboard/alerts/{alert}/ack",
        data={"csrf": token},
        headers={"Origin": "https://evil.example"},
        follow_redirects=False,
    )
    assert missing.status_code == wrong.status_code == foreign.status_code == 403
    assert "Demande refusée" in foreign.text
    row = world.db.execute("SELECT status FROM alerts WHERE id = %s", (alert,)).fetchone()
    assert row == ("open",)
    # The next parameter cannot send the browser to another site.
    ok = world.client.post(
        f"/dashboard/alerts/{alert}/ack",
        data={"csrf": token, "next": "//evil.example/x"},
        follow_redirects=False,
    )
    assert ok.headers["location"] == "/dashboard/?notice=acknowledged"


def test_notes_and_silences_from_the_patient_page(world: World) -> None:
    alert = alert_for(world, "own", world.clock.now - timedelta(hours=1))
    sign_in(world)
    patient = world.patients["own"]
    back = f"/dashboard/patients/{patient}?days=7"
    token = csrf(world.client.get(back).text)
    noted = world.client.post(
        f"/dashboard/alerts/{alert}/notes",
        data={"csrf": token, "body": "Patiente rappelée, SpO2 remontée", "next": back},
        follow_redirects=False,
    )
    assert noted.status_code == 303, noted.text[:2000]
    assert noted.headers["location"] == back + "&notice=note_added"
    silenced = world.client.post(
        f"/dashboard/patients/{patient}/silences",
        data={
            "csrf": token,
            "hours": 4,
            "reason": "oxymètre défectueux",
            "rule_id": "hf.spo2_low",
            "next": back,
        },
        follow_redirects=False,
    )
    assert silenced.headers["location"] == back + "&notice=silenced"
    page = world.client.get(back).text
    assert "Patiente rappelée, SpO2 remontée" in page and "oxymètre défectueux" in page
    silence_id = world.db.execute("SELECT id FROM silences").fetchone()
    assert silence_id is not None
    world.clock.advance(timedelta(minutes=5))
    ended = world.client.post(
        f"/dashboard/silences/{silence_id[0]}/end",
        data={"csrf": token, "next": back},
        follow_redirects=False,
    )
    assert ended.status_code == 303, ended.text[-1500:]
    assert ended.headers["location"] == back + "&notice=silence_ended"
    actions = {
        r[0]
        for r in world.db.execute(
            "SELECT action FROM audit_log WHERE actor = 'user:nurse'"
        ).fetchall()
    }
    assert {"alert.note", "silence.create", "silence.end", "patient.read"} <= actions


# --- patient page ------------------------------------------------------------------------------


def _readings(conn: psycopg.Connection[Any], patient: uuid.UUID, now: datetime) -> None:
    store.register_device(conn, "ox-1", model="oximeter")
    store.assign_device(conn, "ox-1", patient, now - timedelta(days=100))
    conn.execute(
        "INSERT INTO readings (time, patient_id, device_id, type, value, unit, original_value,"
        " original_unit, msg_id, received_at)"
        " SELECT t, %(p)s, 'ox-1', ty.name, ty.v + (extract(hour FROM t) %% 3), ty.u,"
        " ty.v, ty.u, 'm' || extract(epoch FROM t), t"
        " FROM generate_series(%(start)s::timestamptz, %(end)s::timestamptz, '6 hours') AS t,"
        " (VALUES ('spo2', 94.0, '%%'), ('heart_rate', 80.0, '/min'),"
        "  ('respiratory_rate', 18.0, '/min'), ('systolic_bp', 125.0, 'mm[Hg]'),"
        "  ('body_temperature', 37.0, 'Cel')) AS ty(name, v, u)",
        {"p": patient, "start": now - timedelta(days=95), "end": now - timedelta(hours=1)},
    )
    store.refresh_aggregates(conn)


def _chart_data(html: str) -> dict[str, Any]:
    found = re.search(r'<script type="application/json" id="chart-data">(.*?)</script>', html)
    assert found
    data: dict[str, Any] = json.loads(found.group(1))
    return data


def test_patient_page_charts_with_thresholds_news2_and_windows(world: World) -> None:
    patient = world.patients["own"]
    _readings(world.db, patient, world.clock.now)
    world.db.execute(
        "INSERT INTO threshold_overrides (patient_id, rule_id, value, reason, set_by, valid_from)"
        " VALUES (%s, 'hf.spo2_low', 90, 'BPCO connue', 'user:physician', %s)",
        (patient, world.clock.now - timedelta(days=1)),
    )
    sign_in(world)
    for days in WINDOWS:
        html = world.client.get(f"/dashboard/patients/{patient}?days={days}").text
        data = _chart_data(html)
        assert data["zone"] == "America/Montreal" and data["locale"] == "fr-CA"
        series = {s["type"]: s for s in data["series"]}
        assert list(series) == [
            "heart_rate",
            "systolic_bp",
            "spo2",
            "respiratory_rate",
            "body_temperature",
        ]  # catalogue order
        spo2 = series["spo2"]
        points = len(spo2["x"])
        if days == 7:
            assert 27 <= points <= 29  # every 6 h: hourly buckets hold one reading each
        else:
            assert days - 1 <= points <= days + 1  # one point per local day
            # Local days: each point is a midnight in Montréal.
            first = datetime.fromtimestamp(spo2["x"][0], tz=i18n.zone("America/Montreal"))
            assert (first.hour, first.minute) == (0, 0)
        assert all(
            lo <= m <= hi for lo, m, hi in zip(spo2["min"], spo2["mean"], spo2["max"], strict=True)
        )
        lines = {t["rule_id"]: t for t in spo2["thresholds"]}
        assert lines["hf.spo2_low"]["value"] == 90 and lines["hf.spo2_low"]["overridden"]
        assert {t["rule_id"] for t in series["heart_rate"]["thresholds"]} >= {
            "common.hr_high",
            "common.hr_low",
        }
        news2 = data["news2"]
        assert news2["x"] and all(0 <= s <= 20 for s in news2["score"])
        assert {t["value"] for t in news2["thresholds"]} == {5, 7}
        assert "Saturation en oxygène (SpO2)" in html and "propre à ce patient" in html
    reads = world.db.execute(
        "SELECT count(*) FROM audit_log WHERE action = 'patient.read' AND subject = %s",
        (f"patient/{patient}",),
    ).fetchone()
    assert reads == (len(WINDOWS),)
    # Any other window is the first one, never an error page.
    odd = world.client.get(f"/dashboard/patients/{patient}?days=abc")
    assert odd.status_code == 200 and 'aria-current="page" class="current">7 jours' in odd.text


def test_news2_series_scores_the_readings_as_the_chart_says(world: World) -> None:
    # RCP NEWS2 (2017), chart 1: RR 18 → 0, SpO2 94 → 1 (scale 1), air → 0, SBP 125 → 0,
    # pulse 80 → 0, Alert → 0, temperature 37.0 → 0: total 1, from all 7 parameters.
    patient = world.patients["own"]
    world.db.execute(
        "INSERT INTO readings (time, patient_id, device_id, type, value, unit, original_value,"
        " original_unit, msg_id, received_at) SELECT %(t)s, %(p)s, 'd', ty, v, u, v, u, ty, %(t)s"
        " FROM (VALUES ('respiratory_rate', 18.0, '/min'), ('spo2', 94.0, '%%'),"
        " ('systolic_bp', 125.0, 'mm[Hg]'), ('heart_rate', 80.0, '/min'),"
        " ('body_temperature', 37.0, 'Cel')) AS r(ty, v, u)",
        {"t": world.clock.now - timedelta(hours=2), "p": patient},
    )
    sign_in(world)
    data = _chart_data(world.client.get(f"/dashboard/patients/{patient}").text)
    assert data["news2"]["score"] == [1]
    html = world.client.get(f"/dashboard/patients/{patient}").text
    assert "Dernier score : 1 (sur 7 des 7 paramètres)" in html


def test_the_charting_library_is_served_from_local_files(world: World) -> None:
    assert vendor_missing() == []
    for name in ("uplot.js", "uplot.css", "dashboard.js", "dashboard.css"):
        answer = world.client.get(f"/dashboard/static/{name}")
        assert answer.status_code == 200 and len(answer.content) > 1000, name
    assert world.client.get("/dashboard/static/..%2Fpages.py").status_code == 404
    assert world.client.get("/dashboard/static/package.json").status_code == 404
    assert world.client.get("/dashboard/static/LICENSE").status_code == 404


def test_the_vendored_charting_library_is_the_version_its_readme_names() -> None:
    vendor = VENDOR / "uplot"
    found = re.search(r"# uPlot (\S+)", (vendor / "README.md").read_text())
    assert found is not None
    version = found.group(1)
    head = (vendor / "uPlot.iife.min.js").read_text(encoding="utf-8")[:200]
    assert f"uPlot (v{version})" in head
    assert "MIT License" in (vendor / "LICENSE").read_text()
