"""Service: the alerts stage's operations, each one transaction — what the worker, the API and
the scheduler call.

- ``process_patient``: the patient's new findings → changes → pipeline (findings in);
- ``acknowledge`` / ``resolve``: a nurse's actions;
- ``silence`` / ``end_silence``: silences per patient and/or rule, with reason, author, expiry;
- ``housekeeping``: auto-resolution after the hold time, due escalations, ended silences.

Human actions (acknowledge, resolve, silences) also go to the shared ``audit_log``; every change
of an alert is in ``alert_events``; every delivery attempt in ``notification_attempts``.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import psycopg

from homecare.alerts import escalation, lifecycle
from homecare.alerts import repository as repo
from homecare.alerts.config import AlertsConfig
from homecare.alerts.errors import AlertNotFound, InvalidTransition
from homecare.alerts.model import Alert, AlertChange
from homecare.alerts.pipeline import Pipeline
from homecare.rules import load_packs

__all__ = ["AlertService"]


class AlertService:
    """AlertService runs the alerts stage's operations against a connection."""

    def __init__(self, config: AlertsConfig, pipeline: Pipeline | None = None) -> None:
        self.config = config
        self.pipeline = pipeline or Pipeline(config)
        self.reload_rules()

    def reload_rules(self) -> None:
        """reload_rules re-reads which rules allow automatic resolution from the packs."""
        packs = load_packs(self.config.packs_dir)
        self.auto_resolve = {
            rule.id: bool(rule.auto_resolve) for pack in packs.packs.values() for rule in pack.rules
        }

    def process_patient(
        self, conn: psycopg.Connection[Any], patient_id: uuid.UUID
    ) -> list[AlertChange] | None:
        """process_patient applies the patient's announced findings; None if another process
        holds the patient (it is applying them) or nothing is pending."""
        now = self.config.clock()
        with conn.transaction():
            version = repo.claim_inbox(conn, patient_id)
            if version is None:
                return None
            changes = lifecycle.apply_findings(conn, patient_id, now)
            done = self.pipeline.run(conn, changes, now)
            repo.release_inbox(conn, patient_id, version)
        return done

    def acknowledge(self, conn: psycopg.Connection[Any], alert_id: int, actor: str) -> Alert:
        """acknowledge: ``actor`` takes the alert; its escalation stops."""
        now = self.config.clock()
        with conn.transaction():
            change = lifecycle.acknowledge(conn, alert_id, _actor(actor), now)
            return self.pipeline.run(conn, [change], now)[0].alert

    def resolve(
        self,
        conn: psycopg.Connection[Any],
        alert_id: int,
        actor: str,
        outcome: str,
        note: str | None = None,
    ) -> Alert:
        """resolve: ``actor`` closes the alert with an ``outcome`` (``alerts.OUTCOMES``)."""
        now = self.config.clock()
        with conn.transaction():
            change = lifecycle.resolve(conn, alert_id, _actor(actor), outcome, now, note)
            return self.pipeline.run(conn, [change], now)[0].alert

    def silence(
        self,
        conn: psycopg.Connection[Any],
        *,
        actor: str,
        reason: str,
        duration: timedelta,
        patient_id: uuid.UUID | None = None,
        rule_id: str | None = None,
    ) -> int:
        """silence mutes (patient and/or rule) for ``duration`` from now; returns its id.

        Matching unresolved alerts are muted at once (and stop escalating); new ones are
        recorded but not paged until the silence ends.
        """
        if patient_id is None and rule_id is None:
            raise InvalidTransition("a silence needs a patient, a rule, or both")
        if not reason.strip():
            raise InvalidTransition("a silence needs a reason")
        if duration <= timedelta(0):
            raise InvalidTransition("a silence needs a positive duration")
        now = self.config.clock()
        with conn.transaction():
            row = conn.execute(
                "INSERT INTO silences (patient_id, rule_id, reason, created_by, created_at,"
                " starts_at, ends_at) VALUES (%s, %s, %s, %s, %s, %s, %s) RETURNING id",
                (patient_id, rule_id, reason, _actor(actor), now, now, now + duration),
            ).fetchone()
            assert row is not None
            silence_id = int(row[0])
            repo.audit(
                conn,
                actor,
                "silence.create",
                f"silence/{silence_id}",
                {
                    "patient_id": str(patient_id) if patient_id else None,
                    "rule_id": rule_id,
                    "reason": reason,
                    "ends_at": (now + duration).isoformat(),
                },
            )
            muted = []
            for alert in _matching_unresolved(conn, patient_id, rule_id):
                if alert.suppressed_by is None:
                    reason_text = f"silence:{silence_id}"
                    held = repo.update_alert(
                        conn, alert.id, suppressed_by=reason_text, escalate_at=None
                    )
                    muted.append(
                        AlertChange("suppressed", held, actor, now, suppressed_by=reason_text)
                    )
            self.pipeline.run(conn, muted, now)
        return silence_id

    def end_silence(self, conn: psycopg.Connection[Any], silence_id: int, actor: str) -> None:
        """end_silence ends a silence now (kept, with who ended it); its alerts page again."""
        now = self.config.clock()
        with conn.transaction():
            cur = conn.execute(
                "UPDATE silences SET ends_at = %s, ended_by = %s WHERE id = %s AND ends_at > %s",
                (now, _actor(actor), silence_id, now),
            )
            if cur.rowcount == 0:
                raise AlertNotFound(f"no silence {silence_id} in force")
            repo.audit(conn, actor, "silence.end", f"silence/{silence_id}", {})
            self.pipeline.lift_expired(conn, now)

    def housekeeping(self, conn: psycopg.Connection[Any]) -> dict[str, int]:
        """housekeeping resolves alerts clear for the hold time, escalates due ones and lets go
        alerts whose silence ended; safe to run in several processes at once."""
        now = self.config.clock()
        counts: dict[str, int] = {}
        with conn.transaction():
            resolved = lifecycle.auto_resolve_due(
                conn,
                self.auto_resolve,
                self.config.auto_resolve_severities,
                now - self.config.hold,
                now,
            )
            counts["auto_resolved"] = len(self.pipeline.run(conn, resolved, now))
        with conn.transaction():
            escalated = escalation.claim_due(conn, self.config, now)
            counts["escalated"] = len(self.pipeline.run(conn, escalated, now))
        with conn.transaction():
            counts["unsilenced"] = len(self.pipeline.lift_expired(conn, now))
        return counts


def _actor(actor: str) -> str:
    if not actor.strip():
        raise InvalidTransition("an action needs an actor")
    return actor


def _matching_unresolved(
    conn: psycopg.Connection[Any], patient_id: uuid.UUID | None, rule_id: str | None
) -> list[Alert]:
    rows = conn.execute(
        f"SELECT {repo.ALERT_COLUMNS} FROM alerts WHERE status <> 'resolved'"
        " AND (%s::uuid IS NULL OR patient_id = %s) AND (%s::text IS NULL OR rule_id = %s)"
        " ORDER BY id FOR UPDATE",
        (patient_id, patient_id, rule_id, rule_id),
    ).fetchall()
    return [Alert(*row) for row in rows]
