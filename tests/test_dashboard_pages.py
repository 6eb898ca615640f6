"""Dashboard pages with the real app and PostgreSQL: sign-in, language, times in the care team's
zone, the API's scoping, roles and audit, and the actions with their protection."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from homecare.alerts.model import OUTCOMES
from homecare.api.dashboard import pages
from tests.api_support import World, world
from tests.dashboard_support import (
    alert_for,
    csrf,
    packs_dir,
    sign_in,
    sign_in_with_password,
)

__all__ = ["packs_dir", "world"]

DASHBOARD = Path(pages.__file__).parent


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
    assert page.status_code == 200 and "Liste de travail" in page.text
    assert "Aucun patient n’a d’alerte en attente." in page.text


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
    assert "Worklist" in world.client.get("/dashboard/").text
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
    assert "Aucun patient n’a d’alerte en attente." in world.client.get("/dashboard/").text


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
