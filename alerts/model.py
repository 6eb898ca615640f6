"""Values the alerts stage produces: an Alert (the row a nurse works on) and an AlertChange
(what happened to it, handed to the suppressors, the notifiers and the live stream).

``status`` is what the care team did (open → acknowledged → resolved); ``condition`` is whether
the rule still holds (active / cleared). The two move independently, as in ThingsBoard: a
critical alert whose condition cleared by itself still waits for a nurse's look.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from homecare.rules.model import Severity

__all__ = [
    "OUTCOMES",
    "SEVERITY_RANK",
    "Alert",
    "AlertChange",
    "ChangeKind",
    "Condition",
    "Outcome",
    "Severity",
    "Status",
    "urgency_key",
]

Status = Literal["open", "acknowledged", "resolved"]
Condition = Literal["active", "cleared"]
ChangeKind = Literal[
    "opened",
    "updated",
    "refired",
    "cleared",
    "acknowledged",
    "resolved",
    "escalated",
    "suppressed",
    "unsuppressed",
]
Outcome = Literal[
    "called_patient",
    "adjusted_treatment",
    "home_visit",
    "sent_to_er",
    "false_alarm",
    "device_problem",
    "no_action_needed",
    "auto_resolved",
    "retracted",
]
# Outcomes a nurse may choose; auto_resolved and retracted are the system's own.
OUTCOMES: frozenset[str] = frozenset(
    {
        "called_patient",
        "adjusted_treatment",
        "home_visit",
        "sent_to_er",
        "false_alarm",
        "device_problem",
        "no_action_needed",
    }
)
SEVERITY_RANK: dict[str, int] = {"low": 0, "medium": 1, "high": 2, "critical": 3}


@dataclass(frozen=True)
class Alert:
    """Alert is one fingerprint's (patient, rule) episode, from opening to resolution."""

    id: int
    patient_id: uuid.UUID
    rule_id: str
    severity: Severity
    status: Status
    condition: Condition
    opened_at: datetime
    evidence_time: datetime
    summary: str
    evidence: dict[str, Any]
    news2: int | None
    late: bool
    finding_id: int
    fired_count: int
    last_fired_at: datetime
    last_paged_at: datetime | None
    cleared_at: datetime | None
    acknowledged_at: datetime | None
    acknowledged_by: str | None
    resolved_at: datetime | None
    resolved_by: str | None
    outcome: str | None
    resolution_note: str | None
    suppressed_by: str | None
    escalation_level: int
    escalate_at: datetime | None
    updated_at: datetime

    def to_json(self) -> dict[str, Any]:
        """to_json is the alert as the REST contract lists it (docs/contracts.md), plus handling
        fields."""
        return {
            "id": self.id,
            "patient_id": str(self.patient_id),
            "rule_id": self.rule_id,
            "severity": self.severity,
            "status": self.status,
            "condition": self.condition,
            "opened_at": self.opened_at.isoformat(),
            "evidence_time": self.evidence_time.isoformat(),
            "summary": self.summary,
            "evidence": self.evidence,
            "news2": self.news2,
            "late": self.late,
            "fired_count": self.fired_count,
            "cleared_at": _iso(self.cleared_at),
            "acknowledged_at": _iso(self.acknowledged_at),
            "acknowledged_by": self.acknowledged_by,
            "resolved_at": _iso(self.resolved_at),
            "resolved_by": self.resolved_by,
            "outcome": self.outcome,
            "suppressed_by": self.suppressed_by,
            "escalation_level": self.escalation_level,
        }


@dataclass(frozen=True)
class AlertChange:
    """AlertChange: ``kind`` happened to ``alert`` (its state after the change), by ``actor``.

    ``page`` says whether the change is worth paging someone for (an opening, a re-firing, an
    escalation); ``suppressed_by`` is the reason a suppressor gave for not paging it.
    ``recipient`` is the escalation chain's role the page is for.
    """

    kind: ChangeKind
    alert: Alert
    actor: str
    at: datetime
    page: bool = False
    suppressed_by: str | None = None
    recipient: str | None = None

    def to_json(self) -> dict[str, Any]:
        """to_json is the change as the live stream and the webhooks carry it."""
        return {
            "change": self.kind,
            "at": self.at.isoformat(),
            "actor": self.actor,
            "recipient": self.recipient,
            "alert": self.alert.to_json(),
        }


def urgency_key(alert: Alert) -> tuple[int, int, float]:
    """urgency_key sorts the queue most urgent first: severity, then NEWS2, then age (oldest)."""
    return (-SEVERITY_RANK[alert.severity], -(alert.news2 or 0), alert.opened_at.timestamp())


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None
