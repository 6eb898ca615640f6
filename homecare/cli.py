"""CLI: the ``homecare`` command — one entry point that wires the stages into processes.

Every command builds its Settings here, in ``main``, and exits non-zero with a one-line reason
when the configuration is wrong or a service it needs does not answer in time.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from homecare.evaluate import EvaluationResult, StoredCohort

from pydantic import ValidationError

import store
from devices.sim.variants import VARIANTS
from homecare.evaluate_sets import EVALUATION_SETS
from homecare.logs import configure_logging
from homecare.scheduler import SchedulerConfig, run_scheduler
from homecare.settings import Settings, load_settings

__all__ = ["main"]

log = logging.getLogger("homecare")

_DEFAULT_LABELS = Path(".homecare/seed/labels.json")


def main(argv: Sequence[str] | None = None) -> int:
    """main runs one ``homecare`` command and returns its exit status."""
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        settings = load_settings()
    except ValidationError as exc:
        first = exc.errors()[0]
        field = "HOMECARE_" + "_".join(str(p) for p in first["loc"]).upper()
        print(f"homecare: configuration error: {field}: {first['msg']}", file=sys.stderr)
        return 2
    configure_logging(settings.log_level, settings.log_format)
    try:
        result: int = args.run(settings, args)
        return result
    except (store.StoreError, OSError, TimeoutError) as exc:
        print(f"homecare {args.command}: {exc}", file=sys.stderr)
        return 1
    except _ingest_errors() as exc:
        print(f"homecare {args.command}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def _ingest_errors() -> type[Exception]:
    from ingest import IngestError

    return IngestError


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="homecare", description="Homecare RPM: remote patient monitoring pipeline."
    )
    commands = parser.add_subparsers(dest="command", required=True)

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
        "scheduler", help="periodic store jobs: aggregate refresh, retention"
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

    token = commands.add_parser("token", help="API tokens")
    token_commands = token.add_subparsers(dest="token_command", required=True)
    token_create = token_commands.add_parser(
        "create", help="print a new API token for a user (created if needed)"
    )
    token_create.add_argument(
        "--role", required=True, choices=("nurse", "physician", "analyst", "admin")
    )
    token_create.add_argument("--user", help="username (default: cli-<role>)")
    token_create.add_argument(
        "--care-team", action="append", default=[], help="add the user to this team (repeatable)"
    )
    token_create.add_argument(
        "--days", type=float, default=None, help="lifetime (default HOMECARE_API_TOKEN_TTL_DAYS)"
    )
    token_create.set_defaults(run=_token_create)

    broker = commands.add_parser(
        "broker", help="broker accounts from the database (Mosquitto dynamic-security plugin)"
    )
    broker_commands = broker.add_subparsers(dest="broker_command", required=True)
    render = broker_commands.add_parser(
        "render", help="write the plugin's state file from the database (set-up, lost state)"
    )
    render.add_argument(
        "--out", required=True, help="e.g. /var/lib/mosquitto/dynamic-security.json"
    )
    render.set_defaults(run=_broker_render)
    broker_sync = broker_commands.add_parser(
        "sync", help="align a running broker with the database (exit 3: accounts missing)"
    )
    broker_sync.set_defaults(run=_broker_sync)

    evaluate = commands.add_parser(
        "evaluate", help="score the rules on a labelled simulated cohort, with baselines"
    )
    evaluate.add_argument("--patients", type=int, default=200)
    evaluate.add_argument("--days", type=float, default=90)
    evaluate.add_argument(
        "--seed",
        type=int,
        nargs="+",
        default=None,
        help="one or more cohorts (default 1); with several, print a summary line per seed and"
        " rule set and totals over them",
    )
    evaluate.add_argument(
        "--variant",
        choices=sorted(VARIANTS),
        default=None,
        help="simulator variant of the --seed cohorts (default: default)",
    )
    evaluate.add_argument(
        "--set",
        choices=(*EVALUATION_SETS, "both"),
        default=None,
        dest="cohort_set",
        help="score a declared set of cohorts instead of --seed: tuning ("
        + EVALUATION_SETS["tuning"].describe()
        + "), held-out ("
        + EVALUATION_SETS["held-out"].describe()
        + "), or both side by side; declared in homecare/evaluate_sets.py",
    )
    evaluate.add_argument(
        "--packs",
        type=Path,
        action="append",
        default=[],
        metavar="DIR",
        help="also score the packs in DIR (a candidate change) in the same run; repeatable",
    )
    evaluate.add_argument(
        "--cache",
        type=Path,
        default=None,
        metavar="DIR",
        help="keep each stored cohort in DIR and reuse it (a local developer cache)",
    )
    evaluate.add_argument(
        "--end",
        type=_instant,
        default=None,
        help="end of the simulated window (default: a fixed date, so reruns compare)",
    )
    evaluate.set_defaults(run=_evaluate)

    replay = commands.add_parser(
        "replay", help="re-evaluate stored readings and compare with the stored findings"
    )
    replay.add_argument("--since", required=True, type=_instant, help="RFC 3339 or YYYY-MM-DD")
    replay.add_argument("--until", type=_instant, help="default: now")
    replay.add_argument("--patient", type=uuid.UUID, help="only this patient")
    replay.add_argument(
        "--apply", action="store_true", help="make the stored findings follow the replay"
    )
    replay.set_defaults(run=_replay)

    simulate = commands.add_parser(
        "simulate",
        help="simulated patients' devices: publish over MQTT, or write the messages to a file",
        description="Simulated patients (devices/sim/MODEL.md): realistic vitals, device faults"
        " and labelled deterioration episodes. Publishes to the configured broker after"
        " enrolling the patients and devices, or with --out writes the messages as JSON lines.",
    )
    simulate.add_argument("--patients", type=int, default=10)
    simulate.add_argument("--days", type=float, default=7.0, help="simulated days")
    simulate.add_argument("--seed", type=int, default=1)
    simulate.add_argument(
        "--speed",
        type=_speed,
        default=None,
        metavar="max|realtime|FACTOR",
        help="max: as fast as possible, the window ending now (default); realtime; or an"
        " acceleration (3600: one simulated hour a second), the window ending when simulated"
        " time catches up with the clock, so no reading is ever from the future",
    )
    simulate.add_argument("--labels", help="write the ground-truth labels (JSON) to this file")
    simulate.add_argument(
        "--out", help="write the messages as JSON lines to this file instead of publishing"
    )
    simulate.add_argument(
        "--end", type=_aware_time, help="end of the window, RFC 3339 (default: now; --out only)"
    )
    simulate.add_argument(
        "--programs", type=_programs, help="comma-separated programs (default: all, in turn)"
    )
    simulate.add_argument("--wearable", action="store_true", help="add minute heart rate")
    simulate.add_argument("--no-faults", action="store_true", help="no device faults")
    simulate.add_argument(
        "--episode-rate-scale", type=float, default=1.0, help="multiply every episode rate"
    )
    simulate.add_argument("--device-prefix", default="sim-", help="prefix of ids")
    simulate.add_argument(
        "--device-password",
        default=None,
        help="password every simulated device uses (default: with HOMECARE_MQTT_ADMIN_URL set,"
        " each device gets its own from the broker's dynamic-security plugin)",
    )
    simulate.add_argument(
        "--no-provision", action="store_true", help="do not enrol patients and devices"
    )
    simulate.add_argument(
        "--provision", action="store_true", help="with --out: enrol them all the same"
    )
    simulate.set_defaults(run=_simulate)

    demo = commands.add_parser(
        "demo", help="the whole system with simulated patients, on embedded services if needed"
    )
    demo.add_argument("--patients", type=int, default=20, help="simulated patients")
    demo.add_argument("--days", type=float, default=7.0, help="days of history to simulate")
    demo.add_argument(
        "--speed",
        type=_acceleration,
        default=3600.0,
        help="simulated seconds per second until the history catches up with the clock",
    )
    demo.add_argument("--seed", type=int, default=None, help="default: from the clock")
    demo.add_argument("--labels", help="write the ground-truth labels here when stopping")
    demo.add_argument("--duration", type=float, default=0, help="seconds to run (0: until ^C)")
    demo.add_argument("--data-dir", default=".homecare", help="where embedded services keep data")
    demo.set_defaults(run=_demo)

    seed = commands.add_parser(
        "seed",
        help="fill the database with a labelled simulated cohort, its alerts and nurse responses",
        description="Simulated patients stored through ingest, rules and alerts in simulated time,"
        " with a simulated care team acknowledging and resolving the alerts (homecare/seed.py).",
    )
    _seed_arguments(seed)
    seed.set_defaults(run=_seed)

    notebooks = commands.add_parser("notebooks", help="the analysts' notebooks (notebooks/)")
    notebook_commands = notebooks.add_subparsers(dest="notebooks_command", required=True)
    nb_run = notebook_commands.add_parser(
        "run",
        help="execute every notebook top to bottom against the configured database",
        description="Executes notebooks/*.py (jupytext) with nbclient; writes the executed"
        " notebooks with their figures to --out; exits 1 if any cell of any notebook fails.",
    )
    nb_run.add_argument("names", nargs="*", help="only these notebooks (file stems)")
    nb_run.add_argument("--dir", type=Path, default=Path("notebooks"), help="notebooks directory")
    nb_run.add_argument("--out", type=Path, default=Path(".homecare/notebooks"))
    nb_run.add_argument(
        "--labels",
        type=Path,
        default=None,
        help=f"labels of the seeded simulated cohort (default: {_DEFAULT_LABELS} if present)",
    )
    nb_run.add_argument(
        "--seed-demo",
        action="store_true",
        help="first seed the configured database with a simulated cohort (see homecare seed)",
    )
    _seed_arguments(nb_run, prefix="seed-")
    nb_run.set_defaults(run=_notebooks_run)
    return parser


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
    from homecare.wiring import ingest_config
    from ingest import IngestWorker

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
    from homecare.wiring import rules_config
    from rules import RulesWorker

    stop = _stop_on_signals()
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
    from alerts import AlertsWorker
    from homecare.wiring import alerts_config

    stop = _stop_on_signals()
    store.wait_for_database(settings.database_url, settings.connect_timeout_s, "homecare-alerts")
    AlertsWorker(alerts_config(settings)).run(stop)
    return 0


def _scheduler(settings: Settings, args: argparse.Namespace) -> int:
    stop = _stop_on_signals()
    store.wait_for_database(settings.database_url, settings.connect_timeout_s, "homecare-jobs")
    run_scheduler(_scheduler_config(settings), stop)
    return 0


def _scheduler_config(settings: Settings) -> SchedulerConfig:
    return SchedulerConfig(
        database_url=settings.database_url,
        retention_days=settings.retention_days,
        dedup_window_days=settings.dedup_window_days,
    )


def _run(settings: Settings, args: argparse.Namespace) -> int:
    from alerts import AlertsWorker
    from homecare.wiring import alerts_config, ingest_config, rules_config
    from ingest import IngestWorker
    from rules import RulesWorker

    stop = _stop_on_signals()
    store.wait_for_database(settings.database_url, settings.connect_timeout_s, "homecare-run")
    with store.connect(settings.database_url, autocommit=True) as conn:
        store.migrate(conn, settings.db_flavour)
    from api import create_app
    from api.serve import start_server

    # The API first: a port in use stops the command with a one-line reason (OSError).
    api = start_server(create_app(settings), settings.api_host, settings.api_port)
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
    from api import create_app
    from api.serve import serve

    stop = _stop_on_signals()
    store.wait_for_database(settings.database_url, settings.connect_timeout_s, "homecare-api")
    with store.connect(settings.database_url, autocommit=True) as conn:
        store.flavour(conn)  # refuses an unmigrated database with a one-line reason
    serve(create_app(settings), settings.api_host, settings.api_port, stop)
    return 0


def _token_create(settings: Settings, args: argparse.Namespace) -> int:
    from datetime import timedelta

    from api.bootstrap import TokenError, create_cli_token

    store.wait_for_database(settings.database_url, settings.connect_timeout_s, "homecare-token")
    ttl = timedelta(days=args.days) if args.days else timedelta(days=settings.api_token_ttl_days)
    with store.connect(settings.database_url, autocommit=True) as conn:
        store.flavour(conn)
        try:
            issued, notes = create_cli_token(
                conn,
                role=args.role,
                username=args.user,
                care_teams=args.care_team,
                ttl=ttl,
                settings=settings,
            )
        except TokenError as exc:
            print(f"homecare token create: {exc}", file=sys.stderr)
            return 2
    for note in notes:
        print(f"homecare token: {note}", file=sys.stderr)
    print(issued.token)
    return 0


def _broker_render(settings: Settings, args: argparse.Namespace) -> int:
    from pathlib import Path

    from devices import broker_sync

    try:
        admin, ingest = broker_sync.service_accounts(settings.mqtt_admin_url, settings.mqtt_url)
    except ValueError as exc:
        print(f"homecare broker render: {exc}", file=sys.stderr)
        return 2
    store.wait_for_database(settings.database_url, settings.connect_timeout_s, "homecare-broker")
    with store.connect(settings.database_url, autocommit=True) as conn:
        devices = broker_sync.active_device_hashes(conn)
    config = broker_sync.render_dynsec_config(devices, admin, ingest)
    broker_sync.write_dynsec_config(Path(args.out), config)
    print(
        f"wrote {args.out}: {len(devices)} active devices, {admin.username} (admin),"
        f" {ingest.username} (ingest); (re)start mosquitto to load it"
    )
    return 0


def _broker_sync(settings: Settings, args: argparse.Namespace) -> int:
    from devices.broker_sync import reconcile, service_accounts
    from devices.credentials import BrokerAccounts, CredentialsError

    try:
        admin, ingest = service_accounts(settings.mqtt_admin_url, settings.mqtt_url)
        store.wait_for_database(
            settings.database_url, settings.connect_timeout_s, "homecare-broker"
        )
        with store.connect(settings.database_url, autocommit=True) as conn:
            accounts = BrokerAccounts.from_settings(settings)
            report = reconcile(conn, accounts.admin, (admin.username, ingest.username))
    except (ValueError, CredentialsError) as exc:
        print(f"homecare broker sync: {exc}", file=sys.stderr)
        return 1
    print(f"removed {len(report.removed)} accounts unknown or revoked in the database")
    if report.missing:
        print(
            f"{len(report.missing)} active devices have no account at the broker (first:"
            f" {report.missing[0]}): run `homecare broker render` and restart the broker,"
            " or rotate their credentials"
        )
        return 3
    return 0


def _evaluate(settings: Settings, args: argparse.Namespace) -> int:
    from concurrent.futures import ProcessPoolExecutor
    from urllib.parse import urlsplit, urlunsplit

    from homecare.evaluate_report import format_report, format_sets, format_summary
    from rules import PackError, load_packs

    # A broken candidate fails before any cohort is built, with its file and rule named.
    for directory in args.packs:
        try:
            if not load_packs(directory).packs:
                raise PackError("no *.yaml pack there")
        except PackError as exc:
            print(f"homecare evaluate: {directory}: {exc}", file=sys.stderr)
            return 2
    if args.cohort_set is not None and (args.seed is not None or args.variant is not None):
        print("homecare evaluate: --set chooses its own seeds and variants", file=sys.stderr)
        return 2
    end = args.end or datetime(2026, 11, 1, tzinfo=UTC)
    admin = urlunsplit(urlsplit(settings.database_url)._replace(path="/postgres"))
    store.wait_for_database(admin, settings.connect_timeout_s, "homecare-evaluate")
    if args.cohort_set is not None:
        chosen = [args.cohort_set] if args.cohort_set != "both" else list(EVALUATION_SETS)
        cohorts = list(dict.fromkeys(c for name in chosen for c in EVALUATION_SETS[name].cohorts()))
    else:
        cohorts = [(args.variant or "default", seed) for seed in args.seed or [1]]
    jobs = [
        (admin, args.patients, args.days, seed, end, args.packs, args.cache, variant)
        for variant, seed in cohorts
    ]
    if len(jobs) == 1:
        print(format_report(_evaluate_seed(*jobs[0])))
        return 0
    # Cohorts are independent: one process each, as many at once as there are cores.
    with ProcessPoolExecutor(max_workers=min(len(jobs), os.cpu_count() or 1)) as pool:
        scored = dict(zip(cohorts, pool.map(_evaluate_seed, *zip(*jobs, strict=True)), strict=True))
    if args.cohort_set is None:
        print(format_summary({seed: result for (_, seed), result in scored.items()}))
        return 0
    sets = {name: {c: scored[c] for c in EVALUATION_SETS[name].cohorts()} for name in chosen}
    print(format_sets(sets, {name: EVALUATION_SETS[name].describe() for name in chosen}))
    return 0


def _evaluate_seed(
    admin: str,
    patients: int,
    days: float,
    seed: int,
    end: datetime,
    candidates: list[Path],
    cache: Path | None,
    variant: str = "default",
) -> EvaluationResult:
    from homecare.cohort_cache import cached_cohort
    from homecare.evaluate import score_cohort, store_cohort
    from rules import load_packs

    def build() -> StoredCohort:
        return store_cohort(admin, patients, days, seed, end, variant)

    if cache is None:
        cohort = build()
    else:
        cohort = cached_cohort(cache, patients, days, seed, end, build, variant)
    packs = {f"candidate packs ({directory})": load_packs(directory) for directory in candidates}
    return score_cohort(cohort, packs)


def _stop_on_signals() -> threading.Event:
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda signum, frame: stop.set())
    signal.signal(signal.SIGINT, lambda signum, frame: stop.set())
    return stop


def _replay(settings: Settings, args: argparse.Namespace) -> int:
    from homecare.wiring import rules_config
    from rules import load_packs, replay

    config = rules_config(settings)
    store.wait_for_database(settings.database_url, settings.connect_timeout_s, "homecare-replay")
    with store.connect(settings.database_url, autocommit=True) as conn:
        report = replay(
            conn,
            load_packs(config.packs_dir),
            args.since,
            args.until or datetime.now(UTC),
            config.late_after,
            patient_id=args.patient,
            apply=args.apply,
        )
    for finding in report.only_stored:
        print(
            f"only stored   {finding.patient_id} {finding.rule_id} {finding.state}"
            f" {finding.evidence_time.isoformat()}"
        )
    for finding in report.only_replayed:
        print(
            f"only replayed {finding.patient_id} {finding.rule_id} {finding.state}"
            f" {finding.evidence_time.isoformat()}"
        )
    print(
        f"replayed {report.patients} patients: {len(report.same)} findings the same,"
        f" {len(report.only_stored)} only stored, {len(report.only_replayed)} only replayed"
        + (" (applied)" if args.apply else "")
    )
    return 0 if report.equal or args.apply else 3


def _instant(text: str) -> datetime:
    value = datetime.fromisoformat(text)
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _speed(text: str) -> float | None:
    if text == "max":
        return None
    if text == "realtime":
        return 1.0
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError("expected max, realtime or a number > 0") from None
    if not value > 0:
        raise argparse.ArgumentTypeError("expected max, realtime or a number > 0")
    return value


def _aware_time(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError("expected an RFC 3339 time") from None
    if moment.tzinfo is None:
        raise argparse.ArgumentTypeError("the time needs an offset (Z or +hh:mm)")
    return moment


def _programs(text: str) -> tuple[str, ...]:
    import catalogue

    names = tuple(p.strip() for p in text.split(",") if p.strip())
    unknown = [p for p in names if p not in catalogue.PROGRAMS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"programs are among {', '.join(catalogue.PROGRAMS)}")
    return names


def _acceleration(text: str) -> float:
    value = _speed(text)
    if value is None:
        raise argparse.ArgumentTypeError("the demo needs a finite speed (realtime or a number)")
    return value


def _simulate(settings: Settings, args: argparse.Namespace) -> int:
    from homecare.simulate import run_simulate

    return run_simulate(settings, args)


def _demo(settings: Settings, args: argparse.Namespace) -> int:
    from homecare.demo import run_demo

    return run_demo(settings, args)


def _seed_arguments(parser: argparse.ArgumentParser, prefix: str = "") -> None:
    parser.add_argument(f"--{prefix}patients", type=int, default=50, dest="seed_patients")
    parser.add_argument(f"--{prefix}days", type=float, default=60, dest="seed_days")
    parser.add_argument(f"--{prefix}seed", type=int, default=1, dest="seed_seed")
    parser.add_argument(
        f"--{prefix}end",
        type=_aware_time,
        default=datetime(2026, 11, 1, tzinfo=UTC),
        dest="seed_end",
        help="end of the simulated window, RFC 3339 (default: a fixed date, so reruns compare)",
    )
    if not prefix:
        parser.add_argument("--labels", type=Path, default=_DEFAULT_LABELS, dest="labels")


def _seed(settings: Settings, args: argparse.Namespace) -> int:
    from homecare.seed import SeedConfig, seed_database

    store.wait_for_database(settings.database_url, settings.connect_timeout_s, "homecare-seed")
    with store.connect(settings.database_url, autocommit=True) as conn:
        store.migrate(conn, settings.db_flavour)
    report = seed_database(
        SeedConfig(
            settings.database_url,
            patients=args.seed_patients,
            days=args.seed_days,
            seed=args.seed_seed,
            end=args.seed_end,
            labels_path=args.labels,
        )
    )
    print(report.line())
    print(f"labels written to {args.labels}")
    return 0


def _notebooks_run(settings: Settings, args: argparse.Namespace) -> int:
    try:
        from homecare.notebooks import discover, run_notebooks
    except ImportError as exc:  # pragma: no cover - depends on the installed extras
        print(f"homecare notebooks: {exc}; pip install 'homecare-rpm[notebooks]'", file=sys.stderr)
        return 2
    paths = discover(args.dir)
    if args.names:
        paths = [p for p in paths if p.stem in set(args.names)]
        missing = set(args.names) - {p.stem for p in paths}
        if missing:
            print(f"homecare notebooks: no notebook {', '.join(sorted(missing))}", file=sys.stderr)
            return 2
    if not paths:
        print(f"homecare notebooks: no notebooks in {args.dir}", file=sys.stderr)
        return 2
    labels = args.labels
    if args.seed_demo:
        args.labels = labels or _DEFAULT_LABELS
        if _seed(settings, args) != 0:
            return 1
        labels = args.labels
    elif labels is None and _DEFAULT_LABELS.exists():
        labels = _DEFAULT_LABELS
    store.wait_for_database(settings.database_url, settings.connect_timeout_s, "homecare-notebooks")
    with store.connect(settings.database_url, autocommit=True) as conn:
        store.refresh_aggregates(conn)  # the notebooks read the aggregates: bring them up to date
    failed = 0
    for result in run_notebooks(paths, args.out, labels):
        if result.skipped:
            print(f"skipped  {result.name}: {result.skipped}")
        elif result.error:
            failed += 1
            print(f"FAILED   {result.name} ({result.seconds:.1f} s): {result.error}")
        else:
            print(
                f"ok       {result.name} ({result.seconds:.1f} s, {result.figures} figures)"
                f" -> {result.output}"
            )
    return 1 if failed else 0
