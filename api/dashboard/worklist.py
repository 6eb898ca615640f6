"""Worklist: one row per patient who needs attention, most urgent first — what a homecare nurse
works from, instead of one row per alert.

A patient is on the worklist while one of their alerts is open or acknowledged. Their row
carries those alerts (most urgent first), the latest value of the vitals that matter for their
programs with an arrow against their usual, a 7-day sparkline of the worst vital, adherence
(local days with a reading out of the last 7) and the time of their last reading. The patient
page shows the same header (``entry``).

**Order**: the worst open alert's severity, then NEWS2 (the highest score of the patient's
unresolved alerts) and its trend (that alert's rise above the patient's usual score, when the
rule knows it), then the time waiting (the oldest unresolved alert first), then the name.

**Usual** is the median of the daily means of the 30 days before the last 24 hours
(``readings_daily``); the arrow points up or down when the latest value is off it by at least
the type's meaningful change (``CHANGE``; 5 % of the usual for other types).

**Cost**: a fixed number of queries whatever the number of patients — the unresolved alerts
with their patients (one query, scoped in SQL to the care teams), the latest reading of every
(patient, type) pair (one index probe each, ``readings_patient_type_time``), the usual values,
the local days with readings, and the sparklines (``api.dashboard.series``).
"""

from __future__ import annotations

import statistics
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import psycopg

from homecare import catalogue
from homecare.alerts import Alert
from homecare.alerts.model import SEVERITY_RANK
from homecare.alerts.repository import ALERT_COLUMNS
from homecare.api.dashboard.queries import PatientRow
from homecare.api.dashboard.series import hourly
from homecare.rules import PackSet

__all__ = ["CHANGE", "KEY_VITALS", "Entry", "Spark", "Vital", "entries", "entry"]

_A_COLUMNS = ", ".join(f"a.{c.strip()}" for c in ALERT_COLUMNS.split(","))
_P_COLUMNS = "p.id, p.display_name, p.birth_date, p.programs, p.care_team, p.hypercapnic"
MAX_ALERTS = 5000
SHOWN_VITALS = 4
SPARK_DAYS = 7
ADHERENCE_DAYS = 7
USUAL_DAYS = 30

# The vitals a nurse of each program looks at first, in that order.
KEY_VITALS: dict[str, tuple[str, ...]] = {
    "heart_failure": ("body_weight", "heart_rate", "systolic_bp", "spo2"),
    "copd": ("spo2", "respiratory_rate", "heart_rate", "body_temperature"),
    "hypertension": ("systolic_bp", "diastolic_bp", "heart_rate"),
    "diabetes": ("blood_glucose", "heart_rate"),
    "wound_care": ("wound_area", "pain_score", "body_temperature"),
    "oncology": ("body_temperature", "esas_pain", "esas_tiredness", "esas_shortness_of_breath"),
    "post_surgical_rehab": ("pain_score", "range_of_motion", "body_temperature"),
}
# The smallest change from the usual worth an arrow, in canonical units.
CHANGE: dict[str, float] = {
    "heart_rate": 10,
    "systolic_bp": 15,
    "diastolic_bp": 10,
    "spo2": 2,
    "respiratory_rate": 3,
    "body_temperature": 0.5,
    "body_weight": 1.0,
    "blood_glucose": 2.0,
    "pain_score": 2,
    "range_of_motion": 10,
}
_NEWS2_VITALS = {
    "respiratory_rate": "respiratory_rate",
    "spo2": "spo2",
    "systolic_bp": "systolic_bp",
    "heart_rate": "heart_rate",
    "temperature": "body_temperature",
}


@dataclass(frozen=True)
class Vital:
    """Vital: a type's latest value, when it was measured, the patient's usual and the way it
    moved from it (``up``, ``down``, ``steady``; ``unknown`` without a usual)."""

    type: str
    unit: str
    value: float
    at: datetime
    usual: float | None
    direction: str


