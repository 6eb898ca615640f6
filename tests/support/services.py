"""Private, throwaway services for tests: what every one of them shares.

Tests that stop, restart or SIGKILL a service (broker outage, database crash, queued-message
recovery) cannot use the machine's shared broker and database: they would break every other
test and every other engineer using them. The private services start real instances from the
same binaries on a free 127.0.0.1 port, with all state in a work directory, so a test can do to
them whatever it likes: Mosquitto configured like production (``tests.support.mosquitto``) and
a fresh PostgreSQL cluster (``tests.support.postgres``).

Here is what they have in common: finding a free port and waiting for it to answer, finding a
service binary, reaping a child process, and :class:`ManagedService`, which makes each a context
manager (start on enter, stop on exit). Each also cleans up on garbage collection and
interpreter exit, so a failing test never leaves a broker or postmaster running.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path
from types import TracebackType
from typing import Self

__all__ = [
    "LOCALHOST",
    "ManagedService",
    "ServiceError",
    "children_of",
    "find_executable",
    "free_port",
    "log_tail",
    "port_is_open",
    "reap",
    "wait_for_port",
]

LOCALHOST = "127.0.0.1"
# sbin directories are often missing from a non-root PATH, but Debian installs mosquitto there.
_EXTRA_BIN_DIRS = ("/usr/sbin", "/usr/local/sbin", "/sbin")
# How much of a service log to put into an exception message: enough to see the real error.
_LOG_TAIL_CHARS = 4000


class ServiceError(RuntimeError):
    """A private service failed to start or stop; the message includes the tail of its log."""


# --- ports ----------------------------------------------------------------------------------------


def free_port(host: str = LOCALHOST) -> int:
    """Return a TCP port that is free on ``host`` right now.

    The kernel picks it (bind to port 0), so parallel test runs do not collide the way fixed
    "test ports" do. There is an unavoidable window between this call and the service binding
    the port; it is short and the kernel does not hand the same ephemeral port out again soon.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def port_is_open(host: str, port: int, timeout: float = 0.2) -> bool:
    """True if a TCP connection to ``host:port`` succeeds (something is listening)."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def wait_for_port(host: str, port: int, timeout: float = 10.0) -> None:
    """Block until ``host:port`` accepts TCP connections, or raise :class:`TimeoutError`.

    A started process is not a ready service: brokers and databases accept connections only
    after loading their state, which after a crash or with a big persistence file takes a while.
    """
    deadline = time.monotonic() + timeout
    while not port_is_open(host, port):
        if time.monotonic() >= deadline:
            raise TimeoutError(f"nothing accepted connections on {host}:{port} within {timeout}s")
        time.sleep(0.05)


# --- binaries and processes -----------------------------------------------------------------------


def find_executable(name: str) -> Path:
    """Locate a service binary on PATH or in the sbin directories Debian uses for daemons.

    Raises :class:`FileNotFoundError` with an install hint, which is what a test (or a fixture
    deciding to skip) wants to show.
    """
    found = shutil.which(name)
    if found is None:
        extra = os.pathsep.join(_EXTRA_BIN_DIRS)
        found = shutil.which(name, path=extra)
    if found is None:
        raise FileNotFoundError(
            f"{name} not found on PATH or in {', '.join(_EXTRA_BIN_DIRS)}; "
            "install it (Debian: apt-get install mosquitto mosquitto-clients postgresql) "
            "or run scripts/test, which does"
        )
    return Path(found)


def log_tail(path: Path, chars: int = _LOG_TAIL_CHARS) -> str:
    """Last ``chars`` characters of a log file, for error messages."""
    try:
        text = path.read_text(errors="replace")
    except OSError as exc:
        return f"<cannot read {path}: {exc}>"
    return text[-chars:] if len(text) > chars else text


def reap(proc: subprocess.Popen[bytes] | None, sig: int = signal.SIGKILL) -> None:
    """Send ``sig`` to a still-running child and wait for it (finalizers and error paths).

    Waiting matters: an unwaited Popen raises ResourceWarning, which this project turns into an
    error, and an unreaped child is a zombie that still "exists" for pid checks.
    """
    if proc is None or proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        proc.send_signal(sig)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def children_of(pid: int) -> list[int]:
    """PIDs whose parent is ``pid`` (read from /proc; Linux only, like the rest of this)."""
    children: list[int] = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            children.append(int(entry.name))
    return children


class ManagedService:
    """ManagedService: a private service as a context manager — started on enter, stopped on exit,
    and its process reaped even when stopping fails — with its process and log."""

    _proc: subprocess.Popen[bytes] | None
    log_path: Path

    @property
    def is_running(self) -> bool:
        """True while the service's process is alive."""
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int | None:
        """PID of the service's process while it runs."""
        return self._proc.pid if self.is_running and self._proc is not None else None

    def log_text(self) -> str:
        """Everything the service logged so far (all runs of this instance)."""
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def start(self, timeout: float = ...) -> None:  # pragma: no cover - defined by subclasses
        raise NotImplementedError

    def stop(self) -> None:  # pragma: no cover - defined by subclasses
        raise NotImplementedError

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            self.stop()
        finally:
            reap(self._proc)
