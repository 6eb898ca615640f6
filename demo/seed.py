"""Seed: a database that looks like weeks of a running service, for the notebooks and CI.

``homecare seed`` (and ``homecare notebooks run --seed-demo``) fills the configured database
with a labelled simulated cohort *as the live system would have recorded it*: readings stored
by the real ingest code, findings by the real rules worker, alerts by the real alerts stage,
and a simulated care team (``demo.nurse_model``) acknowledging and resolving them through
``AlertService`` — so ``alert_events``, escalations and automatic resolutions are the stage's
own, at the simulated times they would have happened.

How, in simulated time (every stage takes its clock from the seeder):

1. **Plan.** The simulator's messages go through the ingest code (``parse_message`` →
   ``write_batch``, received when sent — as ``homecare evaluate`` loads a cohort, faster than
   MQTT) inside a transaction that is rolled back; each patient is evaluated once over the
   whole window with the shipped packs, which says *when* each finding would have appeared
   live: when its deciding reading arrived (the hour, for missing data).
2. **Replay.** A queue of events in time order: at each of those instants, the messages sent by
   then are ingested, the rules worker evaluates that patient (``RulesWorker.evaluate`` with
   the clock at the instant) and the alerts stage takes its findings
   (``AlertService.process_patient``); each alert that opens gets the nurse model's
   acknowledgement and resolution as later events; escalation deadlines and the auto-resolve
   hold become housekeeping events (``AlertService.housekeeping``) at their due times.
   Evaluating a patient only at the instants that change something is what makes this fast —
   the rules are deterministic in event time, so the findings are those a worker evaluating
   every arrival would store (a backlog can still make a finding appear and be retracted, as
   live) — and the alerts' times are exact, not rounded to a step.
3. **Finish.** At the window's end every patient is evaluated and housekept once more, the
   aggregates are refreshed, and the labels are written for the detection notebook.

Measured on the project's 2-core machine (50 patients × 60 days, ~23,000 readings): see
``homecare seed``'s report line; nurse actions that land after the window's end are dropped.
"""

from __future__ import annotations

import heapq
import itertools
import json
import logging
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg

from homecare import catalogue, store
from homecare.alerts import AlertChange, AlertsConfig, AlertService, AlertsWorker, InvalidTransition
from homecare.demo.nurse_model import NurseAction, NurseModel
from homecare.demo.provision import provision_simulation
from homecare.devices.sim import SimConfig, SimMessage, Simulation
from homecare.ingest import Delivery, ParseLimits, parse_message, write_batch
from homecare.rules import RulesConfig, RulesWorker, evaluate_patient, history_needed, load_packs
from homecare.rules.harness import parse_labels
from homecare.rules.repository import load_context, load_readings

__all__ = ["SeedConfig", "SeedReport", "seed_database"]

log = logging.getLogger(__name__)

_BATCH = 1000
# Event kinds at one instant run in this order: new data first, then timers, then people.
_RULES, _HOUSEKEEPING, _NURSE = 0, 1, 2


@dataclass(frozen=True)
class SeedConfig:
    """SeedConfig: which cohort to seed and where to write its labels."""

    database_url: str
    patients: int = 50
    days: float = 60
    seed: int = 1
    end: datetime = datetime(2026, 11, 1, tzinfo=UTC)
    labels_path: Path | None = None
    programs: tuple[str, ...] = catalogue.PROGRAMS
    id_prefix: str = "sim-"
    late_after: timedelta = timedelta(hours=6)

    def simulation(self) -> Simulation:
        """simulation plans the cohort (a new object each time: one stream per object)."""
        return Simulation(
            SimConfig(
                patients=self.patients,
                days=self.days,
                seed=self.seed,
                end=self.end,
                programs=self.programs,
                id_prefix=self.id_prefix,
            )
        )


@dataclass
class SeedReport:
    """SeedReport counts what the seeding stored and did."""

    patients: int = 0
    readings: int = 0
    findings: int = 0
    alerts: int = 0
    acknowledged: int = 0
    resolved_by_nurses: int = 0
    stale_actions: int = 0
    housekeeping_runs: int = 0
    evaluations: int = 0
    seconds: float = 0.0
    labels_path: Path | None = None

    def line(self) -> str:
        """line is the one-line summary ``homecare seed`` prints."""
        return (
            f"seeded {self.patients} patients: {self.readings:,} readings, {self.findings:,}"
            f" findings, {self.alerts:,} alerts ({self.acknowledged:,} acknowledged and"
            f" {self.resolved_by_nurses:,} resolved by the simulated team) in"
            f" {self.seconds:.1f} s ({self.evaluations:,} rule evaluations)"
        )


class AlreadySeeded(store.Rejected):
    """AlreadySeeded: the database already holds patients of this simulation prefix."""

    def __init__(self, prefix: str) -> None:
        super().__init__(f"the database already holds simulated patients '{prefix}…'", None)


@dataclass
class _Clock:
    now: datetime

    def __call__(self) -> datetime:
        return self.now


