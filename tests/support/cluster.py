"""The clustered topology for tests: a 3-node NATS cluster, ingest workers as processes, and
a fleet of MQTT devices that fail over between broker nodes by themselves.

Everything is real and private: nats-server from Debian started from the node files the
project ships (``deploy/nats/node*.conf``, with free ports and private directories), ingest
workers started as ``python -m homecare ingest`` so that a test can SIGKILL one, and devices
that are paho clients publishing the v1 contract at QoS 1.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import nats
import paho.mqtt.client as mqtt

from homecare.broker.nats_accounts import NatsAccountsAdmin, ingest_permissions
from homecare.ingest.nats import MQTT_STREAM
from tests.support.services import (
    LOCALHOST,
    ServiceError,
    find_executable,
    free_port,
    port_is_open,
    wait_for_port,
)

REPO_ROOT = Path(__file__).resolve().parents[2]

__all__ = [
    "ADMIN_USER",
    "DEPLOY_NATS",
    "INGEST_USER",
    "EtcdCluster",
    "Fleet",
    "IngestProcess",
    "NatsCluster",
    "PatroniCluster",
    "device_password",
]

DEPLOY_NATS = REPO_ROOT / "deploy" / "nats"
INGEST_USER = "homecare-ingest"
INGEST_PASSWORD = "ingest-cluster-secret"
ADMIN_USER = "homecare-test-admin"  # tests only: inspects and resets the stream and consumer
ADMIN_PASSWORD = "admin-cluster-secret"
DURABLE = "homecare-ingest"
_PREFIX_READINGS = "$MQTT.msgs.homecare.v1.devices.>"
# A message a worker took and did not acknowledge goes to another after this long; short here
# so that the SIGKILL of a worker costs the test seconds, not the production minute.
ACK_WAIT_S = 5.0
_PORT = re.compile(r"127\.0\.0\.1:(\d+)")


def device_password(device_id: str) -> str:
    """device_password is each test device's own broker password."""
    return f"pw-{device_id}"


@dataclass
class _Node:
    index: int
    config: Path
    client_port: int
    mqtt_port: int
    process: subprocess.Popen[bytes] | None = None
    log: Path = field(default_factory=Path)


