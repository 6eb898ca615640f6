"""The analytics layer on the real TimescaleDB engine gives the figures it gives on PostgreSQL.

``tests/test_analytics.py`` pins every definition on plain PostgreSQL, where ``readings_daily``
is an ordinary materialized view. In production on TimescaleDB it is a continuous aggregate
(real-time, over a compressed hypertable). Here one small cohort is stored the way the product
stores it — readings through the ingest (``parse_message`` + ``write_batch``), alerts through
the alerts service, the compression policy run as the background worker would run it, the
aggregates refreshed by ``store.refresh_aggregates`` — into both engines; every frame is
checked against figures worked out by hand and against the other engine's frame.

The cohort (all times UTC; observed until 2026-01-08 00:00 unless a test says otherwise):

- A: heart failure + hypertension, born 1950-06-15, equipped 2026-01-01: weights at 08:00 on
  Jan 1, 2, 3, 5, 6 (80.0, 80.4, 80.8, 81.0, 81.6; a second one of 81.0 on Jan 2 at 20:00, sent
  in grams), a systolic pressure of 130 on Jan 2 at 20:00. Two alerts on Jan 3 (see
  ``_store_cohort``).
- B: COPD, born 1930-01-01, equipped 2026-01-01: SpO2 94 on Jan 2, 92 on Jan 7 (09:00).
- C: COPD, no birth date, equipped 2026-01-01 until Jan 4 00:00: SpO2 95, 96, 97 on Jan 1-3;
  its device's reading of Jan 5 belongs to nobody and is quarantined by the ingest.
- D: heart failure, born 1960-03-01, equipped 2025-12-01: weights around an alert opened on
  Dec 20 at 12:00 (day -14: 80.0, -10: 80.5, -8: 79.5, -2: 80.5, -1: 80.5 and 81.5, 0: 82.0,
  1: 81.5, 3: 80.0) and one of 99.0 on 2026-01-19 (after the observation end); the alert is
  acknowledged after 5 minutes.

The engine serves one connection at a time: every step here opens one and closes it before the
next (a ``Source`` is a connection too).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import psycopg
import pytest
from alerts_support import Clock, finding, service

from homecare import analytics, store
from homecare.ingest import Delivery, ParseLimits, parse_message, write_batch
from homecare.rules.harness import parse_labels
from tests.conftest import BASE_URL, url_with_database
from tests.support.timescaledb import ensure_node_packages, start_timescaledb_engine

pytestmark = pytest.mark.timescaledb
NODE_DIR = Path(__file__).parent / "timescaledb"
ENGINES = ("postgres", "timescaledb")

KEY = "test-pseudonym-key-0123456789"
JAN = datetime(2026, 1, 1, tzinfo=UTC)
AS_OF = datetime(2026, 1, 8, tzinfo=UTC)
DEC = datetime(2025, 12, 1, tzinfo=UTC)
ALERT_DAY = datetime(2025, 12, 20, tzinfo=UTC)
T0 = JAN + timedelta(days=2, hours=10)  # A's first alert: Jan 3, 10:00
D_WEIGHTS = {-14: 80.0, -10: 80.5, -8: 79.5, -2: 80.5, 0: 82.0, 1: 81.5, 3: 80.0}


@dataclass(frozen=True)
class Stored:
    """Stored: one engine holding the cohort — its URL, patient ids and alert ids by name."""

    engine: str
    url: str
    patients: dict[str, uuid.UUID]
    alerts: dict[str, int]

    def source(self, **kwargs: Any) -> analytics.Source:
        kwargs.setdefault("as_of", AS_OF)
        return analytics.connect(self.url, pseudonym_key=KEY, **kwargs)

    def names(self) -> dict[str, str]:
        """names maps each pseudonym back to the cohort's letter, for comparing engines."""
        pseudonyms = analytics.Pseudonymizer(KEY)
        return {pseudonyms.pseudonym(pid): name for name, pid in self.patients.items()}


