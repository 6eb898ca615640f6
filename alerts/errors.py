"""Errors of the alerts stage, and what the caller can do about each.

    AlertError
     ├── AlertNotFound        no alert (or silence) with that id
     ├── InvalidTransition    the change is not allowed from the alert's state (acknowledging a
     │                        resolved alert, an unknown outcome, a silence without a reason)
     └── NotificationError    a channel could not deliver one notification
          ├── Retryable       try again later (connection refused, timeout, HTTP 5xx/429,
          │                   SMTP 4xx): the dispatcher re-schedules it with the retry policy
          └── Permanent       retrying cannot help (HTTP 4xx, SMTP 5xx, a bad address):
                              dead-lettered at once, replayable after the cause is fixed

Channels raise only ``Retryable`` or ``Permanent``: third-party errors (``OSError``,
``smtplib.SMTPException``, HTTP statuses) are translated at the channel's boundary, so the one
retry policy in ``alerts.dispatch`` never sees a library's exception. Database errors are not
translated here: the worker maps them with ``store.classify`` and retries its pass.
"""

from __future__ import annotations

__all__ = [
    "AlertError",
    "AlertNotFound",
    "InvalidTransition",
    "NotificationError",
    "Permanent",
    "Retryable",
]


class AlertError(Exception):
    """AlertError is the root of every error the alerts stage raises."""


class AlertNotFound(AlertError):
    """AlertNotFound: no alert or silence with that id."""


class InvalidTransition(AlertError):
    """InvalidTransition: the requested change is not allowed from the current state."""


class NotificationError(AlertError):
    """NotificationError: one notification was not delivered."""


class Retryable(NotificationError):
    """Retryable: delivery may succeed later."""


class Permanent(NotificationError):
    """Permanent: delivery will not succeed without a change (dead-letter it)."""
