"""The live stream over a real server: each client gets the alert changes of its own care
teams' patients only, as they commit, and a client that goes away is forgotten."""

from __future__ import annotations

import json
import queue
import threading
import time
from dataclasses import replace
from datetime import timedelta
from typing import Any

import httpx2

from homecare.api import create_app
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


def test_a_stream_ends_when_its_token_is_revoked_or_its_team_left(
    world: World, database_url: str
) -> None:
    """A stream is one request held for hours: the token and the care teams it was opened with
    are checked again while it runs, so signing out, an expired token, a disabled user or a
    nurse moved out of a team stops the live alerts too, not only the next request."""
    config = replace(
        api_config(database_url, world.clock, world.packs_dir),
        stream_recheck=timedelta(seconds=0.2),
    )
    app = create_app(config)
    with live_server(app) as base:
        revoked = Listener(base, world.tokens["nurse"])
        moved = Listener(base, world.tokens["nurse2"])
        kept = Listener(base, world.tokens["physician"])
        deadline = time.monotonic() + 5
        while app.state.live.client_count < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert world.post("nurse", f"{P}/auth/logout").status_code == 204
        world.db.execute(
            "DELETE FROM care_team_members WHERE care_team = 'renal'"
            " AND user_id = (SELECT id FROM users WHERE username = 'nurse2')"
        )
        assert revoked.ended.wait(5), "the stream of a revoked token went on"
        assert moved.ended.wait(5), "the stream went on after its user left the team"
        assert not kept.ended.is_set()
        open_alert(world, "own", "test.live")
        frame = kept.next(timeout=5)
        assert frame is not None and frame["change"] == "opened"
        assert revoked.next(timeout=0.2) is None
        world.clock.advance(timedelta(days=1, seconds=1))  # the physician's token expires
        assert kept.ended.wait(5), "the stream of an expired token went on"