def _send(
    conn: psycopg.Connection[Any], device: str, readings: list[tuple[datetime, str, float, str]]
) -> tuple[int, dict[str, int]]:
    """_send stores one message per reading through the ingest; the broker received each five
    minutes after it was measured. Returns the readings stored and the quarantine counts."""
    items = []
    for i, (at, type_, value, unit) in enumerate(readings):
        reading = {"type": type_, "value": value, "unit": unit, "time": at.isoformat()}
        payload = json.dumps({"msg_id": f"{device}-{i}", "readings": [reading]}).encode()
        topic = f"homecare/v1/devices/{device}/readings"
        items.append(
            parse_message(Delivery(topic, payload, at + timedelta(minutes=5)), ParseLimits())
        )
    outcome = write_batch(conn, items)
    return len(outcome.stored), dict(outcome.quarantined)


def _enrol(
    conn: psycopg.Connection[Any],
    name: str,
    programs: tuple[str, ...],
    birth: date | None,
    since: datetime,
) -> uuid.UUID:
    pid = store.create_patient(conn, display_name=name, programs=programs, birth_date=birth)
    store.register_device(conn, f"dev-{name}", model="test")
    store.assign_device(conn, f"dev-{name}", pid, since)
    return pid


def _store_cohort(
    conn: psycopg.Connection[Any], url: str
) -> tuple[dict[str, uuid.UUID], dict[str, int]]:
    """_store_cohort writes the module's cohort (see the docstring) the way the product does."""
    a = _enrol(conn, "A", ("heart_failure", "hypertension"), date(1950, 6, 15), JAN)
    b = _enrol(conn, "B", ("copd",), date(1930, 1, 1), JAN)
    c = _enrol(conn, "C", ("copd",), None, JAN)
    d = _enrol(conn, "D", ("heart_failure",), date(1960, 3, 1), DEC)
    # C's device is taken back on Jan 4 (no API ends an assignment without a next patient).
    conn.execute(
        "UPDATE device_assignments SET valid_to = %s WHERE device_id = 'dev-C'",
        (JAN + timedelta(days=3),),
    )

    weights = dict(zip((0, 1, 2, 4, 5), (80.0, 80.4, 80.8, 81.0, 81.6), strict=True))
    a_readings = [
        (JAN + timedelta(days=k, hours=8), "body_weight", kg, "kg") for k, kg in weights.items()
    ]
    a_readings.append((JAN + timedelta(days=1, hours=20), "body_weight", 81000.0, "g"))
    a_readings.append((JAN + timedelta(days=1, hours=20), "systolic_bp", 130.0, "mmHg"))
    b_readings = [
        (JAN + timedelta(days=k, hours=9), "spo2", v, "%") for k, v in ((1, 94.0), (6, 92.0))
    ]
    c_readings = [(JAN + timedelta(days=k, hours=9), "spo2", 95.0 + k, "%") for k in (0, 1, 2, 4)]
    d_readings = [
        (ALERT_DAY + timedelta(days=k, hours=7), "body_weight", kg, "kg")
        for k, kg in D_WEIGHTS.items()
    ]
    d_readings += [
        (ALERT_DAY + timedelta(days=-1, hours=7), "body_weight", 80.5, "kg"),
        (ALERT_DAY + timedelta(days=-1, hours=19), "body_weight", 81.5, "kg"),
        (ALERT_DAY + timedelta(days=30, hours=7), "body_weight", 99.0, "kg"),
    ]
    assert _send(conn, "dev-A", a_readings) == (7, {})
    assert _send(conn, "dev-B", b_readings) == (2, {})
    assert _send(conn, "dev-C", c_readings) == (3, {"unassigned_device": 1})
    assert _send(conn, "dev-D", d_readings) == (10, {})

    # Alerts as the alerts stage records them (A's as in tests/test_analytics.py): D's (high)
    # acknowledged after 5 min and left so; A's first (high) acknowledged after 10 min and
    # resolved after 40; A's second, 3 h later, escalated once (nobody acknowledged it for
    # 30 min) and acknowledged after 45 min.
    clock = Clock(ALERT_DAY + timedelta(hours=12))
    svc = service(url, clock)
    finding(conn, d, "hf.weight_gain", "active", clock.now, severity="high")
    svc.process_patient(conn, d)
    ids = {"D1": _alert_id(conn, d, "hf.weight_gain")}
    clock.now += timedelta(minutes=5)
    svc.acknowledge(conn, ids["D1"], "nurse-d")
    clock.now = T0
    finding(conn, a, "hf.weight_gain", "active", T0, severity="high")
    svc.process_patient(conn, a)
    ids["A1"] = _alert_id(conn, a, "hf.weight_gain")
    clock.now = T0 + timedelta(minutes=10)
    svc.acknowledge(conn, ids["A1"], "nurse-a")
    clock.now = T0 + timedelta(minutes=40)
    svc.resolve(conn, ids["A1"], "nurse-a", "called_patient")
    t1 = T0 + timedelta(hours=3)
    clock.now = t1
    finding(conn, a, "htn.sbp_crisis", "active", t1, severity="high")
    svc.process_patient(conn, a)
    ids["A2"] = _alert_id(conn, a, "htn.sbp_crisis")
    clock.now = t1 + timedelta(minutes=31)
    svc.housekeeping(conn)
    clock.now = t1 + timedelta(minutes=45)
    svc.acknowledge(conn, ids["A2"], "nurse-b")
    return {"A": a, "B": b, "C": c, "D": d}, ids


