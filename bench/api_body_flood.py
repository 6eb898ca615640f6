"""Benchmark: the API's memory under large request bodies sent without a token.

Run on demand, not in the tests:

    .venv/bin/python -m bench.api_body_flood [--bodies 4] [--mb 250] [--chunked] [--source DIR]

A fresh database next to HOMECARE_DATABASE_URL's (default: the local PostgreSQL) is migrated,
``homecare api`` is started as its own process on a loopback port, and ``--bodies`` requests of
``--mb`` MB each are sent at once to ``POST /api/v1/patients`` without a token: a JSON object
whose ``display_name`` is that long, streamed from a generator (the client holds 1 MB at a
time). ``--chunked`` sends them without a Content-Length (chunked transfer encoding), so the
server cannot refuse them from their headers. Printed: the answers' statuses and codes, the
API process's resident memory before, at its peak (VmHWM) and after, from /proc.

``--source DIR`` runs the server from another checkout (e.g. ``git archive`` of an older
commit) to compare; the database is migrated with that checkout's migrations.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx2
import psycopg

from tests.support.services import free_port

_MB = 1024 * 1024


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bodies", type=int, default=4)
    parser.add_argument("--mb", type=int, default=250)
    parser.add_argument("--chunked", action="store_true", help="no Content-Length")
    parser.add_argument("--source", type=Path, help="run the server from this checkout")
    args = parser.parse_args()

    base = os.environ.get("HOMECARE_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    admin_url = urlunsplit(urlsplit(base)._replace(path="/postgres"))
    name = f"hc_bench_flood_{uuid.uuid4().hex[:8]}"
    url = urlunsplit(urlsplit(base)._replace(path=f"/{name}"))
    env = os.environ | {"HOMECARE_DATABASE_URL": url, "HOMECARE_LOG_LEVEL": "WARNING"}
    if args.source:
        env["PYTHONPATH"] = str(args.source.resolve())
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    try:
        cwd = args.source or Path.cwd()
        subprocess.run([sys.executable, "-m", "homecare", "migrate"], env=env, cwd=cwd, check=True)
        port = free_port()
        env["HOMECARE_API_PORT"] = str(port)
        server = subprocess.Popen(
            [sys.executable, "-m", "homecare", "api"],
            env=env,
            cwd=cwd,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            base_url = f"http://127.0.0.1:{port}"
            _wait_ready(base_url)
            before = _memory(server.pid)
            answers = asyncio.run(_flood(base_url, args.bodies, args.mb, args.chunked))
            time.sleep(2)  # let the server finish with what it read
            after = _memory(server.pid)
        finally:
            server.terminate()
            server.wait(timeout=30)
    finally:
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    mode = "chunked" if args.chunked else "Content-Length"
    print(f"{args.bodies} × {args.mb} MB without a token ({mode}):")
    for answer in answers:
        print(f"  {answer}")
    print(
        f"API RSS before {before['VmRSS'] / 1024:.0f} MB, peak {after['VmHWM'] / 1024:.0f} MB,"
        f" after {after['VmRSS'] / 1024:.0f} MB"
    )
    return 0


async def _body(mb: int) -> AsyncIterator[bytes]:
    yield b'{"display_name": "'
    chunk = b"a" * _MB
    for _ in range(mb):
        yield chunk
    yield b'", "programs": ["copd"]}'


async def _flood(base_url: str, bodies: int, mb: int, chunked: bool) -> list[str]:
    length = len(b'{"display_name": "') + mb * _MB + len(b'", "programs": ["copd"]}')
    headers = {"Content-Type": "application/json"}
    if not chunked:
        headers["Content-Length"] = str(length)

    async def one(client: httpx2.AsyncClient) -> str:
        try:
            answer = await client.post(
                "/api/v1/patients", content=_body(mb), headers=headers, timeout=600
            )
        except httpx2.HTTPError as exc:
            return f"{type(exc).__name__}: {exc}"
        code = answer.json().get("code") if answer.content else None
        return f"{answer.status_code} {code}"

    async with httpx2.AsyncClient(base_url=base_url) as client:
        return list(await asyncio.gather(*(one(client) for _ in range(bodies))))


def _wait_ready(base_url: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            httpx2.get(f"{base_url}/openapi.json", timeout=1)
            return
        except httpx2.HTTPError:
            time.sleep(0.2)
    raise SystemExit("homecare api did not start within 60 s")


def _memory(pid: int) -> dict[str, int]:
    """_memory is the process's VmRSS and VmHWM (peak RSS), in kB."""
    values = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            values[key] = int(rest.split()[0])
    return values


if __name__ == "__main__":
    sys.exit(main())
