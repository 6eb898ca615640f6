"""Config: what an alerts process needs, validated once when it is built.

Policy is data here, not code: the hold time before an automatic resolution, the flapping
window, per-severity escalation deadlines and the chain they walk, which alerts mute which
(inhibition), where notifications go (routes), the channels' endpoints and the one retry policy
every channel shares. ``AlertsConfig`` is frozen; the ``homecare`` wiring builds it from the
settings.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from homecare.rules.packs import DEFAULT_PACKS

__all__ = [
    "DEFAULT_CHAIN",
    "DEFAULT_ESCALATION",
    "DEFAULT_INHIBITIONS",
    "AlertsConfig",
    "InhibitRule",
    "RetryPolicy",
    "Route",
    "SmtpConfig",
    "WebhookEndpoint",
]


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class InhibitRule:
    """InhibitRule: an unresolved, active alert of a ``source`` rule of a patient mutes that
    patient's alerts of the ``targets`` rules (shell patterns, e.g. ``common.hr_*``)."""

    source: str
    targets: tuple[str, ...]

    def mutes(self, source_rule: str, target_rule: str) -> bool:
        """mutes says whether an alert of ``source_rule`` mutes one of ``target_rule``."""
        return (
            source_rule != target_rule
            and fnmatch.fnmatchcase(source_rule, self.source)
            and any(fnmatch.fnmatchcase(target_rule, t) for t in self.targets)
        )


# A high NEWS2 explains its single-vital alerts (NEWS2 is built from them); the high band also
# explains the medium band.
_SINGLE_VITALS = (
    "common.hr_*",
    "common.sbp_*",
    "common.fever",
    "copd.spo2_*",
    "copd.rr_*",
    "hf.spo2_*",
    "onc.fever",
)
DEFAULT_INHIBITIONS: tuple[InhibitRule, ...] = (
    InhibitRule("common.news2_high", ("common.news2_medium", *_SINGLE_VITALS)),
    InhibitRule("common.news2_medium", _SINGLE_VITALS),
)
# Time to acknowledge before the alert moves one step along the chain; None: never escalates.
DEFAULT_ESCALATION: dict[str, timedelta | None] = {
    "critical": timedelta(minutes=15),
    "high": timedelta(minutes=30),
    "medium": timedelta(hours=4),
    "low": None,
}
DEFAULT_CHAIN: tuple[str, ...] = ("primary_nurse", "nurse_on_duty", "physician_on_call")


@dataclass(frozen=True)
class Route:
    """Route: changes matching every given filter (None: any) go to ``channel`` → ``target``
    (a webhook endpoint's name, or an e-mail address)."""

    channel: str
    target: str
    severities: frozenset[str] | None = None
    care_teams: frozenset[str] | None = None
    programs: frozenset[str] | None = None
    recipients: frozenset[str] | None = None  # roles on the escalation chain

    def matches(
        self, severity: str, care_team: str | None, programs: tuple[str, ...], recipient: str
    ) -> bool:
        """matches says whether a page with these attributes takes this route."""
        return (
            (self.severities is None or severity in self.severities)
            and (self.care_teams is None or care_team in self.care_teams)
            and (self.programs is None or bool(self.programs.intersection(programs)))
            and (self.recipients is None or recipient in self.recipients)
        )


@dataclass(frozen=True)
class WebhookEndpoint:
    """WebhookEndpoint: a receiver's URL and the secret its requests are signed with."""

    name: str
    url: str
    secret: str
    timeout_s: float = 5.0


@dataclass(frozen=True)
class SmtpConfig:
    """SmtpConfig: the SMTP relay e-mails are handed to."""

    host: str
    port: int = 25
    sender: str = "homecare-alerts@localhost"
    starttls: bool = False
    username: str | None = None
    password: str | None = None
    timeout_s: float = 10.0


@dataclass(frozen=True)
class RetryPolicy:
    """RetryPolicy: the one retry schedule of every channel — exponential backoff from
    ``base`` doubling up to ``cap``, dead-lettered after ``max_attempts`` tries."""

    max_attempts: int = 6
    base: timedelta = timedelta(seconds=5)
    cap: timedelta = timedelta(minutes=10)

    def delay(self, attempts: int) -> timedelta:
        """delay is the wait after the ``attempts``-th failed try (1-based)."""
        return min(self.cap, self.base * (1 << max(0, attempts - 1)))


@dataclass(frozen=True)
class AlertsConfig:
    """AlertsConfig is what one alerts process needs."""

    database_url: str
    packs_dir: Path = DEFAULT_PACKS
    # How long a condition must stay clear before the alert resolves itself (where allowed).
    hold: timedelta = timedelta(minutes=30)
    # Severities that may auto-resolve at all: a critical alert always waits for a nurse.
    auto_resolve_severities: frozenset[str] = frozenset({"low", "medium", "high"})
    # A re-firing this soon after the last page is flapping: recorded, not paged again.
    flap_window: timedelta = timedelta(minutes=30)
    escalation: dict[str, timedelta | None] = field(
        default_factory=lambda: dict(DEFAULT_ESCALATION)
    )
    chain: tuple[str, ...] = DEFAULT_CHAIN
    inhibitions: tuple[InhibitRule, ...] = DEFAULT_INHIBITIONS
    routes: tuple[Route, ...] = ()
    webhooks: tuple[WebhookEndpoint, ...] = ()
    smtp: SmtpConfig | None = None
    retry: RetryPolicy = RetryPolicy()
    poll_s: float = 1.0
    batch_patients: int = 200
    housekeeping_every_s: float = 5.0
    dispatch_batch: int = 50
    claim_lease: timedelta = timedelta(minutes=2)
    clock: Callable[[], datetime] = field(default=_utc_now)

    def __post_init__(self) -> None:
        for severity in ("low", "medium", "high", "critical"):
            if severity not in self.escalation:
                raise ValueError(f"escalation: no deadline (or None) for severity {severity!r}")
        if not self.chain:
            raise ValueError("chain: at least one recipient role is needed")
        names = {w.name for w in self.webhooks}
        for route in self.routes:
            if route.channel not in ("webhook", "email"):
                raise ValueError(f"route channel {route.channel!r}: webhook or email")
            if route.channel == "webhook" and route.target not in names:
                raise ValueError(f"route to webhook {route.target!r}: no such endpoint")
            if route.channel == "email" and self.smtp is None:
                raise ValueError("route to email: no SMTP relay configured")

    def deadline(self, severity: str) -> timedelta | None:
        """deadline is how long an alert of ``severity`` may wait for an acknowledgement."""
        return self.escalation[severity]
