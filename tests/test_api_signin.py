"""Sign-in throttle: failed sign-ins slow further attempts (429 with Retry-After) per client
address and per account — they never lock an account — known and unknown names are answered
alike and at the same cost, and failures and throttling are traced for administrators (audit
rows, a WARNING log), never with the attempted password. api_support's policy: 6 failures per
address, 3 per account from one address, 5 per account from anywhere; one drains per minute."""

from __future__ import annotations

import logging
import statistics
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any, Literal

import pytest
from argon2 import PasswordHasher
from fastapi.testclient import TestClient

from homecare.api import hashing
from tests.api_support import PASSWORD, World, add_user, packs_dir, world

__all__ = ["packs_dir", "world"]

LOGIN = "/api/v1/auth/login"


@contextmanager
def client_at(world: World, address: str) -> Iterator[TestClient]:
    """client_at is a client of the world's app calling from ``address``."""
    with TestClient(
        world.client.app, client=(address, 50000), raise_server_exceptions=False
    ) as client:
        yield client


def _try(client: TestClient, username: str, password: str = "wrong password") -> Any:
    return client.post(LOGIN, json={"username": username, "password": password})


def _shape(answer: Any) -> tuple[int, str, str | None]:
    return answer.status_code, answer.json().get("code"), answer.headers.get("retry-after")


def test_failures_slow_the_account_from_that_address_and_never_lock_it(world: World) -> None:
    for _ in range(3):
        assert _shape(_try(world.client, "nurse")) == (401, "login_failed", None)
    # The right password too waits its turn (else the throttle would tell a guess was right).
    slowed = _try(world.client, "nurse", PASSWORD)
    assert _shape(slowed) == (429, "too_many_sign_ins", "60")
    world.clock.advance(timedelta(seconds=60))
    assert _try(world.client, "nurse", PASSWORD).status_code == 200


def test_an_attackers_failures_do_not_keep_the_nurse_out(world: World) -> None:
    with client_at(world, "203.0.113.7") as attacker:
        for _ in range(6):
            _try(attacker, "nurse")
        assert _try(attacker, "nurse").status_code == 429
    with client_at(world, "198.51.100.20") as ward:
        assert _try(ward, "nurse", PASSWORD).status_code == 200


def test_refused_attempts_do_not_lengthen_the_wait(world: World) -> None:
    for _ in range(3):
        _try(world.client, "nurse")
    for _ in range(20):
        assert _try(world.client, "nurse").status_code == 429
    world.clock.advance(timedelta(seconds=60))
    assert _try(world.client, "nurse", PASSWORD).status_code == 200


def test_known_and_unknown_names_are_answered_alike(world: World) -> None:
    add_user(world.db, "retired", "nurse", ("cardio",))
    world.db.execute("UPDATE users SET disabled_at = now() WHERE username = 'retired'")
    add_user(world.db, "robot", "admin", password=None)  # signs in with tokens only
    shapes = {}
    for name in ("nurse", "nobody", "retired", "robot"):
        with client_at(world, f"192.0.2.{len(shapes) + 1}") as client:
            shapes[name] = [_shape(_try(client, name)) for _ in range(5)]
    assert shapes["nurse"][-1] == (429, "too_many_sign_ins", "60")
    assert shapes["nobody"] == shapes["nurse"] == shapes["retired"] == shapes["robot"]
    bodies = {_try(world.client, name, "x").json()["message"] for name in ("nurse", "nobody")}
    assert len(bodies) == 1


def test_every_name_costs_one_argon2_verification(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    add_user(world.db, "robot", "admin", password=None)
    checks: list[str | bytes] = []

    class Counted(PasswordHasher):
        def verify(self, hash: str | bytes, password: str | bytes) -> Literal[True]:
            checks.append(hash)
            return super().verify(hash, password)

    monkeypatch.setattr(hashing, "_HASHER", Counted())
    timings: dict[str, list[float]] = {}
    for name in ("nurse", "nobody", "robot"):
        for attempt in range(3):
            with client_at(world, f"192.0.2.{attempt + 10}") as client:
                started = time.perf_counter()
                assert _try(client, name).status_code == 401
                timings.setdefault(name, []).append(time.perf_counter() - started)
    assert len(checks) == 9  # one verification per attempt, whoever the name is
    assert checks.count(hashing._DUMMY_HASH) == 6  # unknown and password-less: the dummy hash
    known = statistics.median(timings["nurse"])
    for name in ("nobody", "robot"):
        assert 0.5 < statistics.median(timings[name]) / known < 2, timings


def test_spraying_one_password_over_many_names_is_slowed(world: World) -> None:
    with client_at(world, "203.0.113.9") as sprayer:
        for n in range(6):
            assert _try(sprayer, f"user{n}").status_code == 401
        slowed = _try(sprayer, "someone-else")
        assert _shape(slowed) == (429, "too_many_sign_ins", "60")
    with client_at(world, "198.51.100.20") as ward:  # other addresses are not slowed
        assert _try(ward, "nurse", PASSWORD).status_code == 200


def test_failures_and_throttling_are_audited_and_logged_without_the_password(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    secret = "guess-Tr0ub4dor&3"
    caplog.set_level(logging.WARNING, logger="homecare.api.signin")
    with client_at(world, "203.0.113.5") as attacker:
        for _ in range(3):
            _try(attacker, "nurse", secret)
        _try(attacker, "nobody-" + secret, secret)
        for _ in range(5):
            assert _try(attacker, "nurse", secret).status_code == 429
    rows = world.db.execute(
        "SELECT actor, action, subject, detail::text FROM audit_log"
        " WHERE action LIKE 'auth.login%%' ORDER BY id"
    ).fetchall()
    assert [r[1:3] for r in rows] == [
        ("auth.login_failed", "user/nurse"),
        ("auth.login_failed", "user/nurse"),
        ("auth.login_failed", "user/nurse"),
        ("auth.login_failed", "user/?"),  # a name that is no user's is not kept
        ("auth.login_throttled", "user/nurse"),  # once for the episode, not per refusal
    ]
    assert {r[0] for r in rows} == {"address:203.0.113.5"}
    assert all(secret not in str(r) for r in rows)
    warnings = [r for r in caplog.records if r.getMessage() == "sign-in throttled"]
    assert len(warnings) == 1 and warnings[0].levelno == logging.WARNING
    assert warnings[0].subject == "user/nurse" and warnings[0].address == "203.0.113.5"  # type: ignore[attr-defined]
    assert all(secret not in r.getMessage() + str(r.__dict__) for r in caplog.records)
    # Administrators see it in the API.
    seen = world.get("admin", "/api/v1/audit", params={"action": "auth.login_throttled"})
    assert [row["subject"] for row in seen.json()["data"]] == ["user/nurse"]


def test_the_dashboard_form_is_throttled_alike(world: World) -> None:
    form = {"username": "nurse", "password": "wrong password"}
    for _ in range(3):
        assert world.client.post("/dashboard/login", data=form).status_code == 401
    # The form and the API share the buckets.
    assert _try(world.client, "nurse", PASSWORD).status_code == 429
    slowed = world.client.post("/dashboard/login", data={**form, "password": PASSWORD})
    assert slowed.status_code == 429 and slowed.headers["retry-after"] == "60"
    assert "Trop de tentatives" in slowed.text
    world.clock.advance(timedelta(seconds=60))
    signed = world.client.post(
        "/dashboard/login", data={**form, "password": PASSWORD}, follow_redirects=False
    )
    assert signed.status_code == 303
