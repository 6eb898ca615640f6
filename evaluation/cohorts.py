"""Evaluate: detection performance of the rules on a labelled simulated cohort.

``homecare evaluate`` runs it and prints the tables.
The cohort goes through the real ingest code (parse, validate, attribute, store) into a fresh
database, then every patient's stored readings are evaluated by the real rule engine — the same
pure function the live path and ``homecare replay`` run — once with the shipped packs and once
with each baseline, and the findings are scored against the simulator's labels
(``rules.harness``). Baselines, evaluated in the same run:

- *classic weight rule* (heart failure): weight up > 2 lb (0.91 kg) in a day or > 5 lb (2.27 kg)
  in a week, the rule of thumb whose sensitivity trials put around 20 %;
- *single readings*: plain population thresholds that fire on one reading — every threshold of
  the shipped packs with its persistence removed (building blocks included, on their own) and
  NEWS2 on its published bands without the patient's usual score; no baseline, deviation or
  combination rule.

and one bound, which is not a rule set: the *oracle* alerts, knowing the labels, at the first
stored reading after each episode's onset of a type the episode moves (its labelled
``expected_signals``: a thermometer reading tells nothing of an oncology symptom flare). No
detector that waits for the deterioration to show in the readings can do better, so its share
caught in time is the ceiling the simulated cohort allows: an episode that reaches the ER within
a day of its onset, or whose patient sent no reading of a moved vital in between, cannot be
caught 24 h ahead by any rule.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg

from homecare import store
from homecare.devices.sim import SimConfig, Simulation
from homecare.ingest import Delivery, ParseLimits, Reading, parse_message, write_batch
from homecare.rules import PackSet, PatientContext, evaluate_patient, load_packs
from homecare.rules.harness import Alert, Group, Labels, parse_labels, score, score_kinds
from homecare.rules.packs import News2Rule, Pack, Persistence, ThresholdRule
from homecare.rules.repository import load_readings

__all__ = [
    "AlertSource",
    "EvaluationResult",
    "StoredCohort",
    "StoredPatient",
    "baseline_packs",
    "evaluate_cohort",
    "score_cohort",
    "store_cohort",
]

_BATCH = 1000
ORACLE = "oracle: first reading of a moved vital after onset (upper bound)"
VISIBLE = "oracle: first moved reading outside the patient's own 14-day range"
_OWN_RANGE = timedelta(days=14)
_LATE_AFTER = timedelta(hours=6)
CANDIDATE = "candidate packs"


@dataclass
class EvaluationResult:
    """EvaluationResult holds, per rule set, the (overall, by program, by rule) figures."""

    labels: Labels
    results: dict[str, tuple[Group, dict[str, Group], dict[str, Group]]]
    readings: int
    kinds: dict[str, dict[str, Group]]  # rule set -> episode kind -> figures


def baseline_packs(shipped: PackSet) -> dict[str, PackSet]:
    """baseline_packs builds the comparison rule sets from the shipped packs."""
    classic = Pack.model_validate(
        {
            "pack": "heart_failure",
            "version": 1,
            "rules": [
                {
                    "id": "classic.weight_2lb_day",
                    "kind": "baseline_change",
                    "type": "body_weight",
                    "change": 0.907,
                    "over": "20h",
                    "baseline": "28h",
                    "min_baseline_readings": 1,
                    "severity": "high",
                    "summary": "Weight up more than 2 lb in a day",
                },
                {
                    "id": "classic.weight_5lb_week",
                    "kind": "baseline_change",
                    "type": "body_weight",
                    "change": 2.268,
                    "over": "6d",
                    "baseline": "2d",
                    "min_baseline_readings": 1,
                    "severity": "high",
                    "summary": "Weight up more than 5 lb in a week",
                },
            ],
        }
    )
    single: dict[str, Pack] = {}
    for name, pack in shipped.packs.items():
        rules: list[ThresholdRule | News2Rule] = []
        for rule in pack.rules:
            if isinstance(rule, ThresholdRule):
                rules.append(rule.model_copy(update={"persistence": Persistence(), "alert": True}))
            elif isinstance(rule, News2Rule):
                rules.append(rule.model_copy(update={"personal": None}))
        single[name] = pack.model_copy(update={"rules": tuple(rules)})
    return {
        "classic weight rule (heart failure)": PackSet({"heart_failure": classic}),
        "single readings, no persistence": PackSet(single),
    }


@dataclass(frozen=True)
class StoredPatient:
    """StoredPatient: one simulated patient as the store gave it back, ready to be scored."""

    key: str
    context: PatientContext
    readings: tuple[Reading, ...]


@dataclass(frozen=True)
class StoredCohort:
    """StoredCohort: a labelled cohort after the real ingest code stored it.

    Scoring needs only this, so it can be kept on disk (``evaluation.cohort_cache``) and scored
    again against other rule packs without simulating and storing it again.
    """

    labels: Labels
    patients: tuple[StoredPatient, ...]
    readings: int


# A rule set that is not a rule pack (an anomaly detector, or detectors beside packs): given a
# stored patient and the cohort's labels (for the window only), the alerts it would have raised.
AlertSource = Callable[[StoredPatient, Labels], Iterable[Alert]]
_NOTE_KINDS = frozenset({"missing", "adherence"})


def store_cohort(
    admin_url: str, patients: int, days: float, seed: int, end: datetime, variant: str = "default"
) -> StoredCohort:
    """store_cohort simulates one labelled cohort (of a simulator ``variant``), stores it in a
    fresh database through the ingest code, and reads every patient's readings back as the
    rules would."""
    config = SimConfig(patients=patients, days=days, seed=seed, end=end, variant=variant)
    simulation = Simulation(config)
    name = f"hc_eval_{uuid.uuid4().hex[:10]}"
    url = _create_database(admin_url, name)
    try:
        with store.connect(url, autocommit=True) as conn:
            store.migrate(conn)
            keys = _enrol(conn, simulation)
            stored = _ingest(conn, simulation)
            labels = parse_labels(simulation.labels())
            cohort = tuple(
                StoredPatient(
                    key,
                    _context(conn, patient_id),
                    tuple(
                        load_readings(
                            conn, patient_id, labels.start - timedelta(days=30), labels.end
                        )
                    ),
                )
                for patient_id, key in keys.items()
            )
        return StoredCohort(labels, cohort, stored)
    finally:
        _drop_database(admin_url, name)


def score_cohort(
    cohort: StoredCohort, candidates: Mapping[str, PackSet | AlertSource] | None = None
) -> EvaluationResult:
    """score_cohort runs the shipped packs, each candidate rule set (a pack set, or any other
    source of alerts), the baselines and the oracle over a stored cohort and scores their
    alerts against its labels."""
    shipped = load_packs()
    sets: dict[str, PackSet | AlertSource] = {
        "shipped packs": shipped,
        **(candidates or {}),
        **baseline_packs(shipped),
    }
    notes = {label: _note_rules(s) for label, s in sets.items() if isinstance(s, PackSet)}
    labels = cohort.labels
    alerts: dict[str, list[Alert]] = {label: [] for label in (*sets, ORACLE, VISIBLE)}
    for patient in cohort.patients:
        readings = list(patient.readings)
        for label, source in sets.items():
            if isinstance(source, PackSet):
                found = _alerts(source, patient.context, readings, patient.key, labels)
                alerts[label].extend(
                    Alert(a.patient, a.rule_id, a.severity, a.time, a.rule_id in notes[label])
                    for a in found
                )
            else:
                alerts[label].extend(source(patient, labels))
        alerts[ORACLE].extend(_oracle(readings, patient.key, labels))
        alerts[VISIBLE].extend(_visible_oracle(readings, patient.key, labels))
    results = {label: score(found, labels) for label, found in alerts.items()}
    kinds = {label: score_kinds(found, labels) for label, found in alerts.items()}
    return EvaluationResult(labels, results, cohort.readings, kinds)


def evaluate_cohort(
    admin_url: str,
    patients: int,
    days: float,
    seed: int,
    end: datetime,
    candidates: Mapping[str, PackSet | AlertSource] | None = None,
) -> EvaluationResult:
    """evaluate_cohort simulates, stores and scores one labelled cohort in a fresh database."""
    return score_cohort(store_cohort(admin_url, patients, days, seed, end), candidates)


def _note_rules(packs: PackSet) -> frozenset[str]:
    """_note_rules: the ids of the missing-data and adherence rules, whose findings are notes."""
    return frozenset(
        rule.id for pack in packs.packs.values() for rule in pack.rules if rule.kind in _NOTE_KINDS
    )


def _alerts(
    packs: PackSet, context: PatientContext, readings: list[Any], key: str, labels: Labels
) -> Iterator[Alert]:
    findings = evaluate_patient(packs, context, readings, labels.start, labels.end, {}, _LATE_AFTER)
    for finding in findings:
        if finding.state == "active":
            yield Alert(key, finding.rule_id, finding.severity, finding.evidence_time)


def _oracle(readings: list[Reading], key: str, labels: Labels) -> Iterator[Alert]:
    """_oracle alerts at each episode's first stored reading, at or after its onset, of a type
    the episode moves (any type if the labels name none)."""
    for episode in labels.episodes:
        if episode.patient != key:
            continue
        first = min(
            (
                r.time
                for r in readings
                if episode.onset <= r.time <= episode.er_visit
                and (not episode.signals or r.type in episode.signals)
            ),
            default=None,
        )
        if first is not None:
            yield Alert(key, "oracle.first_signal", "high", first)


def _visible_oracle(readings: list[Reading], key: str, labels: Labels) -> Iterator[Alert]:
    """_visible_oracle alerts at each episode's first reading, at or after its onset, of a moved
    vital whose value lies outside the range of the patient's own readings of that type in the
    14 days before the onset (a type with no such readings does not count).

    A reading inside the patient's own recent range looks like an ordinary day of theirs: a rule
    that paged on it would page on ordinary days too. So this is the ceiling for a detector that
    must stay quiet on ordinary days; not a strict bound, since a detector may add up several
    in-range moves, but a fairer one than the first reading after the onset, which counts an
    episode as caught when nothing measurable has changed yet.
    """
    for episode in labels.episodes:
        if episode.patient != key:
            continue
        ranges: dict[str, tuple[float, float]] = {}
        for r in readings:
            if episode.onset - _OWN_RANGE <= r.time < episode.onset:
                low, high = ranges.get(r.type, (r.value, r.value))
                ranges[r.type] = (min(low, r.value), max(high, r.value))
        first = min(
            (
                r.time
                for r in readings
                if episode.onset <= r.time <= episode.er_visit
                and (not episode.signals or r.type in episode.signals)
                and r.type in ranges
                and not ranges[r.type][0] <= r.value <= ranges[r.type][1]
            ),
            default=None,
        )
        if first is not None:
            yield Alert(key, "oracle.first_visible_signal", "high", first)


def _context(conn: psycopg.Connection[Any], patient_id: uuid.UUID) -> PatientContext:
    row = conn.execute(
        "SELECT programs, hypercapnic FROM patients WHERE id = %s", (patient_id,)
    ).fetchone()
    assert row is not None
    return PatientContext(patient_id, tuple(row[0]), bool(row[1]))


def _enrol(conn: psycopg.Connection[Any], simulation: Simulation) -> dict[uuid.UUID, str]:
    enrolment = simulation.enrolment()
    ids: dict[str, uuid.UUID] = {}
    with conn.transaction():
        for patient in enrolment.patients:
            ids[patient.key] = store.create_patient(
                conn,
                display_name=patient.key,
                programs=patient.programs,
                birth_date=patient.birth_date,
                hypercapnic=patient.hypercapnic,
            )
        for device_id, model in enrolment.devices:
            store.register_device(conn, device_id, model=model)
        for assignment in enrolment.assignments:
            store.assign_device(
                conn, assignment.device_id, ids[assignment.patient_key], assignment.since
            )
    return {patient_id: key for key, patient_id in ids.items()}


def _ingest(conn: psycopg.Connection[Any], simulation: Simulation) -> int:
    """_ingest stores every message as the live ingest would have, received when it was sent."""
    limits = ParseLimits()
    stored = 0
    batch = []
    for message in simulation.messages():
        received = datetime.fromtimestamp(message.sent_ms / 1000, UTC)
        topic = f"homecare/v1/devices/{message.device_id}/readings"
        batch.append(parse_message(Delivery(topic, message.payload, received), limits))
        if len(batch) >= _BATCH:
            stored += len(write_batch(conn, batch).stored)
            batch = []
    if batch:
        stored += len(write_batch(conn, batch).stored)
    return stored


def _create_database(admin_url: str, name: str) -> str:
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    return urlunsplit(urlsplit(admin_url)._replace(path=f"/{name}"))


def _drop_database(admin_url: str, name: str) -> None:
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
