"""Background load: BP cuffs publishing at a steady rate, in a process of their own.

The alert-latency benchmark measures alerts while the broker and the ingest are busy; the load
runs in separate processes so that the publishers' Python does not share a GIL with the probe.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from multiprocessing.synchronize import Event as MpEvent
from typing import Any

from homecare.devices import BrokerAddress, DevicePublisher
from homecare.devices.sim import cuff_messages
from tests.support.pipeline import device_password

__all__ = ["background_load"]


def background_load(
    broker_port: int,
    devices: tuple[str, ...],
    readings_per_s: float,
    seed: int,
    stop: MpEvent,
    results: Any,
) -> None:
    """background_load publishes BP-cuff messages (3 readings each), event time = now, paced at
    ``readings_per_s`` until ``stop``. It reports on ``results``: ("connected",) once every
    device is connected, then ("done", messages published, seconds) or ("failed", why)."""
    messages_per_s = readings_per_s / 3
    address = BrokerAddress("127.0.0.1", broker_port, "5", password_for=device_password)
    publisher = DevicePublisher(address, devices)
    try:
        publisher.connect(timeout_s=30 + len(devices) / 10)
        results.put(("connected",))
        plan = cuff_messages(
            devices, 10**9, datetime.now(UTC), timedelta(seconds=1 / messages_per_s), seed=seed
        )
        stopping = threading.Event()  # DevicePublisher wants a threading.Event
        threading.Thread(target=_relay, args=(stop, stopping), daemon=True).start()
        report = publisher.publish(plan, rate_per_s=messages_per_s, stop=stopping)
        results.put(("done", report.published, report.seconds))
    except Exception as exc:
        results.put(("failed", repr(exc)))
    finally:
        publisher.close()


def _relay(source: MpEvent, target: threading.Event) -> None:
    source.wait()
    target.set()
