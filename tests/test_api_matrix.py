"""Authorization matrix: every endpoint × every role × own vs another team's patient.

The table below has one row per route of the app (method and path). The test first checks that
the table and the app's routes are the same set — a new endpoint without a row fails here —
then, for every row and every role, calls the endpoint with fresh objects and checks:
a role not allowed gets 403 ``forbidden``; an allowed role gets the row's success status;
a nurse or physician naming another team's patient (or its alert, silence, readings, …) gets
404 ``not_found`` — not 403, so existence does not leak; without credentials, 401.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import httpx2
import pytest

from homecare.alerts import AlertsConfig, AlertService
from homecare.api import accounts, create_app
from homecare.api.app import PUBLIC_PATHS
from homecare.broker import credentials as creds
from tests.api_support import World, api_config, live_server, open_alert, shared_world
from tests.support.dynsec_broker import Broker, dynsec_broker

ROLES = ("nurse", "physician", "analyst", "admin")
CLINICIANS = frozenset({"nurse", "physician"})
EVERYONE = frozenset(ROLES)
ADMIN = frozenset({"admin"})
_counter = itertools.count(1)


@dataclass(frozen=True)
class Req:
    """Req: the concrete request for one call (path filled in, body, query)."""

    path: str
    json: Any = None
    params: dict[str, Any] = field(default_factory=dict)
    token: str | None = None  # a fresh token instead of the role's (logout revokes it)


Make = Callable[[World, str, str], Req]  # (world, "own" | "other", role) -> Req


@dataclass(frozen=True)
class Row:
    roles: frozenset[str]
    make: Make
    ok: int = 200
    scoped: bool = False  # names a patient's data: another team's → 404 for clinicians
    public: bool = False  # no credentials needed
    live: bool = False  # an endpless stream: allowed roles are checked on a live server


def n() -> int:
    return next(_counter)


def tick(world: World) -> str:
    """tick moves the clock a second (an override starts at the request's instant, and two at
    the same instant for the same rule are one interval too many)."""
    world.clock.advance(timedelta(seconds=1))
    return ""


def pid(world: World, who: str) -> uuid.UUID:
    return world.patients[who]


def alert(world: World, who: str) -> int:
    return open_alert(world, who, rule_id=f"test.rule{n()}")


def silence(world: World, who: str) -> int:
    svc = AlertService(AlertsConfig(database_url="unused", clock=world.clock))
    made = svc.silence(
        world.db,
        actor="user:test",
        reason="test",
        duration=timedelta(hours=1),
        patient_id=pid(world, who),
    )
    world.clock.advance(timedelta(minutes=1))  # a silence cannot end the instant it starts
    return made


def fresh_token(world: World, role: str) -> str:
    found = accounts.find_user(world.db, role)
    assert found is not None
    return accounts.issue_token(
        world.db, found[0], "api", timedelta(hours=1), world.clock.now
    ).token


def device(world: World, credentials: bool = False) -> str:
    device_id = f"dev-{n()}"
    if credentials:
        creds.issue_device_credentials(world.db, device_id, None, world_broker(world))
    else:
        world.db.execute("INSERT INTO devices (device_id) VALUES (%s)", (device_id,))
    return device_id


def world_broker(world: World) -> creds.BrokerAccounts:
    broker = world.client.app.state.config.broker  # type: ignore[attr-defined]
    assert broker is not None
    return broker  # type: ignore[no-any-return]


def user(world: World) -> str:
    name = f"user{n()}"
    accounts.create_user(
        world.db,
        username=name,
        display_name=name,
        role="nurse",
        password=None,
        locale="en",
        time_zone="America/Montreal",
    )
    return name


def pack_text(world: World) -> str:
    text = (world.packs_dir / "common.yaml").read_text()
    current = int(text.split("version:", 1)[1].split()[0])
    return text.replace(f"version: {current}", f"version: {current + n()}", 1)


P = "/api/v1"
TABLE: dict[tuple[str, str], Row] = {
    ("POST", "/auth/login"): Row(
        EVERYONE,
        lambda w, who, role: Req(
            f"{P}/auth/login", {"username": "nurse", "password": "correct horse battery staple"}
        ),
        public=True,
    ),
    ("POST", "/auth/logout"): Row(
        EVERYONE, lambda w, who, role: Req(f"{P}/auth/logout", token=fresh_token(w, role)), 204
    ),
    ("GET", "/auth/me"): Row(EVERYONE, lambda w, who, role: Req(f"{P}/auth/me")),
    ("PATCH", "/auth/me"): Row(
        EVERYONE, lambda w, who, role: Req(f"{P}/auth/me", {"locale": "en"})
    ),
    ("POST", "/patients"): Row(
        ADMIN,
        lambda w, who, role: Req(
            f"{P}/patients", {"display_name": "New", "programs": ["copd"], "care_team": "cardio"}
        ),
        201,
    ),
    ("GET", "/patients"): Row(CLINICIANS | ADMIN, lambda w, who, role: Req(f"{P}/patients")),
    ("GET", "/patients/{patient_id}"): Row(
        CLINICIANS | ADMIN, lambda w, who, role: Req(f"{P}/patients/{pid(w, who)}"), scoped=True
    ),
    ("PATCH", "/patients/{patient_id}"): Row(
        frozenset({"physician", "admin"}),
        lambda w, who, role: Req(f"{P}/patients/{pid(w, who)}", {"hypercapnic": True}),
        scoped=True,
    ),
    ("GET", "/patients/{patient_id}/thresholds"): Row(
        CLINICIANS, lambda w, who, role: Req(f"{P}/patients/{pid(w, who)}/thresholds"), scoped=True
    ),
    ("PUT", "/patients/{patient_id}/thresholds/{rule_id}"): Row(
        CLINICIANS,
        lambda w, who, role: Req(
            f"{P}/patients/{pid(w, who)}/thresholds/common.hr_high" + tick(w),
            {"value": 125, "reason": "athlete"},
        ),
        scoped=True,
    ),
    ("GET", "/patients/{patient_id}/readings"): Row(
        CLINICIANS,
        lambda w, who, role: Req(f"{P}/patients/{pid(w, who)}/readings", params={"bucket": "day"}),
        scoped=True,
    ),
    ("POST", "/devices"): Row(
        ADMIN, lambda w, who, role: Req(f"{P}/devices", {"device_id": f"new-{n()}"}), 201
    ),
    ("GET", "/devices"): Row(ADMIN, lambda w, who, role: Req(f"{P}/devices")),
    ("GET", "/devices/{device_id}"): Row(
        ADMIN, lambda w, who, role: Req(f"{P}/devices/{device(w)}")
    ),
    ("POST", "/devices/{device_id}/rotate"): Row(
        ADMIN, lambda w, who, role: Req(f"{P}/devices/{device(w, credentials=True)}/rotate")
    ),
    ("POST", "/devices/{device_id}/revoke"): Row(
        ADMIN, lambda w, who, role: Req(f"{P}/devices/{device(w, credentials=True)}/revoke")
    ),
    ("PUT", "/devices/{device_id}/assignment"): Row(
        ADMIN,
        lambda w, who, role: Req(
            f"{P}/devices/{device(w)}/assignment", {"patient_id": str(pid(w, who))}
        ),
    ),
    ("GET", "/devices/{device_id}/assignments"): Row(
        ADMIN, lambda w, who, role: Req(f"{P}/devices/{device(w)}/assignments")
    ),
    ("GET", "/alerts"): Row(CLINICIANS, lambda w, who, role: Req(f"{P}/alerts")),
    ("GET", "/alerts/stream"): Row(
        CLINICIANS, lambda w, who, role: Req(f"{P}/alerts/stream"), live=True
    ),
    ("GET", "/alerts/{alert_id}"): Row(
        CLINICIANS, lambda w, who, role: Req(f"{P}/alerts/{alert(w, who)}"), scoped=True
    ),
    ("POST", "/alerts/{alert_id}/ack"): Row(
        CLINICIANS, lambda w, who, role: Req(f"{P}/alerts/{alert(w, who)}/ack"), scoped=True
    ),
    ("POST", "/alerts/{alert_id}/resolve"): Row(
        CLINICIANS,
        lambda w, who, role: Req(
            f"{P}/alerts/{alert(w, who)}/resolve", {"outcome": "called_patient"}
        ),
        scoped=True,
    ),
    ("GET", "/alerts/{alert_id}/events"): Row(
        CLINICIANS, lambda w, who, role: Req(f"{P}/alerts/{alert(w, who)}/events"), scoped=True
    ),
    ("GET", "/alerts/{alert_id}/notes"): Row(
        CLINICIANS, lambda w, who, role: Req(f"{P}/alerts/{alert(w, who)}/notes"), scoped=True
    ),
    ("POST", "/alerts/{alert_id}/notes"): Row(
        CLINICIANS,
        lambda w, who, role: Req(f"{P}/alerts/{alert(w, who)}/notes", {"body": "called"}),
        201,
        scoped=True,
    ),
    ("POST", "/silences"): Row(
        CLINICIANS,
        lambda w, who, role: Req(
            f"{P}/silences",
            {"patient_id": str(pid(w, who)), "reason": "in hospital", "duration_minutes": 60},
        ),
        201,
        scoped=True,
    ),
    ("GET", "/silences"): Row(CLINICIANS, lambda w, who, role: Req(f"{P}/silences")),
    ("POST", "/silences/{silence_id}/end"): Row(
        CLINICIANS, lambda w, who, role: Req(f"{P}/silences/{silence(w, who)}/end"), scoped=True
    ),
    ("GET", "/packs"): Row(EVERYONE, lambda w, who, role: Req(f"{P}/packs")),
    ("GET", "/packs/{name}"): Row(EVERYONE, lambda w, who, role: Req(f"{P}/packs/common")),
    ("POST", "/packs/validate"): Row(
        ADMIN, lambda w, who, role: Req(f"{P}/packs/validate", {"content": pack_text(w)})
    ),
    ("PUT", "/packs/{name}"): Row(
        ADMIN, lambda w, who, role: Req(f"{P}/packs/common", {"content": pack_text(w)})
    ),
    ("GET", "/audit"): Row(ADMIN, lambda w, who, role: Req(f"{P}/audit")),
    ("POST", "/users"): Row(
        ADMIN,
        lambda w, who, role: Req(
            f"{P}/users",
            {
                "username": f"new{n()}",
                "display_name": "New",
                "role": "nurse",
                "password": "a long enough password",
                "care_teams": ["cardio"],
            },
        ),
        201,
    ),
    ("GET", "/users"): Row(ADMIN, lambda w, who, role: Req(f"{P}/users")),
    ("GET", "/users/{username}"): Row(ADMIN, lambda w, who, role: Req(f"{P}/users/{user(w)}")),
    ("PATCH", "/users/{username}"): Row(
        ADMIN, lambda w, who, role: Req(f"{P}/users/{user(w)}", {"locale": "fr-CA"})
    ),
    ("POST", "/care-teams"): Row(
        ADMIN, lambda w, who, role: Req(f"{P}/care-teams", {"id": f"team{n()}", "name": "T"}), 201
    ),
    ("GET", "/care-teams"): Row(ADMIN, lambda w, who, role: Req(f"{P}/care-teams")),
    ("PUT", "/care-teams/{team}/members/{username}"): Row(
        ADMIN, lambda w, who, role: Req(f"{P}/care-teams/cardio/members/{user(w)}")
    ),
    ("DELETE", "/care-teams/{team}/members/{username}"): Row(
        ADMIN, lambda w, who, role: Req(f"{P}/care-teams/cardio/members/{user(w)}")
    ),
    ("GET", "/cohort/patients"): Row(
        frozenset({"analyst"}), lambda w, who, role: Req(f"{P}/cohort/patients")
    ),
    ("GET", "/cohort/readings"): Row(
        frozenset({"analyst"}),
        lambda w, who, role: Req(f"{P}/cohort/readings", params={"type": "heart_rate"}),
    ),
    ("GET", "/cohort/alerts"): Row(
        frozenset({"analyst"}), lambda w, who, role: Req(f"{P}/cohort/alerts")
    ),
    ("GET", "/fhir/Observation"): Row(
        CLINICIANS,
        lambda w, who, role: Req(f"{P}/fhir/Observation", params={"patient": str(pid(w, who))}),
        scoped=True,
    ),
}


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    made = dynsec_broker(tmp_path_factory.mktemp("mosquitto"))
    with made.mosquitto:
        yield made


@pytest.fixture(scope="module")
def matrix_world(
    template_database: str, tmp_path_factory: pytest.TempPathFactory, broker: Broker
) -> Iterator[World]:
    """One database for the whole matrix (each call makes its own fresh objects)."""
    with shared_world(template_database, tmp_path_factory.mktemp("matrix"), broker.accounts) as w:
        yield w


def _app_routes() -> set[tuple[str, str]]:
    """Every (method, path) of the app under /api/v1, from its OpenAPI document (FastAPI
    includes routers lazily, so the document is where every route is listed)."""
    app = create_app(api_config("postgresql://unused/x", None))  # type: ignore[arg-type]
    return {
        (method.upper(), path.removeprefix(P))
        for path, operations in app.openapi()["paths"].items()
        if path.startswith(P)
        for method in operations
    }


def test_the_table_covers_every_route_of_the_app() -> None:
    routes = _app_routes()
    assert routes - TABLE.keys() == set(), "routes without a row in the authorization matrix"
    assert TABLE.keys() - routes == set(), "rows for routes the app does not have"


def _call(world: World, method: str, req: Req, role: str | None) -> httpx2.Response:
    world.client.cookies.clear()  # the sign-in row sets a session cookie: only the token counts
    headers = {}
    if role is not None:
        headers["Authorization"] = f"Bearer {req.token or world.tokens[role]}"
    return world.client.request(method, req.path, json=req.json, params=req.params, headers=headers)


def _expect(answer: httpx2.Response, status: int, code: str | None, where: str) -> None:
    assert answer.status_code == status, f"{where}: {answer.status_code} {answer.text[:300]}"
    if code is not None:
        assert answer.json()["code"] == code, where


def test_the_routes_open_to_everyone_are_the_ones_intake_lets_through() -> None:
    # api.intake refuses a JSON API body without valid credentials before reading it, except
    # on these paths: they must be exactly the public routes, no more.
    assert {P + path for (_, path), row in TABLE.items() if row.public} == set(PUBLIC_PATHS)


@pytest.mark.parametrize("key", sorted(TABLE), ids=lambda k: f"{k[0]} {k[1]}")
def test_matrix(key: tuple[str, str], matrix_world: World) -> None:
    method, _ = key
    row = TABLE[key]
    world = matrix_world
    if row.public:
        _expect(_call(world, method, row.make(world, "own", "nurse"), None), row.ok, None, "public")
        return
    _expect(
        _call(world, method, row.make(world, "own", "nurse"), None), 401, "unauthorized", "no token"
    )
    for role in ROLES:
        where = f"{method} {key[1]} as {role}"
        if role not in row.roles:
            req = row.make(world, "own", role)
            _expect(_call(world, method, req, role), 403, "forbidden", where)
            continue
        if row.scoped and role in CLINICIANS:
            req = row.make(world, "other", role)
            _expect(_call(world, method, req, role), 404, "not_found", where + " (other team)")
        if row.live:
            continue  # an endless stream: checked on a live server below
        _expect(_call(world, method, row.make(world, "own", role), role), row.ok, None, where)
        if row.scoped and role == "admin":
            other = _call(world, method, row.make(world, "other", role), role)
            _expect(other, row.ok, None, where + " (any team)")


def test_the_stream_answers_allowed_roles(matrix_world: World) -> None:
    url = matrix_world.client.app.state.config.database_url  # type: ignore[attr-defined]
    app = create_app(api_config(url, matrix_world.clock, matrix_world.packs_dir))
    with live_server(app) as base:
        for role in CLINICIANS:
            headers = {"Authorization": f"Bearer {matrix_world.tokens[role]}"}
            with (
                httpx2.Client(base_url=base, timeout=10) as client,
                client.stream("GET", f"{P}/alerts/stream", headers=headers) as answer,
            ):
                assert answer.status_code == 200
                assert answer.headers["content-type"].startswith("text/event-stream")
                assert next(answer.iter_lines()) == "retry: 3000"
