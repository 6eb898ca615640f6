"""Wiring: turn the one Settings object into each stage's own typed configuration.

Stages never see Settings (they would then depend on every other stage's options); they get
small frozen configs built here.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from homecare.ingest import (
    IngestConfig,
    MqttConfig,
    NatsConfig,
    ParseLimits,
    QuarantineBudget,
    parse_mqtt_url,
    parse_nats_urls,
)
from homecare.settings import Settings

if TYPE_CHECKING:
    from homecare.alerts import AlertsConfig
    from homecare.api.config import ApiConfig
    from homecare.broker.credentials import BrokerAccounts
    from homecare.rules import RulesConfig
    from homecare.rules.training import TrainingConfig

__all__ = [
    "NoRulePacks",
    "alerts_config",
    "api_config",
    "broker_accounts",
    "ingest_config",
    "mqtt_config",
    "nats_config",
    "packs_dir",
    "require_packs",
    "rules_config",
    "training_config",
]


class NoRulePacks(Exception):
    """NoRulePacks: the packs directory holds no valid rule pack, so a worker would watch the
    patients and never raise an alert; it must not start."""


def packs_dir(settings: Settings) -> Path:
    """packs_dir: ``HOMECARE_RULES_PACKS_DIR``, else the packs installed with the package."""
    from homecare.rules.packs import DEFAULT_PACKS

    return Path(settings.rules_packs_dir) if settings.rules_packs_dir else DEFAULT_PACKS


def require_packs(settings: Settings) -> list[str]:
    """require_packs returns the names of the packs in force, or raises NoRulePacks with the
    directory and the reason (missing, empty, invalid) in one line."""
    from homecare.rules.packs import PackError, load_packs

    directory = packs_dir(settings).resolve()
    where = f"{directory} (HOMECARE_RULES_PACKS_DIR)"
    if not directory.is_dir():
        raise NoRulePacks(f"no rule packs: {where} is not a directory")
    try:
        names = sorted(load_packs(directory).packs)
    except PackError as exc:
        raise NoRulePacks(f"rule packs in {where} are invalid: {exc}") from None
    if not names:
        raise NoRulePacks(f"no rule packs in {where}: no *.yaml file")
    return names


def mqtt_config(
    settings: Settings, client_id: str | None = None, fresh_session: bool = False
) -> MqttConfig:
    """mqtt_config is the ingest's broker connection and session from the settings."""
    host, port, username, password, tls = parse_mqtt_url(settings.mqtt_url)
    return MqttConfig(
        host=host,
        port=port,
        username=username,
        password=password,
        tls=tls,
        client_id=client_id or settings.mqtt_client_id,
        protocol=settings.mqtt_protocol,
        shared_group=settings.mqtt_shared_group,
        session_expiry_s=settings.mqtt_session_expiry_s,
        receive_maximum=settings.mqtt_receive_maximum,
        keepalive_s=settings.mqtt_keepalive_s,
        tls_ca_file=settings.mqtt_tls_ca_file,
        fresh_session=fresh_session,
    )


def nats_config(settings: Settings, client_id: str | None = None) -> NatsConfig | None:
    """nats_config is the ingest's NATS cluster connection, None unless the broker kind is
    ``nats``."""
    if settings.broker_kind != "nats":
        return None
    servers, username, password = parse_nats_urls(settings.nats_urls)
    return NatsConfig(
        servers=servers,
        username=username,
        password=password,
        client_name=client_id or settings.mqtt_client_id,
        durable=settings.nats_durable,
        max_ack_pending=settings.nats_max_ack_pending,
        ack_wait_s=settings.nats_ack_wait_s,
        max_in_flight=settings.nats_max_in_flight,
        tls_ca_file=settings.mqtt_tls_ca_file,
    )


