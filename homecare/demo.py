"""Demo: the whole pipeline with simulated patients, on whatever services are at hand.

For each service the demo first tries the configured one (HOMECARE_DATABASE_URL,
HOMECARE_MQTT_URL); when it does not answer within a few seconds it starts an embedded one
(homecare.embedded) under ``--data-dir``. So the same command shows the system on a laptop with
nothing installed and on a machine with TimescaleDB and Mosquitto running.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import signal
import socket
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import FrameType

import psycopg

import store
from homecare.embedded import EmbeddedService, start_embedded_broker, start_embedded_postgres
from homecare.provision import provision_devices
from homecare.settings import Settings
from homecare.wiring import ingest_config

__all__ = ["run_demo"]

log = logging.getLogger(__name__)
_PROBE_S = 3.0


def run_demo(settings: Settings, args: argparse.Namespace) -> int:
    """run_demo runs until ^C (or ``--duration``), printing what runs where and live counts."""
    data_dir = Path(args.data_dir).resolve()
    started: list[EmbeddedService] = []
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        settings = _database(settings, data_dir, started)
        settings = _broker(settings, data_dir, started)
        return _run(settings, args, stop)
    finally:
        for service in reversed(started):
            service.stop()


def _database(settings: Settings, data_dir: Path, started: list[EmbeddedService]) -> Settings:
    url = settings.database_url
    try:
        _ensure_database(url)
        store.wait_for_database(url, _PROBE_S)
        print(f"database   configured PostgreSQL at {store.describe_url(url)}")
        return settings
    except (store.StoreUnavailable, psycopg.Error):
        pass
    service = start_embedded_postgres(data_dir / "postgres")
    started.append(service)
    print(f"database   {service.detail} at {store.describe_url(service.url)}")
    return settings.model_copy(update={"database_url": service.url})


def _ensure_database(url: str) -> None:
    """_ensure_database creates the configured database when the server runs but lacks it."""
    try:
        with store.connect(url, autocommit=True, connect_timeout_s=_PROBE_S):
            return
    except psycopg.OperationalError as exc:
        if "does not exist" not in str(exc):
            raise
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    admin = urlunsplit(parts._replace(path="/postgres"))
    with store.connect(admin, autocommit=True, connect_timeout_s=_PROBE_S) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')


def _broker(settings: Settings, data_dir: Path, started: list[EmbeddedService]) -> Settings:
    from ingest import parse_mqtt_url

    host, port, _, _, _ = parse_mqtt_url(settings.mqtt_url)
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=_PROBE_S):
        print(f"broker     configured MQTT broker at {host}:{port} (MQTT {settings.mqtt_protocol})")
        return settings
    service = start_embedded_broker(data_dir / "broker")
    started.append(service)
    protocol = service.protocol or "5"
    print(f"broker     embedded {service.name} at {service.url} (MQTT {protocol})")
    return settings.model_copy(
        update={
            "mqtt_url": service.url,
            "mqtt_protocol": protocol,
        }
    )


def _run(settings: Settings, args: argparse.Namespace, stop: threading.Event) -> int:
    from devices import BrokerAddress, DevicePublisher, TrafficPlan, generate
    from ingest import IngestWorker, parse_mqtt_url

    with store.connect(settings.database_url, autocommit=True) as conn:
        applied = store.migrate(conn, settings.db_flavour)
        flavour = store.flavour(conn)
        device_ids = tuple(f"demo-cuff-{i:03d}" for i in range(args.patients))
        provision_devices(conn, device_ids, since=datetime.now(UTC) - timedelta(days=1))
    print(f"schema     {flavour}, migrations applied now: {len(applied)}")

    # One worker with a plain subscription: amqtt has no shared subscriptions, and on a shared
    # broker the demo must not take a share of a real deployment's "ingest" group.
    settings = settings.model_copy(update={"mqtt_shared_group": ""})
    worker = IngestWorker(ingest_config(settings, client_id="homecare-demo-ingest"))
    worker_thread = threading.Thread(target=worker.run, args=(stop,), name="ingest", daemon=True)
    worker_thread.start()

    host, port, _, _, _ = parse_mqtt_url(settings.mqtt_url)
    plan = TrafficPlan(
        device_ids=device_ids,
        messages=None,
        start=datetime.now(UTC),
        interval=timedelta(seconds=1 / args.rate),
        resend_ratio=0.02,
        malformed_ratio=0.01,
        seed=int(time.time()),
    )
    publisher = DevicePublisher(BrokerAddress(host, port, settings.mqtt_protocol), device_ids)
    publisher.connect()
    publisher_thread = threading.Thread(
        target=publisher.publish,
        args=(generate(plan), args.rate, stop),
        name="devices",
        daemon=True,
    )
    publisher_thread.start()
    print(f"devices    {len(device_ids)} simulated BP cuffs, {args.rate:g} messages/s in all")
    print("counts     (every 2 s; ^C to stop)")
    deadline = time.monotonic() + args.duration if args.duration else None
    while not stop.wait(2.0):
        _print_counts(worker.metrics.snapshot())
        if deadline is not None and time.monotonic() >= deadline:
            stop.set()
    publisher_thread.join(timeout=10)
    publisher.close()
    worker_thread.join(timeout=10)
    _print_counts(worker.metrics.snapshot())
    return 0


def _print_counts(metrics: dict[str, float]) -> None:
    def value(name: str) -> int:
        return int(metrics.get(name, 0))

    quarantined = sum(
        int(v) for k, v in metrics.items() if k.startswith("homecare_ingest_quarantined_total{")
    )
    print(
        f"  readings stored {value('homecare_ingest_readings_stored_total'):>8}"
        f" | messages new {value('homecare_ingest_messages_total{outcome=new}'):>7}"
        f" duplicate {value('homecare_ingest_messages_total{outcome=duplicate}'):>5}"
        f" | quarantined {quarantined:>5}",
        flush=True,
    )