def _alert_id(conn: psycopg.Connection[Any], pid: uuid.UUID, rule_id: str) -> int:
    row = conn.execute(
        "SELECT id FROM alerts WHERE patient_id = %s AND rule_id = %s", (pid, rule_id)
    ).fetchone()
    assert row is not None, rule_id
    return int(row[0])


@pytest.fixture(scope="module")
def stored_postgres(template_database: str) -> Iterator[Stored]:
    name = f"hc_analytics_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(BASE_URL, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name} TEMPLATE {template_database}")
    url = url_with_database(BASE_URL, name)
    try:
        with store.connect(url, autocommit=True) as conn:
            patients, alert_ids = _store_cohort(conn, url)
            store.refresh_aggregates(conn)  # the scheduler's refresh job
        yield Stored("postgres", url, patients, alert_ids)
    finally:
        with psycopg.connect(BASE_URL, autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture(scope="module")
def stored_timescaledb() -> Iterator[Stored]:
    ensure_node_packages(NODE_DIR)
    with start_timescaledb_engine(NODE_DIR) as engine:
        with store.connect(engine.url, autocommit=True) as conn:
            store.migrate(conn, "timescaledb")
            store.apply_policies(conn, compress_after_days=30, retention_days=3650)
            patients, alert_ids = _store_cohort(conn, engine.url)
            # What the background workers do in production: the compression policy compresses
            # the (weeks-old) chunks; then the scheduler's refresh job.
            (job,) = [
                row[0]
                for row in conn.execute(
                    "SELECT job_id FROM timescaledb_information.jobs"
                    " WHERE proc_name = 'policy_compression'"
                )
            ]
            conn.execute("CALL run_job(%s)", (job,))
            store.refresh_aggregates(conn)
        yield Stored("timescaledb", engine.url, patients, alert_ids)


@pytest.fixture(params=ENGINES)
def stored(request: pytest.FixtureRequest) -> Stored:
    value: Stored = request.getfixturevalue(f"stored_{request.param}")
    return value


def test_the_timescaledb_cohort_is_on_a_compressed_hypertable_and_continuous_aggregate(
    stored_timescaledb: Stored,
) -> None:
    with store.connect(stored_timescaledb.url, autocommit=True) as conn:
        assert store.flavour(conn) == "timescaledb"
        caggs = conn.execute(
            "SELECT view_name, materialized_only FROM timescaledb_information.continuous_aggregates"
        ).fetchall()
        compressed = conn.execute(
            "SELECT count(*) FROM timescaledb_information.chunks"
            " WHERE hypertable_name = 'readings' AND is_compressed"
        ).fetchone()
    assert sorted(caggs) == [("readings_daily", False), ("readings_hourly", False)]
    assert compressed is not None and compressed[0] >= 1


# ---- figures worked out by hand, on each engine -------------------------------------------


def test_daily_aggregate_rows(stored: Stored) -> None:
    with stored.source() as source:
        rows = source.rows(
            "SELECT patient_id, type, bucket, n, mean, min_value, max_value FROM readings_daily"
            " ORDER BY patient_id, type, bucket"
        )
        end = source.observation_end()
    with stored.source(as_of=None) as source:
        newest = source.observation_end()  # the end of the newest day with readings
    by_key = {(pid, type_, bucket): rest for pid, type_, bucket, *rest in rows}
    p = stored.patients
    assert len(rows) == 5 + 1 + 2 + 3 + 9  # A weight, A pressure, B, C (not Jan 5), D
    n, mean, low, high = by_key[(p["A"], "body_weight", JAN + timedelta(days=1))]
    assert (n, low, high) == (2, 80.4, 81.0) and mean == pytest.approx(80.7)
    assert by_key[(p["A"], "systolic_bp", JAN + timedelta(days=1))] == [1, 130.0, 130.0, 130.0]
    assert (p["C"], "spo2", JAN + timedelta(days=4)) not in by_key  # quarantined, not stored
    n, mean, low, high = by_key[(p["D"], "body_weight", ALERT_DAY - timedelta(days=1))]
    assert (n, mean, low, high) == (2, 81.0, 80.5, 81.5)
    assert all(isinstance(bucket, datetime) and bucket.hour == 0 for _, _, bucket, *_ in rows)
    assert end == AS_OF
    assert newest == ALERT_DAY + timedelta(days=31)  # D's 99 kg of Jan 19


def test_cohort_export(stored: Stored) -> None:
    with stored.source() as source:
        frame = analytics.patients(source)
    names = stored.names()
    rows = {names[r.patient]: r for r in frame.itertuples()}
    assert sorted(rows) == ["A", "B", "C", "D"]
    assert {k: r.age_band for k, r in rows.items() if k != "C"} == {
        "A": "70-79",
        "B": "90+",
        "D": "60-69",
    }
    assert pd.isna(rows["C"].age_band)
    assert rows["A"].programs == ("heart_failure", "hypertension")
    assert rows["A"].primary_program == "heart_failure"
    assert {k: r.monitored_days for k, r in rows.items()} == {"A": 7, "B": 7, "C": 3, "D": 38}
    assert rows["C"].monitoring_end == JAN + timedelta(days=3)
    assert rows["D"].monitoring_start == DEC
    for column in ("monitoring_start", "monitoring_end"):  # UTC, as every frame's times
        assert str(frame[column].dt.tz) == "UTC", (column, frame[column].dtype)


def test_adherence(stored: Stored) -> None:
    with stored.source() as source:
        frame = analytics.adherence(source)
        pressure = analytics.adherence(source, types=["systolic_bp"])
    names = stored.names()
    got = {
        (names[r.patient], r.program): (r.monitored_days, r.days_with_readings)
        for r in frame.itertuples()
    }
    assert got == {
        ("A", "heart_failure"): (7, 5),  # Jan 1, 2, 3, 5, 6
        ("A", "hypertension"): (7, 5),
        ("B", "copd"): (7, 2),  # Jan 2, 7
        ("C", "copd"): (3, 3),  # Jan 1-3; its window closed on Jan 4
        ("D", "heart_failure"): (38, 8),  # Dec 1 - Jan 7; Dec 6, 10, 12, 18-21, 23
    }
    shares = {(names[r.patient], r.program): r.share for r in frame.itertuples()}
    assert shares[("D", "heart_failure")] == pytest.approx(8 / 38)
    a_bp = pressure[pressure["patient"].map(names) == "A"]
    assert a_bp["days_with_readings"].tolist() == [1, 1]


def test_weekly_activity_and_dropoff(stored: Stored) -> None:
    # Observed until Jan 15: A has weeks Jan 1-7 (5 days) and 8-14 (none); D has six full
    # weeks from Dec 1 (1, 2, 4, 1, 0, 0 days) and a 3-day seventh; B 2 and 0; C no full week.
    with stored.source(as_of=JAN + timedelta(days=14)) as source:
        weeks = analytics.weekly_activity(source)
        curve = analytics.dropoff(source, min_days=3)
    names = stored.names()
    d = weeks[(weeks["patient"].map(names) == "D")]
    assert d[["week", "monitored_days", "days_with_readings"]].values.tolist() == [
        [0, 7, 1],
        [1, 7, 2],
        [2, 7, 4],
        [3, 7, 1],
        [4, 7, 0],
        [5, 7, 0],
        [6, 3, 0],
    ]
    hf = curve[curve["program"] == "heart_failure"].set_index("week")
    assert hf["patients"].tolist() == [2, 2, 1, 1, 1, 1]  # A and D, then D alone
    assert hf["active"].tolist() == [1, 0, 1, 0, 0, 0]
    copd = curve[curve["program"] == "copd"].set_index("week")
    assert copd["patients"].tolist() == [1, 1] and copd["active"].tolist() == [0, 0]


def test_alert_records_and_burden(stored: Stored) -> None:
    with stored.source() as source:
        frame = analytics.alerts(source).set_index("alert_id")
        burden = analytics.alert_burden(source).set_index("program")
    one, two, dan = (frame.loc[stored.alerts[k]] for k in ("A1", "A2", "D1"))
    assert len(frame) == 3
    with stored.source() as source:
        raw = source.rows("SELECT opened_at FROM alerts ORDER BY id LIMIT 1")[0][0]
    assert raw == ALERT_DAY + timedelta(hours=12) and raw.utcoffset() == timedelta(0)
    assert str(raw.tzinfo) == "UTC", raw.tzinfo  # what every read of a Source gives
    assert (one["minutes_to_ack"], one["minutes_to_resolve"]) == (10, 40)
    assert (one["outcome"], one["resolver"], one["escalations"]) == ("called_patient", "person", 0)
    assert bool(one["paged"])
    assert two["minutes_to_ack"] == 45 and pd.isna(two["minutes_to_resolve"])
    assert (two["escalations"], two["escalated_to"], two["status"]) == (
        1,
        "nurse_on_duty",
        "acknowledged",
    )
    assert (dan["status"], dan["minutes_to_ack"], dan["escalations"]) == ("acknowledged", 5, 0)
    assert dan["opened_at"] == ALERT_DAY + timedelta(hours=12)
    # Windows: A 7 d, B 7 d, C 3 d, D 38 d; alerts inside them: A 2, D 1.
    assert burden.loc["heart_failure", "alerts"] == 3
    assert burden.loc["heart_failure", "patient_months"] == pytest.approx(45 / 30)
    assert burden.loc["heart_failure", "alerts_per_patient_month"] == pytest.approx(2.0)
    assert burden.loc["hypertension", "alerts_per_patient_month"] == pytest.approx(2 / (7 / 30))
    assert burden.loc["copd", "alerts"] == 0
    assert burden.loc["all", "alerts_per_patient_month"] == pytest.approx(3 / (55 / 30))


def test_trajectories(stored: Stored) -> None:
    with stored.source(as_of=datetime(2026, 1, 30, tzinfo=UTC)) as source:
        frame = analytics.vitals_around_alerts(source, ["body_weight", "spo2"])
    dan = frame[frame["alert_id"] == stored.alerts["D1"]].set_index("day")
    assert dan.index.tolist() == [-14, -10, -8, -2, -1, 0, 1, 3]  # not day 30
    assert set(dan["program"]) == {"heart_failure"}  # the shared pack: the primary program
    assert dan["baseline"].unique().tolist() == [pytest.approx(80.0)]  # days -14..-8
    assert dan.loc[-1, "n"] == 2 and dan.loc[-1, "mean"] == pytest.approx(81.0)
    assert dan.loc[0, "change"] == pytest.approx(2.0)
    assert dan.loc[3, "change"] == pytest.approx(0.0)
    # A's alerts opened on Jan 3: its weights fall on days -2, -1, 0, 2, 3, with no baseline.
    first = frame[frame["alert_id"] == stored.alerts["A1"]]
    assert first["day"].tolist() == [-2, -1, 0, 2, 3]
    assert first["mean"].tolist() == pytest.approx([80.0, 80.7, 80.8, 81.0, 81.6])
    assert first["baseline"].isna().all()
    assert len(frame) == 8 + 5 + 5


def test_detection(stored: Stored) -> None:
    labels = parse_labels(LABELS)
    with stored.source() as source:
        result = analytics.detection(source, labels)
    overall = result.overall.iloc[0]
    # D's alert of Dec 20 12:00 comes 1.5 days before the ER visit: caught, lead 1.5 days.
    assert (overall["episodes"], overall["caught"], overall["alerts"]) == (1, 1, 1)
    assert overall["median_lead_days"] == pytest.approx(1.5)


LABELS: dict[str, Any] = {
    "generator": {"start": DEC.isoformat(), "end": AS_OF.isoformat()},
    "patients": [{"id": "D", "programs": ["heart_failure"]}],
    "episodes": [
        {
            "id": "e1",
            "kind": "hf_decompensation",
            "patient_id": "D",
            "onset": (ALERT_DAY - timedelta(days=4)).isoformat(),
            "er_visit": (ALERT_DAY + timedelta(days=2)).isoformat(),
            "expected_signals": [
                {"type": "body_weight", "direction": "up", "change": 2.0, "unit": "kg"}
            ],
        }
    ],
    "lookalikes": [],
}


# ---- the same frames on both engines --------------------------------------------------------


def _frames(stored: Stored) -> dict[str, pd.DataFrame]:
    names = stored.names()
    alert_names = {v: k for k, v in stored.alerts.items()}
    out: dict[str, pd.DataFrame] = {}
    calls: dict[str, Callable[[analytics.Source], pd.DataFrame]] = {
        "patients": analytics.patients,
        "adherence": analytics.adherence,
        "weekly_activity": analytics.weekly_activity,
        "dropoff": analytics.dropoff,
        "alerts": analytics.alerts,
        "alert_burden": analytics.alert_burden,
        "vitals_around_alerts": lambda s: analytics.vitals_around_alerts(s, ["body_weight"]),
        "detection": lambda s: analytics.detection(s, parse_labels(LABELS)).by_rule,
    }
    with stored.source(as_of=JAN + timedelta(days=14)) as source:
        for name, call in calls.items():
            frame = call(source).copy()
            if "patient" in frame.columns:
                frame["patient"] = frame["patient"].map(names)
            if "alert_id" in frame.columns:
                frame["alert_id"] = frame["alert_id"].map(alert_names)
            # Patient ids are random, so rows ordered by id come in another order per store.
            keys = [
                c for c in ("patient", "alert_id", "program", "week", "type", "day") if c in frame
            ]
            out[name] = frame.sort_values(keys).reset_index(drop=True) if keys else frame
        daily = source.rows(
            "SELECT patient_id, type, bucket, n, mean, min_value, max_value FROM readings_daily"
        )
    ids = {pid: name for name, pid in stored.patients.items()}
    out["readings_daily"] = (
        pd.DataFrame(daily, columns=["patient", "type", "bucket", "n", "mean", "min", "max"])
        .assign(patient=lambda f: f["patient"].map(ids))
        .sort_values(["patient", "type", "bucket"])
        .reset_index(drop=True)
    )
    return out


def test_every_frame_is_the_same_on_both_engines(
    stored_postgres: Stored, stored_timescaledb: Stored
) -> None:
    postgres = _frames(stored_postgres)
    timescale = _frames(stored_timescaledb)
    for name, frame in postgres.items():
        assert not frame.empty, name
        pd.testing.assert_frame_equal(timescale[name], frame, obj=name)
