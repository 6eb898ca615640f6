"""Training: fit the anomaly models from stored readings and register them (``rules.registry``).

One run, for each program (a patient's cohort is their first program): read each patient's
readings of the last ``history`` (only the vitals the detectors use), leave out the periods
when the patient was flagged, build their feature rows, fit every detector on the program's
pooled rows (the cohort model: it judges new patients) and on each patient's own rows when
``HistoryPolicy`` says they suffice (the personal model). A model trained on exactly the rows
of the newest version already registered is not registered again, so a run with nothing new
changes nothing; every other fit is a new version, in force from its ``in_force_from``.

What is left out, and why: a model fitted on a deterioration learns it as the patient's usual,
and then no longer sees it. A finding that held marks such a period: every reading from one day
before a rule became active (the change began before the rule could tell) to two days after it
cleared (recovery is not the usual either; an uncleared finding runs to the end of the window)
is left out, with the finding's rule from any pack — except the rules that say nothing of the
patient's state: missing data and adherence (a patient who forgets a reading is not ill, and
leaving those periods out would starve a forgetful patient's model). Readings are dropped, not
only instants, so no feature window of a kept instant reaches into a flagged period's values
through its means. Retracted findings never held and leave nothing out.
"""

from __future__ import annotations

import hashlib
import logging
import time
import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import psycopg

from homecare.ingest import Reading
from homecare.rules import registry
from homecare.rules.anomaly import (
    DETECTORS,
    Detector,
    Features,
    HistoryPolicy,
    NotEnoughHistory,
    build_features,
    fit_cohort,
    fit_personal,
    vitals_for,
)
from homecare.rules.packs import PackSet

__all__ = [
    "Period",
    "TrainingConfig",
    "TrainingReport",
    "data_digest",
    "flagged_periods",
    "train",
    "without_periods",
]

log = logging.getLogger(__name__)

# Rule kinds whose findings say the patient did not measure, not that they are unwell.
_NOT_ILLNESS = frozenset({"missing", "adherence"})

Period = tuple[datetime, datetime | None]  # [start, end]; None: still open


@dataclass(frozen=True)
class TrainingConfig:
    """TrainingConfig: how much history, when a personal model is due, what is left out."""

    history: timedelta = timedelta(days=90)
    policy: HistoryPolicy = field(default_factory=HistoryPolicy)
    before_onset: timedelta = timedelta(days=1)
    after_clear: timedelta = timedelta(days=2)
    detectors: tuple[type[Detector], ...] = DETECTORS
    trained_by: str = "homecare"


@dataclass
class TrainingReport:
    """TrainingReport: what one run registered, found unchanged or could not fit."""

    registered: list[registry.ModelRow] = field(default_factory=list)
    unchanged: int = 0
    too_little_history: int = 0
    patients: int = 0
    readings: int = 0
    readings_left_out: int = 0
    seconds: dict[str, float] = field(default_factory=lambda: defaultdict(float))


def flagged_periods(
    findings: Iterable[tuple[str, str, datetime]],
    before_onset: timedelta,
    after_clear: timedelta,
) -> list[Period]:
    """flagged_periods: from each rule's findings (rule id, state, event time; in time order),
    the spans to leave out of training: onset − ``before_onset`` to clear + ``after_clear``.

    >>> from datetime import UTC
    >>> t = datetime(2026, 3, 10, tzinfo=UTC)
    >>> [(a.day, b.day) for a, b in flagged_periods(
    ...     [("r.x", "active", t), ("r.x", "cleared", t + timedelta(days=3))],
    ...     timedelta(days=1), timedelta(days=2))]
    [(9, 15)]
    """
    onset: dict[str, datetime] = {}
    periods: list[Period] = []
    for rule_id, state, at in findings:
        if state == "active":
            onset.setdefault(rule_id, at)
        elif rule_id in onset:
            periods.append((onset.pop(rule_id) - before_onset, at + after_clear))
    periods.extend((at - before_onset, None) for at in onset.values())
    return sorted(periods, key=lambda p: p[0])


def without_periods(readings: Sequence[Reading], periods: Sequence[Period]) -> list[Reading]:
    """without_periods: the readings outside every period (bounds included in the period)."""
    if not periods:
        return list(readings)
    return [
        r
        for r in readings
        if not any(start <= r.time and (end is None or r.time <= end) for start, end in periods)
    ]


def data_digest(features: Features) -> str:
    """data_digest: sha256 of the training feature rows (columns, times, values; NaN as one
    value), so the registry can tell two fits on the same rows apart from a real retrain."""
    digest = hashlib.sha256()
    digest.update("\x1f".join(features.columns).encode())
    digest.update(np.ascontiguousarray(features.times, dtype="<f8").tobytes())
    digest.update(np.nan_to_num(features.values, nan=np.inf).astype("<f8").tobytes())
    return digest.hexdigest()