@dataclass(order=True)
class _Event:
    at: datetime
    order: int
    seq: int
    action: Any = field(compare=False)


def seed_database(config: SeedConfig) -> SeedReport:
    """seed_database seeds the (migrated) database of ``config``; see the module docstring."""
    started = time.perf_counter()
    report = SeedReport()
    with store.connect(config.database_url, autocommit=True) as conn:
        taken = conn.execute(
            "SELECT 1 FROM patients WHERE display_name LIKE %s LIMIT 1",
            (config.id_prefix.replace("%", r"\%").replace("_", r"\_") + "%",),
        ).fetchone()
        if taken:
            raise AlreadySeeded(config.id_prefix)
        plan = config.simulation()
        report.patients = provision_simulation(conn, plan.enrolment())
        keys = {
            pid: name
            for pid, name in conn.execute(
                "SELECT id, display_name FROM patients WHERE display_name = ANY(%s)",
                ([p.key for p in plan.enrolment().patients],),
            )
        }
        instants, labels_document = _plan_instants(conn, config, plan, keys)
    if config.labels_path is not None:
        config.labels_path.parent.mkdir(parents=True, exist_ok=True)
        config.labels_path.write_text(json.dumps(labels_document), encoding="utf-8")
        report.labels_path = config.labels_path
    _Replay(config, keys, instants, labels_document, report).run()
    with store.connect(config.database_url, autocommit=True) as conn:
        store.refresh_aggregates(conn)
        counts = conn.execute(
            "SELECT (SELECT count(*) FROM readings WHERE patient_id = ANY(%(ids)s)),"
            " (SELECT count(*) FROM findings WHERE patient_id = ANY(%(ids)s)),"
            " (SELECT count(*) FROM alerts WHERE patient_id = ANY(%(ids)s))",
            {"ids": list(keys)},
        ).fetchone()
    assert counts is not None
    report.readings, report.findings, report.alerts = counts
    report.seconds = time.perf_counter() - started
    log.info("seeded", extra={"patients": report.patients, "alerts": report.alerts})
    return report


def _plan_instants(
    conn: psycopg.Connection[Any],
    config: SeedConfig,
    plan: Simulation,
    keys: dict[uuid.UUID, str],
) -> tuple[list[tuple[datetime, uuid.UUID]], dict[str, Any]]:
    """_plan_instants: (time, patient) pairs at which findings appear live, and the labels.

    The cohort is ingested and evaluated inside a transaction that is rolled back.
    """
    packs = load_packs()
    skew = RulesConfig(config.database_url).future_skew
    instants: set[tuple[datetime, uuid.UUID]] = set()
    with conn.transaction(force_rollback=True):
        for batch in _batches(plan.messages()):
            write_batch(conn, batch)
        start, end = plan.config.start - timedelta(days=1), plan.config.end + skew
        for pid in keys:
            context = load_context(conn, pid)
            assert context is not None
            history = history_needed(packs, context.programs)
            readings = load_readings(conn, pid, start - history, end)
            for finding in evaluate_patient(
                packs, context, readings, start, end, {}, config.late_after
            ):
                instants.add((max(finding.received_at, finding.evidence_time), pid))
    return sorted(instants), plan.labels()


def _batches(messages: Iterator[SimMessage]) -> Iterator[list[Any]]:
    """_batches parses messages as the ingest would have, each received when it was sent."""
    limits = ParseLimits()
    batch = []
    for message in messages:
        batch.append(_parse(message, limits))
        if len(batch) >= _BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


def _parse(message: SimMessage, limits: ParseLimits) -> Any:
    received = datetime.fromtimestamp(message.sent_ms / 1000, UTC)
    topic = f"homecare/v1/devices/{message.device_id}/readings"
    return parse_message(Delivery(topic, message.payload, received), limits)


