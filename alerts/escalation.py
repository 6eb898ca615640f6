"""Escalation: an alert not acknowledged within its severity's time moves along the chain
(primary nurse → nurse on duty → physician on call), one step per deadline.

The timer is stored state, not a process's memory: ``alerts.escalate_at`` is set when the alert
is paged (now + the severity's deadline) and cleared by an acknowledgement, a resolution or a
suppression. A periodic job (APScheduler, in every alerts process) claims due rows with
``FOR UPDATE SKIP LOCKED`` and moves each one step in the same transaction, so a restarted
process finds its timers where it left them, and with several processes each escalation fires
exactly once — the row lock decides who fires it, the new ``escalate_at`` stops the others.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any

import psycopg

from homecare.alerts import repository as repo
from homecare.alerts.config import AlertsConfig
from homecare.alerts.model import Alert, AlertChange

__all__ = ["claim_due", "schedule"]

ESCALATOR = "system:escalation"


def schedule(
    conn: psycopg.Connection[Any], config: AlertsConfig, change: AlertChange
) -> AlertChange:
    """schedule starts the acknowledgement timer of a paged opening or re-firing (level 0).

    A re-firing of an acknowledged alert re-opens it: the acknowledgement held only until the
    condition cleared and fired again.
    """
    if not change.page or change.kind == "escalated":
        return change
    deadline = config.deadline(change.alert.severity)
    values: dict[str, Any] = {
        "last_paged_at": change.at,
        "escalation_level": 0,
        "escalate_at": change.at + deadline if deadline is not None else None,
        "suppressed_by": None,
        "status": "open",
        "acknowledged_at": None,
        "acknowledged_by": None,
    }
    alert = repo.update_alert(conn, change.alert.id, **values)
    return replace(change, alert=alert, recipient=config.chain[0])


def claim_due(
    conn: psycopg.Connection[Any], config: AlertsConfig, now: datetime, limit: int = 100
) -> list[AlertChange]:
    """claim_due moves every due, unacknowledged alert one step up the chain."""
    rows = conn.execute(
        f"SELECT {repo.ALERT_COLUMNS} FROM alerts WHERE escalate_at <= %s AND status = 'open'"
        " ORDER BY escalate_at LIMIT %s FOR UPDATE SKIP LOCKED",
        (now, limit),
    ).fetchall()
    changes = []
    for row in rows:
        alert = Alert(*row)
        level = min(alert.escalation_level + 1, len(config.chain) - 1)
        deadline = config.deadline(alert.severity)
        last_step = level >= len(config.chain) - 1
        escalated = repo.update_alert(
            conn,
            alert.id,
            escalation_level=level,
            escalate_at=None if last_step or deadline is None else now + deadline,
            last_paged_at=now,
            updated_at=now,
        )
        changes.append(
            AlertChange(
                "escalated", escalated, ESCALATOR, now, page=True, recipient=config.chain[level]
            )
        )
    return changes
