"""API behaviour per resource: scoping of lists, readings raw and bucketed, alerts handling,
silences, threshold overrides, rule-pack activation, analysts' pseudonyms, and the audit
rows every read of a patient's data and every change leaves."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import yaml

from homecare import store
from homecare.analytics.deid import Pseudonymizer
from homecare.rules import load_packs
from homecare.rules.packs import DEFAULT_PACKS, ThresholdRule
from tests.api_support import (
    PASSWORD,
    PSEUDONYM_KEY,
    World,
    add_readings,
    open_alert,
    packs_dir,
    world,
)

__all__ = ["packs_dir", "world"]
P = "/api/v1"


def audit_rows(world: World, action: str) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (r[0], r[1], r[2])
        for r in world.db.execute(
            "SELECT actor, subject, detail FROM audit_log WHERE action = %s ORDER BY id",
            (action,),
        )
    ]


def test_clinicians_list_only_their_teams_patients_and_each_read_is_audited(world: World) -> None:
    own, other = world.patients["own"], world.patients["other"]
    listed = world.get("nurse", f"{P}/patients").json()["data"]
    assert [p["id"] for p in listed] == [str(own)]
    assert {p["id"] for p in world.get("admin", f"{P}/patients").json()["data"]} == {
        str(own),
        str(other),
    }
    assert world.get("nurse2", f"{P}/patients").json()["data"][0]["id"] == str(other)
    reads = audit_rows(world, "patient.read")
    assert ("user:nurse", f"patient/{own}", {"via": "list"}) in reads
    assert all(not (a == "user:nurse" and s == f"patient/{other}") for a, s, _ in reads)


def test_another_teams_patient_is_not_found_exactly_like_a_missing_one(world: World) -> None:
    other = world.get("nurse", f"{P}/patients/{world.patients['other']}")
    missing = world.get("nurse", f"{P}/patients/{uuid.uuid4()}")
    assert other.status_code == missing.status_code == 404
    assert other.json()["code"] == missing.json()["code"] == "not_found"


def test_enrolment_validates_programs_and_care_team_and_is_audited(world: World) -> None:
    bad = world.post("admin", f"{P}/patients", json={"display_name": "X", "programs": ["flu"]})
    assert bad.status_code == 422 and bad.json()["code"] == "invalid_request"
    team = world.post(
        "admin",
        f"{P}/patients",
        json={"display_name": "X", "programs": ["copd"], "care_team": "nowhere"},
    )
    assert team.status_code == 400 and team.json()["code"] == "unknown_care_team"
    made = world.post(
        "admin",
        f"{P}/patients",
        json={
            "display_name": "Marie Roy",
            "programs": ["copd", "diabetes"],
            "care_team": "cardio",
            "hypercapnic": True,
            "birth_date": "1944-02-29",
        },
    )
    assert made.status_code == 201, made.text
    body = made.json()
    assert body["programs"] == ["copd", "diabetes"] and body["hypercapnic"] is True
    (actor, subject, detail) = audit_rows(world, "patient.create")[-1]
    assert actor == "user:admin" and subject == f"patient/{body['id']}"
    assert "Marie" not in str(detail)
    # The cardio nurse sees the new patient at once.
    assert body["id"] in {p["id"] for p in world.get("nurse", f"{P}/patients").json()["data"]}


def test_a_physician_may_change_only_the_hypercapnic_flag(world: World) -> None:
    path = f"{P}/patients/{world.patients['own']}"
    assert world.patch("physician", path, json={"display_name": "Y"}).status_code == 403
    changed = world.patch("physician", path, json={"hypercapnic": True})
    assert changed.status_code == 200 and changed.json()["hypercapnic"] is True
    (_, _, detail) = audit_rows(world, "patient.update")[-1]
    assert detail["before"] == {"hypercapnic": False} and detail["after"] == {"hypercapnic": True}


def test_readings_raw_and_bucketed_from_the_aggregates(world: World) -> None:
    own = world.patients["own"]
    start = datetime(2026, 10, 1, tzinfo=UTC)
    rows = [
        (start + timedelta(hours=6 * i), "heart_rate", 60.0 + i % 4, "/min") for i in range(40)
    ] + [(start + timedelta(days=i), "body_weight", 80.0 + i / 10, "kg") for i in range(10)]
    add_readings(world.db, own, "cuff-1", rows)
    store.refresh_aggregates(world.db)  # plain PostgreSQL: the scheduler's job
    raw = world.get(
        "nurse",
        f"{P}/patients/{own}/readings",
        params={
            "type": "heart_rate",
            "since": "2026-10-02T00:00:00Z",
            "until": "2026-10-03T00:00:00Z",
        },
    ).json()
    assert [r["time"] for r in raw["data"]] == [
        f"2026-10-02T{h:02d}:00:00Z" for h in (0, 6, 12, 18)
    ]
    assert raw["data"][0]["unit"] == "/min" and raw["next_cursor"] is None
    days = world.get(
        "nurse",
        f"{P}/patients/{own}/readings",
        params={
            "type": ["heart_rate", "body_weight"],
            "bucket": "day",
            "since": "2026-10-01T00:00:00Z",
            "until": "2026-10-11T00:00:00Z",
        },
    ).json()["data"]
    hr = [d for d in days if d["type"] == "heart_rate"]
    assert len(hr) == 10 and all(d["n"] == 4 for d in hr)
    assert hr[0] == {
        "bucket": "2026-10-01T00:00:00Z",
        "type": "heart_rate",
        "unit": "/min",
        "n": 4,
        "mean": 61.5,
        "min": 60.0,
        "max": 63.0,
    }
    assert [d["mean"] for d in days if d["type"] == "body_weight"][:2] == [80.0, 80.1]
    assert audit_rows(world, "readings.read")[-1][:2] == ("user:nurse", f"patient/{own}")
    bad = world.get("nurse", f"{P}/patients/{own}/readings", params={"type": "mood"})
    assert bad.status_code == 400 and bad.json()["code"] == "unknown_type"
    naive = world.get("nurse", f"{P}/patients/{own}/readings", params={"since": "2026-10-01T00:00"})
    assert naive.status_code == 422


def test_alert_queue_is_most_urgent_first_and_ack_resolve_note_are_recorded(world: World) -> None:
    medium = open_alert(world, "own", "test.medium", "medium")
    critical = open_alert(world, "own", "test.critical", "critical")
    high_news = open_alert(world, "own", "test.high7", "high", score=7)
    high = open_alert(world, "own", "test.high", "high")
    open_alert(world, "other", "test.other", "critical")
    queue = world.get("nurse", f"{P}/alerts", params={"status": ["open", "acknowledged"]})
    assert [a["id"] for a in queue.json()["data"]] == [critical, high_news, high, medium]
    first = queue.json()["data"][0]
    assert first["patient_display_name"] == "Jeanne Tremblay"
    assert {
        "id",
        "patient_id",
        "rule_id",
        "severity",
        "status",
        "condition",
        "opened_at",
        "evidence_time",
        "summary",
        "evidence",
    } <= set(first)
    ack = world.post("nurse", f"{P}/alerts/{critical}/ack")
    assert ack.json()["status"] == "acknowledged" and ack.json()["acknowledged_by"] == "user:nurse"
    again = world.post("nurse", f"{P}/alerts/{critical}/ack")
    assert again.status_code == 409 and again.json()["code"] == "invalid_transition"
    bad = world.post("nurse", f"{P}/alerts/{critical}/resolve", json={"outcome": "auto_resolved"})
    assert bad.status_code == 422
    done = world.post(
        "physician",
        f"{P}/alerts/{critical}/resolve",
        json={"outcome": "sent_to_er", "note": "ambulance called"},
    ).json()
    assert (done["status"], done["outcome"], done["resolved_by"], done["resolution_note"]) == (
        "resolved",
        "sent_to_er",
        "user:physician",
        "ambulance called",
    )
    note = world.post("nurse", f"{P}/alerts/{critical}/notes", json={"body": "family informed"})
    assert note.status_code == 201
    notes = world.get("nurse", f"{P}/alerts/{critical}/notes").json()["data"]
    assert [(n["author"], n["body"]) for n in notes] == [("user:nurse", "family informed")]
    kinds = [e["kind"] for e in world.get("nurse", f"{P}/alerts/{critical}/events").json()["data"]]
    assert kinds[-2:] == ["acknowledged", "resolved"]
    open_only = world.get("nurse", f"{P}/alerts", params={"status": "open"}).json()["data"]
    assert critical not in {a["id"] for a in open_only}
    # Without status: every status (docs/contracts.md).
    assert critical in {a["id"] for a in world.get("nurse", f"{P}/alerts").json()["data"]}
    assert audit_rows(world, "alert.note")[-1][1] == f"patient/{world.patients['own']}"


def test_silences_mute_one_patient_and_end_early(world: World) -> None:
    own = world.patients["own"]
    made = world.post(
        "nurse",
        f"{P}/silences",
        json={"patient_id": str(own), "reason": "in hospital", "duration_minutes": 120},
    )
    assert made.status_code == 201
    silence = made.json()
    assert silence["ends_at"] == "2026-11-02T10:00:00Z" and silence["created_by"] == "user:nurse"
    alert = open_alert(world, "own", "test.silenced")
    assert world.get("nurse", f"{P}/alerts/{alert}").json()["suppressed_by"] == (
        f"silence:{silence['id']}"
    )
    active = world.get("nurse", f"{P}/silences", params={"active": "true"}).json()["data"]
    assert [s["id"] for s in active] == [silence["id"]]
    assert world.get("nurse2", f"{P}/silences").json()["data"] == []
    world.clock.advance(timedelta(minutes=1))
    ended = world.post("nurse", f"{P}/silences/{silence['id']}/end").json()
    assert ended["ended_by"] == "user:nurse"
    assert world.get("nurse", f"{P}/silences", params={"active": "true"}).json()["data"] == []


def _rule(pack: str, threshold: bool) -> str:
    return next(
        r.id
        for r in load_packs(DEFAULT_PACKS).packs[pack].rules
        if isinstance(r, ThresholdRule) == threshold
    )


def test_threshold_override_is_an_audited_interval(world: World) -> None:
    own = world.patients["own"]  # heart failure
    path = f"{P}/patients/{own}/thresholds"
    rule = _rule("common", threshold=True)
    first = world.put("nurse", f"{path}/{rule}", json={"value": 90, "reason": "athlete"})
    assert first.status_code == 200, first.text
    world.clock.advance(timedelta(hours=1))
    world.put("physician", f"{path}/{rule}", json={"value": None, "reason": "back"})
    history = world.get("nurse", path).json()["data"]
    assert [(h["value"], h["set_by"], h["valid_to"] is None) for h in history] == [
        (90.0, "user:nurse", False),
        (None, "user:physician", True),
    ]
    assert len(audit_rows(world, "threshold_override.set")) == 2
    copd = _rule("copd", threshold=True)
    wrong = world.put("nurse", f"{path}/{copd}", json={"value": 1, "reason": "x"})
    assert wrong.status_code == 400 and wrong.json()["code"] == "rule_not_applicable"
    other_kind = _rule("heart_failure", threshold=False)
    kind = world.put("nurse", f"{path}/{other_kind}", json={"value": 1, "reason": "x"})
    assert kind.status_code == 400 and kind.json()["code"] == "not_a_threshold"
    assert world.put("nurse", f"{path}/nope", json={"value": 1, "reason": "x"}).status_code == 404


def test_rule_pack_validate_then_activate_writes_the_file_the_workers_load(world: World) -> None:
    text = (world.packs_dir / "copd.yaml").read_text()
    document = yaml.safe_load(text)
    version = document["version"]
    same = world.post("admin", f"{P}/packs/validate", json={"content": text}).json()
    assert same["valid"] is False and "must be above" in same["errors"][0]
    broken = dict(document, version=version + 1)
    broken["rules"] = [dict(broken["rules"][0], severity="extreme")]
    report = world.post("admin", f"{P}/packs/validate", json={"content": yaml.safe_dump(broken)})
    assert report.json()["valid"] is False and "severity" in report.json()["errors"][0]
    refused = world.put("admin", f"{P}/packs/copd", json={"content": yaml.safe_dump(broken)})
    assert refused.status_code == 400 and refused.json()["code"] == "invalid_pack"
    assert (world.packs_dir / "copd.yaml").read_text() == text  # nothing written
    bumped = text.replace(f"version: {version}", f"version: {version + 1}", 1)
    assert world.post("admin", f"{P}/packs/validate", json={"content": bumped}).json()["valid"]
    active = world.put("admin", f"{P}/packs/copd", json={"content": bumped})
    assert active.status_code == 200 and active.json()["version"] == version + 1
    assert load_packs(world.packs_dir).packs["copd"].version == version + 1
    assert world.get("analyst", f"{P}/packs/copd").json()["version"] == version + 1
    row = world.db.execute(
        "SELECT version, activated_by, content FROM rule_pack_activations"
    ).fetchone()
    assert row == (version + 1, "user:admin", bumped)
    assert audit_rows(world, "pack.activate")[-1][2]["previous"] == version
    misnamed = world.put("admin", f"{P}/packs/diabetes", json={"content": bumped})
    assert misnamed.status_code == 400


def test_analysts_see_pseudonyms_the_analytics_layer_also_computes(world: World) -> None:
    own = world.patients["own"]
    add_readings(
        world.db,
        own,
        "cuff-a",
        [(datetime(2026, 10, 1, 8, tzinfo=UTC), "heart_rate", 70.0, "/min")],
    )
    store.refresh_aggregates(world.db)
    open_alert(world, "own", "test.cohort")
    expected = Pseudonymizer(PSEUDONYM_KEY).pseudonym(own)
    patients = world.get("analyst", f"{P}/cohort/patients").json()["data"]
    mine = [p for p in patients if p["pseudonym"] == expected]
    assert mine == [
        {
            "pseudonym": expected,
            "programs": ["heart_failure"],
            "care_team": "cardio",
            "age_band": "70-79",
            "hypercapnic": False,
            "enrolled_month": mine[0]["enrolled_month"],
        }
    ]
    text = str(patients)
    assert "Jeanne" not in text and "1948" not in text and str(own) not in text
    readings = world.get("analyst", f"{P}/cohort/readings", params={"type": "heart_rate"})
    assert [(r["pseudonym"], r["mean"]) for r in readings.json()["data"]] == [(expected, 70.0)]
    alerts = world.get("analyst", f"{P}/cohort/alerts").json()["data"]
    assert [a["pseudonym"] for a in alerts] == [expected]
    assert "summary" not in alerts[0] and str(own) not in str(alerts)
    assert {s for _, s, _ in audit_rows(world, "cohort.read")} == {
        "cohort/patients",
        "cohort/readings",
        "cohort/alerts",
    }
    # An analyst acts on no alert and sees no identified patient.
    assert world.get("analyst", f"{P}/patients").status_code == 403
    assert world.get("analyst", f"{P}/alerts").status_code == 403


def test_users_teams_and_a_disabled_user_loses_access_at_once(world: World) -> None:
    made = world.post(
        "admin",
        f"{P}/users",
        json={
            "username": "zoe",
            "display_name": "Zoé",
            "role": "nurse",
            "password": "short",
            "care_teams": ["cardio"],
        },
    )
    assert made.status_code == 422  # passwords have 12+ characters
    made = world.post(
        "admin",
        f"{P}/users",
        json={
            "username": "zoe",
            "display_name": "Zoé",
            "role": "nurse",
            "password": "a long enough password",
            "care_teams": ["cardio"],
            "locale": "en",
        },
    )
    assert made.status_code == 201 and made.json()["care_teams"] == ["cardio"]
    assert "password" not in str(made.json())
    token = world.client.post(
        f"{P}/auth/login", json={"username": "zoe", "password": "a long enough password"}
    ).json()["token"]
    world.client.cookies.clear()
    me = world.client.get(f"{P}/auth/me", headers={"Authorization": f"Bearer {token}"})
    assert me.json()["locale"] == "en"
    world.patch("admin", f"{P}/users/zoe", json={"disabled": True})
    gone = world.client.get(f"{P}/auth/me", headers={"Authorization": f"Bearer {token}"})
    assert gone.status_code == 401
    team = world.delete("admin", f"{P}/care-teams/cardio/members/nurse").json()
    assert "nurse" not in team["members"]
    assert world.get("nurse", f"{P}/patients").json()["data"] == []


def test_disabling_or_resetting_a_password_ends_the_users_tokens_for_good(world: World) -> None:
    """An account is disabled, or its password reset, when its credentials may be in the wrong
    hands: the tokens issued until then must not come back when the account is enabled again
    (a stolen token would be valid again for up to its 30 days)."""
    old = world.tokens["nurse"]
    assert world.patch("admin", f"{P}/users/nurse", json={"disabled": True}).status_code == 200
    assert world.patch("admin", f"{P}/users/nurse", json={"disabled": False}).status_code == 200
    again = world.client.get(f"{P}/auth/me", headers={"Authorization": f"Bearer {old}"})
    assert again.status_code == 401, "a token of the disabled account came back to life"
    fresh = world.client.post(
        f"{P}/auth/login", json={"username": "nurse", "password": PASSWORD}
    ).json()["token"]
    world.client.cookies.clear()
    reset = world.patch("admin", f"{P}/users/nurse", json={"password": "a brand new passphrase"})
    assert reset.status_code == 200
    after = world.client.get(f"{P}/auth/me", headers={"Authorization": f"Bearer {fresh}"})
    assert after.status_code == 401, "a token from before the password reset still works"
    # Other users' tokens are untouched.
    assert world.get("physician", f"{P}/auth/me").status_code == 200


def test_a_user_switches_language_and_time_zone(world: World) -> None:
    changed = world.patch("nurse", f"{P}/auth/me", json={"locale": "en", "time_zone": "UTC"})
    assert (changed.json()["locale"], changed.json()["time_zone"]) == ("en", "UTC")
    assert world.get("nurse", f"{P}/auth/me").json()["locale"] == "en"
    bad = world.patch("nurse", f"{P}/auth/me", json={"time_zone": "Mars/Olympus"})
    assert bad.status_code == 400
