"""Settings: the one place configuration enters a process.

Every value comes from a ``HOMECARE_*`` environment variable (or a ``.env`` file). The object
is built once in ``main()`` and passed down as plain values to each stage; nothing reads the
environment at import time, so tests can build as many differently configured pipelines in
one process as they like.
"""

from __future__ import annotations

import re
import socket
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["Settings", "load_settings"]

_DEFAULT_DEV_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/homecare"
_CLIENT_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


class Settings(BaseSettings):
    """Settings of every ``homecare`` command; see the README's configuration table."""

    model_config = SettingsConfigDict(
        env_prefix="HOMECARE_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    env: Literal["development", "production"] = "development"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["json", "text"] = "json"

    database_url: str = _DEFAULT_DEV_DATABASE_URL
    db_flavour: Literal["auto", "timescaledb", "postgres"] = "auto"
    connect_timeout_s: float = Field(default=20.0, gt=0)

    # Which broker tier the ingest reads from: one Mosquitto (the default, and the demo's), or
    # the NATS cluster (docs/high-availability.md), reached through HOMECARE_NATS_URLS.
    broker_kind: Literal["mosquitto", "nats"] = "mosquitto"
    # Every node of the NATS cluster, comma-separated; credentials in the first URL.
    nats_urls: str = "nats://127.0.0.1:4222"
    nats_durable: str = "homecare-ingest"
    # Unacknowledged messages for all workers together (the consumer's flow control), per
    # worker, and how long a fetched message may stay unacknowledged before it goes to another
    # worker (longer than a batch can take, database failover included).
    nats_max_ack_pending: int = Field(default=20000, ge=1)
    nats_max_in_flight: int = Field(default=4000, ge=1)
    nats_ack_wait_s: float = Field(default=60.0, gt=0)
    # The NATS accounts file the API maintains (device users) and the pid files of the nodes
    # it reloads after each change (broker.nats_accounts).
    nats_accounts_file: str | None = None
    nats_pid_files: str = ""

    mqtt_url: str = "mqtt://127.0.0.1:1883"
    mqtt_protocol: Literal["5", "3.1.1"] = "5"
    mqtt_client_id: str = Field(default_factory=lambda: f"homecare-ingest-{socket.gethostname()}")
    # Empty: one plain persistent subscription. Set (e.g. "ingest") to share the load between
    # workers; see the README on Mosquitto 2.0's shared subscriptions across broker restarts.
    mqtt_shared_group: str = ""
    mqtt_session_expiry_s: int = Field(default=7 * 24 * 3600, ge=0)
    mqtt_receive_maximum: int = Field(default=4000, ge=1, le=65535)
    mqtt_keepalive_s: int = Field(default=30, ge=5)
    mqtt_tls_ca_file: str | None = None
    # The broker's dynamic-security admin account (mqtt://homecare-admin:pw@host:1883): used to
    # issue, rotate and revoke device credentials (broker.credentials). Only the API, the demo
    # and `homecare broker` need it; never give it to ingest workers or devices.
    mqtt_admin_url: str | None = None
    mqtt_admin_timeout_s: float = Field(default=5.0, gt=0)

    ingest_batch_max_messages: int = Field(default=1000, ge=1)
    ingest_batch_max_wait_ms: int = Field(default=50, ge=1)
    ingest_max_payload_bytes: int = Field(default=64 * 1024, ge=1024)
    ingest_max_future_skew_s: int = Field(default=300, ge=0)
    ingest_max_age_days: int = Field(default=400, ge=1)
    # Raw bytes of refused messages kept per device and clock hour; past it the reasons and the
    # size are kept, not the payload (counted in homecare_ingest_quarantine_payloads_dropped).
    ingest_quarantine_device_hourly_bytes: int = Field(default=1024 * 1024, ge=0)
    ingest_metrics_port: int = Field(default=0, ge=0, le=65535)
    ingest_stats_interval_s: float = Field(default=10.0, gt=0)

    compress_after_days: int = Field(default=30, ge=1)
    retention_days: int = Field(default=3650, ge=1)
    # How long message ids are remembered for de-duplication (a resend after that is stored).
    dedup_window_days: int = Field(default=30, ge=1)

    rules_packs_dir: str | None = None  # default: the packs shipped in rules/packs
    rules_late_after_h: float = Field(default=6.0, gt=0)
    rules_poll_s: float = Field(default=0.5, gt=0)
    # CPU niceness of `homecare rules` (0: none): under saturation the ingest comes first.
    rules_nice: int = Field(default=5, ge=0, le=19)

    # Anomaly models (rules/training.py): the scheduler retrains every this many hours (0: only
    # `homecare models train`), on this many days of each patient's readings; a patient gets
    # a personal model once their history spans min_days with min_instants instants.
    # Off by default: until models are trained the anomaly rules cannot tell and the packs page
    # exactly as the rules alone, and on the held-out cohorts rules + anomaly does not yet page
    # less than the rules alone (docs/evaluation.md). An operator turns it on deliberately.
    models_retrain_h: float = Field(default=0.0, ge=0)
    models_history_days: float = Field(default=90.0, gt=0)
    models_min_days: float = Field(default=14.0, gt=0)
    models_min_instants: int = Field(default=20, ge=1)

    alerts_hold_min: float = Field(default=30.0, gt=0)
    alerts_webhook_url: str | None = None
    alerts_webhook_secret: str | None = None
    alerts_email_to: str | None = None
    smtp_host: str | None = None
    smtp_port: int = Field(default=25, ge=1, le=65535)
    smtp_sender: str = "homecare-alerts@localhost"

    api_host: str = "127.0.0.1"
    api_port: int = Field(default=8000, ge=1, le=65535)

    # Key of the analysts' patient pseudonyms (analytics/deid.py); required by the analytics
    # layer in production, a fixed public development key otherwise.
    pseudonym_key: str | None = Field(default=None, min_length=16)
    # Lifetime of a sign-in (dashboard session or POST /api/v1/auth/login token), and default
    # lifetime of a token from `homecare token create`.
    api_session_ttl_h: float = Field(default=12.0, gt=0, le=24 * 30)
    api_token_ttl_days: float = Field(default=30.0, gt=0, le=366)
    api_default_time_zone: str = "America/Montreal"
    api_default_locale: Literal["fr-CA", "en"] = "fr-CA"
    api_db_pool_size: int = Field(default=10, ge=1, le=200)
    # A request body above this many bytes is refused (413) before it is read. The largest
    # legitimate one is a rule pack (at most 256 KiB of YAML, as JSON).
    api_max_body_bytes: int = Field(default=1024 * 1024, ge=4096)
    # Sign-in throttle (api/throttle.py): failed sign-ins each bucket absorbs before attempts
    # are answered 429 — per client address, per account from one address, per account from
    # anywhere — and the seconds it takes one failure to drain. Slows, never locks.
    api_signin_per_address: int = Field(default=20, ge=1)
    api_signin_per_account_address: int = Field(default=5, ge=1)
    api_signin_per_account: int = Field(default=50, ge=1)
    api_signin_leak_s: float = Field(default=60.0, gt=0)

    @field_validator("database_url")
    @classmethod
    def _postgres_url(cls, value: str) -> str:
        scheme = urlsplit(value).scheme
        if scheme not in ("postgresql", "postgres"):
            raise ValueError(f"must be a postgresql:// URL, got scheme {scheme!r}")
        return value

    @field_validator("mqtt_url", "mqtt_admin_url")
    @classmethod
    def _mqtt_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("mqtt", "mqtts"):
            raise ValueError(f"must be an mqtt:// or mqtts:// URL, got scheme {parts.scheme!r}")
        if not parts.hostname:
            raise ValueError("has no host")
        return value

    @field_validator("api_default_time_zone")
    @classmethod
    def _time_zone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown IANA time zone {value!r}") from None
        return value

    @field_validator("mqtt_client_id")
    @classmethod
    def _client_id(cls, value: str) -> str:
        if not _CLIENT_ID.match(value):
            raise ValueError("must match [A-Za-z0-9._-]{1,64}")
        return value

    @model_validator(mode="after")
    def _no_default_secrets_in_production(self) -> Settings:
        if self.env == "production":
            if self.database_url == _DEFAULT_DEV_DATABASE_URL:
                raise ValueError("HOMECARE_DATABASE_URL must be set explicitly in production")
            if self.broker_kind == "mosquitto" and urlsplit(self.mqtt_url).password is None:
                raise ValueError("HOMECARE_MQTT_URL must carry credentials in production")
            if self.broker_kind == "nats" and "@" not in self.nats_urls:
                raise ValueError("HOMECARE_NATS_URLS must carry credentials in production")
        if self.alerts_webhook_url and len(self.alerts_webhook_secret or "") < 16:
            raise ValueError("HOMECARE_ALERTS_WEBHOOK_SECRET must be set (16+ characters)")
        if self.alerts_email_to and not self.smtp_host:
            raise ValueError("HOMECARE_ALERTS_EMAIL_TO needs HOMECARE_SMTP_HOST")
        return self


def load_settings(**overrides: object) -> Settings:
    """load_settings reads the environment; overrides win (used by tests and the demo)."""
    return Settings(**overrides)  # type: ignore[arg-type]
