"""The live stream over a real server: each client gets the alert changes of its own care
teams' patients only, as they commit, and a client that goes away is forgotten."""

from __future__ import annotations

import json
import queue
import threading
import time
from typing import Any

import httpx2

from api import create_app
from tests.api_support import World, api_config, live_server, open_alert, packs_dir, world

__all__ = ["packs_dir", "world"]
P = "/api/v1"


class Listener:
    """Listener reads one SSE stream in a thread; its alert frames arrive in ``frames``."""

    def __init__(self, base: str, token: str) -> None:
        self.frames: queue.Queue[dict[str, Any]] = queue.Queue()
        self.ready = threading.Event()
        self.ended = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(base, token), daemon=True)
        self._thread.start()
        assert self.ready.wait(10), "the stream did not open"

    def _run(self, base: str, token: str) -> None:
        headers = {"Authorization": f"Bearer {token}"}
        with (
            httpx2.Client(base_url=base, timeout=30) as client,
            client.stream("GET", f"{P}/alerts/stream", headers=headers) as answer,
        ):
            for line in answer.iter_lines():
                if line.startswith("retry:"):
                    self.ready.set()
                elif line.startswith("data: "):
                    self.frames.put(json.loads(line[6:]))
        self.ended.set()  # the server ended the stream cleanly (no broken chunked body)

    def next(self, timeout: float) -> dict[str, Any] | None:
        try:
            return self.frames.get(timeout=timeout)
        except queue.Empty:
            return None


def test_each_client_sees_only_its_teams_alerts_live(world: World, database_url: str) -> None:
    app = create_app(api_config(database_url, world.clock, world.packs_dir))
    with live_server(app) as base:
        cardio = Listener(base, world.tokens["nurse"])
        renal = Listener(base, world.tokens["nurse2"])
        deadline = time.monotonic() + 5
        while app.state.live.client_count < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        own = open_alert(world, "own", "test.live")
        frame = cardio.next(timeout=5)
        assert frame is not None and frame["change"] == "opened"
        assert frame["alert"]["id"] == own
        assert frame["alert"]["patient_id"] == str(world.patients["own"])
        other = open_alert(world, "other", "test.live")
        seen = renal.next(timeout=5)
        assert seen is not None and seen["alert"]["id"] == other
        assert renal.next(timeout=0.5) is None  # the cardio alert never reached renal
        assert cardio.next(timeout=0.5) is None  # nor the renal one cardio
        acked = world.post("nurse", f"{P}/alerts/{own}/ack")
        assert acked.status_code == 200
        change = cardio.next(timeout=5)
        assert change is not None and change["change"] == "acknowledged"
        assert change["actor"] == "user:nurse"
    # Shutting the server down ends both streams cleanly, without waiting out a timeout.
    assert cardio.ended.wait(5) and renal.ended.wait(5)
    opened = world.db.execute(
        "SELECT count(*) FROM audit_log WHERE action = 'alerts.stream'"
    ).fetchone()
    assert opened == (2,)
