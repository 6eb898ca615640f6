"""Simulated: the commands that work with simulated patients — simulate, demo, seed, notebooks."""

from __future__ import annotations

import argparse
import logging
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from homecare import store
from homecare.arguments import (
    DEFAULT_LABELS,
    acceleration,
    aware_time,
    programs,
    speed,
)
from homecare.settings import Settings

log = logging.getLogger("homecare")


def add_commands(commands: Any) -> None:
    """add_commands adds this module's subcommands to the ``homecare`` parser."""
    simulate = commands.add_parser(
        "simulate",
        help="simulated patients' devices: publish over MQTT, or write the messages to a file",
        description="Simulated patients (devices/sim/MODEL.md): realistic vitals, device faults"
        " and labelled deterioration episodes. Publishes to the configured broker after"
        " enrolling the patients and devices, or with --out writes the messages as JSON lines.",
    )
    simulate.add_argument("--patients", type=int, default=10, help="simulated patients")
    simulate.add_argument("--days", type=float, default=7.0, help="simulated days")
    simulate.add_argument(
        "--seed", type=int, default=1, help="random seed: the same seed gives the same bytes"
    )
    simulate.add_argument(
        "--speed",
        type=speed,
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
        "--end", type=aware_time, help="end of the window, RFC 3339 (default: now; --out only)"
    )
    simulate.add_argument(
        "--programs", type=programs, help="comma-separated programs (default: all, in turn)"
    )
    simulate.add_argument("--wearable", action="store_true", help="add minute heart rate")
    simulate.add_argument("--no-faults", action="store_true", help="no device faults")
    simulate.add_argument(
        "--episode-rate-scale", type=float, default=1.0, help="multiply every episode rate"
    )
    simulate.add_argument(
        "--device-prefix", default="sim-", help="prefix of the device and patient ids"
    )
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
        type=acceleration,
        default=3600.0,
        metavar="FACTOR",
        help="simulated seconds per second until the history catches up with the clock;"
        " realtime or 1 is real time",
    )
    demo.add_argument(
        "--seed", type=int, default=None, help="random seed (default: from the clock)"
    )
    demo.add_argument("--labels", help="write the ground-truth labels here when stopping")
    demo.add_argument(
        "--duration", type=float, default=0, help="seconds to run (default: 0, until ^C)"
    )
    demo.add_argument(
        "--data-dir",
        default=".homecare",
        help="where embedded services keep their data and the demo its log",
    )
    demo.set_defaults(run=_demo)

    seed = commands.add_parser(
        "seed",
        help="fill the database with a labelled simulated cohort, its alerts and nurse responses",
        description="Simulated patients stored through ingest, rules and alerts in simulated time,"
        " with a simulated care team acknowledging and resolving the alerts (demo/seed.py).",
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
    nb_run.add_argument(
        "--out",
        type=Path,
        default=Path(".homecare/notebooks"),
        help="where the executed notebooks, figures included, are written",
    )
    nb_run.add_argument(
        "--labels",
        type=Path,
        default=None,
        help=f"labels of the seeded simulated cohort (default: {DEFAULT_LABELS} if present)",
    )
    nb_run.add_argument(
        "--seed-demo",
        action="store_true",
        help="first seed the configured database with a simulated cohort (see homecare seed)",
    )
    _seed_arguments(nb_run, prefix="seed-")
    nb_run.set_defaults(run=_notebooks_run)


def _simulate(settings: Settings, args: argparse.Namespace) -> int:
    from homecare.simulate import run_simulate

    return run_simulate(settings, args)


def _demo(settings: Settings, args: argparse.Namespace) -> int:
    from homecare.live_demo import run_demo

    return run_demo(settings, args)


def _seed_arguments(parser: argparse.ArgumentParser, prefix: str = "") -> None:
    what = "seeded " if prefix else ""
    parser.add_argument(
        f"--{prefix}patients",
        type=int,
        default=50,
        dest="seed_patients",
        metavar="N",
        help=f"{what}simulated patients",
    )
    parser.add_argument(
        f"--{prefix}days",
        type=float,
        default=60,
        dest="seed_days",
        metavar="DAYS",
        help=f"days of {what}history",
    )
    parser.add_argument(
        f"--{prefix}seed",
        type=int,
        default=1,
        dest="seed_seed",
        metavar="SEED",
        help=f"random seed of the {what}cohort",
    )
    parser.add_argument(
        f"--{prefix}end",
        type=aware_time,
        default=datetime(2026, 11, 1, tzinfo=UTC),
        dest="seed_end",
        metavar="TIME",
        help="end of the simulated window, RFC 3339 (default: a fixed date, so reruns compare)",
    )
    if not prefix:
        parser.add_argument(
            "--labels",
            type=Path,
            default=DEFAULT_LABELS,
            metavar="FILE",
            help="write the cohort's ground truth (episodes, look-alikes) here, for the"
            " detection notebook",
        )


def _seed(settings: Settings, args: argparse.Namespace) -> int:
    from homecare.demo.seed import SeedConfig, seed_database

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
        args.labels = labels or DEFAULT_LABELS
        if _seed(settings, args) != 0:
            return 1
        labels = args.labels
    elif labels is None and DEFAULT_LABELS.exists():
        labels = DEFAULT_LABELS
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
