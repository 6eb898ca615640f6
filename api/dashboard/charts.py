"""Charts: what the patient page draws — vitals over 7/30/90 days with the patient's thresholds,
and the NEWS2 score over the same window.

- **Vitals** come from the hourly aggregates (``readings_hourly``, a continuous aggregate on
  TimescaleDB, a materialized view on plain PostgreSQL), completed from the raw readings past
  the aggregate's newest hour (``api.dashboard.series``), so a reading just stored is drawn at
  once. Seven days are drawn hour by hour (mean, with min–max); 30 and 90 days day by day, where
  a *day* is the care team's local day: the hourly buckets are regrouped by their local date
  (count-weighted mean, min of mins, max of maxes). The stored daily aggregate is not used for
  this because its days are UTC days, which in Montréal end at 19:00 or 20:00. (In a zone
  whose offset is not whole hours, e.g. St. John's, an hour bucket straddling local midnight
  counts for the day it starts in.)
- **Thresholds** are the threshold rules of the patient's packs (``common`` and each program)
  that alert, or feed a combination rule that alerts (``common.sbp_at_or_below_90``), with the
  patient's override in force, if any, instead of the pack's value (``threshold_overrides``
  rows with no end; a NULL value there means "back to the pack's"). When the patient has a
  NEWS2 rule, the limits where a NEWS2 vital alone scores 3 (a red score: RCP NEWS2 2017, chart
  1; the bands of ``rules.news2``) are drawn too: respiratory rate has no threshold rule, and
  the rules stage watches it through NEWS2.
- **NEWS2** is scored with ``rules.score_news2`` at every instant a NEWS2 vital was measured, from
  each vital's latest reading within the pack's NEWS2 ``within``, assuming air and Alert as the
  pack does, and only where at least its ``min_parameters`` are present — the same inputs the
  rules stage scores (``rules.kinds.news2``), so the line crosses the alert thresholds (the NEWS2
  rules' ``min_score``) where alerts fired. The score is always the one shown on the bedside
  chart for those observations; the rules stage may add a personal-baseline condition before
  alerting, which this chart does not draw.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import psycopg

from homecare import catalogue
from homecare.api.dashboard.series import hourly
from homecare.rules import Observations, PackError, PackSet, load_packs, score_news2
from homecare.rules.packs import CombinationRule, News2Rule, ThresholdRule

__all__ = ["NEWS2_TYPES", "WINDOWS", "News2Point", "Series", "Threshold", "news2", "vitals"]

log = logging.getLogger(__name__)

WINDOWS: tuple[int, ...] = (7, 30, 90)
NEWS2_TYPES = ("respiratory_rate", "spo2", "systolic_bp", "heart_rate", "body_temperature")
# Where one NEWS2 vital alone scores 3 (SpO2 on scale 1; temperature scores at most 2 above).
NEWS2_RED: dict[str, tuple[tuple[str, float], ...]] = {
    "respiratory_rate": (("<=", 8), (">=", 25)),
    "spo2": (("<=", 91),),
    "systolic_bp": (("<=", 90), (">=", 220)),
    "heart_rate": (("<=", 40), (">=", 131)),
    "body_temperature": (("<=", 35.0),),
}


@dataclass(frozen=True)
class Threshold:
    """Threshold: a line on a chart — a rule's value (the patient's override if there is one),
    or a NEWS2 red limit (``rule_id`` ``news2``)."""

    rule_id: str
    op: str
    value: float
    severity: str
    overridden: bool


@dataclass
class Series:
    """Series: one measurement type's points (epoch seconds, mean, min, max) and thresholds."""

    type: str
    unit: str
    times: list[int] = field(default_factory=list)
    mean: list[float] = field(default_factory=list)
    low: list[float] = field(default_factory=list)
    high: list[float] = field(default_factory=list)
    thresholds: list[Threshold] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "type": self.type,
            "unit": self.unit,
            "x": self.times,
            "mean": self.mean,
            "min": self.low,
            "max": self.high,
            "thresholds": [t.__dict__ for t in self.thresholds],
        }


@dataclass(frozen=True)
class News2Point:
    """News2Point: the NEWS2 score at one instant and how many parameters it rests on."""

    time: datetime
    score: int
    parameters: int


_packs_cache: dict[Path, tuple[float, PackSet]] = {}


def packs(directory: Path) -> PackSet:
    """packs is the packs in ``directory``, re-read when a file there changes; while a file is
    invalid (an edit in progress), the last good packs, as the workers do."""
    stamp = max((p.stat().st_mtime for p in directory.glob("*.yaml")), default=0.0)
    cached = _packs_cache.get(directory)
    if cached is None or cached[0] != stamp:
        try:
            cached = (stamp, load_packs(directory))
        except PackError:
            if cached is None:
                raise
            log.warning("rule packs invalid; charts keep the last good ones")
            return cached[1]
        _packs_cache[directory] = cached
    return cached[1]


def _overrides(conn: psycopg.Connection[Any], patient_id: uuid.UUID) -> dict[str, float | None]:
    rows = conn.execute(
        "SELECT rule_id, value FROM threshold_overrides WHERE patient_id = %s AND valid_to IS NULL",
        (patient_id,),
    ).fetchall()
    return {r[0]: r[1] for r in rows}


