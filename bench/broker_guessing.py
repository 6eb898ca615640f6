"""Benchmark: how fast a client can guess a device's broker password, and what that means.

Run on demand, not in the tests:  .venv/bin/python -m bench.broker_guessing [--attempts N]

A private broker with the shipped config and the dynamic-security plugin (one device account
with an issued-style password); ``--workers`` threads each open MQTT 5 connections with a wrong
password as fast as the broker answers CONNACK "Not authorized", for ``--attempts`` in total.
It prints the measured guesses per second and the expected time to guess a 256-bit password
(``secrets.token_urlsafe(32)``, what the API issues) at that rate.
"""

from __future__ import annotations

import argparse
import secrets
import socket
import struct
import tempfile
import threading
import time
from pathlib import Path

from homecare.broker.hashing import hash_password
from homecare.broker.sync import ServiceAccount, render_dynsec_config
from tests.support.mosquitto import PrivateMosquitto

DEVICE = "cuff-guess"
SECONDS_PER_YEAR = 365.25 * 24 * 3600


def _utf8(text: str) -> bytes:
    data = text.encode()
    return struct.pack("!H", len(data)) + data


def connect_packet(username: str, password: str) -> bytes:
    """A raw MQTT 5 CONNECT (clean start, username and password): no client library overhead,
    so the rate measured is the broker's, not paho's."""
    variable = _utf8("MQTT") + bytes([5, 0xC2]) + struct.pack("!H", 30) + b"\x00"
    body = variable + _utf8("") + _utf8(username) + _utf8(password)
    assert len(body) < 128
    return bytes([0x10, len(body)]) + body


def guess(port: int, count: int, refused: list[int]) -> None:
    packet = connect_packet(DEVICE, "wrong-" + secrets.token_urlsafe(8))
    for _ in range(count):
        with socket.create_connection(("127.0.0.1", port)) as sock:
            sock.sendall(packet)
            answer = sock.recv(64)
        if len(answer) >= 4 and answer[0] == 0x20 and answer[3] == 0x87:
            refused.append(1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--attempts", type=int, default=4000)
    parser.add_argument("--workers", type=int, default=4)
    args = parser.parse_args()
    state = render_dynsec_config(
        [(DEVICE, hash_password(secrets.token_urlsafe(32)))],
        ServiceAccount.from_password("homecare-admin", secrets.token_urlsafe(16)),
        ServiceAccount.from_password("homecare-ingest", secrets.token_urlsafe(16)),
    )
    with (
        tempfile.TemporaryDirectory(prefix="hc-guess-") as work,
        PrivateMosquitto(Path(work) / "mosquitto", {}, dynsec=state) as broker,
    ):
        refused: list[int] = []
        per = args.attempts // args.workers
        threads = [
            threading.Thread(target=guess, args=(broker.device_port, per, refused))
            for _ in range(args.workers)
        ]
        started = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.perf_counter() - started
    rate = len(refused) / elapsed
    years = 2**255 / rate / SECONDS_PER_YEAR  # on average half the space is searched
    print(
        f"{len(refused)} of {per * args.workers} wrong passwords refused (0x87) in {elapsed:.1f} s"
        f" = {rate:.0f} guesses/s with {args.workers} connections; a 256-bit password takes "
        f"on average {years:.1e} years at that rate"
    )


if __name__ == "__main__":
    main()
