"""Worker: evaluates patients announced in ``reading_changes`` and records their findings.

Each patient is evaluated in one transaction holding an advisory lock on that patient, from the
earliest new event time to now, and the stored findings in that span are reconciled with the
result. So several workers (beside several ingest workers) can run at once: they split patients
between them, never evaluate one patient twice at the same time, and whichever runs, the stored
findings are the same. The packs are re-read when their files change; a bad edit is logged and
the packs in force stay.

An idle worker wakes on a NOTIFY: a trigger on ``reading_changes`` (migration 0007) sends
``homecare_reading_changes`` when an announcement commits, and the worker LISTENs on a
connection of its own. Polling alone cost up to ``poll_s`` (0.5 s) per alert, the largest share
of the alert latency measured by ``bench/alert_latency.py``; the poll stays as the fallback, so
a notify lost with a dropped connection delays an evaluation by at most ``poll_s``.

Each worker keeps the readings it loaded per patient for its next pass (``rules.window_cache``):
the weeks of lookback are read once, then only what is new, unless another worker evaluated the
patient in between.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg

from homecare import store
from homecare.ingest import Reading
from homecare.rules import repository
from homecare.rules.evaluate import evaluate_patient, history_needed
from homecare.rules.models import ModelLoader
from homecare.rules.packs import DEFAULT_PACKS, PackError, PackSet, load_packs
from homecare.rules.window_cache import WindowCache

__all__ = ["RulesConfig", "RulesWorker"]

log = logging.getLogger(__name__)

# The channel migration 0007's trigger on reading_changes notifies.
WAKEUP_CHANNEL = "homecare_reading_changes"
# While waiting for a notify, ``stop`` is checked this often (a notify itself wakes at once).
_STOP_CHECK_S = 0.2


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class RulesConfig:
    """RulesConfig is what one rules worker needs."""

    database_url: str
    packs_dir: Path = DEFAULT_PACKS
    late_after: timedelta = timedelta(hours=6)
    future_skew: timedelta = timedelta(minutes=5)
    poll_s: float = 0.5
    batch_patients: int = 200
    tick_every: timedelta = timedelta(minutes=15)
    clock: Callable[[], datetime] = field(default=_utc_now)


@dataclass
class RulesStats:
    """RulesStats counts evaluations and findings (for logs and the demo)."""

    evaluations: int = 0
    findings_inserted: int = 0
    findings_retracted: int = 0
    skipped_locked: int = 0


class RulesWorker:
    """RulesWorker drains the outbox of changed patients until stopped."""

    def __init__(self, config: RulesConfig) -> None:
        self.config = config
        self.packs: PackSet = load_packs(config.packs_dir)
        self.stats = RulesStats()
        self.windows = WindowCache()
        self.models = ModelLoader()
        self._packs_mtime = self._mtime()
        self._conn: psycopg.Connection[Any] | None = None
        self._listener: psycopg.Connection[Any] | None = None
        self._last_tick = datetime.min.replace(tzinfo=UTC)

    def run(self, stop: threading.Event) -> None:
        """run evaluates announced patients until ``stop`` is set."""
        store.wait_for_database(self.config.database_url, 20, "homecare-rules")
        log.info("rules worker running", extra={"packs": sorted(self.packs.packs)})
        while not stop.is_set():
            try:
                # LISTEN before looking, so an announcement committed during the pass still wakes
                # the wait that follows it.
                self._listening()
                self.reload_if_changed()
                self.tick_if_due()
                if self.run_once() == 0:
                    self.wait_for_changes(stop)
            except psycopg.Error as exc:
                log.warning("rules pass failed; retrying", extra={"error": str(exc)})
                self._drop_connection()
                stop.wait(min(5.0, self.config.poll_s * 4))
        self._drop_connection()

    def wait_for_changes(self, stop: threading.Event) -> bool:
        """wait_for_changes waits for a notify that readings were announced, at most ``poll_s``
        (the fallback poll) and not past ``stop``; True when a notify came."""
        listener = self._listening()
        deadline = time.monotonic() + self.config.poll_s
        while not stop.is_set():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            woke = False
            for _ in listener.notifies(timeout=min(remaining, _STOP_CHECK_S), stop_after=1):
                woke = True
            if woke:
                # One pass serves every notify already delivered (their transactions committed):
                # drop them rather than wake once for each. Not inside the loop above: the
                # generator holds the connection's lock until it ends.
                for _ in listener.notifies(timeout=0):
                    pass
                return True
        return False

    def run_once(self) -> int:
        """run_once evaluates up to ``batch_patients`` announced patients; returns how many."""
        conn = self._connection()
        evaluated = 0
        for patient_id in repository.pending_patients(conn, self.config.batch_patients):
            if self.evaluate(patient_id):
                evaluated += 1
        return evaluated

    def evaluate(self, patient_id: uuid.UUID) -> bool:
        """evaluate brings one patient's findings up to date; False if another worker has it."""
        conn = self._connection()
        now = self.config.clock()
        kept: tuple[list[Reading], datetime, datetime, int] | None = None
        with conn.transaction():
            claim = repository.claim_change(conn, patient_id)
            if claim is None:
                self.stats.skipped_locked += 1
                return False
            since, version = claim
            patient = repository.load_context(conn, patient_id)
            if patient is not None:
                # After the claim, in the pass's transaction: see rules.registry on why.
                patient = self.models.context(conn, patient)
                until = now + self.config.future_skew
                start = since - history_needed(self.packs, patient.programs)
                readings = self.windows.readings(
                    patient_id,
                    start,
                    since,
                    until,
                    repository.evaluations(conn, patient_id),
                    lambda a, b: repository.load_readings(conn, patient_id, a, b),
                )
                findings = evaluate_patient(
                    self.packs,
                    patient,
                    readings,
                    since,
                    until,
                    repository.initial_states(conn, patient_id, since),
                    self.config.late_after,
                )
                inserted, retracted = repository.reconcile(conn, patient_id, since, until, findings)
                evaluations = repository.set_progress(conn, patient_id, until)
                kept = (readings, start, until, evaluations)
                self.stats.findings_inserted += inserted
                self.stats.findings_retracted += retracted
            repository.release_change(conn, patient_id, version)
        # Only what a committed pass read is kept: after a rollback the old window, and the
        # evaluation count it was checked against, are both still true.
        if kept is not None:
            self.windows.keep(patient_id, *kept)
        else:
            self.windows.forget(patient_id)
        self.stats.evaluations += 1
        return True

    def tick_if_due(self) -> None:
        """tick_if_due re-announces patients not evaluated lately, for missing-data rules."""
        now = self.config.clock()
        if now - self._last_tick < self.config.tick_every:
            return
        self._last_tick = now
        with self._connection().transaction():
            repository.enqueue_stale(self._connection(), now - self.config.tick_every)

    def reload_if_changed(self) -> None:
        """reload_if_changed re-reads the packs when a file changed; keeps them if invalid."""
        mtime = self._mtime()
        if mtime == self._packs_mtime:
            return
        self._packs_mtime = mtime
        try:
            self.packs = load_packs(self.config.packs_dir)
        except PackError as exc:
            log.error("rule packs not reloaded; the previous ones stay", extra={"error": str(exc)})
            return
        versions = {name: pack.version for name, pack in self.packs.packs.items()}
        log.info("rule packs reloaded", extra={"versions": versions})

    def _mtime(self) -> float:
        files = list(self.config.packs_dir.glob("*.yaml"))
        return max((f.stat().st_mtime for f in files), default=0.0) + len(files)

    def _connection(self) -> psycopg.Connection[Any]:
        if self._conn is None or self._conn.closed:
            self._conn = store.connect(
                self.config.database_url, autocommit=True, application_name="homecare-rules"
            )
        return self._conn

    def _listening(self) -> psycopg.Connection[Any]:
        if self._listener is None or self._listener.closed:
            self._listener = store.connect(
                self.config.database_url, autocommit=True, application_name="homecare-rules-wake"
            )
            self._listener.execute(f"LISTEN {WAKEUP_CHANNEL}")
        return self._listener

    def _drop_connection(self) -> None:
        for conn in (self._conn, self._listener):
            if conn is not None:
                conn.close()
        self._conn = self._listener = None

    def close(self) -> None:
        """close releases the worker's connections."""
        self._drop_connection()


def wait_idle(worker: RulesWorker, timeout_s: float = 30) -> None:
    """wait_idle evaluates until nothing is pending (for tests and replays)."""
    deadline = time.monotonic() + timeout_s
    while worker.run_once() and time.monotonic() < deadline:
        pass
