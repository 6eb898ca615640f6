"""Demo: the whole pipeline with simulated patients, on whatever services are at hand.

For each service the demo first tries the configured one (HOMECARE_DATABASE_URL,
HOMECARE_MQTT_URL); when it does not answer within a few seconds it starts an embedded one
(demo.embedded) under ``--data-dir``. So the same command shows the system on a laptop with
nothing installed and on a machine with TimescaleDB and Mosquitto running.

The patients are the simulator's (``devices.sim``): ``--days`` of history play at ``--speed``
until simulated time catches up with the clock, then the devices go on in real time, so no
reading is ever from the future.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import signal
import socket
import threading
import time
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import FrameType
from typing import Any

import psycopg

from homecare import store
from homecare.alerts import AlertsWorker
from homecare.demo.embedded import EmbeddedService, start_embedded_broker, start_embedded_postgres
from homecare.demo.provision import issue_device_passwords, provision_simulation
from homecare.demo_view import Counts, DemoView, Progress, tracked
from homecare.devices.sim import SimConfig, Simulation, live_window, paced
from homecare.logs import configure_logging
from homecare.rules import RulesWorker
from homecare.settings import Settings
from homecare.wiring import (
    alerts_config,
    api_config,
    broker_accounts,
    ingest_config,
    require_packs,
    rules_config,
)

__all__ = ["run_demo"]

log = logging.getLogger(__name__)
_PROBE_S = 3.0


def run_demo(settings: Settings, args: argparse.Namespace) -> int:
    """run_demo runs until ^C (or ``--duration``), printing what runs where and live counts;
    the services' logs go to ``<data-dir>/demo.log`` (errors also to the terminal)."""
    data_dir = Path(args.data_dir).resolve()
    packs = require_packs(settings)  # before any service starts: no packs, no alerts
    log_path = data_dir / "demo.log"
    configure_logging(settings.log_level, settings.log_format, log_path)
    print(
        f"homecare demo: the whole pipeline with {args.patients} simulated patients"
        + (f", for {args.duration:g} s" if args.duration else "; ^C to stop")
    )
    print(f"logs       {log_path} (the services' {settings.log_format} logs; errors also here)")
    print(f"rules      {len(packs)} packs: {', '.join(packs)}")
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
    """_broker: the configured broker if it answers and the demo may give devices credentials
    there (HOMECARE_MQTT_ADMIN_URL), else an embedded one with per-device credentials."""
    from homecare.ingest import parse_mqtt_url

    host, port, _, _, _ = parse_mqtt_url(settings.mqtt_url)
    reachable = False
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=_PROBE_S):
        reachable = True
    if reachable and settings.mqtt_admin_url:
        print(
            f"broker     configured MQTT broker at {host}:{port} (MQTT {settings.mqtt_protocol}),"
            " per-device credentials through its dynamic-security plugin"
        )
        return settings
    if reachable:
        print(
            f"broker     configured MQTT broker at {host}:{port} not used: the demo needs"
            " HOMECARE_MQTT_ADMIN_URL to give its devices credentials there"
        )
    service = start_embedded_broker(data_dir / "broker", device_auth=True)
    started.append(service)
    protocol = service.protocol or "5"
    print(f"broker     {service.detail}, listening on {service.address}")
    return settings.model_copy(
        update={
            "mqtt_url": service.url,
            "mqtt_admin_url": service.admin_url,
            "mqtt_protocol": protocol,
        }
    )


