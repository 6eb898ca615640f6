"""Lifecycle: findings and people's actions turn into alert changes — the de-duplication stage.

The fingerprint is (patient, rule): while an alert of a fingerprint is unresolved, new evidence
updates it instead of opening another; once resolved, the next firing opens a new one. The
condition (active / cleared) follows the rule's findings; the handling (open → acknowledged →
resolved) follows people, or the system where the rules allow it:

- a firing (an ``active`` finding) opens an alert, or updates the unresolved one; a re-firing
  after the condition cleared re-opens an acknowledged alert (acknowledging stops repeats only
  until the condition clears and fires again) — unless it flaps (see ``alerts.suppress``);
- a ``cleared`` finding clears the condition; the alert waits for a nurse, or resolves itself
  once clear for the hold time (``auto_resolve_due``) if its rule and severity allow it;
- a retraction (late data changed history) that leaves an unresolved alert with no firing
  that still holds resolves it with outcome ``retracted``; otherwise the condition is re-read
  from the rule's current transition.

Functions here change rows and return ``AlertChange`` values; paging decisions, escalation
timers, notifications and the event records are the pipeline's (``alerts.pipeline``). Every
function runs inside the caller's transaction.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import psycopg

from homecare.alerts import repository as repo
from homecare.alerts.errors import AlertNotFound, InvalidTransition
from homecare.alerts.model import OUTCOMES, Alert, AlertChange
from homecare.alerts.repository import StoredFinding

__all__ = ["acknowledge", "apply_findings", "resolve", "system_resolve"]

SYSTEM = "system:alerts"


def apply_findings(
    conn: psycopg.Connection[Any], patient_id: uuid.UUID, now: datetime
) -> list[AlertChange]:
    """apply_findings consumes the patient's new findings and retractions; returns the changes."""
    findings, _after = repo.new_findings(conn, patient_id)
    changes: list[AlertChange] = []
    live = sorted((f for f in findings if not f.retracted), key=lambda f: (f.evidence_time, f.id))
    for finding in live:
        changes.extend(_apply(conn, patient_id, finding, now))
    for alert in repo.unresolved(conn, patient_id):
        changes.extend(_reconcile(conn, alert, now))
    if findings:
        repo.set_progress(conn, patient_id, max(f.id for f in findings))
    return changes


def _apply(
    conn: psycopg.Connection[Any], patient_id: uuid.UUID, finding: StoredFinding, now: datetime
) -> list[AlertChange]:
    current = repo.unresolved(conn, patient_id, finding.rule_id)
    alert = current[0] if current else None
    if finding.state == "cleared":
        if alert is None or alert.condition == "cleared":
            return []
        if finding.evidence_time < alert.evidence_time:
            return []  # an older transition; _reconcile re-reads the current one
        cleared = repo.update_alert(
            conn, alert.id, condition="cleared", cleared_at=finding.evidence_time, updated_at=now
        )
        return [AlertChange("cleared", cleared, SYSTEM, now)]
    if alert is None:
        if repo.was_alerted(conn, finding.id):
            return []
        opened = repo.insert_alert(conn, patient_id, finding, now)
        if opened is None:  # lost a race for the fingerprint (the unique index decided)
            return _apply(conn, patient_id, finding, now)
        repo.attach_finding(conn, opened.id, finding.id)
        return [AlertChange("opened", opened, SYSTEM, now, page=True)]
    repo.attach_finding(conn, alert.id, finding.id)
    evidence: dict[str, Any] = {
        "finding_id": finding.id,
        "severity": finding.severity,
        "summary": finding.summary,
        "evidence": finding.evidence,
        "evidence_time": finding.evidence_time,
        "updated_at": now,
    }
    score = finding.evidence.get("score")
    if isinstance(score, int):
        evidence["news2"] = score
    if alert.condition == "active":
        return [AlertChange("updated", repo.update_alert(conn, alert.id, **evidence), SYSTEM, now)]
    refired = repo.update_alert(
        conn,
        alert.id,
        condition="active",
        cleared_at=None,
        fired_count=alert.fired_count + 1,
        last_fired_at=now,
        late=finding.late,
        **evidence,
    )
    # Only an acknowledged alert needs a new page: an open one is still waiting (and escalating).
    return [AlertChange("refired", refired, SYSTEM, now, page=alert.status == "acknowledged")]


