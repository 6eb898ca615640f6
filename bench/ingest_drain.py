"""Benchmark: how fast a stopped ingest worker drains a broker backlog into the database.

Run on demand, not in the tests:  .venv/bin/python -m bench.ingest_drain [--messages N]

What it does, all on this machine (broker and database included):
1. a private Mosquitto with the project's broker config, and a fresh migrated database;
2. the ingest's persistent session and a counting subscriber's session are created, then both
   go offline, and M BP-cuff messages (3 readings each) are queued for both;
3. ceiling 1 — a subscriber that only counts (and acknowledges) drains its copy;
4. the real worker (``homecare ingest`` in its own process) drains its copy end to end:
   parse, validate, attribute, de-duplicate, commit, acknowledge; its peak RSS is read from
   /proc (VmHWM), summed over the worker and its child processes (the commit process and
   multiprocessing's resource tracker): an upper bound, as the peaks need not coincide;
5. ceiling 2 — a bulk load of the same rows straight into a second database with COPY.

Steps 2-4 run ``--rounds`` times (default 3) and the ratio printed is the median of each round's
own ratio: this machine's speed drifts by a quarter from one minute to the next (the subscriber
alone measured 31,000-51,000 readings/s in one hour), so a single pairing of two numbers taken
a minute apart says little. It prints the rates, the ratio, and the worker's peak memory.
``--with-rules`` adds to each round a drain of the same backlog with ``homecare rules`` running,
and reports the median of each round's with-rules rate over that round's rate without.
Targets: ≥ 10,000 readings/s, ≥ 50% of the slower ceiling, ≤ 250 MB.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import paho.mqtt.client as mqtt
import psycopg
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from bench.support import BASE_URL, fresh_database
from homecare import store
from homecare.demo.provision import provision_devices
from homecare.devices import BrokerAddress, DevicePublisher, Outgoing
from homecare.devices.sim import cuff_messages
from homecare.ingest import Delivery, ParseLimits, parse_message
from tests.support.mosquitto import PrivateMosquitto
from tests.support.pipeline import (
    INGEST_PASSWORD,
    INGEST_USER,
    device_password,
    ingest_config,
    running_worker,
)
from tests.support.services import children_of, free_port

COUNTER_ID = "bench-counter"
WORKER_ID = "bench-worker"
RULES_ID = "bench-worker-rules"


def counting_subscriber(port: int, expected: int, receive_maximum: int) -> tuple[float, float]:
    """counting_subscriber drains its session; returns (seconds first→last message, count)."""
    done = threading.Event()
    state = {"n": 0, "first": 0.0, "last": 0.0}

    def on_message(client: mqtt.Client, userdata: object, message: mqtt.MQTTMessage) -> None:
        if state["n"] == 0:
            state["first"] = time.perf_counter()
        state["n"] += 1
        client.ack(message.mid, message.qos)
        if state["n"] >= expected:
            state["last"] = time.perf_counter()
            done.set()

    client = session_client(port, COUNTER_ID, receive_maximum)
    client.on_message = on_message
    client.loop_start()
    done.wait(600)
    client.disconnect()
    client.loop_stop()
    return state["last"] - state["first"], state["n"]


def session_client(port: int, client_id: str, receive_maximum: int) -> mqtt.Client:
    client = mqtt.Client(
        mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5, manual_ack=True
    )
    client.username_pw_set(INGEST_USER, INGEST_PASSWORD)
    client.on_connect = lambda c, *_: c.subscribe("homecare/v1/devices/+/readings", qos=1)
    properties = Properties(PacketTypes.CONNECT)
    properties.SessionExpiryInterval = 3600
    properties.ReceiveMaximum = receive_maximum
    client.connect("127.0.0.1", port, clean_start=False, properties=properties)
    return client


def create_counter_session(port: int) -> None:
    subscribed = threading.Event()
    client = session_client(port, COUNTER_ID, 2000)
    client.on_subscribe = lambda *_: subscribed.set()
    client.loop_start()
    subscribed.wait(10)
    client.disconnect()
    client.loop_stop()


def bulk_load(url: str, plan: Callable[[], Iterator[Outgoing]]) -> tuple[float, int]:
    """bulk_load COPYs the same readings the worker stores; returns (seconds, rows)."""
    with store.connect(url, autocommit=True) as conn:
        patients = dict(conn.execute("SELECT device_id, patient_id FROM device_assignments"))
        now = datetime.now(UTC)
        rows = []
        for item in plan():
            parsed = parse_message(Delivery(item.topic, item.payload, now), ParseLimits())
            for r in getattr(parsed, "readings", ()):
                rows.append(
                    (
                        r.time,
                        patients[item.device_id],
                        item.device_id,
                        r.type,
                        r.value,
                        r.unit,
                        r.original_value,
                        r.original_unit,
                        item.msg_id,
                        now,
                        None,
                        None,
                    )
                )
        started = time.perf_counter()
        with (
            conn.cursor() as cur,
            cur.copy(
                "COPY readings (time, patient_id, device_id, type, value, unit, original_value,"
                " original_unit, msg_id, received_at, on_oxygen, consciousness) FROM STDIN"
            ) as copy,
        ):
            for row in rows:
                copy.write_row(row)
        return time.perf_counter() - started, len(rows)


def with_bad_offsets(messages: Iterator[Outgoing], total: int, bad: int) -> Iterator[Outgoing]:
    """with_bad_offsets gives ``bad`` messages, spread evenly, a UTC offset that Python's
    ``fromisoformat`` takes and PostgreSQL's timestamptz input refuses (alternately ``+23:59``
    and ``+05:30:15.123456``): hostile input that must cost one message, not the batch."""
    every = total // bad if bad else 0
    offsets = ("+23:59", "+05:30:15.123456")
    for index, item in enumerate(messages):
        if every and index % every == every // 2 and index // every < bad:
            offset = offsets[(index // every) % 2]
            item = replace(item, payload=item.payload.replace(b'Z"', offset.encode() + b'"'))
        yield item


def expected_readings(plan: Callable[[], Iterator[Outgoing]]) -> int:
    """expected_readings is how many readings of the plan the parser accepts (the drain's end)."""
    now = datetime.now(UTC)
    return sum(
        len(getattr(parse_message(Delivery(item.topic, item.payload, now), ParseLimits()),
                    "readings", ()))
        for item in plan()
    )  # fmt: skip


def worker_drain(
    url: str, port: int, target: int, receive_maximum: int, client_id: str = "bench-worker"
) -> tuple[float, float, int]:
    """worker_drain runs ``homecare ingest``; returns (seconds, peak RSS MB, readings stored)."""
    metrics_port = free_port()
    env = os.environ | {
        "HOMECARE_DATABASE_URL": url,
        "HOMECARE_MQTT_URL": f"mqtt://{INGEST_USER}:{INGEST_PASSWORD}@127.0.0.1:{port}",
        "HOMECARE_MQTT_CLIENT_ID": client_id,
        "HOMECARE_MQTT_RECEIVE_MAXIMUM": str(receive_maximum),
        "HOMECARE_INGEST_METRICS_PORT": str(metrics_port),
        "HOMECARE_LOG_LEVEL": "WARNING",
    }
    process = subprocess.Popen([sys.executable, "-m", "homecare", "ingest"], env=env)
    profile = os.environ.get("HOMECARE_BENCH_PROFILE")  # a py-spy output file, to see hot spots
    if profile:
        subprocess.Popen(
            [
                "py-spy",
                "record",
                "--pid",
                str(process.pid),
                "-o",
                profile,
                "-f",
                "raw",
                "-t",
                "--subprocesses",
                "--idle",
            ]
        )
    first_at, first_count, stored, peak = 0.0, 0, 0, 0.0
    try:
        deadline = time.monotonic() + 600
        while stored < target and time.monotonic() < deadline:
            stored = scrape(metrics_port)
            if stored and not first_at:
                first_at, first_count = time.perf_counter(), stored
            peak = max(peak, peak_rss_mb(process.pid))
            # Rendering the metrics page costs the worker CPU (6-10 % of its samples at a 20 ms
            # poll, seen with py-spy): poll finely only near the start and the end, where the
            # timing is decided, and every 0.25 s in between.
            time.sleep(0.01 if not first_at or stored >= 0.97 * target else 0.25)
        last_at = time.perf_counter()
        peak = max(peak, peak_rss_mb(process.pid))
    finally:
        process.terminate()
        process.wait(30)
    return last_at - first_at, peak, stored - first_count


def drain_with_rules(
    url: str, port: int, target: int, receive_maximum: int
) -> tuple[float, float, int]:
    """drain_with_rules drains the same backlog with ``homecare rules`` running beside the
    worker; returns (readings/s, seconds the rules needed after the drain, findings)."""
    env = os.environ | {"HOMECARE_DATABASE_URL": url, "HOMECARE_LOG_LEVEL": "WARNING"}
    rules = subprocess.Popen([sys.executable, "-m", "homecare", "rules"], env=env)
    try:
        seconds, _, drained = worker_drain(url, port, target, receive_maximum, RULES_ID)
        drained_at = time.perf_counter()
        with psycopg.connect(url, autocommit=True) as conn:
            while conn.execute("SELECT count(*) FROM reading_changes").fetchone() != (0,):
                time.sleep(0.1)
            caught_up = time.perf_counter() - drained_at
            row = conn.execute("SELECT count(*) FROM findings").fetchone()
    finally:
        rules.terminate()
        rules.wait(30)
    return drained / seconds, caught_up, row[0] if row else 0


def scrape(port: int) -> int:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=1) as response:
            for line in response.read().decode().splitlines():
                if line.startswith("homecare_ingest_readings_stored_total "):
                    return int(float(line.split()[1]))
    except OSError:
        return 0
    return 0


