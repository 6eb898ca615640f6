"""Alerts stage: findings in; a short, trustworthy queue, escalations and notifications out.

Public surface: the values (``Alert``, ``AlertChange``), the configuration, the service a worker
or the API calls (``AlertService``), the worker process (``AlertsWorker``), the live stream
(``AlertStream``), the dispatcher of notifications (``Dispatcher``, ``replay_dead``), the
webhook signature (``sign``, ``verify_signature``) and the errors.
"""

from homecare.alerts.config import (
    AlertsConfig,
    InhibitRule,
    RetryPolicy,
    Route,
    SmtpConfig,
    WebhookEndpoint,
)
from homecare.alerts.dispatch import Channel, Dispatcher, OutgoingNotification, replay_dead
from homecare.alerts.errors import (
    AlertError,
    AlertNotFound,
    InvalidTransition,
    NotificationError,
    Permanent,
    Retryable,
)
from homecare.alerts.model import OUTCOMES, Alert, AlertChange, urgency_key
from homecare.alerts.pipeline import Pipeline
from homecare.alerts.repository import list_alerts
from homecare.alerts.service import AlertService
from homecare.alerts.stream import AlertStream, Subscription, sse
from homecare.alerts.webhook import sign, verify_signature
from homecare.alerts.worker import AlertsWorker

__all__ = [
    "OUTCOMES",
    "Alert",
    "AlertChange",
    "AlertError",
    "AlertNotFound",
    "AlertService",
    "AlertStream",
    "AlertsConfig",
    "AlertsWorker",
    "Channel",
    "Dispatcher",
    "InhibitRule",
    "InvalidTransition",
    "NotificationError",
    "OutgoingNotification",
    "Permanent",
    "Pipeline",
    "RetryPolicy",
    "Retryable",
    "Route",
    "SmtpConfig",
    "Subscription",
    "WebhookEndpoint",
    "list_alerts",
    "replay_dead",
    "sign",
    "sse",
    "urgency_key",
    "verify_signature",
]