@dataclass(frozen=True)
class Spark:
    """Spark: a 7-day line of one vital as SVG polyline points (100 × 24 box, higher up)."""

    type: str
    unit: str
    points: str
    low: float
    high: float


@dataclass(frozen=True)
class Entry:
    """Entry: one patient's worklist row."""

    patient: PatientRow
    alerts: list[Alert]
    vitals: list[Vital]
    spark: Spark | None
    adherence_days: int
    last_reading: datetime | None

    @property
    def worst(self) -> Alert | None:
        return self.alerts[0] if self.alerts else None

    @property
    def news2(self) -> int | None:
        scores = [a.news2 for a in self.alerts if a.news2 is not None]
        return max(scores) if scores else None

    @property
    def news2_trend(self) -> float | None:
        """news2_trend is the top-scoring alert's rise above the patient's usual NEWS2."""
        scored = [a for a in self.alerts if a.news2 is not None]
        if not scored:
            return None
        top = max(scored, key=lambda a: a.news2 or 0)
        usual = top.evidence.get("usual_score")
        return float(top.news2 or 0) - float(usual) if isinstance(usual, int | float) else None

    @property
    def waiting_since(self) -> datetime | None:
        return min((a.opened_at for a in self.alerts), default=None)

    def rank(self) -> tuple[Any, ...]:
        worst = self.worst
        return (
            -SEVERITY_RANK[worst.severity] if worst else 1,
            -(self.news2 or 0),
            -(self.news2_trend or 0.0),
            self.waiting_since or datetime.max.replace(tzinfo=ZoneInfo("UTC")),
            self.patient.display_name,
        )


def _alert_rank(alert: Alert) -> tuple[int, int, datetime, int]:
    return (-SEVERITY_RANK[alert.severity], -(alert.news2 or 0), alert.opened_at, alert.id)


def entries(
    conn: psycopg.Connection[Any],
    teams: list[str] | None,
    *,
    now: datetime,
    time_zone: ZoneInfo,
    pack_set: PackSet,
) -> list[Entry]:
    """entries is the worklist of ``teams`` (None: every team), most urgent patient first."""
    rows = conn.execute(
        f"SELECT {_A_COLUMNS}, {_P_COLUMNS}, ct.time_zone FROM alerts a"
        " JOIN patients p ON p.id = a.patient_id LEFT JOIN care_teams ct ON ct.id = p.care_team"
        " WHERE a.status <> 'resolved' AND (%(teams)s::text[] IS NULL OR p.care_team ="
        " ANY(%(teams)s)) ORDER BY a.id LIMIT %(limit)s",
        {"teams": teams, "limit": MAX_ALERTS},
    ).fetchall()
    width = len(ALERT_COLUMNS.split(","))
    patients: dict[uuid.UUID, PatientRow] = {}
    alerts: dict[uuid.UUID, list[Alert]] = {}
    for row in rows:
        alert = Alert(*row[:width])
        patients.setdefault(alert.patient_id, PatientRow(*row[width:]))
        alerts.setdefault(alert.patient_id, []).append(alert)
    built = _build(conn, list(patients.values()), alerts, now, time_zone, pack_set)
    return sorted(built, key=Entry.rank)


def entry(
    conn: psycopg.Connection[Any],
    patient: PatientRow,
    *,
    now: datetime,
    time_zone: ZoneInfo,
    pack_set: PackSet,
) -> Entry:
    """entry is one patient's worklist row (the patient page's header), scope checked by the
    caller (``queries.patient``)."""
    rows = conn.execute(
        f"SELECT {_A_COLUMNS} FROM alerts a WHERE a.patient_id = %s AND a.status <> 'resolved'",
        (patient.id,),
    ).fetchall()
    return _build(
        conn, [patient], {patient.id: [Alert(*r) for r in rows]}, now, time_zone, pack_set
    )[0]