def peak_rss_mb(pid: int) -> float:
    """peak_rss_mb is the sum of the peak resident sizes of ``pid`` and its children."""
    total = 0.0
    for each in (pid, *children_of(pid)):
        try:
            for line in Path(f"/proc/{each}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    total += int(line.split()[1]) / 1024
        except OSError:
            pass
    return total


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=60_000)
    parser.add_argument("--devices", type=int, default=100)
    parser.add_argument("--receive-maximum", type=int, default=4000)
    parser.add_argument(
        "--rounds",
        type=int,
        default=3,
        help="queue, count and drain this many times; the ratio reported is the median of each"
        " round's own ratio (this machine's speed drifts by a quarter between minutes)",
    )
    parser.add_argument(
        "--bad-offsets",
        type=int,
        default=0,
        help="give this many messages, spread evenly, a time offset PostgreSQL's text input"
        " refuses (+23:59, +05:30:15.123456)",
    )
    parser.add_argument(
        "--with-rules",
        action="store_true",
        help="also drain the same backlog with a rules worker (homecare rules) running",
    )
    args = parser.parse_args()

    suffix = uuid.uuid4().hex[:6]
    copy_url = fresh_database(f"hc_bench_copy_{suffix}")
    devices = tuple(f"bench-{i:04d}" for i in range(args.devices))
    since = datetime.now(UTC) - timedelta(days=30)
    with store.connect(copy_url, autocommit=True) as conn:
        provision_devices(conn, devices, since=since)

    # The simulator's BP cuffs (devices/sim): per-patient baselines, daily rhythm, device noise.
    def plan() -> Iterator[Outgoing]:
        messages = cuff_messages(
            devices, args.messages, since + timedelta(days=1), timedelta(seconds=10), seed=42
        )
        return with_bad_offsets(messages, args.messages, args.bad_offsets)

    readings = expected_readings(plan)
    rounds: list[tuple[float, float, float, int, int]] = []  # subscriber, worker, MB, in table
    with_rules: list[tuple[float, float, int]] = []  # per round: readings/s, catch-up s, findings
    with tempfile.TemporaryDirectory(prefix="hc-bench-") as work:
        users = {INGEST_USER: INGEST_PASSWORD} | {d: device_password(d) for d in devices}
        broker = PrivateMosquitto(Path(work) / "mosquitto", users)
        broker.start()
        try:
            for number in range(args.rounds):
                url = fresh_database(f"hc_bench_{suffix}")
                rules_url = fresh_database(f"hc_bench_rules_{suffix}") if args.with_rules else None
                for target in (url, *([rules_url] if rules_url else [])):
                    with store.connect(target, autocommit=True) as conn:
                        provision_devices(conn, devices, since=since)
                with running_worker(ingest_config(url, broker.port, client_id=WORKER_ID)):
                    pass  # creates (or finds, empty) the worker's persistent session
                if rules_url:
                    with running_worker(ingest_config(rules_url, broker.port, client_id=RULES_ID)):
                        pass  # a second session gets its own copy of the same backlog
                create_counter_session(broker.port)
                address = BrokerAddress("127.0.0.1", broker.port, "5", password_for=device_password)
                with DevicePublisher(address, devices) as publisher:
                    report = publisher.publish(plan())
                print(
                    f"round {number + 1}: queued {report.published:,} messages ({readings:,}"
                    f" readings to store) in {report.seconds:.1f} s",
                    flush=True,
                )
                seconds, counted = counting_subscriber(
                    broker.port, args.messages, args.receive_maximum
                )
                worker_seconds, peak_mb, drained = worker_drain(
                    url, broker.port, readings, args.receive_maximum
                )
                if rules_url:
                    with_rules.append(
                        drain_with_rules(rules_url, broker.port, readings, args.receive_maximum)
                    )
                with psycopg.connect(url) as conn:
                    row = conn.execute("SELECT count(*) FROM readings").fetchone()
                rounds.append(
                    (3 * counted / seconds, drained / worker_seconds, peak_mb, row[0] if row else 0,
                     drained)
                )  # fmt: skip
                subscriber_rate, worker_rate = rounds[-1][:2]
                print(
                    f"         subscriber {subscriber_rate:,.0f}/s, end to end"
                    f" {worker_rate:,.0f}/s: {worker_rate / subscriber_rate:.0%}"
                    + (
                        f"; with rules {with_rules[-1][0]:,.0f}/s:"
                        f" {with_rules[-1][0] / worker_rate:.0%} of the drain without"
                        if rules_url
                        else ""
                    ),
                    flush=True,
                )
        finally:
            broker.stop()
    bulk_seconds, rows = bulk_load(copy_url, plan)
    bulk_rate = rows / bulk_seconds

    subscriber_rate = statistics.median(r[0] for r in rounds)
    worker_rate = statistics.median(r[1] for r in rounds)
    ratios = sorted(r[1] / min(r[0], bulk_rate) for r in rounds)
    slower = "subscriber" if subscriber_rate <= bulk_rate else "bulk COPY"
    in_table = min(r[3] for r in rounds)
    lines = [
        f"subscriber  {subscriber_rate:>10,.0f} readings/s  (count + ack only; median of"
        f" {len(rounds)} rounds: {', '.join(f'{r[0]:,.0f}' for r in rounds)})",
        f"bulk COPY   {bulk_rate:>10,.0f} readings/s  ({rows:,} rows in {bulk_seconds:.2f} s)",
        f"end to end  {worker_rate:>10,.0f} readings/s  (median; rounds:"
        f" {', '.join(f'{r[1]:,.0f}' for r in rounds)}; at least {in_table:,} readings in the"
        " table each round)",
        f"ratio       {statistics.median(ratios):>10.0%} of the slower ceiling ({slower}), median"
        f" of each round's own ratio; rounds: {', '.join(f'{r:.0%}' for r in ratios)}",
        f"worker RSS  {max(r[2] for r in rounds):>10.0f} MB peak (VmHWM, worker + its children)",
    ]
    if with_rules:
        # Paired per round, like the ratio above: each with-rules drain against the same round's
        # drain without, a minute apart at most.
        shares = sorted(w[0] / r[1] for w, r in zip(with_rules, rounds, strict=True))
        lines.append(
            f"with rules  {statistics.median(w[0] for w in with_rules):>10,.0f} readings/s"
            f"  (median of each round's share of its drain without:"
            f" {statistics.median(shares):.0%};"
            f" rounds: {', '.join(f'{x:.0%}' for x in shares)}; rules caught up"
            f" {max(w[1] for w in with_rules):.1f} s at most after the last commit;"
            f" {with_rules[0][2]:,} findings)"
        )
    print("\n".join(lines))
    with psycopg.connect(BASE_URL, autocommit=True) as admin:
        for name in (f"hc_bench_{suffix}", f"hc_bench_copy_{suffix}", f"hc_bench_rules_{suffix}"):
            admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
