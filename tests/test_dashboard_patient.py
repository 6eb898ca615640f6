"""The patient page: charts of the vitals with the patient's thresholds over 7/30/90 days, the
NEWS2 line, and the charting library served from local files."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from pathlib import Path

from homecare.api.dashboard import i18n, pages
from homecare.api.dashboard.charts import WINDOWS
from homecare.api.dashboard.static import VENDOR, vendor_missing
from tests.api_support import World, world
from tests.dashboard_support import (
    chart_data,
    packs_dir,
    readings,
    sign_in,
)

__all__ = ["packs_dir", "world"]

DASHBOARD = Path(pages.__file__).parent


# --- patient page ------------------------------------------------------------------------------


def test_patient_page_charts_with_thresholds_news2_and_windows(world: World) -> None:
    patient = world.patients["own"]
    readings(world.db, patient, world.clock.now)
    world.db.execute(
        "INSERT INTO threshold_overrides (patient_id, rule_id, value, reason, set_by, valid_from)"
        " VALUES (%s, 'hf.spo2_low', 90, 'BPCO connue', 'user:physician', %s)",
        (patient, world.clock.now - timedelta(days=1)),
    )
    sign_in(world)
    for days in WINDOWS:
        html = world.client.get(f"/dashboard/patients/{patient}?days={days}").text
        data = chart_data(html)
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
    data = chart_data(world.client.get(f"/dashboard/patients/{patient}").text)
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


def test_a_reading_just_stored_shows_before_the_aggregates_refresh(world: World) -> None:
    """On plain PostgreSQL the hourly aggregate is a materialized view refreshed once a minute:
    a new patient's first readings must be drawn at once all the same."""
    patient = world.patients["own"]
    world.db.execute(
        "INSERT INTO readings (time, patient_id, device_id, type, value, unit, original_value,"
        " original_unit, msg_id, received_at) VALUES (%s, %s, 'd', 'spo2', 91, '%%', 91, '%%',"
        " 'fresh', %s)",
        (world.clock.now - timedelta(minutes=3), patient, world.clock.now),
    )
    sign_in(world)
    html = world.client.get(f"/dashboard/patients/{patient}").text
    assert "Aucune mesure pendant cette période" not in html
    spo2 = {s["type"]: s for s in chart_data(html)["series"]}["spo2"]
    assert spo2["mean"] == [91.0]


def test_blood_pressure_and_respiratory_rate_charts_draw_thresholds(world: World) -> None:
    patient = world.patients["own"]
    readings(world.db, patient, world.clock.now)
    sign_in(world)
    html = world.client.get(f"/dashboard/patients/{patient}").text
    series = {s["type"]: s for s in chart_data(html)["series"]}
    rr = {(t["op"], t["value"]) for t in series["respiratory_rate"]["thresholds"]}
    assert rr == {("<=", 8), (">=", 25)}  # NEWS2 scores 3 there
    sbp = {(t["op"], t["value"]) for t in series["systolic_bp"]["thresholds"]}
    assert ("<=", 90) in sbp
    shown = re.sub(r"<script.*?</script>", "", html, flags=re.S)  # what the page says
    assert "(°C)" in shown and "(mmHg)" in shown and "(Cel)" not in shown
    assert "mm[Hg]" not in shown and ">=" not in shown
    assert "≤ 8,0" in shown and "NEWS2 3 points" in shown