def _reconcile(conn: psycopg.Connection[Any], alert: Alert, now: datetime) -> list[AlertChange]:
    if repo.live_firings(conn, alert.id) == 0:
        return [system_resolve(conn, alert, "retracted", now, "every firing was retracted")]
    latest = repo.latest_finding(conn, alert.patient_id, alert.rule_id)
    if latest is None or latest.state == alert.condition:
        return []
    if latest.state == "cleared":
        changed = repo.update_alert(
            conn, alert.id, condition="cleared", cleared_at=latest.evidence_time, updated_at=now
        )
        return [AlertChange("cleared", changed, SYSTEM, now)]
    changed = repo.update_alert(conn, alert.id, condition="active", cleared_at=None, updated_at=now)
    return [AlertChange("updated", changed, SYSTEM, now)]


def acknowledge(
    conn: psycopg.Connection[Any], alert_id: int, actor: str, now: datetime
) -> AlertChange:
    """acknowledge: ``actor`` has seen the alert; repeats and escalation stop."""
    alert = _locked(conn, alert_id)
    if alert.status != "open":
        raise InvalidTransition(f"alert {alert_id} is {alert.status}; only an open one is acked")
    changed = repo.update_alert(
        conn,
        alert_id,
        status="acknowledged",
        acknowledged_at=now,
        acknowledged_by=actor,
        escalate_at=None,
        updated_at=now,
    )
    repo.audit(conn, actor, "alert.acknowledge", f"alert/{alert_id}", {})
    return AlertChange("acknowledged", changed, actor, now)


def resolve(
    conn: psycopg.Connection[Any],
    alert_id: int,
    actor: str,
    outcome: str,
    now: datetime,
    note: str | None = None,
) -> AlertChange:
    """resolve: a nurse closes the alert with an outcome (whether or not it was acknowledged,
    and whatever its condition)."""
    if outcome not in OUTCOMES:
        raise InvalidTransition(f"outcome {outcome!r}: one of {', '.join(sorted(OUTCOMES))}")
    alert = _locked(conn, alert_id)
    if alert.status == "resolved":
        raise InvalidTransition(f"alert {alert_id} is already resolved")
    changed = _close(conn, alert, actor, outcome, now, note)
    repo.audit(conn, actor, "alert.resolve", f"alert/{alert_id}", {"outcome": outcome})
    return AlertChange("resolved", changed, actor, now)


def system_resolve(
    conn: psycopg.Connection[Any], alert: Alert, outcome: str, now: datetime, note: str
) -> AlertChange:
    """system_resolve closes an alert without a person (auto-resolution, retraction)."""
    actor = f"system:{outcome}"
    return AlertChange("resolved", _close(conn, alert, actor, outcome, now, note), actor, now)


def _close(
    conn: psycopg.Connection[Any],
    alert: Alert,
    actor: str,
    outcome: str,
    now: datetime,
    note: str | None,
) -> Alert:
    return repo.update_alert(
        conn,
        alert.id,
        status="resolved",
        resolved_at=now,
        resolved_by=actor,
        outcome=outcome,
        resolution_note=note,
        escalate_at=None,
        updated_at=now,
    )


def _locked(conn: psycopg.Connection[Any], alert_id: int) -> Alert:
    try:
        return repo.fetch_alert(conn, alert_id, lock=True)
    except KeyError:
        raise AlertNotFound(f"no alert {alert_id}") from None


def auto_resolve_due(
    conn: psycopg.Connection[Any],
    allowed: dict[str, bool],
    severities: frozenset[str],
    cleared_before: datetime,
    now: datetime,
    limit: int = 100,
) -> list[AlertChange]:
    """auto_resolve_due resolves alerts whose condition has been clear since ``cleared_before``
    and whose rule (``allowed``: rule id → auto_resolve) and severity allow it. Rows another
    process holds are skipped (it is working on them), so two processes resolve each once."""
    rows = conn.execute(
        f"SELECT {repo.ALERT_COLUMNS} FROM alerts WHERE status <> 'resolved'"
        " AND condition = 'cleared' AND cleared_at <= %s AND severity = ANY(%s)"
        " AND rule_id = ANY(%s) ORDER BY cleared_at LIMIT %s FOR UPDATE SKIP LOCKED",
        (cleared_before, list(severities), [r for r, ok in allowed.items() if ok], limit),
    ).fetchall()
    return [
        system_resolve(conn, Alert(*row), "auto_resolved", now, "condition clear for the hold time")
        for row in rows
    ]
