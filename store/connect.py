"""Connections: one place that opens them, with timeouts and a clear reason on failure.

Every process needs the same two things: wait (bounded) for the database at startup so a
command exits with a one-line reason instead of a stack trace, and open connections that fail
fast instead of hanging when the server is gone.

Waiting is only worth it when the answer may change within the wait: a time-out, or a server
that says it is starting, shutting down or full. A refused connection, an unknown host, a
refused login or a missing database will still be so in twenty seconds, so they are reported
at once (a supervisor that restarts the process covers a server that comes up later).
"""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import urlsplit

import psycopg

from homecare.store.errors import StoreUnavailable

__all__ = ["connect", "describe_url", "is_transient", "wait_for_database"]

# libpq reports connection failures as text only (no SQLSTATE before the session exists).
_TRANSIENT = (
    "timeout expired",
    "timed out",
    "the database system is starting up",
    "the database system is shutting down",
    "not yet accepting connections",
    "too many clients",
    "remaining connection slots",
    "temporary failure in name resolution",
)


def connect(
    url: str,
    *,
    autocommit: bool = False,
    application_name: str = "homecare",
    connect_timeout_s: float = 10.0,
) -> psycopg.Connection[Any]:
    """connect opens one connection; it raises psycopg.OperationalError when it cannot."""
    return psycopg.connect(
        url,
        autocommit=autocommit,
        application_name=application_name,
        connect_timeout=max(1, int(connect_timeout_s)),
    )


def wait_for_database(url: str, timeout_s: float, application_name: str = "homecare") -> None:
    """wait_for_database retries until the server answers ``SELECT 1`` or the time is up; it
    raises StoreUnavailable at once when the failure is not one that waiting can cure."""
    deadline = time.monotonic() + timeout_s
    delay = 0.2
    last_error = "no attempt made"
    while True:
        try:
            with connect(
                url,
                autocommit=True,
                application_name=application_name,
                connect_timeout_s=min(5.0, max(1.0, timeout_s)),
            ) as conn:
                conn.execute("SELECT 1")
                return
        except psycopg.Error as exc:
            last_error = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            if not is_transient(exc):
                raise StoreUnavailable(
                    f"database at {describe_url(url)} not reachable: {last_error}"
                ) from None
        if time.monotonic() + delay > deadline:
            raise StoreUnavailable(
                f"database at {describe_url(url)} not reachable within {timeout_s:g}s: {last_error}"
            )
        time.sleep(delay)
        delay = min(delay * 2, 2.0)


def is_transient(exc: BaseException) -> bool:
    """is_transient: a connection failure that may clear up by itself within seconds."""
    text = str(exc).lower()
    return any(marker in text for marker in _TRANSIENT)


def describe_url(url: str) -> str:
    """describe_url gives host:port/dbname of a URL without its password, for logs; a
    multi-host URL (a primary and its standby) names every host.

    >>> describe_url("postgresql://u:secret@db/homecare")
    'db:5432/homecare'
    >>> describe_url("postgresql://u:secret@10.0.0.1:5441,10.0.0.2:5442/homecare?x=1")
    '10.0.0.1:5441,10.0.0.2:5442/homecare'
    """
    parts = urlsplit(url)
    hosts = parts.netloc.rpartition("@")[2].split(",")
    named = ",".join(h if ":" in h else f"{h or 'localhost'}:5432" for h in hosts)
    return f"{named}{parts.path or ''}"
