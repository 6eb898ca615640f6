"""Repository: the alerts stage's queries on its own tables, and its read of findings.

Findings are read-only here (the rules stage owns them); alerts, their events and findings,
silences, notifications and the ``alert_inbox`` / ``alert_progress`` cursor are this stage's.
"""

from __future__ import annotations

import dataclasses
import uuid
from datetime import datetime
from typing import Any, NamedTuple

import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb

from homecare.alerts.model import Alert

__all__ = [
    "ALERT_COLUMNS",
    "StoredFinding",
    "add_event",
    "attach_finding",
    "audit",
    "claim_inbox",
    "fetch_alert",
    "insert_alert",
    "latest_finding",
    "list_alerts",
    "live_firings",
    "new_findings",
    "patient_routing",
    "pending_patients",
    "release_inbox",
    "set_progress",
    "unresolved",
    "update_alert",
    "was_alerted",
]

ALERT_COLUMNS = ", ".join(f.name for f in dataclasses.fields(Alert))


class StoredFinding(NamedTuple):
    """StoredFinding is a row of ``findings`` as the alerts stage reads it."""

    id: int
    rule_id: str
    state: str
    severity: str
    evidence_time: datetime
    late: bool
    summary: str
    evidence: dict[str, Any]
    retracted: bool


def pending_patients(conn: psycopg.Connection[Any], limit: int) -> list[uuid.UUID]:
    """pending_patients lists patients whose findings changed, oldest announcement first."""
    rows = conn.execute(
        "SELECT patient_id FROM alert_inbox ORDER BY noted_at LIMIT %s", (limit,)
    ).fetchall()
    return [row[0] for row in rows]


def claim_inbox(conn: psycopg.Connection[Any], patient_id: uuid.UUID) -> int | None:
    """claim_inbox locks the patient for this transaction and returns its announcement's
    version; None when another alerts process holds the patient or nothing is pending."""
    locked = conn.execute(
        "SELECT pg_try_advisory_xact_lock(hashtextextended(%s, 11))", (str(patient_id),)
    ).fetchone()
    if not locked or not locked[0]:
        return None
    row = conn.execute(
        "SELECT version FROM alert_inbox WHERE patient_id = %s", (patient_id,)
    ).fetchone()
    return int(row[0]) if row else None


def release_inbox(conn: psycopg.Connection[Any], patient_id: uuid.UUID, version: int) -> None:
    """release_inbox removes the announcement unless findings changed again meanwhile."""
    conn.execute(
        "DELETE FROM alert_inbox WHERE patient_id = %s AND version = %s", (patient_id, version)
    )


def new_findings(
    conn: psycopg.Connection[Any], patient_id: uuid.UUID
) -> tuple[list[StoredFinding], int]:
    """new_findings returns the patient's findings past its cursor (id order) and the cursor.

    Findings of one patient are written by one rules transaction at a time (the rules stage
    holds an advisory lock per patient), so per patient, id order is commit order and a cursor
    on ids skips nothing.
    """
    row = conn.execute(
        "SELECT last_finding_id FROM alert_progress WHERE patient_id = %s", (patient_id,)
    ).fetchone()
    after = int(row[0]) if row else 0
    rows = conn.execute(
        "SELECT id, rule_id, state, severity, evidence_time, late, summary, evidence,"
        " retracted_at IS NOT NULL FROM findings WHERE patient_id = %s AND id > %s ORDER BY id",
        (patient_id, after),
    ).fetchall()
    return [StoredFinding(*r) for r in rows], after


def set_progress(conn: psycopg.Connection[Any], patient_id: uuid.UUID, last_id: int) -> None:
    """set_progress moves the patient's cursor to ``last_id``."""
    conn.execute(
        "INSERT INTO alert_progress (patient_id, last_finding_id) VALUES (%s, %s)"
        " ON CONFLICT (patient_id) DO UPDATE SET last_finding_id ="
        " greatest(alert_progress.last_finding_id, EXCLUDED.last_finding_id)",
        (patient_id, last_id),
    )


def latest_finding(
    conn: psycopg.Connection[Any], patient_id: uuid.UUID, rule_id: str
) -> StoredFinding | None:
    """latest_finding is the rule's current (non-retracted, latest in event time) transition."""
    row = conn.execute(
        "SELECT id, rule_id, state, severity, evidence_time, late, summary, evidence, false"
        " FROM findings WHERE patient_id = %s AND rule_id = %s AND retracted_at IS NULL"
        " ORDER BY evidence_time DESC, id DESC LIMIT 1",
        (patient_id, rule_id),
    ).fetchone()
    return StoredFinding(*row) if row else None


def live_firings(conn: psycopg.Connection[Any], alert_id: int) -> int:
    """live_firings counts the alert's firing findings that are not retracted."""
    row = conn.execute(
        "SELECT count(*) FROM alert_findings af JOIN findings f ON f.id = af.finding_id"
        " WHERE af.alert_id = %s AND f.retracted_at IS NULL",
        (alert_id,),
    ).fetchone()
    return int(row[0]) if row else 0


def was_alerted(conn: psycopg.Connection[Any], finding_id: int) -> bool:
    """was_alerted says whether the finding already fired some alert."""
    row = conn.execute(
        "SELECT EXISTS (SELECT 1 FROM alert_findings WHERE finding_id = %s)", (finding_id,)
    ).fetchone()
    return bool(row and row[0])