class NatsCluster:
    """NatsCluster runs three nats-server nodes from the shipped node files on free ports."""

    def __init__(self, work_dir: Path, size: int = 3) -> None:
        self.work_dir = work_dir
        work_dir.mkdir(parents=True, exist_ok=True)
        self.binary = find_executable("nats-server")
        fixed = [_PORT.findall((DEPLOY_NATS / f"node{i}.conf").read_text()) for i in (1, 2, 3)]
        mapping = {int(port): free_port() for ports in fixed for port in ports}
        self.accounts = NatsAccountsAdmin(work_dir / "accounts.conf")
        self.accounts.put_service(INGEST_USER, INGEST_PASSWORD, ingest_permissions(DURABLE))
        self.accounts.put_service(
            ADMIN_USER,
            ADMIN_PASSWORD,
            {"publish": {"allow": [">"]}, "subscribe": {"allow": [">"]}},
        )
        self.nodes: list[_Node] = []
        for i in range(1, size + 1):
            text = (DEPLOY_NATS / f"node{i}.conf").read_text()
            if size == 1:  # a single node: no cluster, one copy of each message (R1)
                text = re.sub(r"\ncluster \{.*?\n\}\n", "\n", text, flags=re.S)
                text = text.replace("stream_replicas: 3", "stream_replicas: 1")
            text = _PORT.sub(lambda m: f"{LOCALHOST}:{mapping[int(m.group(1))]}", text)
            text = re.sub(r'pid_file: "[^"]*"', f'pid_file: "{work_dir}/nats-{i}.pid"', text)
            text = re.sub(r'store_dir: "[^"]*"', f'store_dir: "{work_dir}/data-{i}"', text)
            # include "accounts.conf" is relative to the node file: the one beside it here.
            config = work_dir / f"node{i}.conf"
            config.write_text(text)
            ports = [int(p) for p in _PORT.findall(text)]
            client_port, mqtt_port = ports[0], ports[-1]
            self.nodes.append(_Node(i, config, client_port, mqtt_port, log=work_dir / f"n{i}.log"))
        self.accounts.pid_files = [work_dir / f"nats-{i}.pid" for i in range(1, size + 1)]

    # --- lifecycle --------------------------------------------------------------------------

    def start(self) -> None:
        """start runs every node that is not running and waits for the cluster's streams."""
        for node in self.nodes:
            if node.process is None or node.process.poll() is not None:
                self.start_node(node.index)
        for node in self.nodes:
            wait_for_port(LOCALHOST, node.mqtt_port, 20)
        self._create_mqtt_streams()

    def start_node(self, index: int) -> None:
        """start_node (re)starts one node on its ports and data."""
        node = self.nodes[index - 1]
        with open(node.log, "ab") as log:
            node.process = subprocess.Popen(
                [str(self.binary), "-c", str(node.config)], stdout=log, stderr=subprocess.STDOUT
            )
        wait_for_port(LOCALHOST, node.client_port, 20)

    def kill(self, index: int) -> None:
        """kill SIGKILLs one node."""
        node = self.nodes[index - 1]
        if node.process is not None:
            node.process.kill()
            node.process.wait(10)

    def stop(self) -> None:
        """stop ends every node."""
        for node in self.nodes:
            if node.process is not None and node.process.poll() is None:
                node.process.terminate()
        for node in self.nodes:
            if node.process is not None:
                try:
                    node.process.wait(10)
                except subprocess.TimeoutExpired:
                    node.process.kill()
                    node.process.wait(5)

    def __enter__(self) -> NatsCluster:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- addresses --------------------------------------------------------------------------

    @property
    def mqtt_ports(self) -> list[int]:
        """mqtt_ports are the nodes' MQTT listeners, in node order."""
        return [node.mqtt_port for node in self.nodes]

    def nats_urls(self, user: str = INGEST_USER, password: str = INGEST_PASSWORD) -> str:
        """nats_urls is HOMECARE_NATS_URLS for the ingest (credentials in the first URL)."""
        urls = [f"nats://{LOCALHOST}:{node.client_port}" for node in self.nodes]
        urls[0] = f"nats://{user}:{password}@{LOCALHOST}:{self.nodes[0].client_port}"
        return ",".join(urls)

    def add_device(self, device_id: str) -> None:
        """add_device gives a device its user, as the API does on registration."""
        self.accounts.put_device(device_id, device_password(device_id))

    def add_devices(self, device_ids: Sequence[str]) -> None:
        """add_devices gives many devices their users with one reload."""
        self.accounts.put_devices({d: device_password(d) for d in device_ids})

    # --- inspection and reset (as the test admin) -------------------------------------------

    def stream_leader(self) -> int:
        """stream_leader is the node index leading the MQTT messages stream."""
        info = self._admin(lambda js: js.stream_info(MQTT_STREAM))
        name = info.cluster.leader if info.cluster else None
        return int(name.rsplit("-", 1)[1]) if name else 1

    def consumer_deliveries(self) -> int:
        """consumer_deliveries counts deliveries by the consumer, redeliveries included."""
        info = self._admin(lambda js: js.consumer_info(MQTT_STREAM, DURABLE))
        return int(info.delivered.consumer_seq)

    def consumer_pending(self) -> tuple[int, int]:
        """consumer_pending is (messages not yet delivered, delivered and unacknowledged)."""
        info = self._admin(lambda js: js.consumer_info(MQTT_STREAM, DURABLE))
        return int(info.num_pending), int(info.num_ack_pending)

    def reset(self) -> None:
        """reset starts any stopped node, deletes the shared consumer and purges the readings
        subjects, so that nothing an earlier test published reaches the next."""
        self.start()

        async def delete(js: Any) -> None:
            with contextlib.suppress(nats.js.errors.NotFoundError):
                await js.delete_consumer(MQTT_STREAM, DURABLE)
            # Without this purge, the test after a node's SIGKILL was sometimes handed an
            # earlier test's messages (quarantined as unknown devices in its own database),
            # although the stream's leader counted no message left: see the HA docs.
            await js.purge_stream(MQTT_STREAM, subject=_PREFIX_READINGS)

        self._admin(delete)

    def create_consumer(self, ack_wait_s: float = ACK_WAIT_S, durable: str = DURABLE) -> None:
        """create_consumer makes the shared consumer exist before devices publish."""
        from homecare.ingest.nats import NatsConfig, ensure_consumer

        config = NatsConfig((), None, None, "test", durable=durable, ack_wait_s=ack_wait_s)
        self._admin(lambda js: ensure_consumer(js, config))

    def _admin(self, call: Callable[[Any], Any]) -> Any:
        async def run() -> Any:
            servers = [f"nats://{LOCALHOST}:{n.client_port}" for n in self.nodes]
            deadline = time.monotonic() + 30
            while True:
                nc = await nats.connect(
                    servers=servers, user=ADMIN_USER, password=ADMIN_PASSWORD, connect_timeout=2
                )
                try:
                    return await call(nc.jetstream(timeout=5))
                except (nats.errors.TimeoutError, nats.js.errors.ServiceUnavailableError):
                    if time.monotonic() > deadline:
                        raise
                finally:
                    await nc.close()
                await asyncio.sleep(0.5)

        return asyncio.run(run())

    def _create_mqtt_streams(self) -> None:
        """The MQTT streams appear at an account's first MQTT connection; make one, once
        JetStream has a metadata leader (before that the connection times out)."""
        self._admin(lambda js: js.account_info())
        deadline = time.monotonic() + 60
        while True:
            client = mqtt.Client(
                mqtt.CallbackAPIVersion.VERSION2,  # type: ignore[attr-defined]
                client_id="homecare-bootstrap",
            )
            client.username_pw_set(ADMIN_USER, ADMIN_PASSWORD)
            with contextlib.suppress(OSError):
                client.connect(LOCALHOST, self.nodes[0].mqtt_port, 10)
                attempt = time.monotonic() + 15  # creating the streams takes seconds
                while not client.is_connected() and time.monotonic() < attempt:
                    if client.loop(0.5) != mqtt.MQTT_ERR_SUCCESS:
                        break
            if client.is_connected():
                client.disconnect()
                break
            if time.monotonic() > deadline:
                raise ServiceError("the NATS cluster's MQTT listener never accepted a client")
            time.sleep(0.5)
        self._admin(lambda js: js.stream_info(MQTT_STREAM))