def ingest_config(
    settings: Settings, client_id: str | None = None, fresh_session: bool = False
) -> IngestConfig:
    """ingest_config is one ingest worker's configuration from the settings."""
    return IngestConfig(
        database_url=settings.database_url,
        mqtt=mqtt_config(settings, client_id, fresh_session),
        nats=nats_config(settings, client_id),
        limits=ParseLimits(
            max_payload_bytes=settings.ingest_max_payload_bytes,
            max_future_skew=timedelta(seconds=settings.ingest_max_future_skew_s),
            max_age=timedelta(days=settings.ingest_max_age_days),
        ),
        quarantine_budget=QuarantineBudget(settings.ingest_quarantine_device_hourly_bytes),
        batch_max_messages=settings.ingest_batch_max_messages,
        batch_max_wait_s=settings.ingest_batch_max_wait_ms / 1000,
        connect_timeout_s=settings.connect_timeout_s,
        stats_interval_s=settings.ingest_stats_interval_s,
    )


def rules_config(settings: Settings) -> RulesConfig:
    """rules_config is one rules worker's configuration from the settings."""
    from homecare.rules import RulesConfig

    return RulesConfig(
        database_url=settings.database_url,
        packs_dir=packs_dir(settings),
        late_after=timedelta(hours=settings.rules_late_after_h),
        poll_s=settings.rules_poll_s,
    )


def training_config(settings: Settings, trained_by: str) -> TrainingConfig:
    """training_config: how the anomaly models are trained, and who is recorded as training."""
    from homecare.rules.anomaly import HistoryPolicy
    from homecare.rules.training import TrainingConfig

    return TrainingConfig(
        history=timedelta(days=settings.models_history_days),
        policy=HistoryPolicy(settings.models_min_days, settings.models_min_instants),
        trained_by=trained_by,
    )


def alerts_config(settings: Settings) -> AlertsConfig:
    """alerts_config is one alerts worker's configuration: every page goes to the configured
    webhook and e-mail address (finer routes are the API's to manage)."""
    from homecare.alerts import AlertsConfig, Route, SmtpConfig, WebhookEndpoint

    routes: list[Route] = []
    webhooks: tuple[WebhookEndpoint, ...] = ()
    if settings.alerts_webhook_url and settings.alerts_webhook_secret:
        webhooks = (
            WebhookEndpoint("default", settings.alerts_webhook_url, settings.alerts_webhook_secret),
        )
        routes.append(Route("webhook", "default"))
    smtp = None
    if settings.smtp_host:
        smtp = SmtpConfig(settings.smtp_host, settings.smtp_port, settings.smtp_sender)
        if settings.alerts_email_to:
            routes.append(Route("email", settings.alerts_email_to))
    return AlertsConfig(
        database_url=settings.database_url,
        packs_dir=packs_dir(settings),
        hold=timedelta(minutes=settings.alerts_hold_min),
        routes=tuple(routes),
        webhooks=webhooks,
        smtp=smtp,
    )


def broker_accounts(settings: Settings) -> BrokerAccounts:
    """broker_accounts is the admin account of ``HOMECARE_MQTT_ADMIN_URL``, or with the NATS
    cluster its accounts file (either may be unset: then every operation raises
    ``BrokerNotConfigured``)."""
    from homecare.broker.credentials import BrokerAccounts
    from homecare.broker.dynsec import DynsecAdmin

    if settings.broker_kind == "nats":
        from homecare.broker.nats_accounts import NatsAccountsAdmin, pid_files

        accounts_file = Path(settings.nats_accounts_file) if settings.nats_accounts_file else None
        return BrokerAccounts(NatsAccountsAdmin(accounts_file, pid_files(settings.nats_pid_files)))
    return BrokerAccounts(
        DynsecAdmin(
            settings.mqtt_admin_url,
            tls_ca_file=settings.mqtt_tls_ca_file,
            timeout_s=settings.mqtt_admin_timeout_s,
        )
    )


def api_config(settings: Settings) -> ApiConfig:
    """api_config is what the API serves with: database, lifetimes, defaults, the alerts stage's
    own config (a silence that ends from the API pages through the same routes) and the broker
    accounts that device registration writes."""
    from homecare.analytics.deid import DEVELOPMENT_KEY
    from homecare.api.config import ApiConfig
    from homecare.api.throttle import Policy

    return ApiConfig(
        database_url=settings.database_url,
        packs_dir=packs_dir(settings),
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
        broker=broker_accounts(settings),
        pseudonym_key=settings.pseudonym_key
        or (DEVELOPMENT_KEY if settings.env == "development" else None),
    )
