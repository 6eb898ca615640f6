"""The worklist: one row per patient who needs attention, ranked by the worst open alert, then
NEWS2 and its trend, then time waiting; their alerts grouped under the row; only the user's care
teams; every listed patient audited; the vitals against the patient's usual, adherence and the
last reading."""

from __future__ import annotations

import re
from datetime import timedelta

from homecare import store
from homecare.api.dashboard import i18n, worklist
from homecare.api.dashboard.charts import packs
from tests.alerts_support import drain
from tests.api_support import World, world
from tests.dashboard_support import alert_for, finding, packs_dir, readings, sign_in

__all__ = ["packs_dir", "world"]


def _patient(w: World, name: str) -> str:
    w.patients[name] = store.create_patient(
        w.db, display_name=name, programs=["heart_failure"], care_team="cardio"
    )
    return name


def _news2(w: World, patient: str, score: int, minutes_ago: int, usual: int | None = None) -> None:
    evidence = {"score": score, "parameters": 7, "min_score": 7}
    if usual is not None:
        evidence["usual_score"] = usual
    finding(
        w.db,
        w.patients[patient],
        "common.news2_high",
        w.clock.now - timedelta(minutes=minutes_ago),
        evidence,
        severity="critical",
    )
    drain(w.client.app.state.alerts, w.db)  # type: ignore[attr-defined]


def _order(html: str) -> list[str]:
    return re.findall(r'data-patient-id="([0-9a-f-]+)"', html)


def test_one_row_per_patient_most_urgent_first(world: World) -> None:
    now = world.clock.now
    for name in ("Ana", "Ben", "Cleo", "Dan", "Eve"):
        _patient(world, name)
    alert_for(world, "Ana", now - timedelta(hours=3), severity="high")
    alert_for(world, "Ana", now - timedelta(hours=1), severity="medium", rule_id="common.hr_high")
    alert_for(world, "Ben", now - timedelta(hours=1), severity="high")  # waits less than Ana
    _news2(world, "Cleo", 8, 30)
    _news2(world, "Dan", 9, 10)
    _news2(world, "Eve", 8, 60, usual=2)  # same score as Cleo, rising 6 above her usual
    alert_for(
        world, "other", now - timedelta(hours=5), severity="critical", rule_id="common.hr_high"
    )
    sign_in(world)
    html = world.client.get("/dashboard/queue").text
    expected = ["Dan", "Eve", "Cleo", "Ana", "Ben"]
    assert _order(html) == [str(world.patients[n]) for n in expected]
    ana = html.split(f'id="patient-{world.patients["Ana"]}"')[1].split('class="patient ')[0]
    assert len(re.findall(r'data-alert-id="\d+"', ana)) == 2  # her alerts under her row
    assert "Paul Gagnon" not in html and str(world.patients["other"]) not in html
    reads = world.db.execute(
        "SELECT count(DISTINCT subject) FROM audit_log WHERE action = 'alerts.read'"
    ).fetchone()
    assert reads == (5,)


def test_the_row_shows_vitals_against_usual_adherence_and_last_reading(world: World) -> None:
    patient = world.patients["own"]
    readings(world.db, patient, world.clock.now)
    alert_for(world, "own", world.clock.now - timedelta(hours=1))
    config_packs = packs(world.packs_dir)
    entries = worklist.entries(
        world.db,
        ["cardio"],
        now=world.clock.now,
        time_zone=i18n.zone("America/Montreal"),
        pack_set=config_packs,
    )
    assert [e.patient.id for e in entries] == [patient]
    entry = entries[0]
    assert entry.vitals[0].type == "spo2"  # the alert's vital first
    assert {v.type for v in entry.vitals} >= {"spo2", "heart_rate", "systolic_bp"}
    assert all(
        v.usual is not None and v.direction in ("up", "down", "steady") for v in entry.vitals
    )
    assert entry.spark is not None and entry.spark.type == "spo2"
    # A reading every 6 hours until an hour ago; it is 03:00 in Montréal, no reading yet today.
    assert entry.adherence_days == 6
    assert entry.last_reading is not None
    assert world.clock.now - entry.last_reading <= timedelta(hours=7)  # every 6 h
    sign_in(world)
    html = world.client.get("/dashboard/").text
    assert "6 j sur 7 avec mesures" in html and "dernière mesure il y a" in html
    assert '<svg class="spark"' in html and "SpO2" in html