def train(
    conn: psycopg.Connection[Any],
    until: datetime,
    config: TrainingConfig,
    packs: PackSet | None = None,
    *,
    programs: Sequence[str] | None = None,
    patient_id: uuid.UUID | None = None,
) -> TrainingReport:
    """train fits and registers the models of the readings up to event time ``until``: the
    cohort models of ``programs`` (default every program) and the personal models of their
    patients; with ``patient_id``, that patient's personal models only. ``packs`` tells which
    findings are about missing data (default: every finding leaves its period out)."""
    report = TrainingReport()
    quiet = _quiet_rules(packs)
    since = until - config.history
    cohorts: dict[str, list[tuple[uuid.UUID, Features]]] = defaultdict(list)
    for pid, patient_programs in _patients(conn, programs, patient_id):
        began = time.perf_counter()
        vitals = vitals_for(patient_programs)
        readings = _readings(conn, pid, vitals, since, until)
        periods = flagged_periods(_findings(conn, pid, until, quiet), config.before_onset,
                                  config.after_clear)  # fmt: skip
        kept = without_periods(readings, periods)
        features = build_features(kept, vitals)
        report.seconds["read"] += time.perf_counter() - began
        report.patients += 1
        report.readings += len(readings)
        report.readings_left_out += len(readings) - len(kept)
        if len(features):
            cohorts[patient_programs[0]].append((pid, features))
    metrics_base = {"history_days": config.history.total_seconds() / 86400}
    for program, members in sorted(cohorts.items()):
        if patient_id is None:
            pooled = Features.stack([f for _, f in members])
            for kind in config.detectors:
                began = time.perf_counter()
                try:
                    model = fit_cohort(kind(), [f for _, f in members])
                except NotEnoughHistory:
                    report.too_little_history += 1
                    continue
                fit_s = time.perf_counter() - began
                report.seconds["fit"] += fit_s
                metrics = {**metrics_base, "patients": len(members), "fit_s": round(fit_s, 3)}
                _register(conn, report, model, program, data_digest(pooled), metrics, config)
        for pid, features in members:
            for kind in config.detectors:
                began = time.perf_counter()
                personal = fit_personal(kind(), features, config.policy)
                fit_s = time.perf_counter() - began
                report.seconds["fit"] += fit_s
                if personal is None:
                    report.too_little_history += 1
                    continue
                metrics = {**metrics_base, "fit_s": round(fit_s, 3)}
                _register(conn, report, personal, pid, data_digest(features), metrics, config)
    log.info(
        "anomaly models trained",
        extra={
            "registered": len(report.registered),
            "unchanged": report.unchanged,
            "too_little_history": report.too_little_history,
            "patients": report.patients,
            "readings_left_out": report.readings_left_out,
        },
    )
    return report


def _register(
    conn: psycopg.Connection[Any],
    report: TrainingReport,
    model: Detector,
    subject: uuid.UUID | str,
    digest: str,
    metrics: dict[str, Any],
    config: TrainingConfig,
) -> None:
    began = time.perf_counter()
    metrics = {**metrics, "instants": model.info.instants}
    row = registry.register(
        conn, model, subject=subject, data_digest=digest, metrics=metrics,
        trained_by=config.trained_by,
    )  # fmt: skip
    report.seconds["store"] += time.perf_counter() - began
    if row is None:
        report.unchanged += 1
    else:
        report.registered.append(row)


def _quiet_rules(packs: PackSet | None) -> frozenset[str]:
    if packs is None:
        return frozenset()
    return frozenset(
        rule.id
        for pack in packs.packs.values()
        for rule in pack.rules
        if getattr(rule, "kind", None) in _NOT_ILLNESS
    )


def _patients(
    conn: psycopg.Connection[Any], programs: Sequence[str] | None, patient_id: uuid.UUID | None
) -> list[tuple[uuid.UUID, tuple[str, ...]]]:
    rows = conn.execute(
        "SELECT id, programs FROM patients WHERE cardinality(programs) > 0"
        " AND (%s::uuid IS NULL OR id = %s) AND (%s::text[] IS NULL OR programs[1] = ANY(%s))"
        " ORDER BY id",
        (patient_id, patient_id, programs, programs),
    ).fetchall()
    return [(row[0], tuple(row[1])) for row in rows]


def _readings(
    conn: psycopg.Connection[Any],
    patient_id: uuid.UUID,
    vitals: Sequence[str],
    since: datetime,
    until: datetime,
) -> list[Reading]:
    rows = conn.execute(
        "SELECT patient_id, device_id, msg_id, type, time, value, unit, original_value,"
        " original_unit, received_at, on_oxygen, consciousness FROM readings"
        " WHERE patient_id = %s AND type = ANY(%s) AND time >= %s AND time <= %s ORDER BY time",
        (patient_id, list(vitals), since, until),
    ).fetchall()
    return [Reading(*row) for row in rows]


def _findings(
    conn: psycopg.Connection[Any], patient_id: uuid.UUID, until: datetime, quiet: frozenset[str]
) -> list[tuple[str, str, datetime]]:
    rows = conn.execute(
        "SELECT rule_id, state, evidence_time FROM findings WHERE patient_id = %s"
        " AND retracted_at IS NULL AND evidence_time <= %s AND NOT (rule_id = ANY(%s))"
        " ORDER BY evidence_time, rule_id, state",
        (patient_id, until, list(quiet)),
    ).fetchall()
    return [(row[0], row[1], row[2]) for row in rows]
