"""Simulate: the ``homecare simulate`` command — simulated patients, published or written.

Wiring only: the simulator (``devices.sim``) plans the cohort and streams its messages; this
module chooses the window from the clock (the only place "now" enters), enrols the cohort in
the store so the ingest accepts it, and hands the stream to the device publisher or a file.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from datetime import UTC, datetime

from homecare import catalogue, store
from homecare.demo.provision import issue_device_passwords, provision_simulation
from homecare.devices import BrokerAddress, DevicePublisher
from homecare.devices.sim import (
    FaultRates,
    SimConfig,
    Simulation,
    live_window,
    paced,
    write_messages,
)
from homecare.settings import Settings
from homecare.wiring import broker_accounts

__all__ = ["run_simulate"]


def run_simulate(settings: Settings, args: argparse.Namespace) -> int:
    """run_simulate runs ``homecare simulate``; labels are written even if publishing fails."""
    if args.end is not None and not args.out:
        print("homecare simulate: --end applies to --out only", file=sys.stderr)
        return 2
    now = datetime.now(UTC)
    if args.out:
        end = args.end or now
    else:
        _, end = live_window(args.days, args.speed, now)
    try:
        config = SimConfig(
            patients=args.patients,
            days=args.days,
            seed=args.seed,
            end=end,
            programs=args.programs or catalogue.PROGRAMS,
            wearable=args.wearable,
            episode_rate_scale=args.episode_rate_scale,
            faults=FaultRates.none() if args.no_faults else FaultRates(),
            id_prefix=args.device_prefix,
        )
    except ValueError as exc:
        print(f"homecare simulate: {exc}", file=sys.stderr)
        return 2
    sim = Simulation(config)
    episodes = Counter(e.kind for p in sim.plans for e in p.episodes)
    window = f"{config.start:%Y-%m-%d %H:%M} to {config.end:%Y-%m-%d %H:%M} UTC"
    print(
        f"simulating {config.patients} patients, {len(sim.device_ids())} devices, {window}"
        f" (seed {config.seed}); episodes: "
        + (", ".join(f"{k} {v}" for k, v in sorted(episodes.items())) or "none")
    )
    passwords: dict[str, str] = {}
    if (args.out and args.provision) or (not args.out and not args.no_provision):
        store.wait_for_database(settings.database_url, settings.connect_timeout_s)
        with store.connect(settings.database_url, autocommit=True) as conn:
            created = provision_simulation(conn, sim.enrolment())
            if not args.out and args.device_password is None and settings.mqtt_admin_url:
                # The same path as a real device: its own credentials, issued through the
                # broker's dynamic-security plugin (broker.credentials).
                accounts = broker_accounts(settings)
                passwords = issue_device_passwords(conn, sim.device_ids(), accounts)
        print(f"provisioned {created} new patients ({config.patients} in all) and their devices")
        if passwords:
            print(f"issued broker credentials to {len(passwords)} devices")
    try:
        if args.out:
            with open(args.out, "w", encoding="utf-8") as out:
                written = write_messages(sim.messages(), out)
            print(f"wrote {written} messages ({sim.counts.readings} readings) to {args.out}")
        else:
            _publish(settings, args, sim, passwords)
    finally:
        if args.labels:
            sim.write_labels(args.labels)
            print(f"labels in {args.labels}")
    return 0


def _publish(
    settings: Settings, args: argparse.Namespace, sim: Simulation, passwords: dict[str, str]
) -> None:
    from homecare.ingest import parse_mqtt_url

    host, port, _, _, _ = parse_mqtt_url(settings.mqtt_url)
    broker = BrokerAddress(
        host,
        port,
        settings.mqtt_protocol,
        password_for=lambda device_id: passwords.get(device_id, args.device_password),
    )
    stream = paced(sim.messages(), sim.config.start, args.speed)
    with DevicePublisher(broker, sim.device_ids()) as publisher:
        report = publisher.publish(m.outgoing() for m in stream)
    rate = report.published / report.seconds if report.seconds else float("inf")
    print(
        f"published {report.published} messages ({sim.counts.readings} readings) in"
        f" {report.seconds:.1f}s ({rate:.0f}/s): "
        + ", ".join(f"{k} {v}" for k, v in sorted(report.by_expected.items()))
    )