def _build(
    conn: psycopg.Connection[Any],
    patients: Sequence[PatientRow],
    alerts: Mapping[uuid.UUID, list[Alert]],
    now: datetime,
    time_zone: ZoneInfo,
    pack_set: PackSet,
) -> list[Entry]:
    if not patients:
        return []
    ids = [p.id for p in patients]
    latest = _latest(conn, ids)
    wanted = {p.id: _vital_types(p, alerts.get(p.id, []), pack_set) for p in patients}
    usual = _usual(conn, [(p, t) for p, types in wanted.items() for t in types], now)
    days = _reading_days(conn, patients, now, time_zone, latest)
    worst_types = {
        p.id: next((t for t in wanted[p.id] if (p.id, t) in latest), None) for p in patients
    }
    sparks = hourly(
        conn,
        [(pid, t) for pid, t in worst_types.items() if t is not None],
        now - timedelta(days=SPARK_DAYS),
        now,
    )
    built = []
    for patient in patients:
        own = sorted(alerts.get(patient.id, []), key=_alert_rank)
        vitals = [
            _vital(t, latest[(patient.id, t)], usual.get((patient.id, t)))
            for t in wanted[patient.id]
            if (patient.id, t) in latest
        ][:SHOWN_VITALS]
        worst = worst_types[patient.id]
        spark = _spark(worst, sparks.get((patient.id, worst), []), now) if worst else None
        last = max((at for (pid, _), (_, at) in latest.items() if pid == patient.id), default=None)
        built.append(Entry(patient, own, vitals, spark, days.get(patient.id, 0), last))
    return built


def _vital_types(patient: PatientRow, alerts: list[Alert], pack_set: PackSet) -> list[str]:
    """_vital_types: the types of the patient's alerts first, then their programs' key vitals."""
    types = [t for a in sorted(alerts, key=_alert_rank) for t in _alert_types(a, pack_set)]
    for program in patient.programs:
        types.extend(KEY_VITALS.get(program, ()))
    return [t for t in dict.fromkeys(types) if t in catalogue.CATALOGUE]


def _alert_types(alert: Alert, pack_set: PackSet) -> list[str]:
    """_alert_types: the vitals an alert is about, worst first (NEWS2: the highest-scoring
    parameters; a deviation: the vitals that moved most; a rule on one type: that type)."""
    components = alert.evidence.get("components")
    if isinstance(components, dict):
        scored = sorted(
            (p for p in components if p in _NEWS2_VITALS), key=lambda p: -int(components[p])
        )
        return [_NEWS2_VITALS[p] for p in scored if int(components[p]) > 0]
    moves = alert.evidence.get("vitals")
    if isinstance(moves, list):
        moved = [m for m in moves if isinstance(m, dict) and "type" in m]
        return [str(m["type"]) for m in sorted(moved, key=lambda m: -float(m.get("score", 0)))]
    try:
        _pack, rule = pack_set.rule(alert.rule_id)
    except KeyError:  # a rule since removed from the packs
        return []
    type_name = getattr(rule, "type", None)
    return [type_name] if isinstance(type_name, str) else []


def _latest(
    conn: psycopg.Connection[Any], ids: list[uuid.UUID]
) -> dict[tuple[uuid.UUID, str], tuple[float, datetime]]:
    """_latest: the newest reading of every (patient, type), one index probe each."""
    types = list(catalogue.CATALOGUE)
    rows = conn.execute(
        "SELECT p.id, t.type, r.value, r.time FROM unnest(%s::uuid[]) AS p(id)"
        " CROSS JOIN unnest(%s::text[]) AS t(type)"
        " CROSS JOIN LATERAL (SELECT value, time FROM readings WHERE patient_id = p.id"
        " AND type = t.type ORDER BY time DESC LIMIT 1) AS r",
        (ids, types),
    ).fetchall()
    return {(r[0], r[1]): (float(r[2]), r[3]) for r in rows}