def _run(settings: Settings, args: argparse.Namespace, stop: threading.Event) -> int:
    from homecare.devices import BrokerAddress, DevicePublisher
    from homecare.ingest import IngestWorker, parse_mqtt_url

    sim = _simulation(args)
    with store.connect(settings.database_url, autocommit=True) as conn:
        applied = store.migrate(conn, settings.db_flavour)
        flavour = store.flavour(conn)
        print(f"schema     {flavour}, migrations applied now: {len(applied)}")
        provision_simulation(conn, sim.enrolment(), care_team="demo-team")
        passwords = _credentials(settings, conn, sim.device_ids())

    # One worker with a plain subscription: amqtt has no shared subscriptions, and on a shared
    # broker the demo must not take a share of a real deployment's "ingest" group.
    settings = settings.model_copy(update={"mqtt_shared_group": ""})
    # A fresh session: whatever an earlier demo left queued belongs to that demo's patients.
    worker = IngestWorker(
        ingest_config(settings, client_id="homecare-demo-ingest", fresh_session=True)
    )
    worker_thread = threading.Thread(target=worker.run, args=(stop,), name="ingest", daemon=True)
    worker_thread.start()
    stages = [
        threading.Thread(
            target=RulesWorker(rules_config(settings)).run, args=(stop,), name="rules"
        ),
        threading.Thread(
            target=AlertsWorker(alerts_config(settings)).run, args=(stop,), name="alerts"
        ),
    ]
    for stage in stages:
        stage.daemon = True
        stage.start()
    stages.append(_dashboard(settings, stop))

    host, port, _, _, _ = parse_mqtt_url(settings.mqtt_url)
    device_ids = sim.device_ids()
    broker = BrokerAddress(host, port, settings.mqtt_protocol, password_for=passwords.get)
    publisher = DevicePublisher(broker, device_ids)
    publisher.connect()
    progress = Progress()
    stream = tracked(paced(sim.messages(), sim.config.start, args.speed, stop), progress)
    publisher_thread = threading.Thread(
        target=publisher.publish,
        args=((m.outgoing() for m in stream), None, stop),
        name="devices",
        daemon=True,
    )
    publisher_thread.start()
    programs = Counter(p.profile.programs[0] for p in sim.plans)
    episodes = Counter(e.kind for p in sim.plans for e in p.episodes)
    caught_up = datetime.now(UTC) + timedelta(days=args.days) / args.speed
    print(
        f"devices    {len(sim.plans)} simulated patients ("
        + ", ".join(f"{k} {v}" for k, v in sorted(programs.items()))
        + f"), {len(device_ids)} devices, seed {sim.config.seed}"
    )
    history_s = timedelta(days=args.days).total_seconds() / args.speed
    print(
        f"time       {args.days:g} day{'' if args.days == 1 else 's'} of history played at"
        f" x{args.speed:g} (takes"
        f" {_duration(history_s)}), then live from {caught_up.astimezone().strftime('%H:%M:%S')}"
    )
    print(
        "episodes   "
        + (
            ", ".join(f"{k} {v}" for k, v in sorted(episodes.items()))
            or "no deterioration planned in this window (more patients or days bring some)"
        )
    )
    print("counts     a line when they change (at most every 5 s), else once a minute")
    view = DemoView(caught_up, args.days, len(device_ids), progress)
    began = time.monotonic()
    deadline = began + args.duration if args.duration else None
    with store.connect(settings.database_url, autocommit=True) as conn:
        view.update(Counts.read(worker.metrics.snapshot(), conn, sim.config.id_prefix))
        while not stop.wait(2.0):
            view.update(Counts.read(worker.metrics.snapshot(), conn, sim.config.id_prefix))
            if deadline is not None and time.monotonic() >= deadline:
                stop.set()
        print("stopping   devices, workers and services")
        publisher_thread.join(timeout=10)
        publisher.close()
        worker_thread.join(timeout=10)
        for stage in stages:
            stage.join(timeout=10)
        final = Counts.read(worker.metrics.snapshot(), conn, sim.config.id_prefix)
    print(f"stopped    after {_duration(time.monotonic() - began)}: {final.text()}")
    if args.labels:
        sim.write_labels(args.labels)
        print(f"labels     {args.labels}")
    return 0


def _duration(seconds: float) -> str:
    """_duration: '2 min 48 s', '40 s'."""
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest} s" if minutes else f"{rest} s"