class IngestProcess:
    """IngestProcess is ``python -m homecare ingest`` against the cluster (SIGKILL-able)."""

    def __init__(
        self, cluster: NatsCluster, database_url: str, name: str, log_dir: Path, **env: str
    ) -> None:
        self.name = name
        self.log = log_dir / f"{name}.log"
        environment = {
            **os.environ,
            "HOMECARE_BROKER_KIND": "nats",
            "HOMECARE_NATS_URLS": cluster.nats_urls(),
            "HOMECARE_NATS_DURABLE": DURABLE,
            "HOMECARE_NATS_ACK_WAIT_S": str(ACK_WAIT_S),
            "HOMECARE_NATS_MAX_IN_FLIGHT": "1000",
            "HOMECARE_DATABASE_URL": database_url,
            "HOMECARE_INGEST_BATCH_MAX_WAIT_MS": "20",
            "HOMECARE_INGEST_STATS_INTERVAL_S": "2",
            "HOMECARE_CONNECT_TIMEOUT_S": "30",
            **env,
        }
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "homecare", "ingest", "--client-id", name],
                env=environment,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def wait_bound(self, timeout_s: float = 30) -> None:
        """wait_bound returns once the worker logged that it is bound to the consumer."""
        deadline = time.monotonic() + timeout_s
        while "bound to the shared consumer" not in self.log.read_text(errors="replace"):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise ServiceError(f"{self.name} did not bind: {self.log.read_text()[-3000:]}")
            time.sleep(0.1)

    def kill(self) -> None:
        """kill SIGKILLs the worker and its commit child (the whole process group)."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        """stop asks the worker to finish (SIGTERM), then insists."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()


@contextlib.contextmanager
def ingest_workers(
    cluster: NatsCluster, database_url: str, count: int, log_dir: Path, **env: str
) -> Iterator[list[IngestProcess]]:
    """ingest_workers runs ``count`` workers bound to the shared consumer for the block."""
    workers = [
        IngestProcess(cluster, database_url, f"ingest-{n}", log_dir, **env) for n in range(count)
    ]
    try:
        for worker in workers:
            worker.wait_bound()
        yield workers
    finally:
        for worker in workers:
            worker.stop()


# --- devices ----------------------------------------------------------------------------------