def unresolved(
    conn: psycopg.Connection[Any], patient_id: uuid.UUID, rule_id: str | None = None
) -> list[Alert]:
    """unresolved locks and returns the patient's unresolved alerts (of one rule, if given)."""
    rows = conn.execute(
        f"SELECT {ALERT_COLUMNS} FROM alerts WHERE patient_id = %s AND status <> 'resolved'"
        " AND (%s::text IS NULL OR rule_id = %s) ORDER BY id FOR UPDATE",
        (patient_id, rule_id, rule_id),
    ).fetchall()
    return [Alert(*r) for r in rows]


def fetch_alert(conn: psycopg.Connection[Any], alert_id: int, *, lock: bool = False) -> Alert:
    """fetch_alert reads one alert (locking it with ``lock``); KeyError if there is none."""
    row = conn.execute(
        f"SELECT {ALERT_COLUMNS} FROM alerts WHERE id = %s" + (" FOR UPDATE" if lock else ""),
        (alert_id,),
    ).fetchone()
    if row is None:
        raise KeyError(alert_id)
    return Alert(*row)


def insert_alert(
    conn: psycopg.Connection[Any], patient_id: uuid.UUID, finding: StoredFinding, now: datetime
) -> Alert | None:
    """insert_alert opens an alert for the finding; None if the fingerprint already has one
    (the unique index decides, whatever raced)."""
    news2 = finding.evidence.get("score")
    row = conn.execute(
        f"INSERT INTO alerts (patient_id, rule_id, severity, condition, opened_at, evidence_time,"
        " summary, evidence, news2, late, finding_id, last_fired_at, updated_at)"
        " VALUES (%s, %s, %s, 'active', %s, %s, %s, %s, %s, %s, %s, %s, %s)"
        " ON CONFLICT (patient_id, rule_id) WHERE status <> 'resolved' DO NOTHING"
        f" RETURNING {ALERT_COLUMNS}",
        (
            patient_id,
            finding.rule_id,
            finding.severity,
            now,
            finding.evidence_time,
            finding.summary,
            Jsonb(finding.evidence),
            news2 if isinstance(news2, int) else None,
            finding.late,
            finding.id,
            now,
            now,
        ),
    ).fetchone()
    return Alert(*row) if row else None


def update_alert(conn: psycopg.Connection[Any], alert_id: int, **values: Any) -> Alert:
    """update_alert sets the given columns (and updated_at, when given) and returns the alert."""
    assignments = sql.SQL(", ").join(
        sql.SQL("{} = {}").format(sql.Identifier(k), sql.Placeholder(k)) for k in values
    )
    params = {k: Jsonb(v) if isinstance(v, dict) else v for k, v in values.items()}
    row = conn.execute(
        sql.SQL("UPDATE alerts SET {} WHERE id = {} RETURNING {}").format(
            assignments, sql.Placeholder("_id"), sql.SQL(ALERT_COLUMNS)
        ),
        {**params, "_id": alert_id},
    ).fetchone()
    if row is None:
        raise KeyError(alert_id)
    return Alert(*row)


def attach_finding(conn: psycopg.Connection[Any], alert_id: int, finding_id: int) -> None:
    """attach_finding records that ``finding_id`` fired ``alert_id``."""
    conn.execute(
        "INSERT INTO alert_findings (alert_id, finding_id) VALUES (%s, %s) ON CONFLICT DO NOTHING",
        (alert_id, finding_id),
    )


def add_event(
    conn: psycopg.Connection[Any],
    alert_id: int,
    at: datetime,
    actor: str,
    kind: str,
    detail: dict[str, Any],
) -> None:
    """add_event records one change of an alert."""
    conn.execute(
        "INSERT INTO alert_events (alert_id, at, actor, kind, detail) VALUES (%s, %s, %s, %s, %s)",
        (alert_id, at, actor, kind, Jsonb(detail)),
    )


def audit(
    conn: psycopg.Connection[Any], actor: str, action: str, subject: str, detail: dict[str, Any]
) -> None:
    """audit writes one row of the shared audit log (people's actions on alerts and silences)."""
    conn.execute(
        "INSERT INTO audit_log (actor, action, subject, detail) VALUES (%s, %s, %s, %s)",
        (actor, action, subject, Jsonb(detail)),
    )


def patient_routing(
    conn: psycopg.Connection[Any], patient_id: uuid.UUID
) -> tuple[str | None, tuple[str, ...]]:
    """patient_routing is the patient's care team and programs (what routes match on)."""
    row = conn.execute(
        "SELECT care_team, programs FROM patients WHERE id = %s", (patient_id,)
    ).fetchone()
    return (row[0], tuple(row[1])) if row else (None, ())


def list_alerts(
    conn: psycopg.Connection[Any],
    *,
    status: str | None = None,
    patient_id: uuid.UUID | None = None,
    since: datetime | None = None,
    limit: int = 100,
) -> list[Alert]:
    """list_alerts is the queue, most urgent first: severity, then NEWS2, then age."""
    rows = conn.execute(
        f"SELECT {ALERT_COLUMNS} FROM alerts"
        " WHERE (%(status)s::text IS NULL OR status = %(status)s)"
        " AND (%(patient)s::uuid IS NULL OR patient_id = %(patient)s)"
        " AND (%(since)s::timestamptz IS NULL OR opened_at >= %(since)s)"
        " ORDER BY CASE severity WHEN 'critical' THEN 3 WHEN 'high' THEN 2 WHEN 'medium' THEN 1"
        " ELSE 0 END DESC, coalesce(news2, 0) DESC, opened_at, id LIMIT %(limit)s",
        {"status": status, "patient": patient_id, "since": since, "limit": limit},
    ).fetchall()
    return [Alert(*r) for r in rows]
