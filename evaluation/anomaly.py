"""Anomaly evaluation: the anomaly rules scored with their models available as they would be live.

Live, a patient's anomaly models come from the model registry: a cohort model of their program
judges them from enrolment, and their personal model, retrained on a schedule from their own
history, takes over once that history suffices. The harness simulates that schedule in event
time, in process (``TrainingSchedule``), so no figure uses a model fitted on readings from
after the instant it judges:

- **cohort models**, one per combination of programs, fitted on the *tuning* cohorts only
  (``CohortPool``): a held-out cohort's readings never shape a model that judges it;
- **personal models**, refitted every ``every`` from the patient's own features of the last
  ``history`` before that time, leaving out the instants within ``flag_before`` /
  ``flag_after`` of an alert the rules raised (what a live system knows: alerts, not the
  simulator's labels), so a deterioration the rules saw does not become the patient's usual;
  in force from the refit time on.

Three rule sets come out of the packs: *rules only* (every rule but the anomaly rules, and any
rule referring to one), *anomaly only* (the anomaly rules, behind the common pack's artefact
screen) and *rules + anomaly* (the packs as shipped, with models). Every result is a pure
function of the cohort, the pool and the schedule: reruns give the same figures.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np

from homecare.ingest import Reading
from homecare.rules import PackSet, PatientContext, evaluate_patient
from homecare.rules.anomaly import (
    DETECTORS,
    Detector,
    Features,
    HistoryPolicy,
    build_features,
    fit_cohort,
    fit_personal,
    vitals_for,
)
from homecare.rules.harness import Alert, Group, Labels, score
from homecare.rules.kinds.base import ModelVersion
from homecare.rules.packs import Pack

__all__ = [
    "ANOMALY_ONLY",
    "BOTH",
    "CHOSEN",
    "RULES_ONLY",
    "SWEEP",
    "AnomalyEvaluation",
    "CohortPool",
    "TrainingSchedule",
    "flagged_periods",
    "split_packs",
]

RULES_ONLY = "rules only"
ANOMALY_ONLY = "anomaly only"
BOTH = "rules + anomaly"
# The rules of rules + anomaly without its anomaly rules, with the models in force (the rules
# that yield to a model stand down): the other half of the sweep's union.
_YIELDED = "rules beside the models"
_LATE_AFTER = timedelta(hours=6)
_NOTE_KINDS = frozenset({"missing", "adherence"})
_FOREVER = datetime(1970, 1, 1, tzinfo=UTC)
# The operating point: the packs' own thresholds (chosen on the tuning set).
CHOSEN = 1.0
# Threshold multipliers of the operating-point sweep (1.0: the packs' own thresholds).
SWEEP = (0.8, 1.0, 1.25, 1.6)


def split_packs(packs: PackSet) -> dict[str, PackSet]:
    """split_packs: the three rule sets of the packs — rules only, anomaly only, both."""

    def keep(pack: Pack, chosen: Iterable[Any]) -> Pack:
        return pack.model_copy(update={"rules": tuple(chosen)})

    anomaly_ids = {r.id for p in packs.packs.values() for r in p.rules if r.kind == "anomaly"}
    rules_only = {
        name: keep(
            pack,
            (r for r in pack.rules if r.kind != "anomaly" and not set(r.refers_to()) & anomaly_ids),
        )
        for name, pack in packs.packs.items()
    }
    anomaly_only = {
        name: keep(pack, (r for r in pack.rules if r.kind == "anomaly" or r.screens))
        for name, pack in packs.packs.items()
    }
    return {
        RULES_ONLY: PackSet(rules_only),
        ANOMALY_ONLY: PackSet(anomaly_only),
        BOTH: packs,
    }


def flagged_periods(
    alerts: Iterable[Alert], before: timedelta, after: timedelta
) -> list[tuple[datetime, datetime]]:
    """flagged_periods: [alert − before, alert + after] around each alert, merged, in order."""
    periods: list[tuple[datetime, datetime]] = []
    for alert in sorted(alerts, key=lambda a: a.time):
        low, high = alert.time - before, alert.time + after
        if periods and low <= periods[-1][1]:
            periods[-1] = (periods[-1][0], max(periods[-1][1], high))
        else:
            periods.append((low, high))
    return periods


@dataclass(frozen=True)
class TrainingSchedule:
    """TrainingSchedule: when personal models are refitted and on what."""

    detector: str = "directed"
    every: timedelta = timedelta(days=7)
    history: timedelta = timedelta(days=28)
    policy: HistoryPolicy = field(default_factory=HistoryPolicy)
    flag_before: timedelta = timedelta(days=2)
    flag_after: timedelta = timedelta(days=3)

    def make(self) -> Detector:
        (kind,) = [d for d in DETECTORS if d.kind == self.detector]
        return kind()

    def personal(
        self,
        readings: Sequence[Reading],
        programs: Sequence[str],
        flagged: Sequence[tuple[datetime, datetime]],
        until: datetime,
    ) -> list[ModelVersion]:
        """personal: the patient's personal model versions up to ``until``, each fitted at a
        refit time from the instants of ``history`` before it outside the flagged periods."""
        if not readings:
            return []
        vitals = vitals_for(programs)
        features = build_features(readings, vitals)
        if not len(features):
            return []
        detector = self.make()
        first = readings[0].time if readings else until
        day = datetime.fromtimestamp(first.timestamp() // 86400 * 86400, UTC)
        at = day + self.every
        versions = []
        while at <= until:
            rows = training_rows(features, at - self.history, at, flagged)
            fitted = fit_personal(detector, rows, self.policy)
            if fitted is not None:
                versions.append(ModelVersion(at, fitted.info, fitted))
            at += self.every
        return versions


def training_rows(
    features: Features, start: datetime, end: datetime, flagged: Sequence[tuple[datetime, datetime]]
) -> Features:
    """training_rows: the instants in [start, end) outside every flagged period."""
    times = features.times
    keep = (times >= start.timestamp()) & (times < end.timestamp())
    for low, high in flagged:
        keep &= ~((times >= low.timestamp()) & (times <= high.timestamp()))
    index = np.flatnonzero(keep)
    return Features(
        features.vitals, features.columns, times[index], features.values[index],
        features.fresh[index],
    )  # fmt: skip


@dataclass(frozen=True)
class CohortPool:
    """CohortPool: the tuning cohorts' features per program, to fit cold-start models from.

    Built once from the tuning cohorts (the first ``days`` of each patient's readings, at most
    ``per_program`` patients a program), then cohort models are fitted from it per
    combination of programs: pure and small enough to send to every worker process."""

    by_program: Mapping[str, tuple[Features, ...]]

    @staticmethod
    def build(
        patients: Iterable[tuple[Sequence[str], Sequence[Reading]]],
        days: float = 28.0,
        per_program: int = 150,
    ) -> CohortPool:
        pool: dict[str, list[Features]] = {}
        for programs, readings in patients:
            if not readings:
                continue
            cut = readings[0].time + timedelta(days=days)
            early = [r for r in readings if r.time < cut]
            for program in programs:
                chosen = pool.setdefault(program, [])
                if len(chosen) < per_program:
                    chosen.append(build_features(early, vitals_for([program])))
        return CohortPool({p: tuple(f) for p, f in sorted(pool.items())})

    @staticmethod
    def merge(parts: Iterable[CohortPool], per_program: int = 150) -> CohortPool:
        """merge: the pools of several cohorts, in the order given, capped per program."""
        pool: dict[str, list[Features]] = {}
        for part in parts:
            for program, features in part.by_program.items():
                chosen = pool.setdefault(program, [])
                chosen.extend(features[: max(per_program - len(chosen), 0)])
        return CohortPool({p: tuple(f) for p, f in sorted(pool.items())})

    def model(self, detector: Detector, programs: Sequence[str]) -> Detector | None:
        """model: ``detector`` fitted on the pooled features of these programs' patients."""
        parts = [f for p in sorted(programs) for f in self.by_program.get(p, ())]
        if not parts:
            return None
        return fit_cohort(detector, parts)


