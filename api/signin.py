"""Sign-in: a password for a session token, throttled, traced — shared by ``POST
/api/v1/auth/login`` and the dashboard's sign-in form.

Every attempt is first let through or refused by ``api.throttle`` (429 ``too_many_sign_ins``
with ``Retry-After``, before any password is checked); then the password is checked at the same
cost and with the same answer (401 ``login_failed``) whether the name is unknown, disabled,
without a password, or the password wrong.

Traces (never the attempted password, never a name that matches no user — it may be a password
typed in the wrong field):

- ``audit_log`` rows, actor ``address:<ip>``: ``auth.login_failed`` for each failed password
  (subject ``user/<name>``, or ``user/?`` for no such user), ``auth.login_throttled`` when a
  bucket starts refusing (subject the account or ``address/<ip>``); ``auth.login`` on success.
- the alert to administrators: the same ``auth.login_throttled`` row — administrators read it
  in ``GET /api/v1/audit?action=auth.login_throttled`` — and a WARNING log line
  ``sign-in throttled`` for whoever watches the logs. Once per episode (until the bucket lets an
  attempt through again), not per refused attempt: an attacker must not be able to flood the
  audit log or the logs.
"""

from __future__ import annotations

import logging
from typing import Any

import psycopg

from homecare.api import accounts, audit, throttle
from homecare.api.config import ApiConfig
from homecare.api.errors import TooManyRequests, Unauthorized

__all__ = ["sign_in"]

log = logging.getLogger(__name__)


def sign_in(
    conn: psycopg.Connection[Any], config: ApiConfig, username: str, password: str, address: str
) -> accounts.IssuedToken:
    """sign_in checks a password from ``address`` and issues a session token."""
    name = username.strip().lower()
    actor = f"address:{address}"
    keys = throttle.keys_for(name, address, config.sign_in)
    admission = throttle.admit(conn, keys, config.clock(), config.sign_in)
    if admission.retry_after is not None:
        _alert(conn, admission, name, actor, address)
        raise TooManyRequests(
            "too many failed sign-ins; try again after the delay in Retry-After",
            retry_after=admission.retry_after_s,
            code="too_many_sign_ins",
        )
    result = accounts.login(conn, name, password, ttl=config.session_ttl, now=config.clock())
    if result.token is None:
        subject = f"user/{name}" if result.known else "user/?"
        audit.record(conn, actor, "auth.login_failed", subject, {"known": result.known})
        raise Unauthorized("unknown user or wrong password", code="login_failed")
    throttle.settle(conn, list(keys), config.clock())
    audit.record(conn, f"user:{name}", "auth.login", "auth/session", {"address": address})
    return result.token


def _alert(
    conn: psycopg.Connection[Any],
    admission: throttle.Admission,
    name: str,
    actor: str,
    address: str,
) -> None:
    known = accounts.find_user(conn, name) is not None
    for key in admission.started:
        scope = key.split(":", 1)[0]
        subject = f"address/{address}" if scope == "address" else f"user/{name if known else '?'}"
        detail = {"bucket": scope, "retry_after_s": admission.retry_after_s}
        audit.record(conn, actor, "auth.login_throttled", subject, detail)
        log.warning(
            "sign-in throttled",
            extra={"bucket": scope, "address": address, "subject": subject, **detail},
        )
