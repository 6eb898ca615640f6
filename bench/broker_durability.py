"""Benchmark: what a Mosquitto crash loses of what it acknowledged, and what saving more costs.

Run on demand, not in the tests:  .venv/bin/python -m bench.broker_durability [--seconds S]

For each persistence setting (the shipped ``autosave_interval 300`` and shorter ones), on a
private broker with the shipped config (tests/support/mosquitto.py):
1. the ingest's persistent session subscribes, then either stays online and acknowledges each
   message at once (``online``) or goes offline so a backlog builds (``backlog``);
2. ``--publishers`` devices publish QoS 1 readings (300-byte payloads) as fast as the broker
   acknowledges them, for ``--seconds``; each PUBACK's latency is recorded;
3. the broker is SIGKILLed while they publish (a crash: OOM kill, power loss), restarted on the
   same persistence directory, and the ingest session drains what survived.
It prints, per setting: messages acknowledged to devices, how many of those never reached the
ingest (lost), the acknowledged rate, the PUBACK latency p50/p99/max (a save stalls the broker)
and the size of mosquitto.db.

Mosquitto 2.0 sends PUBACK from its network loop and saves its database afterwards (a whole
snapshot, fsynced), so no setting makes an acknowledgement durable: the settings only shorten
the window. ``autosave_on_changes true`` with ``autosave_interval N`` saves after N changes;
without it, every N seconds.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from tests.support.mosquitto import PrivateMosquitto

INGEST, INGEST_PW = "homecare-ingest", "bench-ingest"
SHARED = "$share/ingest/homecare/v1/devices/+/readings"
PAYLOAD = b"x" * 260

SETTINGS: dict[str, list[str]] = {
    "shipped (autosave_interval 300 s)": [],
    "autosave_interval 1 s": ["autosave_interval 1"],
    "on changes, every 1000": ["autosave_on_changes true", "autosave_interval 1000"],
    "on changes, every 100": ["autosave_on_changes true", "autosave_interval 100"],
    "on changes, every 1": ["autosave_on_changes true", "autosave_interval 1"],
}


@dataclass
class Tally:
    acked: set[bytes] = field(default_factory=set)
    latencies: list[float] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def ingest_client(port: int, received: set[bytes], lock: threading.Lock) -> mqtt.Client:
    client = mqtt.Client(
        mqtt.CallbackAPIVersion.VERSION2,  # type: ignore[attr-defined]
        client_id="homecare-ingest-bench",
        protocol=mqtt.MQTTv5,
    )
    client.username_pw_set(INGEST, INGEST_PW)

    def on_message(c: mqtt.Client, u: object, message: mqtt.MQTTMessage) -> None:
        with lock:
            received.add(bytes(message.payload[:24]))

    client.on_message = on_message
    props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
    props.SessionExpiryInterval = 3600
    client.connect("127.0.0.1", port, clean_start=False, properties=props)
    return client


def publisher(port: int, name: str, stop: threading.Event, tally: Tally) -> None:
    sent: dict[int, tuple[float, bytes]] = {}
    client = mqtt.Client(
        mqtt.CallbackAPIVersion.VERSION2,  # type: ignore[attr-defined]
        client_id=name,
        protocol=mqtt.MQTTv5,
    )
    client.username_pw_set(name, f"pw-{name}")
    client.max_inflight_messages_set(50)
    client.max_queued_messages_set(100)
    slots = threading.Semaphore(100)

    def on_publish(c: mqtt.Client, u: object, mid: int, reason: object, p: object) -> None:
        entry = sent.pop(mid, None)
        slots.release()
        if entry is not None and not getattr(reason, "is_failure", False):
            with tally.lock:
                tally.acked.add(entry[1])
                tally.latencies.append(time.perf_counter() - entry[0])

    client.on_publish = on_publish
    client.connect("127.0.0.1", port)
    client.loop_start()
    seq = 0
    topic = f"homecare/v1/devices/{name}/readings"
    while not stop.is_set():
        if not slots.acquire(timeout=0.5):
            continue
        key = f"{name}:{seq:012d}".encode()[:24].ljust(24, b"-")
        seq += 1
        info = client.publish(topic, key + PAYLOAD, qos=1)
        sent[info.mid] = (time.perf_counter(), key)
    client.loop_stop()  # no DISCONNECT: the broker is gone by now


def run(name: str, extra: list[str], mode: str, seconds: float, publishers: int) -> str:
    devices = [f"bench-dev-{i}" for i in range(publishers)]
    users = {INGEST: INGEST_PW} | {d: f"pw-{d}" for d in devices}
    with tempfile.TemporaryDirectory(prefix="hc-durability-") as work:
        broker = PrivateMosquitto(Path(work) / "mosquitto", users, extra_config=extra)
        broker.start()
        received: set[bytes] = set()
        lock = threading.Lock()
        ingest = ingest_client(broker.port, received, lock)
        ingest.loop_start()
        ingest.subscribe(SHARED, qos=1)
        time.sleep(0.5)
        if mode == "backlog":
            ingest.disconnect()
            ingest.loop_stop()
        tally, stop = Tally(), threading.Event()
        threads = [
            threading.Thread(target=publisher, args=(broker.device_port, d, stop, tally))
            for d in devices
        ]
        started = time.perf_counter()
        for thread in threads:
            thread.start()
        time.sleep(seconds)
        broker.kill()  # mid-stream
        elapsed = time.perf_counter() - started
        stop.set()
        for thread in threads:
            thread.join()
        if mode == "online":
            ingest.loop_stop()
        with tally.lock:
            acked = set(tally.acked)
            latencies = sorted(tally.latencies)
        db_file = broker.persistence_dir / "mosquitto.db"
        db_mb = db_file.stat().st_size / 1e6 if db_file.exists() else 0.0
        broker.start(timeout=120)
        ingest = ingest_client(broker.port, received, lock)
        ingest.loop_start()
        last, idle_since = -1, time.monotonic()
        while time.monotonic() - idle_since < 3:
            time.sleep(0.5)
            with lock:
                now = len(received)
            if now != last:
                last, idle_since = now, time.monotonic()
        ingest.disconnect()
        ingest.loop_stop()
        broker.stop()
    lost = len(acked - received)
    p50 = statistics.median(latencies) * 1e3 if latencies else 0.0
    p99 = latencies[int(len(latencies) * 0.99)] * 1e3 if latencies else 0.0
    top = latencies[-1] * 1e3 if latencies else 0.0
    return (
        f"{mode:8} {name:34} acked {len(acked):7d}  lost {lost:7d}  "
        f"{len(acked) / elapsed:7.0f} msgs/s  PUBACK p50 {p50:6.1f} p99 {p99:7.1f} "
        f"max {top:7.1f} ms  db {db_mb:6.1f} MB"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--publishers", type=int, default=4)
    parser.add_argument("--modes", default="online,backlog")
    args = parser.parse_args()
    for mode in args.modes.split(","):
        for name, extra in SETTINGS.items():
            print(run(name, extra, mode, args.seconds, args.publishers), flush=True)


if __name__ == "__main__":
    main()
