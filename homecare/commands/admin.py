"""Admin: operators' one-off commands — API tokens, broker accounts, replay of stored readings."""

from __future__ import annotations

import argparse
import logging
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from homecare import store
from homecare.arguments import (
    instant,
)
from homecare.settings import Settings
from homecare.wiring import broker_accounts

log = logging.getLogger("homecare")


def add_commands(commands: Any) -> None:
    """add_commands adds this module's subcommands to the ``homecare`` parser."""
    token = commands.add_parser("token", help="API tokens")
    token_commands = token.add_subparsers(dest="token_command", required=True)
    token_create = token_commands.add_parser(
        "create", help="print a new API token for a user (created if needed)"
    )
    token_create.add_argument(
        "--role",
        required=True,
        choices=("nurse", "physician", "analyst", "admin"),
        help="what the token may do (docs/api.md lists each role's rights)",
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

    replay = commands.add_parser(
        "replay", help="re-evaluate stored readings and compare with the stored findings"
    )
    replay.add_argument("--since", required=True, type=instant, help="RFC 3339 or YYYY-MM-DD")
    replay.add_argument("--until", type=instant, help="default: now")
    replay.add_argument("--patient", type=uuid.UUID, help="only this patient")
    replay.add_argument(
        "--apply", action="store_true", help="make the stored findings follow the replay"
    )
    replay.set_defaults(run=_replay)


def _token_create(settings: Settings, args: argparse.Namespace) -> int:
    from datetime import timedelta

    from homecare.api.bootstrap import TokenError, create_cli_token

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
                default_locale=settings.api_default_locale,
                default_time_zone=settings.api_default_time_zone,
            )
        except TokenError as exc:
            print(f"homecare token create: {exc}", file=sys.stderr)
            return 2
    for note in notes:
        print(f"homecare token: {note}", file=sys.stderr)
    print(issued.token)
    return 0


def _broker_render(settings: Settings, args: argparse.Namespace) -> int:

    from homecare.broker import sync as broker_sync

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
    from homecare.broker.credentials import CredentialsError
    from homecare.broker.dynsec import DynsecAdmin
    from homecare.broker.sync import reconcile, service_accounts

    try:
        admin, ingest = service_accounts(settings.mqtt_admin_url, settings.mqtt_url)
        store.wait_for_database(
            settings.database_url, settings.connect_timeout_s, "homecare-broker"
        )
        with store.connect(settings.database_url, autocommit=True) as conn:
            accounts = broker_accounts(settings)
            if not isinstance(accounts.admin, DynsecAdmin):
                print(
                    "homecare broker sync: for Mosquitto; the NATS cluster's accounts file is"
                    " the broker's state (revoke or rotate devices through the API)",
                    file=sys.stderr,
                )
                return 1
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


def _replay(settings: Settings, args: argparse.Namespace) -> int:
    from homecare.rules import load_packs, replay
    from homecare.wiring import rules_config

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
