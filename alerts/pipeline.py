"""Pipeline: the alerts stages assembled in one place — dedup → inhibit → silence → escalate →
notify → record.

De-duplication happens where changes are born (``alerts.lifecycle``: one unresolved alert per
fingerprint). Every change then runs through the same stages, in the caller's transaction:

1. **suppress** (inhibit, silence, late, flapping): a page a suppressor has a reason against is
   not sent; lasting reasons are kept on the alert (``suppressed_by``) and stop its escalation;
2. **escalate**: a page that goes out starts the acknowledgement timer (``alerts.escalation``);
3. **inhibit others**: an alert that became an active inhibitor mutes the alerts it explains;
   one that stopped being one (resolved, cleared) lets them go — those follow-up changes run
   through the pipeline in their turn;
4. **notify**: to the live stream, and to routes when it pages (``alerts.outbox``);
5. **record**: one ``alert_events`` row per change, with the actor, time and reasons.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any

import psycopg

from homecare.alerts import escalation, outbox
from homecare.alerts import repository as repo
from homecare.alerts.config import AlertsConfig
from homecare.alerts.model import Alert, AlertChange
from homecare.alerts.suppress import (
    LASTING,
    FlappingSuppressor,
    InhibitionSuppressor,
    LateSuppressor,
    SilenceSuppressor,
    Suppressor,
    inhibitor,
    reason_still_holds,
)

__all__ = ["Pipeline"]

# Changes the suppressors judge; an escalation was judged when the alert was first paged.
_JUDGED = frozenset({"opened", "refired", "unsuppressed"})


class Pipeline:
    """Pipeline runs alert changes through the stages (see the module docstring)."""

    def __init__(self, config: AlertsConfig, suppressors: tuple[Suppressor, ...] | None = None):
        self.config = config
        self.suppressors: tuple[Suppressor, ...] = suppressors or (
            InhibitionSuppressor(config.inhibitions),
            SilenceSuppressor(),
            LateSuppressor(),
            FlappingSuppressor(config.flap_window),
        )

    def run(
        self, conn: psycopg.Connection[Any], changes: list[AlertChange], now: datetime
    ) -> list[AlertChange]:
        """run passes each change (and the follow-ups it causes) through every stage."""
        done: list[AlertChange] = []
        queue = list(changes)
        while queue:
            change = self._suppress(conn, queue.pop(0))
            change = escalation.schedule(conn, self.config, change)
            queue.extend(self._inhibit_others(conn, change, now))
            outbox.announce(conn, change)
            outbox.enqueue_pages(conn, self.config, change, now)
            _record(conn, change)
            done.append(change)
        return done

    def _suppress(self, conn: psycopg.Connection[Any], change: AlertChange) -> AlertChange:
        if not change.page or change.kind not in _JUDGED:
            return change
        for suppressor in self.suppressors:
            reason = suppressor.reason(conn, change)
            if reason is None:
                continue
            alert = change.alert
            if reason.startswith(LASTING):
                alert = repo.update_alert(conn, alert.id, suppressed_by=reason, escalate_at=None)
            return replace(change, alert=alert, page=False, suppressed_by=reason)
        return change

    def _inhibit_others(
        self, conn: psycopg.Connection[Any], change: AlertChange, now: datetime
    ) -> list[AlertChange]:
        alert = change.alert
        rules = self.config.inhibitions
        if not any(fnmatch_source(r.source, alert.rule_id) for r in rules):
            return []
        follow: list[AlertChange] = []
        is_source = (
            alert.status != "resolved"
            and alert.condition == "active"
            and not (alert.suppressed_by or "").startswith("inhibited:")
        )
        for other in repo.unresolved(conn, alert.patient_id):
            if other.id == alert.id:
                continue
            muted_by_me = other.suppressed_by == f"inhibited:{alert.id}"
            if is_source and other.suppressed_by is None:
                if any(r.mutes(alert.rule_id, other.rule_id) for r in rules):
                    muted = repo.update_alert(
                        conn, other.id, suppressed_by=f"inhibited:{alert.id}", escalate_at=None
                    )
                    follow.append(
                        AlertChange(
                            "suppressed",
                            muted,
                            change.actor,
                            now,
                            suppressed_by=muted.suppressed_by,
                        )
                    )
            elif not is_source and muted_by_me:
                follow.append(self._lift(conn, other.id, now))
        return follow

    def _lift(self, conn: psycopg.Connection[Any], alert_id: int, now: datetime) -> AlertChange:
        alert = repo.update_alert(conn, alert_id, suppressed_by=None)
        source = inhibitor(conn, self.config.inhibitions, alert.patient_id, alert.rule_id)
        if source is not None:
            alert = repo.update_alert(conn, alert_id, suppressed_by=f"inhibited:{source}")
            return AlertChange(
                "suppressed", alert, "system:alerts", now, suppressed_by=alert.suppressed_by
            )
        page = alert.status == "open" and alert.condition == "active"
        return AlertChange("unsuppressed", alert, "system:alerts", now, page=page)

    def lift_expired(self, conn: psycopg.Connection[Any], now: datetime) -> list[AlertChange]:
        """lift_expired lets go alerts whose silence ended (expired or was ended early)."""
        rows = conn.execute(
            f"SELECT {repo.ALERT_COLUMNS} FROM alerts WHERE status <> 'resolved'"
            " AND suppressed_by LIKE 'silence:%%' FOR UPDATE SKIP LOCKED"
        ).fetchall()
        changes = []
        for row in rows:
            alert = Alert(*row)
            held = alert.suppressed_by or ""
            if not reason_still_holds(
                conn, self.config.inhibitions, held, alert.patient_id, alert.rule_id, now
            ):
                changes.append(self._lift(conn, alert.id, now))
        return self.run(conn, changes, now) if changes else []


def fnmatch_source(pattern: str, rule_id: str) -> bool:
    """fnmatch_source says whether ``rule_id`` matches an inhibition's source pattern."""
    import fnmatch

    return fnmatch.fnmatchcase(rule_id, pattern)


def _record(conn: psycopg.Connection[Any], change: AlertChange) -> None:
    alert = change.alert
    detail: dict[str, Any] = {
        "status": alert.status,
        "condition": alert.condition,
        "finding_id": alert.finding_id,
        "paged": change.page,
    }
    if change.suppressed_by:
        detail["suppressed_by"] = change.suppressed_by
    if change.recipient:
        detail["recipient"] = change.recipient
    if change.kind == "escalated":
        detail["level"] = alert.escalation_level
    if change.kind == "resolved":
        detail["outcome"] = alert.outcome
        detail["note"] = alert.resolution_note
    repo.add_event(conn, alert.id, change.at, change.actor, change.kind, detail)
