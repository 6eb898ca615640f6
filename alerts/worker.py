"""Worker: one alerts process — findings in, housekeeping and delivery on a schedule.

The main loop LISTENs for ``homecare_alert_inbox`` (the findings trigger's wake-up) and applies
each announced patient's findings (``AlertService.process_patient``); it also polls every
``poll_s`` so a missed wake-up costs at most that. APScheduler runs two interval jobs in the same
process, each on its own connection: housekeeping (auto-resolution after the hold time, due
escalations, ended silences) and the notification dispatcher. Nothing a job needs lives in
memory: timers and retries are rows, claimed with ``SKIP LOCKED`` — so any number of alerts
processes may run, and a restarted one carries on where the stored state says.
"""

from __future__ import annotations

import logging
import threading
from datetime import UTC
from typing import Any

import psycopg
from apscheduler.schedulers.background import BackgroundScheduler

from homecare import store
from homecare.alerts import repository as repo
from homecare.alerts.config import AlertsConfig
from homecare.alerts.dispatch import Channel, Dispatcher
from homecare.alerts.mail import EmailChannel
from homecare.alerts.service import AlertService
from homecare.alerts.webhook import WebhookChannel
from homecare.rules.packs import PackError

__all__ = ["AlertsWorker", "channels_for"]

log = logging.getLogger(__name__)
_APP = "homecare-alerts"


def channels_for(config: AlertsConfig) -> dict[str, Channel]:
    """channels_for builds the configured channels by name."""
    channels: dict[str, Channel] = {}
    if config.webhooks:
        channels["webhook"] = WebhookChannel({w.name: w for w in config.webhooks})
    if config.smtp is not None:
        channels["email"] = EmailChannel(config.smtp)
    return channels


class AlertsWorker:
    """AlertsWorker runs the alerts stage until stopped."""

    def __init__(self, config: AlertsConfig) -> None:
        self.config = config
        self.service = AlertService(config)
        self.dispatcher = Dispatcher(config, channels_for(config))
        self.processed = 0
        self._local = threading.local()
        self._all_lock = threading.Lock()
        self._packs_signature = tuple(
            (f.name, f.stat().st_mtime_ns) for f in sorted(config.packs_dir.glob("*.yaml"))
        )
        self._all: list[psycopg.Connection[Any]] = []

    def run(self, stop: threading.Event) -> None:
        """run processes findings and runs the scheduled jobs until ``stop`` is set."""
        store.wait_for_database(self.config.database_url, 20, _APP)
        scheduler = BackgroundScheduler(timezone=UTC)
        every = self.config.housekeeping_every_s
        scheduler.add_job(self.housekeeping, "interval", seconds=every, max_instances=1)
        scheduler.add_job(self.dispatch, "interval", seconds=min(every, 1.0), max_instances=1)
        scheduler.add_job(self.reload_packs_if_changed, "interval", seconds=every, max_instances=1)
        scheduler.start()
        log.info("alerts worker running")
        try:
            while not stop.is_set():
                try:
                    with self._connect() as listener:
                        listener.execute("LISTEN homecare_alert_inbox")
                        conn = self._conn()
                        while not stop.is_set():
                            if self.run_once(conn) == 0:
                                for _ in listener.notifies(timeout=self.config.poll_s):
                                    break
                except psycopg.Error as exc:
                    log.warning("alerts pass failed; retrying", extra={"error": str(exc)})
                    self._drop()
                    stop.wait(min(5.0, self.config.poll_s * 4))
        finally:
            scheduler.shutdown(wait=True)
            self.close()

    def run_once(self, conn: psycopg.Connection[Any] | None = None) -> int:
        """run_once applies findings of up to ``batch_patients`` announced patients."""
        conn = conn or self._conn()
        done = 0
        for patient_id in repo.pending_patients(conn, self.config.batch_patients):
            if self.service.process_patient(conn, patient_id) is not None:
                done += 1
        self.processed += done
        return done

    def reload_packs_if_changed(self) -> bool:
        """reload_packs_if_changed follows edits of the rule packs (which rules may resolve by
        themselves), as the rules worker does; a pack that does not validate changes nothing."""
        files = sorted(self.config.packs_dir.glob("*.yaml"))
        signature = tuple((f.name, f.stat().st_mtime_ns) for f in files)
        if signature == self._packs_signature:
            return False
        self._packs_signature = signature  # a bad edit is reported once, not every pass
        try:
            self.service.reload_rules()
        except PackError as exc:
            log.error("rule packs not reloaded; the previous ones stay", extra={"error": str(exc)})
            return False
        return True

    def housekeeping(self) -> None:
        """housekeeping is the scheduled job: hold-time resolutions, escalations, silences."""
        try:
            self.service.housekeeping(self._conn())
        except psycopg.Error as exc:
            log.warning("alerts housekeeping failed", extra={"error": str(exc)})
            self._drop()

    def dispatch(self) -> None:
        """dispatch is the scheduled job delivering due notifications."""
        try:
            while self.dispatcher.run_once(self._conn()) >= self.config.dispatch_batch:
                pass
        except psycopg.Error as exc:
            log.warning("notification dispatch failed", extra={"error": str(exc)})
            self._drop()

    def _connect(self) -> psycopg.Connection[Any]:
        return store.connect(self.config.database_url, autocommit=True, application_name=_APP)

    def _conn(self) -> psycopg.Connection[Any]:
        # One connection per thread: the main loop and each scheduler thread.
        conn: psycopg.Connection[Any] | None = getattr(self._local, "conn", None)
        if conn is None or conn.closed:
            conn = self._connect()
            self._local.conn = conn
            with self._all_lock:
                self._all.append(conn)
        return conn

    def _drop(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    def close(self) -> None:
        """close releases every connection the worker opened."""
        with self._all_lock:
            for conn in self._all:
                conn.close()
            self._all.clear()
