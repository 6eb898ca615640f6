"""Property-based fuzz of the whole OpenAPI document with schemathesis: for every operation
(as a role allowed to call it, from the authorization matrix), generated requests — valid and
not — never get a 5xx, successful answers match the documented schemas, and every error is
JSON with a ``code`` and a ``message``.

The live stream is left out: it is endless by design (it is checked on a real server in
``test_api_stream``). Examples per operation are few (``FUZZ_EXAMPLES``) to keep the run near
half a minute; raise it locally for a deeper search.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from tests.api_support import World, shared_world
from tests.test_api_matrix import TABLE, Broker, broker

__all__ = ["broker"]

FUZZ_EXAMPLES = int(os.environ.get("HOMECARE_FUZZ_EXAMPLES", "12"))
P = "/api/v1"


@pytest.fixture(scope="module")
def fuzz_world(
    template_database: str, tmp_path_factory: pytest.TempPathFactory, broker: Broker
) -> Iterator[World]:
    with shared_world(template_database, tmp_path_factory.mktemp("fuzz"), broker.accounts) as w:
        yield w


OPERATIONS = sorted(k for k in TABLE if k[1] != "/alerts/stream")


def _role(method: str, path: str) -> str | None:
    row = TABLE[(method, path)]
    return None if row.public else sorted(row.roles)[0]


@pytest.fixture(scope="module")
def api_schema(fuzz_world: World) -> Any:
    return schemathesis.openapi.from_asgi("/openapi.json", fuzz_world.client.app)


@pytest.mark.parametrize("key", OPERATIONS, ids=lambda k: f"{k[0]} {k[1]}")
def test_no_5xx_and_every_error_is_json_with_a_code(
    key: tuple[str, str], api_schema: Any, fuzz_world: World
) -> None:
    method, path = key
    role = _role(method, path)
    headers = {"Authorization": f"Bearer {fuzz_world.tokens[role]}"} if role else {}
    if path == "/auth/logout":
        headers = {}  # signing out would revoke the token the other operations use
    operation = api_schema[P + path][method]

    @given(case=operation.as_strategy())
    @settings(
        max_examples=FUZZ_EXAMPLES,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        derandomize=True,
        database=None,
    )
    def check(case: Any) -> None:
        response = case.call(headers=headers)
        case.validate_response(response, checks=[not_a_server_error, response_schema_conformance])
        if response.status_code >= 400:
            body = response.json()
            assert isinstance(body.get("code"), str) and body["code"], response.text
            assert isinstance(body.get("message"), str) and body["message"], response.text

    check()
