"""Config: the API's own typed configuration, built from the process's Settings.

The API never reads Settings past this point, so tests build an app from a plain ``ApiConfig``
just as ``homecare api`` does from the environment.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from api.throttle import Policy

if TYPE_CHECKING:
    from alerts import AlertsConfig
    from devices.credentials import BrokerAccounts
    from homecare.settings import Settings

__all__ = ["ApiConfig"]


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class ApiConfig:
    """ApiConfig: what the API needs to serve — database, lifetimes, defaults, packs directory.

    ``cookie_secure`` marks the session cookie Secure (HTTPS only); it is on in production.
    ``alerts`` is the alerts stage's config, the same the workers run with (a silence that ends
    from the API pages through the same routes). ``broker`` is how device credentials reach the
    broker (``devices.credentials``); None: device registration answers 503.
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

    @classmethod
    def from_settings(cls, settings: Settings) -> ApiConfig:
        """from_settings builds the API's config from the process's settings."""
        from analytics.deid import DEVELOPMENT_KEY
        from devices.credentials import BrokerAccounts
        from homecare.wiring import alerts_config
        from rules.packs import DEFAULT_PACKS

        return cls(
            database_url=settings.database_url,
            packs_dir=Path(settings.rules_packs_dir) if settings.rules_packs_dir else DEFAULT_PACKS,
            session_ttl=timedelta(hours=settings.api_session_ttl_h),
            token_ttl=timedelta(days=settings.api_token_ttl_days),
            default_time_zone=settings.api_default_time_zone,
            default_locale=settings.api_default_locale,
            pool_size=settings.api_db_pool_size,
            max_body_bytes=settings.api_max_body_bytes,
            sign_in=Policy(
                per_address=settings.api_signin_per_address,
                per_pair=settings.api_signin_per_account_address,
                per_account=settings.api_signin_per_account,
                leak=timedelta(seconds=settings.api_signin_leak_s),
            ),
            cookie_secure=settings.env == "production",
            alerts=alerts_config(settings),
            broker=BrokerAccounts.from_settings(settings),
            pseudonym_key=settings.pseudonym_key
            or (DEVELOPMENT_KEY if settings.env == "development" else None),
        )
