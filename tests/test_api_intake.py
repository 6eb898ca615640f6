"""API intake: a body above the configured size is refused before it is read (declared or
streamed), and a request with a body that needs a signed-in user is refused before its body
is read when it has no valid credentials.

Whether the server reads a body is only visible on a real server: these tests run uvicorn on a
loopback port and talk to it over a socket — headers sent, body withheld, to see whether the
server answers without it — or with a real HTTP client streaming a chunked body from a
generator, to count how much of it the server took.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from dataclasses import replace
from typing import Any
from urllib.parse import urlsplit

import httpx2
import pytest

from homecare.api import create_app
from tests.api_support import World, api_config, live_server, packs_dir, world

__all__ = ["packs_dir", "world"]

LIMIT = 64 * 1024
P = "/api/v1"


@pytest.fixture
def server(world: World, database_url: str) -> Iterator[str]:
    """server: the world's API, with a 64 KiB body limit, on a real uvicorn server."""
    config = replace(api_config(database_url, world.clock, world.packs_dir), max_body_bytes=LIMIT)
    with live_server(create_app(config)) as base:
        yield base


def _head(base: str, method: str, path: str, headers: dict[str, str]) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: {urlsplit(base).netloc}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def _answer_without_body(base: str, head: bytes, wait: float = 5.0) -> tuple[int, Any]:
    """_answer_without_body sends only the request's head and waits for an answer; a server
    that reads the (never sent) body first does not answer — TimeoutError."""
    parts = urlsplit(base)
    with socket.create_connection((parts.hostname, parts.port), timeout=wait) as sock:
        sock.sendall(head)
        received = b""
        while b"\r\n\r\n" not in received:
            chunk = sock.recv(65536)
            if not chunk:
                break
            received += chunk
        head_part, _, body = received.partition(b"\r\n\r\n")
        lines = head_part.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        fields = dict(line.split(": ", 1) for line in lines[1:])
        length = int({k.lower(): v for k, v in fields.items()}.get("content-length", "0"))
        while len(body) < length:
            chunk = sock.recv(65536)
            if not chunk:
                break
            body += chunk
    return status, json.loads(body) if body else None


def test_a_declared_body_over_the_limit_is_refused_unread(server: str, world: World) -> None:
    # Signed in or not: 10 GB are announced, none sent; the answer comes from the headers.
    for headers in ({}, world.headers("admin")):
        head = _head(
            server,
            "POST",
            f"{P}/patients",
            {"Content-Type": "application/json", "Content-Length": str(10 * 2**30), **headers},
        )
        status, body = _answer_without_body(server, head)
        assert status == 413, body
        assert body["code"] == "payload_too_large"


def test_without_a_valid_token_the_body_is_not_read(server: str, world: World) -> None:
    small = {"Content-Type": "application/json", "Content-Length": str(LIMIT // 2)}
    for credentials in ({}, {"Authorization": "Bearer hc_not-a-token"}):
        head = _head(server, "POST", f"{P}/patients", {**small, **credentials})
        status, body = _answer_without_body(server, head)
        assert status == 401, body
        assert body["code"] == "unauthorized"
    # A valid token's body is read: the server waits for it (none comes).
    head = _head(server, "POST", f"{P}/patients", {**small, **world.headers("admin")})
    with pytest.raises(TimeoutError):
        _answer_without_body(server, head, wait=1.0)


def _stream(sent: list[int], total: int, chunk: int = 16 * 1024) -> Iterator[bytes]:
    yield b'{"display_name": "'
    while sent[0] < total:
        sent[0] += chunk
        yield b"a" * chunk
    yield b'", "programs": ["copd"]}'


def test_a_chunked_body_is_cut_off_at_the_limit(server: str, world: World) -> None:
    total = 256 * 2**20  # far more than the socket buffers between client and server hold
    for headers in ({}, world.headers("admin")):
        sent = [0]
        with httpx2.Client(base_url=server, timeout=30) as client:
            try:
                answer: Any = client.post(
                    f"{P}/patients",
                    content=_stream(sent, total),
                    headers={"Content-Type": "application/json", **headers},
                )
            except httpx2.TransportError as exc:
                # The server closed while the client was still sending: the answer may be lost
                # with the connection (what matters is that the server stopped reading).
                answer = exc
        assert sent[0] < total // 4, f"the server took {sent[0]} bytes of the body"
        if not isinstance(answer, Exception):
            # Without a token: 401 before the body; with one: 413 once past the limit.
            expected = (413, "payload_too_large") if headers else (401, "unauthorized")
            assert (answer.status_code, answer.json()["code"]) == expected, answer.text


def test_a_streamed_body_over_the_limit_is_a_json_413(world: World) -> None:
    # In-process (no socket to reset): the answer itself, for a body without a length.
    def chunks() -> Iterator[bytes]:
        yield b'{"display_name": "'
        for _ in range(3):
            yield b"a" * 2**20  # the world's app keeps the default 1 MiB limit
        yield b'", "programs": ["copd"]}'

    answer = world.client.post(
        f"{P}/patients",
        content=chunks(),
        headers={"Content-Type": "application/json", **world.headers("admin")},
    )
    assert answer.status_code == 413
    assert answer.json()["code"] == "payload_too_large"


def test_within_the_limit_a_signed_in_change_works(server: str, world: World) -> None:
    with httpx2.Client(base_url=server, timeout=30) as client:
        answer = client.post(
            f"{P}/patients",
            json={"display_name": "Marie Roy", "programs": ["copd"], "care_team": "cardio"},
            headers=world.headers("admin"),
        )
    assert answer.status_code == 201, answer.text


def test_the_sign_in_form_is_bounded_too(server: str) -> None:
    head = _head(
        server,
        "POST",
        "/dashboard/login",
        {"Content-Type": "application/x-www-form-urlencoded", "Content-Length": str(LIMIT + 1)},
    )
    status, body = _answer_without_body(server, head)
    assert status == 413 and body["code"] == "payload_too_large"
