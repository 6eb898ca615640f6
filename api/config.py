"""Config: the API's own typed configuration.

The API never sees the process's settings: the wiring (``homecare.wiring.api_config``) builds
an ``ApiConfig`` from the environment, and tests build one by hand, so both serve the same app.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from homecare.api.throttle import Policy

if TYPE_CHECKING:
    from homecare.alerts import AlertsConfig
    from homecare.broker.credentials import BrokerAccounts

__all__ = ["ApiConfig"]


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class ApiConfig:
    """ApiConfig: what the API needs to serve — database, lifetimes, defaults, packs directory.

    ``cookie_secure`` marks the session cookie Secure (HTTPS only); it is on in production.
    ``alerts`` is the alerts stage's config, the same the workers run with (a silence that ends
    from the API pages through the same routes). ``broker`` is how device credentials reach the
    broker (``broker.credentials``); None: device registration answers 503.
    ``stream_recheck`` is how often a live stream checks its token and care teams again (a
    revoked or expired token, a disabled user or a changed team ends the stream within it).
    ``max_body_bytes``: a request body above it is refused unread (``api.intake``).
    ``sign_in``: how failed sign-ins are throttled (``api.throttle``).
    """

    database_url: str
    packs_dir: Path
    session_ttl: timedelta = timedelta(hours=12)
    token_ttl: timedelta = timedelta(days=30)
    default_time_zone: str = "America/Montreal"
    default_locale: str = "fr-CA"
    pool_size: int = 10
    sign_in: Policy = field(default_factory=Policy)
    stream_recheck: timedelta = timedelta(seconds=15)
    max_body_bytes: int = 1024 * 1024
    cookie_secure: bool = False
    alerts: AlertsConfig | None = None
    broker: BrokerAccounts | None = None
    pseudonym_key: str | None = None
    clock: Callable[[], datetime] = field(default=_now)