class _Replay:
    """_Replay runs the event queue of step 2 (module docstring) on one connection."""

    def __init__(
        self,
        config: SeedConfig,
        keys: dict[uuid.UUID, str],
        instants: list[tuple[datetime, uuid.UUID]],
        labels_document: dict[str, Any],
        report: SeedReport,
    ) -> None:
        self.config = config
        self.keys = keys
        self.report = report
        plan = config.simulation()
        self.end = plan.config.end
        self.clock = _Clock(plan.config.start)
        self.messages = _Lookahead(plan.messages())
        self.rules = RulesWorker(
            RulesConfig(
                config.database_url,
                late_after=config.late_after,
                tick_every=timedelta(0),
                clock=self.clock,
            )
        )
        alerts_config = AlertsConfig(config.database_url, clock=self.clock)
        self.alerts = AlertService(alerts_config)
        self.alerts_config = alerts_config
        labels = parse_labels(labels_document)
        self.nurses = NurseModel(
            config.seed, plan.config.timezone, labels, _glitches(labels_document)
        )
        self.queue: list[_Event] = []
        self.seq = itertools.count()
        self.housekeeping_at: set[datetime] = set()
        for at, pid in instants:
            self._push(at, _RULES, pid)

    def run(self) -> None:
        """run plays the queue to the window's end, then the final pass."""
        with store.connect(self.config.database_url, autocommit=True) as conn:
            while self.queue and self.queue[0].at <= self.end:
                event = heapq.heappop(self.queue)
                self.clock.now = event.at
                if event.order == _RULES:
                    self._ingest(conn, event.at)
                    self._evaluate(conn, event.action)
                elif event.order == _HOUSEKEEPING:
                    self.alerts.housekeeping(conn)
                    self.report.housekeeping_runs += 1
                else:
                    self._act(conn, event.action)
            self.clock.now = self.end
            self._ingest(conn, self.end)
            self.rules.tick_if_due()
            self.report.evaluations += _drain(self.rules)
            AlertsWorker(self.alerts_config).run_once(conn)
            self.alerts.housekeeping(conn)
        self.rules.close()

    def _ingest(self, conn: psycopg.Connection[Any], until: datetime) -> None:
        for batch in _batches(self.messages.until(until.timestamp() * 1000)):
            write_batch(conn, batch)

    def _evaluate(self, conn: psycopg.Connection[Any], patient_id: uuid.UUID) -> None:
        # Announce patients not evaluated up to now (what the worker's missing-data tick does),
        # so a patient with no new readings is evaluated too.
        self.rules.tick_if_due()
        if self.rules.evaluate(patient_id):
            self.report.evaluations += 1
        changes = self.alerts.process_patient(conn, patient_id)
        for change in changes or []:
            self._follow(change)

    def _follow(self, change: AlertChange) -> None:
        alert = change.alert
        if change.kind == "opened":
            ack, resolve = self.nurses.respond(
                alert.id,
                self.keys.get(alert.patient_id),
                alert.severity,
                change.page,
                alert.opened_at,
                alert.evidence_time,
            )
            self._push(ack.at, _NURSE, ack)
            self._push(resolve.at, _NURSE, resolve)
        elif change.kind == "refired" and change.page:
            again = self.nurses.reacknowledge(alert.id, alert.severity, change.at)
            self._push(again.at, _NURSE, again)
        if alert.escalate_at is not None:
            deadline = self.alerts_config.deadline(alert.severity) or timedelta(0)
            for step in range(len(self.alerts_config.chain)):
                self._housekeeping(alert.escalate_at + step * deadline)
        if change.kind == "cleared" and alert.cleared_at is not None:
            self._housekeeping(max(change.at, alert.cleared_at + self.alerts_config.hold))

    def _housekeeping(self, at: datetime) -> None:
        at = at + timedelta(seconds=1)  # just after the deadline, as a periodic job would be
        if at not in self.housekeeping_at:
            self.housekeeping_at.add(at)
            self._push(at, _HOUSEKEEPING, None)

    def _act(self, conn: psycopg.Connection[Any], action: NurseAction) -> None:
        try:
            if action.outcome is None:
                self.alerts.acknowledge(conn, action.alert_id, action.actor)
                self.report.acknowledged += 1
            else:
                self.alerts.resolve(conn, action.alert_id, action.actor, action.outcome)
                self.report.resolved_by_nurses += 1
        except InvalidTransition:
            # The alert moved on before the nurse got to it (resolved by itself, acknowledged
            # already): what a nurse opening a stale queue entry finds. Nothing to do.
            self.report.stale_actions += 1

    def _push(self, at: datetime, order: int, action: Any) -> None:
        heapq.heappush(self.queue, _Event(at, order, next(self.seq), action))


def _drain(worker: RulesWorker) -> int:
    total = 0
    while done := worker.run_once():
        total += done
    return total


def _glitches(document: dict[str, Any]) -> dict[str, list[datetime]]:
    """_glitches: per patient key, the times of stored glitch readings of their devices."""
    owners: dict[str, list[tuple[datetime, datetime | None, str]]] = {}
    for a in document["assignments"]:
        until = datetime.fromisoformat(a["to"]) if a["to"] else None
        owners.setdefault(a["device_id"], []).append(
            (datetime.fromisoformat(a["from"]), until, a["patient_id"])
        )
    found: dict[str, list[datetime]] = {}
    for fault in document["faults"]:
        if fault["kind"] != "glitch" or fault.get("expected") != "stored":
            continue
        at = datetime.fromisoformat(fault["time"])
        for start, until, patient in owners.get(fault["device_id"], []):
            if start <= at and (until is None or at < until):
                found.setdefault(patient, []).append(at)
    return found


class _Lookahead:
    """_Lookahead: an iterator of messages that can show the next one without taking it."""

    def __init__(self, messages: Iterator[SimMessage]) -> None:
        self._messages = messages
        self._next: SimMessage | None = next(messages, None)

    def until(self, limit_ms: float) -> Iterator[SimMessage]:
        """until takes the messages sent at or before ``limit_ms``, leaving the rest."""
        while self._next is not None and self._next.sent_ms <= limit_ms:
            yield next(self)

    def __iter__(self) -> _Lookahead:
        return self

    def __next__(self) -> SimMessage:
        if self._next is None:
            raise StopIteration
        current = self._next
        self._next = next(self._messages, None)
        return current
