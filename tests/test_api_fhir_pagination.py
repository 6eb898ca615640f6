"""FHIR export validated against the standard's models, and keyset pagination walking every
row exactly once (patients, readings, the alert queue, FHIR pages)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fhir.resources.R4B.bundle import Bundle

from homecare import store
from tests.api_support import World, add_readings, open_alert, packs_dir, world

__all__ = ["packs_dir", "world"]
P = "/api/v1"
START = datetime(2026, 10, 1, tzinfo=UTC)


def vitals(world: World) -> None:
    own = world.patients["own"]
    rows = []
    for i in range(30):
        at = START + timedelta(hours=12 * i)
        rows += [
            (at, "systolic_bp", 120.0 + i, "mm[Hg]"),
            (at, "diastolic_bp", 80.0, "mm[Hg]"),
            (at, "heart_rate", 70.0, "/min"),
            (at, "esas_pain", 2.0, "{score}"),  # a survey item, not a vital sign
        ]
    rows.append((START, "blood_glucose", 6.1, "mmol/L"))  # laboratory in the catalogue
    add_readings(world.db, own, "cuff-f", rows)


def test_fhir_bundle_validates_as_r4_with_loinc_and_ucum(world: World) -> None:
    vitals(world)
    own = world.patients["own"]
    answer = world.get(
        "nurse",
        f"{P}/fhir/Observation",
        params={"patient": str(own), "date": ["ge2026-10-01", "lt2026-10-02"]},
    )
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("application/fhir+json")
    document = answer.json()
    bundle = Bundle.model_validate(document)  # raises on anything R4(B) does not allow
    assert bundle.type == "searchset"
    observations = [e["resource"] for e in document["entry"]]
    codes = sorted(o["code"]["coding"][0]["code"] for o in observations)
    # Two instants (00:00, 12:00) × SBP, DBP, HR; no ESAS item, no (laboratory) glucose.
    assert codes == sorted(["8480-6", "8462-4", "8867-4"] * 2)
    sbp = next(o for o in observations if o["code"]["coding"][0]["code"] == "8480-6")
    assert sbp["valueQuantity"] == {
        "value": 120.0,
        "unit": "mm[Hg]",
        "system": "http://unitsofmeasure.org",
        "code": "mm[Hg]",
    }
    assert sbp["code"]["coding"][0]["system"] == "http://loinc.org"
    assert sbp["category"][0]["coding"][0]["code"] == "vital-signs"
    assert sbp["subject"]["reference"] == f"Patient/{own}"
    assert sbp["effectiveDateTime"] == "2026-10-01T00:00:00Z"
    again = world.get(
        "nurse",
        f"{P}/fhir/Observation",
        params={"patient": str(own), "date": ["ge2026-10-01", "lt2026-10-02"]},
    ).json()
    assert [e["resource"]["id"] for e in again["entry"]] == [o["id"] for o in observations]
    by_code = world.get(
        "nurse",
        f"{P}/fhir/Observation",
        params={"patient": str(own), "code": "http://loinc.org|8867-4", "date": "le2026-10-01"},
    ).json()
    assert len(by_code["entry"]) == 2  # 'le' a day includes the whole day
    bad = world.get(
        "nurse", f"{P}/fhir/Observation", params={"patient": str(own), "date": "after-lunch"}
    )
    assert bad.status_code == 400 and bad.json()["code"] == "invalid_date"


def test_fhir_pages_follow_next_links_and_each_page_validates(world: World) -> None:
    vitals(world)
    own = world.patients["own"]
    url: str | None = f"{P}/fhir/Observation?patient={own}&_count=7"
    seen: list[str] = []
    while url:
        document = world.get("nurse", url).json()
        Bundle.model_validate(document)
        seen += [e["resource"]["id"] for e in document.get("entry", [])]
        url = next((link["url"] for link in document["link"] if link["relation"] == "next"), None)
    assert len(seen) == len(set(seen)) == 30 * 3


def walk(world: World, user: str, path: str, params: dict[str, Any], limit: int) -> list[Any]:
    rows: list[Any] = []
    cursor = None
    while True:
        answer = world.get(user, path, params={**params, "limit": limit, "cursor": cursor})
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert len(body["data"]) <= limit
        rows += body["data"]
        cursor = body["next_cursor"]
        if cursor is None:
            return rows


@pytest.mark.parametrize("limit", [1, 7])
def test_pagination_walks_every_row_exactly_once(world: World, limit: int) -> None:
    own = world.patients["own"]
    for i in range(23):
        store.create_patient(
            world.db, display_name=f"Same Name {i % 3}", programs=["copd"], care_team="cardio"
        )
    vitals(world)
    for i in range(17):
        open_alert(
            world, "own", f"test.rule{i}", ("low", "medium", "high", "critical")[i % 4], score=i % 5
        )
    patients = walk(world, "nurse", f"{P}/patients", {}, limit)
    assert len(patients) == len({p["id"] for p in patients}) == 24
    assert [(p["display_name"], p["id"]) for p in patients] == sorted(
        (p["display_name"], p["id"]) for p in patients
    )
    readings = walk(world, "nurse", f"{P}/patients/{own}/readings", {}, limit)
    keys = [(r["time"], r["type"], r["device_id"]) for r in readings]
    assert len(keys) == len(set(keys)) == 30 * 4 + 1 and keys == sorted(keys)
    queue = walk(world, "nurse", f"{P}/alerts", {}, limit)
    whole = world.get("nurse", f"{P}/alerts", params={"limit": 1000}).json()["data"]
    assert [a["id"] for a in queue] == [a["id"] for a in whole] and len(queue) == 17


def test_limits_and_bad_cursors_are_refused(world: World) -> None:
    for limit in (0, 1001):
        answer = world.get("nurse", f"{P}/patients", params={"limit": limit})
        assert answer.status_code == 422 and answer.json()["code"] == "invalid_request"
    for cursor in ("garbage!", "WyJhbGVydHMiLFsxXV0"):  # the second: another list's cursor
        answer = world.get("nurse", f"{P}/patients", params={"cursor": cursor})
        assert answer.status_code == 400 and answer.json()["code"] == "invalid_cursor"
