"""Models: the ``homecare models`` commands — train the anomaly models now, list the registry."""

from __future__ import annotations

import argparse
import getpass
import socket
import sys
import uuid
from datetime import UTC, datetime
from typing import Any

from homecare import store
from homecare.arguments import instant
from homecare.settings import Settings


def add_commands(commands: Any) -> None:
    """add_commands adds this module's subcommands to the ``homecare`` parser."""
    models = commands.add_parser("models", help="anomaly models: train now, list the registry")
    model_commands = models.add_subparsers(dest="models_command", required=True)
    train = model_commands.add_parser(
        "train",
        help="fit and register the cohort and personal models (what the scheduler does)",
    )
    train.add_argument("--patient", type=uuid.UUID, help="only this patient's personal models")
    train.add_argument(
        "--program", action="append", default=None, help="only this program (repeatable)"
    )
    train.add_argument(
        "--until", type=instant, default=None, help="train on readings up to this (default: now)"
    )
    train.set_defaults(run=_train)
    listing = model_commands.add_parser("list", help="the registered model versions")
    listing.add_argument("--patient", type=uuid.UUID, help="only this patient's personal models")
    listing.add_argument("--program", help="only this program's cohort models")
    listing.set_defaults(run=_list)


def _train(settings: Settings, args: argparse.Namespace) -> int:
    from homecare import catalogue
    from homecare.rules import PackError, load_packs
    from homecare.rules.training import train
    from homecare.wiring import rules_config, training_config

    unknown = [p for p in args.program or () if p not in catalogue.PROGRAMS]
    if unknown:
        print(
            f"homecare models train: unknown program {unknown[0]!r}; one of"
            f" {', '.join(catalogue.PROGRAMS)}",
            file=sys.stderr,
        )
        return 2
    try:
        packs = load_packs(rules_config(settings).packs_dir)
    except PackError as exc:
        print(f"homecare models train: {exc}", file=sys.stderr)
        return 2
    who = f"cli:{getpass.getuser()}@{socket.gethostname()}"
    store.wait_for_database(settings.database_url, settings.connect_timeout_s, "homecare-models")
    with store.connect(settings.database_url, autocommit=True) as conn:
        store.flavour(conn)
        report = train(
            conn,
            args.until or datetime.now(UTC),
            training_config(settings, who),
            packs,
            programs=args.program,
            patient_id=args.patient,
        )
    for row in report.registered:
        subject = row.patient_id if row.scope == "personal" else row.program
        print(
            f"registered {row.scope:<8} {subject} {row.kind} v{row.version} {row.model_id}"
            f" in force from {row.in_force_from.isoformat()}"
        )
    seconds = ", ".join(f"{k} {v:.1f} s" for k, v in report.seconds.items())
    print(
        f"trained {report.patients} patients ({report.readings} readings,"
        f" {report.readings_left_out} left out as flagged): {len(report.registered)} registered,"
        f" {report.unchanged} unchanged, {report.too_little_history} with too little history"
        + (f"; {seconds}" if seconds else "")
    )
    return 0


def _list(settings: Settings, args: argparse.Namespace) -> int:
    from homecare.rules.registry import list_models

    store.wait_for_database(settings.database_url, settings.connect_timeout_s, "homecare-models")
    with store.connect(settings.database_url, autocommit=True) as conn:
        store.flavour(conn)
        rows = list_models(conn, patient_id=args.patient, program=args.program)
    print(
        f"{'scope':<8} {'subject':<36} {'kind':<18} ver  {'model id':<16}  {'in force from':<26}"
        f" {'trained until':<26} instants  by"
    )
    for row in rows:
        subject = str(row.patient_id) if row.scope == "personal" else str(row.program)
        print(
            f"{row.scope:<8} {subject:<36} {row.kind:<18} {row.version:>3}  {row.model_id}"
            f"  {row.in_force_from.isoformat():<26} {row.trained_until.isoformat():<26}"
            f" {row.instants:>8}  {row.trained_by}"
        )
    print(f"{len(rows)} model versions")
    return 0
