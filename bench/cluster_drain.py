"""Benchmark: drain a backlog through the clustered topology, against the single-node path.

Run on demand, not in the tests:  .venv/bin/python -m bench.cluster_drain [--messages N]

All on this machine (2 cores shared by every broker node, both databases and the workers), with
the simulator's BP cuffs (3 readings a message, 100 devices):

1. single-node path: a private Mosquitto with the project's config, one ``homecare ingest``
   worker, one PostgreSQL (fsync on), as ``bench.ingest_drain`` measures it;
2. the NATS cluster (3 nodes, R3): devices publish the backlog spread over the three MQTT
   listeners (the store rate of the cluster: every message on three nodes before its PUBACK);
   one durable consumer per drain below exists before, so each drain has its own copy;
3. drains of that backlog: 1 worker into the single PostgreSQL, then 1, 2 and 3 workers into
   the Patroni pair (fsync on, synchronous replication), then a second single/Patroni pair of
   1-worker drains back to back (the cost of synchronous replication, twice);
4. a single NATS node (R1) with the same backlog, drained by 1 worker into the single
   PostgreSQL: the cost of R3 is (R1 rate) / (R3 rate), at the broker and end to end.

Drain rate: readings stored per second between the first and the last reading seen in the
table (polled every 0.25 s), so worker start-up is not counted. Prints one table.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg

from bench.ingest_drain import worker_drain
from homecare import store
from homecare.demo.provision import provision_devices
from homecare.devices import BrokerAddress, DevicePublisher, Outgoing
from homecare.devices.sim import cuff_messages
from tests.support.cluster import (
    ADMIN_PASSWORD,
    ADMIN_USER,
    EtcdCluster,
    IngestProcess,
    NatsCluster,
    PatroniCluster,
)
from tests.support.mosquitto import PrivateMosquitto
from tests.support.pipeline import INGEST_PASSWORD, INGEST_USER, ingest_config, running_worker
from tests.support.pipeline import device_password as mosquitto_password
from tests.support.postgres import PrivatePostgres

SINCE = datetime.now(UTC) - timedelta(days=30)


def _plan(devices: tuple[str, ...], messages: int) -> list[Outgoing]:
    return list(
        cuff_messages(devices, messages, SINCE + timedelta(days=1), timedelta(seconds=10), seed=42)
    )


def _database(url: str, devices: tuple[str, ...]) -> None:
    with store.connect(url, autocommit=True) as conn:
        store.migrate(conn, "postgres")
        provision_devices(conn, devices, since=SINCE)


def _publish_spread(ports: list[int], plan: list[Outgoing], password_for: object) -> float:
    """_publish_spread publishes the plan with each device on one node (devices spread over
    the nodes, one thread per node); returns messages acknowledged per second."""
    devices = sorted({item.device_id for item in plan})
    groups = {port: devices[n :: len(ports)] for n, port in enumerate(ports)}
    started = time.perf_counter()

    def run(port: int, group: list[str]) -> None:
        mine = set(group)
        address = BrokerAddress("127.0.0.1", port, "3.1.1", password_for=password_for)  # type: ignore[arg-type]
        with DevicePublisher(address, group) as publisher:
            publisher.publish(item for item in plan if item.device_id in mine)

    threads = [threading.Thread(target=run, args=(p, g)) for p, g in groups.items()]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return len(plan) / (time.perf_counter() - started)


def _count(url: str) -> int:
    try:
        with psycopg.connect(url, connect_timeout=2) as conn:
            row = conn.execute("SELECT count(*) FROM readings").fetchone()
            return int(row[0]) if row else 0
    except psycopg.OperationalError:
        return 0


def _drain(
    cluster: NatsCluster, url: str, durable: str, workers: int, target: int, log_dir: Path
) -> float:
    """_drain runs ``workers`` NATS ingest workers on ``durable``; returns readings/s."""
    env = {
        "HOMECARE_NATS_DURABLE": durable,
        "HOMECARE_NATS_URLS": cluster.nats_urls(ADMIN_USER, ADMIN_PASSWORD),
        "HOMECARE_NATS_MAX_IN_FLIGHT": "4000",
        "HOMECARE_INGEST_BATCH_MAX_WAIT_MS": "50",
        "HOMECARE_LOG_LEVEL": "WARNING",
    }
    processes = [
        IngestProcess(cluster, url, f"{durable}-{n}", log_dir, **env) for n in range(workers)
    ]
    first_at, first_count, stored = 0.0, 0, 0
    try:
        deadline = time.monotonic() + 900
        while stored < target and time.monotonic() < deadline:
            stored = _count(url)
            if stored and not first_at:
                first_at, first_count = time.perf_counter(), stored
            time.sleep(0.25)
        last_at = time.perf_counter()
    finally:
        for process in processes:
            process.stop()
    if stored < target:
        raise RuntimeError(f"{durable}: only {stored} of {target} readings stored")
    return (stored - first_count) / (last_at - first_at)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=60_000)
    parser.add_argument("--devices", type=int, default=100)
    args = parser.parse_args()
    devices = tuple(f"bench-{i:04d}" for i in range(args.devices))
    plan = _plan(devices, args.messages)
    target = 3 * len(plan)
    rows: list[tuple[str, float]] = []

    def report(label: str, rate: float) -> None:
        rows.append((label, rate))
        print(f"{label:58} {rate:>10,.0f}", flush=True)

    with tempfile.TemporaryDirectory(prefix="hc-cluster-bench-") as work_dir:
        work = Path(work_dir)
        single = PrivatePostgres(work / "single", settings={"fsync": "on"})
        single.start()
        try:
            # 1. The single-node path.
            url = single.create_database("mosquitto_path")
            _database(url, devices)
            users = {INGEST_USER: INGEST_PASSWORD} | {d: mosquitto_password(d) for d in devices}
            broker = PrivateMosquitto(work / "mosquitto", users)
            broker.start()
            try:
                with running_worker(ingest_config(url, broker.port, client_id="bench-worker")):
                    pass  # the worker's persistent session, to queue the backlog in
                rate = _publish_spread([broker.port], plan, mosquitto_password)
                report("Mosquitto: publish (messages/s, QoS 1)", rate)
                seconds, _, drained = worker_drain(url, broker.port, target, 4000)
                report("Mosquitto -> 1 worker -> PostgreSQL (readings/s)", drained / seconds)
            finally:
                broker.stop()

            etcd = EtcdCluster()
            etcd.start()
            patroni = PatroniCluster(etcd, fsync=True)
            try:
                patroni.start()
                # 2-3. The NATS cluster, R3.
                with NatsCluster(work / "nats3") as cluster:
                    cluster.add_devices(devices)
                    durables = ["single-1", "ha-1", "ha-2", "ha-3", "single-2", "ha-1b"]
                    for durable in durables:
                        cluster.create_consumer(ack_wait_s=60, durable=durable)
                    rate = _publish_spread(cluster.mqtt_ports, plan, _nats_password)
                    report("NATS R3 x3 nodes: publish (messages/s, stored R3)", rate)
                    single_url = single.create_database("nats_r3_single")
                    _database(single_url, devices)
                    r3_single = _drain(cluster, single_url, "single-1", 1, target, work)
                    report("NATS R3 -> 1 worker -> PostgreSQL (readings/s)", r3_single)
                    for n in (1, 2, 3):
                        ha_url = patroni.create_database(f"ha_{n}")
                        _database(ha_url, devices)
                        rate = _drain(cluster, ha_url, f"ha-{n}", n, target, work)
                        report(f"NATS R3 -> {n} worker(s) -> Patroni sync pair (readings/s)", rate)
                    # A second pair, back to back: this machine drifts between minutes.
                    again = single.create_database("nats_r3_single_again")
                    _database(again, devices)
                    rate = _drain(cluster, again, "single-2", 1, target, work)
                    report("NATS R3 -> 1 worker -> PostgreSQL, again (readings/s)", rate)
                    ha_again = patroni.create_database("ha_1_again")
                    _database(ha_again, devices)
                    rate = _drain(cluster, ha_again, "ha-1b", 1, target, work)
                    report("NATS R3 -> 1 worker -> Patroni sync pair, again (readings/s)", rate)
            finally:
                patroni.stop()
                etcd.stop()

            # 4. One NATS node, R1.
            with NatsCluster(work / "nats1", size=1) as lone:
                lone.add_devices(devices)
                lone.create_consumer(ack_wait_s=60, durable="r1")
                rate = _publish_spread(lone.mqtt_ports, plan, _nats_password)
                report("NATS R1 x1 node: publish (messages/s)", rate)
                r1_url = single.create_database("nats_r1_single")
                _database(r1_url, devices)
                rate = _drain(lone, r1_url, "r1", 1, target, work)
                report("NATS R1 -> 1 worker -> PostgreSQL (readings/s)", rate)
        finally:
            single.stop()

    got = dict(rows)
    r1_publish = got["NATS R1 x1 node: publish (messages/s)"]
    r3_publish = got["NATS R3 x3 nodes: publish (messages/s, stored R3)"]
    r1_drain = got["NATS R1 -> 1 worker -> PostgreSQL (readings/s)"]
    r3_drain = got["NATS R3 -> 1 worker -> PostgreSQL (readings/s)"]
    ha_drain = got["NATS R3 -> 1 worker(s) -> Patroni sync pair (readings/s)"]
    pair_2 = (
        got["NATS R3 -> 1 worker -> PostgreSQL, again (readings/s)"]
        / got["NATS R3 -> 1 worker -> Patroni sync pair, again (readings/s)"]
    )
    print()
    print(f"cost of R3 at the broker (R1 publish / R3 publish): {r1_publish / r3_publish:.2f}x")
    print(f"cost of R3 end to end (R1 / R3 drain, 1 worker): {r1_drain / r3_drain:.2f}x")
    print(
        "cost of synchronous replication (single / Patroni, 1 worker), two pairs:"
        f" {r3_drain / ha_drain:.2f}x, {pair_2:.2f}x"
    )
    return 0


def _nats_password(device_id: str) -> str:
    from tests.support.cluster import device_password

    return device_password(device_id)


if __name__ == "__main__":
    os.environ.setdefault("HOMECARE_LOG_LEVEL", "WARNING")
    raise SystemExit(main())
