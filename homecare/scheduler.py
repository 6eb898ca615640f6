"""Scheduler: the periodic jobs no worker runs itself — aggregate refresh, retention, and
training the anomaly models.

Escalation timers belong to the alerts worker and missing-data ticks to the rules worker (each
runs its own from stored state); what is left is store housekeeping and model training. Every
job is idempotent and safe to run in several processes at once (a refresh or a delete twice is
harmless; a second training run on the same rows registers nothing, ``rules.training``), so
``homecare scheduler`` needs no leader election. APScheduler runs the jobs; ``coalesce`` and
``max_instances=1`` stop a slow job from piling up behind itself.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import psycopg
from apscheduler.schedulers.background import BackgroundScheduler

from homecare import store
from homecare.rules.packs import DEFAULT_PACKS, PackError, load_packs
from homecare.rules.training import TrainingConfig, train

__all__ = ["SchedulerConfig", "run_scheduler"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SchedulerConfig:
    """SchedulerConfig: where the store is and how often each job runs."""

    database_url: str
    refresh_every_s: float = 300.0
    retention_every_s: float = 24 * 3600.0
    retention_days: int = 3650
    dedup_window_days: int = 30
    # 0: no training job (then only `homecare models train` trains); it starts with the scheduler.
    retrain_every_s: float = 0.0
    training: TrainingConfig = field(default_factory=lambda: TrainingConfig(trained_by="scheduler"))
    packs_dir: Path = DEFAULT_PACKS
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))


def refresh_job(config: SchedulerConfig) -> None:
    """refresh_job brings the hourly and daily aggregates up to date (either engine)."""
    try:
        with store.connect(config.database_url, autocommit=True) as conn:
            store.refresh_aggregates(conn)
        log.info("aggregates refreshed")
    except psycopg.Error as exc:
        log.warning("aggregate refresh failed; next run retries", extra={"error": str(exc)})


def retention_job(config: SchedulerConfig) -> None:
    """retention_job deletes what is past its keep time (readings on plain PostgreSQL, and the
    de-duplication memory of message ids)."""
    try:
        with store.connect(config.database_url, autocommit=True) as conn:
            deleted = store.apply_retention(
                conn,
                retention_days=config.retention_days,
                dedup_window_days=config.dedup_window_days,
            )
        log.info("retention applied", extra={"deleted": deleted})
    except psycopg.Error as exc:
        log.warning("retention failed; next run retries", extra={"error": str(exc)})


def training_job(config: SchedulerConfig) -> None:
    """training_job fits and registers the anomaly models of every program and patient on the
    readings up to now (``rules.training``)."""
    try:
        packs = load_packs(config.packs_dir)
    except PackError as exc:
        log.warning("rule packs unreadable; every finding leaves its period out of training",
                    extra={"error": str(exc)})  # fmt: skip
        packs = None
    try:
        with store.connect(config.database_url, autocommit=True) as conn:
            train(conn, config.clock(), config.training, packs)
    except psycopg.Error as exc:
        log.warning("model training failed; next run retries", extra={"error": str(exc)})


def run_scheduler(config: SchedulerConfig, stop: threading.Event) -> None:
    """run_scheduler runs the jobs (each once at start) until ``stop`` is set."""
    scheduler = BackgroundScheduler(job_defaults={"coalesce": True, "max_instances": 1})
    scheduler.add_job(refresh_job, "interval", seconds=config.refresh_every_s, args=[config])
    scheduler.add_job(retention_job, "interval", seconds=config.retention_every_s, args=[config])
    if config.retrain_every_s > 0:
        # Started with the scheduler, in its own thread: a long run must not delay the others.
        scheduler.add_job(
            training_job,
            "interval",
            seconds=config.retrain_every_s,
            args=[config],
            next_run_time=datetime.now(UTC),
        )
    refresh_job(config)
    retention_job(config)
    scheduler.start()
    try:
        stop.wait()
    finally:
        scheduler.shutdown(wait=True)