def _dashboard(settings: Settings, stop: threading.Event) -> threading.Thread:
    """_dashboard serves the API and the nurse dashboard (with the scheduler refreshing the
    charts' aggregates every minute) and prints the sign-in of a demo nurse of the simulated
    patients' care team; her password is new on every run (the demo may run on a real
    database)."""
    import secrets

    from homecare.api import accounts, audit
    from homecare.api.app import create_app
    from homecare.api.hashing import hash_password
    from homecare.api.serve import serve
    from homecare.scheduler import SchedulerConfig, run_scheduler

    username, password = "nurse.demo", secrets.token_urlsafe(9)
    with store.connect(settings.database_url, autocommit=True) as conn, conn.transaction():
        accounts.create_care_team(conn, "demo-team", "Demo team", settings.api_default_time_zone)
        found = accounts.find_user(conn, username)
        if found is None:
            user_id = accounts.create_user(
                conn,
                username=username,
                display_name="Demo nurse",
                role="nurse",
                password=password,
                locale=settings.api_default_locale,
                time_zone=settings.api_default_time_zone,
            )
        else:
            user_id = found[0]
            conn.execute(
                "UPDATE users SET password_hash = %s WHERE id = %s",
                (hash_password(password), user_id),
            )
        accounts.add_member(conn, "demo-team", user_id, "cli:demo")
        audit.record(conn, "cli:demo", "user.password", f"user/{username}", {"role": "nurse"})
    scheduler = SchedulerConfig(database_url=settings.database_url, refresh_every_s=60.0)
    threading.Thread(target=run_scheduler, args=(scheduler, stop), daemon=True).start()
    in_use = False
    with (
        contextlib.suppress(OSError),
        socket.create_connection((settings.api_host, settings.api_port), timeout=1.0),
    ):
        in_use = True
    if in_use:
        print(
            f"dashboard  not started: {settings.api_host}:{settings.api_port} is in use"
            " (set HOMECARE_API_PORT)"
        )
        idle = threading.Thread(target=lambda: None)
        idle.start()
        return idle
    api = threading.Thread(
        target=serve,
        args=(create_app(api_config(settings)), settings.api_host, settings.api_port, stop),
        name="api",
        daemon=True,
    )
    api.start()
    print(
        f"dashboard  http://{settings.api_host}:{settings.api_port}/dashboard/ — sign in as"
        f" {username} / {password} (français; English from the page)"
    )
    return api


def _credentials(
    settings: Settings, conn: psycopg.Connection[Any], device_ids: Sequence[str]
) -> dict[str, str]:
    """_credentials issues each simulated device its own broker password, as the API would."""
    if not settings.mqtt_admin_url:
        print(
            "security   WARNING: this broker does not authenticate devices (amqtt fallback);"
            " NOT the secure configuration - install mosquitto for per-device credentials"
        )
        return {}
    started = time.monotonic()
    passwords = issue_device_passwords(conn, device_ids, broker_accounts(settings))
    print(
        f"security   {len(passwords)} devices given their own credentials in"
        f" {time.monotonic() - started:.1f} s; each may publish only under its own id"
    )
    return passwords


def _simulation(args: argparse.Namespace) -> Simulation:
    """_simulation: the demo's cohort, its history ending when it catches up with the clock.

    Ids carry a tag from the clock, so a second demo on the same database enrols new patients
    instead of colliding with the first one's message ids.
    """
    now = datetime.now(UTC)
    start, caught_up = live_window(args.days, args.speed, now)
    live_s = args.duration - args.days * 86_400 / args.speed if args.duration else 30 * 86_400
    end = caught_up + timedelta(seconds=max(60.0, live_s + 60.0))
    tag = _base36(int(now.timestamp()))
    return Simulation(
        SimConfig(
            patients=args.patients,
            days=(end - start) / timedelta(days=1),
            seed=args.seed if args.seed is not None else int(now.timestamp()),
            end=end,
            id_prefix=f"demo-{tag}-",
        )
    )


def _base36(number: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    text = ""
    while number:
        number, rest = divmod(number, 36)
        text = digits[rest] + text
    return text or "0"
