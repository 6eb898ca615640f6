"""Webhook channel: POSTs the change as JSON, signed with HMAC-SHA256.

Each request carries ``X-Homecare-Timestamp`` (Unix seconds), ``X-Homecare-Signature:
sha256=<hex>`` — the HMAC of ``"<timestamp>.<raw body>"`` under the endpoint's secret, so a
receiver can check both origin and freshness (reject old timestamps: no replay) — and
``X-Homecare-Delivery`` (the notification id, stable across retries, to de-duplicate).
Outcomes are translated here: 2xx sent; timeouts, connection errors, 408, 425, 429 and 5xx
``Retryable``; any other status ``Permanent``.
"""

from __future__ import annotations

import hashlib
import hmac
import time
import urllib.error
import urllib.request
from collections.abc import Mapping

from homecare.alerts.config import WebhookEndpoint
from homecare.alerts.dispatch import OutgoingNotification
from homecare.alerts.errors import Permanent, Retryable

__all__ = ["WebhookChannel", "sign", "verify_signature"]

_RETRY_STATUSES = frozenset({408, 425, 429})


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """sign is the ``X-Homecare-Signature`` value for ``body`` sent at ``timestamp``."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"sha256={mac.hexdigest()}"


def verify_signature(
    secret: str,
    body: bytes,
    timestamp: str,
    signature: str,
    *,
    now: float | None = None,
    tolerance_s: float = 300,
) -> bool:
    """verify_signature is what a receiver runs: right secret, untouched body, fresh timestamp."""
    try:
        sent = int(timestamp)
    except ValueError:
        return False
    if abs((time.time() if now is None else now) - sent) > tolerance_s:
        return False
    return hmac.compare_digest(sign(secret, sent, body), signature)


class WebhookChannel:
    """WebhookChannel delivers to the named endpoints."""

    def __init__(self, endpoints: Mapping[str, WebhookEndpoint]) -> None:
        self.endpoints = dict(endpoints)

    def send(self, delivery: OutgoingNotification) -> None:
        endpoint = self.endpoints.get(delivery.target)
        if endpoint is None:
            raise Permanent(f"no webhook endpoint {delivery.target!r}")
        body = delivery.body.encode()
        timestamp = int(time.time())
        request = urllib.request.Request(
            endpoint.url,
            data=body,
            method="POST",
            headers={
                "Content-Type": "application/json",
                "User-Agent": "homecare-alerts",
                "X-Homecare-Delivery": str(delivery.id),
                "X-Homecare-Timestamp": str(timestamp),
                "X-Homecare-Signature": sign(endpoint.secret, timestamp, body),
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=endpoint.timeout_s) as response:
                response.read()
        except urllib.error.HTTPError as exc:
            if exc.code in _RETRY_STATUSES or exc.code >= 500:
                raise Retryable(f"HTTP {exc.code}") from None
            raise Permanent(f"HTTP {exc.code}") from None
        except (urllib.error.URLError, OSError) as exc:
            raise Retryable(f"{type(exc).__name__}: {exc}") from None
