"""API access log: one structured line per request with the method, the route's template (not
the path with its ids), the status, the duration and the user id — never the query string or
the body."""

from __future__ import annotations

import logging

import pytest

from tests.api_support import PASSWORD, World, packs_dir, world

__all__ = ["packs_dir", "world"]


def _lines(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [
        r for r in caplog.records if r.name == "homecare.api.access" and r.getMessage() == "request"
    ]


def test_each_request_is_logged_with_its_route_template_and_user(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="homecare.api.access")
    patient = world.patients["own"]
    answer = world.get(
        "nurse", f"/api/v1/patients/{patient}/readings", params={"type": "heart_rate"}
    )
    assert answer.status_code == 200
    (line,) = _lines(caplog)
    fields = line.__dict__
    assert fields["method"] == "GET"
    assert fields["route"] == "/api/v1/patients/{patient_id}/readings"
    assert fields["status"] == 200
    assert isinstance(fields["duration_ms"], float) and fields["duration_ms"] >= 0
    nurse_id = world.db.execute("SELECT id FROM users WHERE username = 'nurse'").fetchone()
    assert nurse_id is not None and fields["user_id"] == str(nurse_id[0])
    text = str(fields)
    assert str(patient) not in text and "heart_rate" not in text


def test_refusals_and_unknown_paths_are_logged_without_what_was_sent(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="homecare.api.access")
    world.client.post("/api/v1/auth/login", json={"username": "nurse", "password": PASSWORD})
    world.client.cookies.clear()  # the next request is anonymous
    world.client.post("/api/v1/patients", json={"display_name": "Jeanne Tremblay"})
    world.client.get("/api/v1/no-such-thing/path-secret-7f3c9a")
    lines = [(r.method, r.route, r.status, r.user_id) for r in _lines(caplog)]  # type: ignore[attr-defined]
    assert lines == [
        ("POST", "/api/v1/auth/login", 200, None),
        ("POST", None, 401, None),  # refused before any route ran
        ("GET", None, 404, None),
    ]
    text = " ".join(str(r.__dict__) for r in _lines(caplog))
    # The path's own text, not a number that thread ids and timings may contain by chance.
    assert PASSWORD not in text and "Tremblay" not in text and "path-secret-7f3c9a" not in text
