"""Benchmark: what one device's retained publishes cost the broker in memory.

Run on demand, not in the tests:  .venv/bin/python -m bench.broker_retained [--count N]

A private broker with the shipped config and the dynamic-security plugin; one device publishes
``--count`` retained 250 KB messages under its own tree (``.../<id>/blob/<n>``), then retained
250 KB messages to its ``readings`` and ``status``. It prints the broker's resident memory
before and after, and how many publishes the broker accepted.
"""

from __future__ import annotations

import argparse
import secrets
import tempfile
import time
from pathlib import Path

import paho.mqtt.client as mqtt

from homecare.broker.hashing import hash_password
from homecare.broker.sync import ServiceAccount, render_dynsec_config
from tests.support.mosquitto import PrivateMosquitto

DEVICE = "cuff-retained"


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for {pid}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=1000)
    args = parser.parse_args()
    password = secrets.token_urlsafe(32)
    state = render_dynsec_config(
        [(DEVICE, hash_password(password))],
        ServiceAccount.from_password("homecare-admin", secrets.token_urlsafe(16)),
        ServiceAccount.from_password("homecare-ingest", secrets.token_urlsafe(16)),
    )
    accepted: list[bool] = []
    with (
        tempfile.TemporaryDirectory(prefix="hc-retained-") as work,
        PrivateMosquitto(Path(work) / "mosquitto", {}, dynsec=state) as broker,
    ):
        assert broker.pid is not None
        before = rss_mb(broker.pid)
        client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,  # type: ignore[attr-defined]
            client_id="any",
            protocol=mqtt.MQTTv5,
        )
        client.on_publish = lambda c, u, mid, reason, p: accepted.append(not reason.is_failure)
        client.username_pw_set(DEVICE, password)
        client.connect("127.0.0.1", broker.device_port)
        client.loop_start()
        blob = b"x" * 250_000
        leaves = [f"blob/{n}" for n in range(args.count)] + ["readings", "status"]
        for info in [
            client.publish(f"homecare/v1/devices/{DEVICE}/{leaf}", blob, qos=1, retain=True)
            for leaf in leaves
        ]:
            info.wait_for_publish(60)
        time.sleep(1)
        after = rss_mb(broker.pid)
        client.disconnect()
        client.loop_stop()
    print(
        f"broker RSS {before:.1f} MB -> {after:.1f} MB; {sum(accepted)} of {len(leaves)} retained "
        "250 KB publishes accepted"
    )


if __name__ == "__main__":
    main()