class AnomalyEvaluation:
    """AnomalyEvaluation: alert sources for the three rule sets, with scheduled models.

    Each patient is evaluated once per rule set and threshold multiplier and memoised, so
    ``score_cohort``'s alert sources and the operating-point sweep share the work.
    """

    def __init__(
        self, packs: PackSet, pool: CohortPool, schedule: TrainingSchedule | None = None
    ) -> None:
        self.sets = split_packs(packs)
        self.pool = pool
        self.schedule = schedule or TrainingSchedule()
        self.anomaly_rules = {
            r.id: r.threshold for _, r in self.sets[ANOMALY_ONLY].rules_for(_all(packs))
            if r.kind == "anomaly"
        }  # fmt: skip
        self._notes = frozenset(
            r.id for p in packs.packs.values() for r in p.rules if r.kind in _NOTE_KINDS
        )
        self._cohort: dict[tuple[str, ...], Detector | None] = {}
        self._contexts: dict[str, PatientContext] = {}
        self._alerts: dict[tuple[str, str, float], list[Alert]] = {}

    def source(self, label: str) -> Any:
        """source: the alert source (``evaluation.cohorts.AlertSource``) of one rule set."""

        def alerts(patient: Any, labels: Labels) -> list[Alert]:
            return self.alerts(patient, labels, label)

        return alerts

    def alerts(self, patient: Any, labels: Labels, label: str, scale: float = 1.0) -> list[Alert]:
        key = (patient.key, label, scale)
        if key not in self._alerts and label == BOTH and not self._referring():
            # Findings of one rule do not depend on another's unless it refers to it, so the
            # packs with models are exactly the rules beside the models and the anomaly rules.
            self._alerts[key] = sorted(
                self.alerts(patient, labels, _YIELDED)
                + self.alerts(patient, labels, ANOMALY_ONLY, scale),
                key=lambda a: (a.time, a.rule_id),
            )
        if key not in self._alerts:
            context = patient.context if label == RULES_ONLY else self.context(patient, labels)
            packs = self.sets[RULES_ONLY if label == _YIELDED else label]
            if scale != 1.0:
                context = PatientContext(
                    context.patient_id, context.programs, context.hypercapnic,
                    {rule: [(_FOREVER, t * scale)] for rule, t in self.anomaly_rules.items()},
                    context.models,
                )  # fmt: skip
            self._alerts[key] = self._evaluate(packs, context, patient, labels)
        return self._alerts[key]

    def context(self, patient: Any, labels: Labels) -> PatientContext:
        """context: the patient's context with the models the schedule puts in force."""
        if patient.key not in self._contexts:
            rules = self.alerts(patient, labels, RULES_ONLY)
            flagged = flagged_periods(
                [a for a in rules if not a.note and a.severity != "low"],
                self.schedule.flag_before,
                self.schedule.flag_after,
            )
            programs = tuple(sorted(patient.context.programs))
            if programs not in self._cohort:
                self._cohort[programs] = self.pool.model(self.schedule.make(), programs)
            cohort = self._cohort[programs]
            versions = [] if cohort is None else [ModelVersion(_FOREVER, cohort.info, cohort)]
            versions += self.schedule.personal(patient.readings, programs, flagged, labels.end)
            base = patient.context
            self._contexts[patient.key] = PatientContext(
                base.patient_id, base.programs, base.hypercapnic, base.overrides,
                {self.schedule.detector: tuple(versions)},
            )  # fmt: skip
        return self._contexts[patient.key]

    def _referring(self) -> list[str]:
        """_referring: the rules that refer to an anomaly rule (none in the shipped packs)."""
        return [
            r.id for _, r in self.sets[BOTH].rules_for(_all(self.sets[BOTH]))
            if set(r.refers_to()) & set(self.anomaly_rules)
        ]  # fmt: skip

    def _evaluate(
        self, packs: PackSet, context: PatientContext, patient: Any, labels: Labels
    ) -> list[Alert]:
        findings = evaluate_patient(
            packs, context, list(patient.readings), labels.start, labels.end, {}, _LATE_AFTER
        )
        return [
            Alert(patient.key, f.rule_id, f.severity, f.evidence_time, f.rule_id in self._notes)
            for f in findings
            if f.state == "active"
        ]

    def sweep(self, patients: Sequence[Any], labels: Labels) -> dict[str, dict[float, Group]]:
        """sweep: overall figures of anomaly only and rules + anomaly at each threshold
        multiplier of ``SWEEP``. Rules + anomaly is the union of the two sets' alerts, which
        is what the packs evaluate to while no rule refers to an anomaly rule (checked)."""
        referring = self._referring()
        if referring:
            raise ValueError(
                f"{referring[0]} refers to an anomaly rule: the sweep's union is wrong"
            )
        out: dict[str, dict[float, Group]] = {ANOMALY_ONLY: {}, BOTH: {}}
        for scale in SWEEP:
            anomaly: list[Alert] = []
            rules: list[Alert] = []
            for patient in patients:
                anomaly += self.alerts(patient, labels, ANOMALY_ONLY, scale)
                rules += self.alerts(patient, labels, _YIELDED)
            out[ANOMALY_ONLY][scale] = score(anomaly, labels)[0]
            out[BOTH][scale] = score(rules + anomaly, labels)[0]
        return out


def _all(packs: PackSet) -> tuple[str, ...]:
    return tuple(name for name in packs.packs if name != "common")