def _usual(
    conn: psycopg.Connection[Any], pairs: list[tuple[uuid.UUID, str]], now: datetime
) -> dict[tuple[uuid.UUID, str], float]:
    if not pairs:
        return {}
    rows = conn.execute(
        "SELECT e.p, e.t, d.mean FROM unnest(%s::uuid[], %s::text[]) AS e(p, t)"
        " CROSS JOIN LATERAL (SELECT mean FROM readings_daily WHERE patient_id = e.p"
        " AND type = e.t AND bucket >= %s AND bucket < %s) d",
        (
            [p for p, _ in pairs],
            [t for _, t in pairs],
            now - timedelta(days=USUAL_DAYS),
            now - timedelta(days=1),
        ),
    ).fetchall()
    means: dict[tuple[uuid.UUID, str], list[float]] = {}
    for patient_id, type_name, mean in rows:
        means.setdefault((patient_id, type_name), []).append(float(mean))
    return {pair: statistics.median(values) for pair, values in means.items()}


def _reading_days(
    conn: psycopg.Connection[Any],
    patients: Sequence[PatientRow],
    now: datetime,
    fallback: ZoneInfo,
    latest: Mapping[tuple[uuid.UUID, str], tuple[float, datetime]],
) -> dict[uuid.UUID, int]:
    """_reading_days: how many of the last 7 local days (today included, in each patient's
    team zone) have a reading — from the hourly aggregate, plus the day of each latest reading
    (newer than the aggregate on plain PostgreSQL)."""
    zones = {p.id: _zone(p.time_zone, fallback) for p in patients}
    back = timedelta(days=ADHERENCE_DAYS - 1)
    firsts = {pid: _day_start(now, zone) - back for pid, zone in zones.items()}
    since = min(firsts.values())
    rows = conn.execute(
        "SELECT DISTINCT patient_id, bucket FROM readings_hourly"
        " WHERE patient_id = ANY(%s) AND bucket >= %s AND bucket <= %s",
        ([p.id for p in patients], since, now),
    ).fetchall()
    seen: dict[uuid.UUID, set[Any]] = {}
    instants = [(pid, at) for pid, at in rows]
    instants += [(pid, at) for (pid, _), (_, at) in latest.items() if pid in zones]
    for pid, at in instants:
        if firsts[pid] <= at <= now:
            seen.setdefault(pid, set()).add(at.astimezone(zones[pid]).date())
    return {pid: len(d) for pid, d in seen.items()}


def _zone(name: str | None, fallback: ZoneInfo) -> ZoneInfo:
    try:
        return ZoneInfo(name) if name else fallback
    except (ValueError, KeyError):
        return fallback


def _day_start(now: datetime, zone: ZoneInfo) -> datetime:
    return now.astimezone(zone).replace(hour=0, minute=0, second=0, microsecond=0)


def _vital(type_name: str, latest: tuple[float, datetime], usual: float | None) -> Vital:
    value, at = latest
    unit = catalogue.lookup(type_name).canonical_unit
    if usual is None:
        return Vital(type_name, unit, value, at, None, "unknown")
    change = CHANGE.get(type_name, abs(usual) * 0.05)
    if value - usual >= change:
        direction = "up"
    elif usual - value >= change:
        direction = "down"
    else:
        direction = "steady"
    return Vital(type_name, unit, value, at, usual, direction)


def _spark(type_name: str, buckets: Sequence[Any], now: datetime) -> Spark | None:
    """_spark: the hourly means of the last 7 days, placed in time (a gap shows as a gap in
    the x positions, the line joining across it)."""
    if len(buckets) < 2:
        return None
    end = now.timestamp()
    start = end - SPARK_DAYS * 86400
    low, high = min(b.mean for b in buckets), max(b.mean for b in buckets)
    span_x, span_y = end - start, (high - low) or 1.0
    points = " ".join(
        f"{(b.at.timestamp() - start) / span_x * 100:.1f},{22 - (b.mean - low) / span_y * 20:.1f}"
        for b in buckets
    )
    return Spark(type_name, catalogue.lookup(type_name).canonical_unit, points, low, high)