def reading_payload(device_id: str, index: int, base: datetime, readings: int = 1) -> bytes:
    """reading_payload is message ``index`` of a device: ``readings`` heart-rate-like values
    one second apart (msg_id ``<device>-<index>``)."""
    types = [
        ("heart_rate", "/min", 60 + index % 40),
        ("spo2", "%", 94 + index % 5),
        ("body_temperature", "Cel", 36.5),
    ]
    at = (base + timedelta(seconds=index)).isoformat().replace("+00:00", "Z")
    items = [{"type": t, "value": v, "unit": u, "time": at} for t, u, v in types[:readings]]
    return json.dumps({"msg_id": f"{device_id}-{index}", "readings": items}).encode()


class Fleet:
    """Fleet publishes ``per_device`` messages from each device at QoS 1, each device in its
    own thread, with at most ``window`` unacknowledged. A device whose connection drops
    reconnects to the next node in its list by itself and resends what was unacknowledged
    (same msg_id), as a device with several broker addresses does."""

    def __init__(
        self,
        ports: Sequence[int],
        devices: Sequence[str],
        per_device: int,
        readings: int = 1,
        window: int = 50,
    ) -> None:
        self.ports = list(ports)
        self.devices = list(devices)
        self.per_device = per_device
        self.readings = readings
        self.window = window
        self.base = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=per_device + 3600)
        self.acked = 0
        self.reconnects = 0
        self.errors: list[str] = []
        self._lock = threading.Lock()
        self._threads = [
            threading.Thread(target=self._device, args=(n, d), daemon=True, name=f"dev-{d}")
            for n, d in enumerate(self.devices)
        ]

    def start(self) -> Fleet:
        for thread in self._threads:
            thread.start()
        return self

    def join(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        for thread in self._threads:
            thread.join(max(0.1, deadline - time.monotonic()))
        alive = [t.name for t in self._threads if t.is_alive()]
        if alive or self.errors:
            raise AssertionError(f"devices unfinished {alive[:5]}, errors {self.errors[:5]}")

    def wait_acked(self, count: int, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while self.acked < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"only {self.acked} of {count} acknowledged")
            time.sleep(0.02)

    def _device(self, number: int, device_id: str) -> None:
        topic = f"homecare/v1/devices/{device_id}/readings"
        todo = deque(range(self.per_device))
        node = number % len(self.ports)
        deadline = time.monotonic() + 600
        while todo and time.monotonic() < deadline:
            unacked: dict[int, int] = {}
            done: list[int] = []
            lost = threading.Event()
            client = mqtt.Client(
                mqtt.CallbackAPIVersion.VERSION2,  # type: ignore[attr-defined]
                client_id=device_id,
                protocol=mqtt.MQTTv311,
                clean_session=True,
            )
            client.username_pw_set(device_id, device_password(device_id))
            client.max_inflight_messages_set(self.window)
            client.on_publish = lambda c, u, mid, rc, p, done=done: done.append(mid)
            client.on_disconnect = lambda c, u, f, rc, p, lost=lost: lost.set()
            try:
                client.connect(LOCALHOST, self.ports[node], keepalive=10)
                while not client.is_connected() and not lost.is_set():
                    client.loop(0.1)
                    if time.monotonic() > deadline:
                        break
                while (todo or unacked) and not lost.is_set() and client.is_connected():
                    while todo and len(unacked) < self.window:
                        index = todo.popleft()
                        payload = reading_payload(device_id, index, self.base, self.readings)
                        info = client.publish(topic, payload, qos=1)
                        unacked[info.mid] = index
                    client.loop(0.05)
                    for mid in done:
                        if unacked.pop(mid, None) is not None:
                            with self._lock:
                                self.acked += 1
                    done.clear()
            except OSError:
                pass
            finally:
                with contextlib.suppress(Exception):
                    client.disconnect()
            if unacked or todo:
                # Unacknowledged messages are resent, with their msg_id, on the next node.
                todo.extendleft(sorted(unacked.values(), reverse=True))
                with self._lock:
                    self.reconnects += 1
                node = (node + 1) % len(self.ports)
                time.sleep(0.2)
        if todo:
            self.errors.append(f"{device_id}: {len(todo)} unsent")


def wait_until(check: Callable[[], bool], timeout_s: float, what: str) -> None:
    """wait_until polls ``check`` every 0.2 s."""
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


def nodes_running(cluster: NatsCluster) -> list[int]:
    """nodes_running lists the nodes that accept connections."""
    return [n.index for n in cluster.nodes if port_is_open(LOCALHOST, n.client_port)]


from tests.support.cluster_db import EtcdCluster, PatroniCluster  # noqa: E402 (re-exported)
