"""Analytics layer against known data: every expected figure is counted by hand in the test.

The cohort (all times UTC, observed until 2026-01-08 00:00 unless a test says otherwise):

- A: heart failure + hypertension, born 1950-06-15 (75 on the observation end), equipped
  2026-01-01 00:00, readings on Jan 1, 2, 3, 5, 6 (two on Jan 2): 5 of 7 days;
- B: COPD, born 1930-01-01 (96: top-coded 90+), equipped 2026-01-01, readings on Jan 2, 7;
- C: COPD, no birth date, equipped 2026-01-01 until 2026-01-04 00:00, readings on Jan 1, 2, 3.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import psycopg
import pytest
from alerts_support import Clock, finding, service

from homecare import analytics, store
from homecare.rules.harness import parse_labels

KEY = "test-pseudonym-key-0123456789"
JAN = datetime(2026, 1, 1, tzinfo=UTC)
AS_OF = datetime(2026, 1, 8, tzinfo=UTC)


def _patient(
    conn: psycopg.Connection[Any],
    name: str,
    programs: tuple[str, ...],
    birth: date | None,
    since: datetime,
    until: datetime | None = None,
) -> uuid.UUID:
    pid = store.create_patient(conn, display_name=name, programs=programs, birth_date=birth)
    device = f"dev-{name.replace(' ', '-').lower()}"
    store.register_device(conn, device, model="test")
    store.assign_device(conn, device, pid, since)
    if until is not None:
        conn.execute(
            "UPDATE device_assignments SET valid_to = %s WHERE device_id = %s", (until, device)
        )
    return pid


def _reading(
    conn: psycopg.Connection[Any], pid: uuid.UUID, at: datetime, type_: str, value: float
) -> None:
    device = conn.execute(
        "SELECT device_id FROM device_assignments WHERE patient_id = %s", (pid,)
    ).fetchone()
    assert device is not None
    conn.execute(
        "INSERT INTO readings (time, patient_id, device_id, type, value, unit, original_value,"
        " original_unit, msg_id, received_at) VALUES (%s, %s, %s, %s, %s, 'u', %s, 'u', %s, %s)",
        (at, pid, device[0], type_, value, value, uuid.uuid4().hex, at),
    )


@pytest.fixture
def cohort(db: psycopg.Connection[Any]) -> dict[str, uuid.UUID]:
    a = _patient(db, "Alice Example", ("heart_failure", "hypertension"), date(1950, 6, 15), JAN)
    b = _patient(db, "Bob Example", ("copd",), date(1930, 1, 1), JAN)
    c = _patient(db, "Carol Example", ("copd",), None, JAN, JAN + timedelta(days=3))
    for day in (0, 1, 2, 4, 5):
        _reading(db, a, JAN + timedelta(days=day, hours=8), "body_weight", 80.0)
    _reading(db, a, JAN + timedelta(days=1, hours=20), "systolic_bp", 130.0)
    for day in (1, 6):
        _reading(db, b, JAN + timedelta(days=day, hours=9), "spo2", 94.0)
    for day in (0, 1, 2):
        _reading(db, c, JAN + timedelta(days=day, hours=9), "spo2", 95.0)
    store.refresh_aggregates(db)
    return {"A": a, "B": b, "C": c}


def _source(url: str, key: str = KEY, **kwargs: Any) -> analytics.Source:
    kwargs.setdefault("as_of", AS_OF)
    return analytics.connect(url, pseudonym_key=key, **kwargs)


def test_adherence_is_days_with_readings_over_monitored_days(
    database_url: str, cohort: dict[str, uuid.UUID]
) -> None:
    with _source(database_url) as source:
        frame = analytics.adherence(source)
        names = {pid: source.label(pid) for pid in cohort.values()}
    rows = {(r.patient, r.program): r for r in frame.itertuples()}
    a = rows[(names[cohort["A"]], "heart_failure")]
    assert (a.monitored_days, a.days_with_readings) == (7, 5)
    assert a.share == pytest.approx(5 / 7) and round(a.share, 3) == 0.714
    assert rows[(names[cohort["A"]], "hypertension")].share == pytest.approx(5 / 7)
    b = rows[(names[cohort["B"]], "copd")]
    assert (b.monitored_days, b.days_with_readings) == (7, 2)
    c = rows[(names[cohort["C"]], "copd")]  # assignment closed on Jan 4: 3 days, all measured
    assert (c.monitored_days, c.days_with_readings, c.share) == (3, 3, 1.0)
    assert len(frame) == 4  # A counts in both of its programs


def test_adherence_of_chosen_types(database_url: str, cohort: dict[str, uuid.UUID]) -> None:
    with _source(database_url) as source:
        frame = analytics.adherence(source, types=["systolic_bp"])
        a = source.label(cohort["A"])
    row = frame[(frame["patient"] == a) & (frame["program"] == "hypertension")].iloc[0]
    assert (row["days_with_readings"], row["monitored_days"]) == (1, 7)


def test_dropoff_counts_full_weeks_only(database_url: str, cohort: dict[str, uuid.UUID]) -> None:
    # Observed for 14 days: A measured 5 days in week 0 and none in week 1; B 2 and 0;
    # C's window (3 days) never fills a week, so C is in neither week.
    with _source(database_url, as_of=JAN + timedelta(days=14)) as source:
        weeks = analytics.weekly_activity(source)
        curve = analytics.dropoff(source, min_days=3)
        a = source.label(cohort["A"])
    a_weeks = weeks[(weeks["patient"] == a) & (weeks["program"] == "heart_failure")]
    assert a_weeks[["week", "monitored_days", "days_with_readings"]].values.tolist() == [
        [0, 7, 5],
        [1, 7, 0],
    ]
    copd = curve[curve["program"] == "copd"].set_index("week")
    assert copd.loc[0, "patients"] == 1 and copd.loc[0, "active"] == 0  # B: 2 days < 3
    hf = curve[curve["program"] == "heart_failure"].set_index("week")
    assert hf["share"].tolist() == [1.0, 0.0]


def test_patients_are_pseudonymised_with_age_bands(
    database_url: str, cohort: dict[str, uuid.UUID]
) -> None:
    with _source(database_url) as source:
        frame = analytics.patients(source)
        frames = [
            frame,
            analytics.adherence(source),
            analytics.weekly_activity(source),
            analytics.alerts(source),
        ]
    assert list(frame.columns) == [
        "patient",
        "programs",
        "primary_program",
        "age_band",
        "care_team",
        "monitoring_start",
        "monitoring_end",
        "monitored_days",
    ]
    assert sorted(frame["age_band"].fillna("unknown")) == ["70-79", "90+", "unknown"]
    text = "\n".join(f.to_csv() for f in frames)
    for pid in cohort.values():
        assert str(pid) not in text
    for secret in ("Alice", "Bob", "Carol", "1950", "1930-01-01"):
        assert secret not in text
    assert all(p.startswith("P-") and len(p) == 14 for p in frame["patient"])


def test_pseudonyms_are_stable_and_keyed(database_url: str, cohort: dict[str, uuid.UUID]) -> None:
    with _source(database_url) as first, _source(database_url) as second:
        one = sorted(analytics.patients(first)["patient"])
        two = sorted(analytics.patients(second)["patient"])
    with _source(database_url, key="another-key-of-16-chars") as other:
        three = sorted(analytics.patients(other)["patient"])
    assert one == two
    assert not set(one) & set(three)
    assert len(set(one)) == 3
    with pytest.raises(ValueError, match="16"):
        analytics.Pseudonymizer("short")


def test_identified_access_needs_who_and_why_and_is_audited(
    database_url: str, db: psycopg.Connection[Any], cohort: dict[str, uuid.UUID]
) -> None:
    with pytest.raises(analytics.IdentifiedAccessError):
        _source(database_url, identified_by="analyst-7")
    with _source(database_url, identified_by="analyst-7", reason="chart review 42") as source:
        frame = analytics.patients(source)
    assert {"patient_id", "display_name", "birth_date"} <= set(frame.columns)
    assert set(frame["display_name"]) == {"Alice Example", "Bob Example", "Carol Example"}
    audit = db.execute(
        "SELECT actor, action, detail->>'reason' FROM audit_log"
        " WHERE action = 'analytics.identified_access'"
    ).fetchall()
    assert audit == [("analyst-7", "analytics.identified_access", "chart review 42")]


def test_the_source_cannot_write(database_url: str, cohort: dict[str, uuid.UUID]) -> None:
    with _source(database_url) as source, pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
        source.conn.execute("DELETE FROM readings")


def test_alerts_response_times_escalations_and_burden(
    database_url: str, db: psycopg.Connection[Any], cohort: dict[str, uuid.UUID]
) -> None:
    a = cohort["A"]
    t0 = JAN + timedelta(days=2, hours=10)
    clock = Clock(t0)
    svc = service(database_url, clock)
    # First alert (high): acknowledged after 10 min, resolved 40 min after it opened.
    finding(db, a, "hf.weight_gain", "active", t0, severity="high")
    svc.process_patient(db, a)
    first = db.execute("SELECT id FROM alerts WHERE rule_id = 'hf.weight_gain'").fetchone()
    assert first is not None
    clock.now = t0 + timedelta(minutes=10)
    svc.acknowledge(db, first[0], "nurse-a")
    clock.now = t0 + timedelta(minutes=40)
    svc.resolve(db, first[0], "nurse-a", "called_patient")
    # Second alert (high) 3 h later: nobody acknowledges for 30 min → one escalation; it is
    # acknowledged after 45 min and left open.
    t1 = t0 + timedelta(hours=3)
    clock.now = t1
    finding(db, a, "htn.sbp_crisis", "active", t1, severity="high")
    svc.process_patient(db, a)
    second = db.execute("SELECT id FROM alerts WHERE rule_id = 'htn.sbp_crisis'").fetchone()
    assert second is not None
    clock.now = t1 + timedelta(minutes=31)
    svc.housekeeping(db)
    clock.now = t1 + timedelta(minutes=45)
    svc.acknowledge(db, second[0], "nurse-b")

    with _source(database_url) as source:
        frame = analytics.alerts(source).set_index("alert_id")
        burden = analytics.alert_burden(source).set_index("program")
    one, two = frame.loc[first[0]], frame.loc[second[0]]
    assert one["minutes_to_ack"] == pytest.approx(10)
    assert one["minutes_to_resolve"] == pytest.approx(40)
    assert (one["outcome"], one["resolver"], one["escalations"]) == ("called_patient", "person", 0)
    assert bool(one["paged"])
    assert two["minutes_to_ack"] == pytest.approx(45)
    assert (two["escalations"], two["escalated_to"]) == (1, "nurse_on_duty")
    assert two["status"] == "acknowledged" and pd_isna(two["minutes_to_resolve"])
    assert "acknowledged_by" not in frame.columns  # staff ids only when identified
    # A: 2 alerts in 7 monitored days, in both its programs; COPD (B 7 d, C 3 d): none;
    # all programs: 2 alerts over 17 patient-days.
    assert burden.loc["heart_failure", "alerts_per_patient_month"] == pytest.approx(2 / (7 / 30))
    assert burden.loc["hypertension", "alerts"] == 2
    assert burden.loc["copd", "alerts"] == 0
    assert burden.loc["copd", "patient_months"] == pytest.approx(10 / 30)
    assert burden.loc["all", "alerts_per_patient_month"] == pytest.approx(2 / (17 / 30))


def pd_isna(value: Any) -> bool:
    return bool(value != value)  # NaN is the one value not equal to itself


def test_vitals_around_alerts_change_from_own_baseline(
    database_url: str, db: psycopg.Connection[Any]
) -> None:
    start = datetime(2025, 12, 1, tzinfo=UTC)
    pid = _patient(db, "Dan Example", ("heart_failure",), None, start)
    alert_day = datetime(2025, 12, 20, tzinfo=UTC)
    weights = {-14: 80.0, -10: 80.5, -8: 79.5, -2: 80.5, -1: 81.0, 0: 82.0, 1: 81.5, 3: 80.0}
    for day, kg in weights.items():
        _reading(db, pid, alert_day + timedelta(days=day, hours=7), "body_weight", kg)
    _reading(db, pid, alert_day + timedelta(days=-1, hours=19), "body_weight", 81.0)  # 2nd
    _reading(db, pid, alert_day + timedelta(days=30), "body_weight", 99.0)  # outside ±14 d
    store.refresh_aggregates(db)
    clock = Clock(alert_day + timedelta(hours=12))
    finding(db, pid, "hf.weight_gain", "active", clock.now, severity="high")
    service(database_url, clock).process_patient(db, pid)

    with _source(database_url, as_of=datetime(2026, 1, 30, tzinfo=UTC)) as source:
        frame = analytics.vitals_around_alerts(source, ["body_weight", "spo2"])
    assert frame["day"].tolist() == sorted(weights)
    assert set(frame["program"]) == {"heart_failure"}
    # Baseline: days -14..-8 → (80.0 + 80.5 + 79.5) / 3 = 80.0
    assert frame["baseline"].unique().tolist() == [pytest.approx(80.0)]
    by_day = frame.set_index("day")
    assert by_day.loc[0, "change"] == pytest.approx(2.0)
    assert by_day.loc[-1, "n"] == 2 and by_day.loc[-1, "mean"] == pytest.approx(81.0)
    assert by_day.loc[3, "change"] == pytest.approx(0.0)


def test_detection_uses_the_harness_figures(database_url: str, db: psycopg.Connection[Any]) -> None:
    start, end = JAN, JAN + timedelta(days=30)
    pid = _patient(db, "sim-0000", ("heart_failure",), None, start)
    document = {
        "generator": {"start": start.isoformat(), "end": end.isoformat()},
        "patients": [{"id": "sim-0000", "programs": ["heart_failure"]}],
        "episodes": [
            {
                "id": "e1",
                "kind": "hf_decompensation",
                "patient_id": "sim-0000",
                "onset": (start + timedelta(days=10)).isoformat(),
                "er_visit": (start + timedelta(days=15)).isoformat(),
                "expected_signals": [
                    {"type": "body_weight", "direction": "up", "change": 2.0, "unit": "kg"}
                ],
            }
        ],
        "lookalikes": [
            {
                "id": "x1",
                "kind": "salty_meal",
                "patient_id": "sim-0000",
                "start": (start + timedelta(days=20)).isoformat(),
                "end": (start + timedelta(days=21)).isoformat(),
            }
        ],
    }
    labels = parse_labels(document)
    # In time (day 12 ≤ ER − 24 h): caught, lead 3 days. Day 20.5: look-alike. Day 25: false.
    # A low-severity finding and a retracted one do not count.
    finding(db, pid, "hf.weight_gain", "active", start + timedelta(days=12), severity="high")
    lookalike = start + timedelta(days=20, hours=12)
    finding(db, pid, "hf.hr_rise", "active", lookalike, severity="medium")
    finding(db, pid, "hf.weight_gain", "active", start + timedelta(days=25), severity="high")
    finding(db, pid, "hf.missing_weight", "active", start + timedelta(days=26), severity="low")
    gone = finding(db, pid, "hf.hr_rise", "active", start + timedelta(days=27), severity="high")
    db.execute("UPDATE findings SET retracted_at = now() WHERE id = %s", (gone,))

    with _source(database_url) as source:
        result = analytics.detection(source, labels)
    overall = result.overall.iloc[0]
    assert (overall["episodes"], overall["caught"], overall["alerts"]) == (1, 1, 3)
    assert overall["median_lead_days"] == pytest.approx(3.0)
    assert overall["false_alerts"] == 1 and overall["lookalike_alerts"] == 1
    assert overall["false_per_patient_month"] == pytest.approx(1.0)  # 1 in 30 patient-days
    by_rule = result.by_rule.set_index("rule_id")
    assert by_rule.loc["hf.weight_gain", "caught"] == 1
    assert by_rule.loc["hf.weight_gain", "false_alerts"] == 1
    assert by_rule.loc["hf.hr_rise", "lookalike_alerts"] == 1