def thresholds(
    conn: psycopg.Connection[Any], patient_id: uuid.UUID, programs: list[str], pack_set: PackSet
) -> dict[str, list[Threshold]]:
    """thresholds is the threshold lines in force for the patient, by measurement type."""
    overrides = _overrides(conn, patient_id)
    rules = [rule for _pack, rule in pack_set.rules_for(programs)]
    feeding = {
        part: rule.severity
        for rule in rules
        if isinstance(rule, CombinationRule) and rule.alert
        for part in rule.rules
    }
    lines: dict[str, list[Threshold]] = {}
    for rule in rules:
        if not isinstance(rule, ThresholdRule) or not (rule.alert or rule.id in feeding):
            continue
        override = overrides.get(rule.id)
        value = override if override is not None else rule.value
        severity = rule.severity if rule.alert else feeding[rule.id]
        lines.setdefault(rule.type, []).append(
            Threshold(rule.id, rule.op, value, severity, override is not None)
        )
    if news2_rules(pack_set, programs):
        for type_name, limits in NEWS2_RED.items():
            drawn = {(t.op, t.value) for t in lines.get(type_name, [])}
            for op, value in limits:
                if (op, value) not in drawn:
                    lines.setdefault(type_name, []).append(
                        Threshold("news2", op, value, "high", False)
                    )
    return lines


def vitals(
    conn: psycopg.Connection[Any],
    patient_id: uuid.UUID,
    programs: list[str],
    *,
    days: int,
    now: datetime,
    time_zone: str,
    pack_set: PackSet,
) -> list[Series]:
    """vitals is one series per measurement type with readings in the last ``days`` days, in
    catalogue order, each with its threshold lines."""
    since = now - timedelta(days=days)
    buckets = hourly(conn, [(patient_id, t) for t in catalogue.CATALOGUE], since, now)
    zone = ZoneInfo(time_zone)
    by_type: dict[str, Series] = {}
    for (_, type_name), hours in buckets.items():
        unit = catalogue.lookup(type_name).canonical_unit
        series = by_type[type_name] = Series(type_name, unit)
        if days <= 7:
            for b in hours:
                series.times.append(int(b.at.timestamp()))
                series.mean.append(round(b.mean, 2))
                series.low.append(b.low)
                series.high.append(b.high)
            continue
        local_days: dict[datetime, list[Any]] = {}
        for b in hours:
            local = b.at.astimezone(zone)
            day = local.replace(hour=0, minute=0, second=0, microsecond=0)
            local_days.setdefault(day, []).append(b)
        for day in sorted(local_days):
            group = local_days[day]
            n = sum(b.n for b in group)
            series.times.append(int(day.timestamp()))
            series.mean.append(round(sum(b.mean * b.n for b in group) / n, 2))
            series.low.append(min(b.low for b in group))
            series.high.append(max(b.high for b in group))
    lines = thresholds(conn, patient_id, programs, pack_set)
    order = list(catalogue.CATALOGUE)
    result = sorted(by_type.values(), key=lambda s: order.index(s.type))
    for series in result:
        series.thresholds = lines.get(series.type, [])
    return result


def news2_rules(pack_set: PackSet, programs: list[str]) -> list[News2Rule]:
    """news2_rules is the patient's NEWS2 rules (their ``min_score`` lines are drawn)."""
    return [
        rule
        for _pack, rule in pack_set.rules_for(programs)
        if isinstance(rule, News2Rule) and rule.alert
    ]


def news2(
    conn: psycopg.Connection[Any],
    patient_id: uuid.UUID,
    *,
    since: datetime,
    until: datetime,
    hypercapnic: bool,
    rule: News2Rule | None,
) -> list[News2Point]:
    """news2 is the NEWS2 score at each instant a NEWS2 vital was measured in [since, until]."""
    if rule is None:
        return []
    rows = conn.execute(
        "SELECT time, type, value, on_oxygen, consciousness FROM readings"
        " WHERE patient_id = %s AND type = ANY(%s) AND time >= %s AND time <= %s"
        " ORDER BY time",
        (patient_id, list(NEWS2_TYPES), since - rule.within, until),
    ).fetchall()
    latest: dict[str, tuple[datetime, float]] = {}
    context: list[tuple[datetime, bool | None, str | None]] = []
    points: list[News2Point] = []
    i = 0
    while i < len(rows):
        at = rows[i][0]
        while i < len(rows) and rows[i][0] == at:  # every reading taken at this instant
            _, type_name, value, on_oxygen, consciousness = rows[i]
            latest[type_name] = (at, float(value))
            if on_oxygen is not None or consciousness is not None:
                context.append((at, on_oxygen, consciousness))
            i += 1
        if at < since:
            continue
        point = _score_at(at, latest, context, rule, hypercapnic)
        if point is not None:
            points.append(point)
    return points


def _score_at(
    at: datetime,
    latest: dict[str, tuple[datetime, float]],
    context: list[tuple[datetime, bool | None, str | None]],
    rule: News2Rule,
    hypercapnic: bool,
) -> News2Point | None:
    def value(type_name: str) -> float | None:
        found = latest.get(type_name)
        return found[1] if found and at - found[0] <= rule.within else None

    on_oxygen: bool | None = None
    consciousness: str | None = None
    for when, oxygen, acvpu in reversed(context):
        if at - when > rule.within:
            break
        on_oxygen = oxygen if on_oxygen is None else on_oxygen
        consciousness = acvpu if consciousness is None else consciousness
    if rule.assume_air_and_alert:
        on_oxygen = False if on_oxygen is None else on_oxygen
        consciousness = consciousness or "A"
    result = score_news2(
        Observations(
            respiratory_rate=value("respiratory_rate"),
            spo2=value("spo2"),
            systolic_bp=value("systolic_bp"),
            heart_rate=value("heart_rate"),
            temperature=value("body_temperature"),
            on_oxygen=on_oxygen,
            consciousness=consciousness,
            hypercapnic=hypercapnic,
        )
    )
    present = 7 - len(result.missing)
    if present < rule.min_parameters:
        return None
    return News2Point(at, result.partial_total, present)
