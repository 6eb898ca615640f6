"""Store errors: database failures sorted into what the caller can do about them.

    StoreError
     ├── StoreUnavailable   the database cannot be reached in time (startup, one-line reason)
     ├── RetryLater         connection lost, serialization failure, server shutting down:
     │                      the same work will succeed later, so keep it and retry
     ├── Rejected           the data itself was refused (SQLSTATE class 22 data, 23 integrity):
     │                      retrying cannot help, so the input goes to quarantine with the reason
     └── MigrationError     a migration is missing, edited after it was applied, or failed

Mapping is by SQLSTATE class, as psycopg does, so that a new error code in a known class is
handled the right way without a code change here.
"""

from __future__ import annotations

import psycopg

__all__ = [
    "MigrationError",
    "Rejected",
    "RetryLater",
    "StoreError",
    "StoreUnavailable",
    "classify",
]

_RETRY_CLASSES = frozenset({"08", "40", "53", "57", "58"})
_REJECT_CLASSES = frozenset({"22", "23"})


class StoreError(Exception):
    """StoreError is the root of every error the store raises."""


class StoreUnavailable(StoreError):
    """StoreUnavailable: the database did not answer within the configured time."""


class RetryLater(StoreError):
    """RetryLater: a transient failure; the same statement may succeed on a new connection."""


class Rejected(StoreError):
    """Rejected: the database refused this input; ``sqlstate`` says why."""

    def __init__(self, message: str, sqlstate: str | None) -> None:
        super().__init__(message)
        self.sqlstate = sqlstate


class MigrationError(StoreError):
    """MigrationError: the schema cannot be brought to the expected version."""


def classify(exc: psycopg.Error) -> StoreError:
    """classify maps a psycopg error to RetryLater, Rejected or a plain StoreError (a bug)."""
    sqlstate = exc.sqlstate
    message = _one_line(exc)
    if sqlstate is None:
        # No SQLSTATE: the failure happened on the client side of the wire (socket closed,
        # server gone, connection already broken), which is always worth retrying.
        if isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError):
            return RetryLater(message)
        return StoreError(message)
    if sqlstate[:2] in _RETRY_CLASSES:
        return RetryLater(message)
    if sqlstate[:2] in _REJECT_CLASSES:
        return Rejected(message, sqlstate)
    return StoreError(f"{sqlstate}: {message}")


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
