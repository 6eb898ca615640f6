"""Services: the commands that run the pipeline's processes — migrate, the workers, the API."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import threading
from types import FrameType
from typing import Any

from homecare import store
from homecare.arguments import (
    stop_on_signals,
)
from homecare.scheduler import SchedulerConfig, run_scheduler
from homecare.settings import Settings
from homecare.wiring import api_config, require_packs

log = logging.getLogger("homecare")


def add_commands(commands: Any) -> None:
    """add_commands adds this module's subcommands to the ``homecare`` parser."""
    migrate = commands.add_parser("migrate", help="apply the database migrations (idempotent)")
    migrate.set_defaults(run=_migrate)

    ingest = commands.add_parser("ingest", help="run one ingest worker")
    ingest.add_argument("--client-id", help="MQTT client id (default HOMECARE_MQTT_CLIENT_ID)")
    ingest.set_defaults(run=_ingest)

    rules = commands.add_parser("rules", help="run one rules worker (evaluates new readings)")
    rules.set_defaults(run=_rules)

    alerts = commands.add_parser("alerts", help="run one alerts worker (findings to alerts)")
    alerts.set_defaults(run=_alerts)

    scheduler = commands.add_parser(
        "scheduler",
        help="periodic jobs: aggregate refresh, retention, anomaly model training",
    )
    scheduler.set_defaults(run=_scheduler)

    run = commands.add_parser(
        "run", help="ingest, rules, alerts, scheduler and the API in one process"
    )
    run.set_defaults(run=_run)

    api = commands.add_parser(
        "api", help="serve the REST API, the live stream and the dashboard (HOMECARE_API_HOST/PORT)"
    )
    api.set_defaults(run=_api)


def _migrate(settings: Settings, args: argparse.Namespace) -> int:
    store.wait_for_database(settings.database_url, settings.connect_timeout_s, "homecare-migrate")
    with store.connect(settings.database_url, autocommit=True) as conn:
        applied = store.migrate(conn, settings.db_flavour)
        store.apply_policies(
            conn,
            compress_after_days=settings.compress_after_days,
            retention_days=settings.retention_days,
        )
        flavour = store.flavour(conn)
    versions = ", ".join(f"{v:04d}" for v in applied) or "none (up to date)"
    print(f"migrated {store.describe_url(settings.database_url)} ({flavour}): applied {versions}")
    return 0


def _ingest(settings: Settings, args: argparse.Namespace) -> int:
    from homecare.ingest import IngestWorker
    from homecare.wiring import ingest_config

    worker = IngestWorker(ingest_config(settings, args.client_id))
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        log.info("signal received; finishing the current batch", extra={"signal": signum})
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    if settings.ingest_metrics_port:
        worker.metrics.serve(settings.ingest_metrics_port)
    worker.run(stop)
    return 0


def _rules(settings: Settings, args: argparse.Namespace) -> int:
    from homecare.rules import RulesWorker
    from homecare.wiring import rules_config

    require_packs(settings)  # before anything starts: no packs, no alerts
    stop = stop_on_signals()
    store.wait_for_database(settings.database_url, settings.connect_timeout_s, "homecare-rules")
    if settings.rules_nice:
        # When the machine is saturated (a backlog drain), the ingest comes first: its commits
        # and acknowledgements keep the broker's queues short, while rules coalesce a backlog
        # into fewer passes and lose nothing by running a little later. Idle CPU is not
        # affected, so alert latency in normal running is not either.
        os.nice(settings.rules_nice)
    RulesWorker(rules_config(settings)).run(stop)
    return 0


def _alerts(settings: Settings, args: argparse.Namespace) -> int:
    from homecare.alerts import AlertsWorker
    from homecare.wiring import alerts_config

    require_packs(settings)  # before anything starts: no packs, no alerts
    stop = stop_on_signals()
    store.wait_for_database(settings.database_url, settings.connect_timeout_s, "homecare-alerts")
    AlertsWorker(alerts_config(settings)).run(stop)
    return 0


def _scheduler(settings: Settings, args: argparse.Namespace) -> int:
    stop = stop_on_signals()
    store.wait_for_database(settings.database_url, settings.connect_timeout_s, "homecare-jobs")
    run_scheduler(_scheduler_config(settings), stop)
    return 0


def _scheduler_config(settings: Settings) -> SchedulerConfig:
    from homecare.wiring import rules_config, training_config

    return SchedulerConfig(
        database_url=settings.database_url,
        retention_days=settings.retention_days,
        dedup_window_days=settings.dedup_window_days,
        retrain_every_s=settings.models_retrain_h * 3600,
        training=training_config(settings, "scheduler"),
        packs_dir=rules_config(settings).packs_dir,
    )


def _run(settings: Settings, args: argparse.Namespace) -> int:
    from homecare.alerts import AlertsWorker
    from homecare.ingest import IngestWorker
    from homecare.rules import RulesWorker
    from homecare.wiring import alerts_config, ingest_config, rules_config

    require_packs(settings)  # before anything starts: no packs, no alerts
    stop = stop_on_signals()
    store.wait_for_database(settings.database_url, settings.connect_timeout_s, "homecare-run")
    with store.connect(settings.database_url, autocommit=True) as conn:
        store.migrate(conn, settings.db_flavour)
    from homecare.api import create_app
    from homecare.api.serve import start_server

    # The API first: a port in use stops the command with a one-line reason (OSError).
    api = start_server(create_app(api_config(settings)), settings.api_host, settings.api_port)
    workers = [
        threading.Thread(target=RulesWorker(rules_config(settings)).run, args=(stop,)),
        threading.Thread(target=AlertsWorker(alerts_config(settings)).run, args=(stop,)),
        threading.Thread(target=run_scheduler, args=(_scheduler_config(settings), stop)),
    ]
    for worker in workers:
        worker.start()
    try:
        IngestWorker(ingest_config(settings)).run(stop)
    finally:
        stop.set()
        api.stop()
        for worker in workers:
            worker.join(timeout=30)
    return 0


def _api(settings: Settings, args: argparse.Namespace) -> int:
    from homecare.api import create_app
    from homecare.api.serve import serve

    require_packs(settings)  # before anything starts: no packs, no alerts
    stop = stop_on_signals()
    store.wait_for_database(settings.database_url, settings.connect_timeout_s, "homecare-api")
    with store.connect(settings.database_url, autocommit=True) as conn:
        store.flavour(conn)  # refuses an unmigrated database with a one-line reason
    serve(create_app(api_config(settings)), settings.api_host, settings.api_port, stop)
    return 0
