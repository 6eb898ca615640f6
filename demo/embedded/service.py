"""What every embedded service shares: its handle, its port, and its log's one-line reason.

A start function hands back an :class:`EmbeddedService` that stops its process exactly once,
whether the caller stops it, leaves a ``with`` block or exits (``atexit``), so an interrupted
demo never leaves a server running. Failures are :class:`EmbeddedServiceError` with one line
that says which service and why, taken from the service's own log: the demo prints it as is.
"""

from __future__ import annotations

import atexit
import re
import socket
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

__all__ = [
    "HOST",
    "EmbeddedService",
    "EmbeddedServiceError",
    "ensure_free",
    "free_port",
    "log_tail",
    "service_handle",
    "telling",
    "wait_for_port",
]

HOST = "127.0.0.1"
# "2026-01-01 10:00:00.123 UTC [42] " (PostgreSQL) or "1767261600: " (mosquitto)
_LOG_PREFIX = r"^(\d{4}-\d\d-\d\d [\d:.]+ \S+ \[\d+\] |\d{9,}: )"


class EmbeddedServiceError(RuntimeError):
    """An embedded service could not be started; the message says which and why, on one line."""


@dataclass(frozen=True)
class EmbeddedService:
    """A running embedded service; ``stop()`` (idempotent, also run at exit) shuts it down."""

    name: str
    url: str
    detail: str
    _stop: Callable[[], None] = field(repr=False, compare=False)
    protocol: str | None = None  # MQTT version a broker speaks: "5" or "3.1.1"; None for SQL
    # A broker with device authentication: its dynamic-security admin account (the ``url`` is
    # then the ingest account's). None: the broker admits anyone (see demo.embedded.broker).
    admin_url: str | None = field(default=None, repr=False)
    address: str = ""  # host:port without credentials, for printing

    def stop(self) -> None:
        self._stop()

    def __enter__(self) -> EmbeddedService:
        return self

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def service_handle(
    name: str,
    url: str,
    detail: str,
    stop: Callable[[], None],
    protocol: str | None = None,
    admin_url: str | None = None,
    address: str = "",
) -> EmbeddedService:
    """The handle of a started service: ``stop`` runs once, by the caller or at exit."""
    lock, done = threading.Lock(), [False]

    def once() -> None:
        with lock:
            if done[0]:
                return
            done[0] = True
        atexit.unregister(once)
        stop()

    atexit.register(once)
    return EmbeddedService(name, url, detail, once, protocol, admin_url, address)


def free_port(host: str = HOST) -> int:
    """A TCP port that is free on ``host`` right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def wait_for_port(
    host: str,
    port: int,
    timeout: float,
    service: str = "service",
    process: subprocess.Popen[bytes] | None = None,
) -> None:
    """Return once ``host:port`` accepts TCP connections, else raise ``TimeoutError``.

    With ``process``, fail at once (``EmbeddedServiceError``) if that process exits first.
    """
    deadline = time.monotonic() + timeout
    while True:
        if process is not None and process.poll() is not None:
            raise EmbeddedServiceError(
                f"{service} exited with code {process.returncode} before listening on {host}:{port}"
            )
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            if time.monotonic() >= deadline:
                raise TimeoutError(
                    f"{service} did not accept connections on {host}:{port} within {timeout:g} s"
                ) from None
            time.sleep(0.05)


def ensure_free(port: int, service: str) -> None:
    """Fail clearly if ``port`` is taken: else a waiter could mistake the squatter for ours."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as servers do: TIME_WAIT ok
        try:
            probe.bind((HOST, port))
        except OSError as exc:
            raise EmbeddedServiceError(
                f"cannot start {service}: {HOST}:{port} is in use ({exc.strerror})"
            ) from None


def telling(text: str, fallback: bool = True) -> str:
    """The most telling line of a log: the last error line (with the PostgreSQL LOG/WARNING
    or mosquitto Error line that explains it), else the last line (or "" without ``fallback``)."""
    lines = [re.sub(_LOG_PREFIX, "", ln).strip() for ln in text.splitlines() if ln.strip()]
    bad = [i for i, ln in enumerate(lines) if re.search(r"FATAL|PANIC|ERROR|[Ee]rror", ln)]
    if not bad:
        return "" if not fallback else lines[-1] if lines else "(no output)"
    i = bad[-1]
    before = lines[i - 1] if i and lines[i - 1].startswith(("LOG:", "WARNING:", "Error:")) else ""
    return f"{before.split(':', 1)[1].strip()}; {lines[i]}" if before else lines[i]


def log_tail(path: Path, offset: int = 0, fallback: bool = True) -> str:
    """The most telling line of what ``path`` logged from ``offset`` on (this run's lines)."""
    try:
        with path.open("rb") as log:
            log.seek(offset)
            return telling(log.read().decode(errors="replace"), fallback)
    except OSError:
        return f"(no log at {path})"
