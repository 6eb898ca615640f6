"""Repository: the rules stage's queries — what it reads to evaluate, and how it records findings.

Readings are read-only here (the ingest owns them); findings, progress, overrides and the
``reading_changes`` outbox rows it consumes are this stage's own.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from homecare.ingest import Reading
from homecare.rules.evaluate import PatientContext
from homecare.rules.model import Finding

__all__ = [
    "claim_change",
    "current_findings",
    "evaluations",
    "initial_states",
    "load_context",
    "load_readings",
    "pending_patients",
    "reconcile",
    "set_override",
]

_FINDING_COLUMNS = (
    "patient_id, rule_id, state, severity, evidence_time, received_at, late, summary, evidence,"
    " pack, pack_version"
)


def pending_patients(conn: psycopg.Connection[Any], limit: int) -> list[uuid.UUID]:
    """pending_patients lists patients with unevaluated readings, oldest announcement first."""
    rows = conn.execute(
        "SELECT patient_id FROM reading_changes ORDER BY noted_at LIMIT %s", (limit,)
    ).fetchall()
    return [row[0] for row in rows]


def claim_change(
    conn: psycopg.Connection[Any], patient_id: uuid.UUID
) -> tuple[datetime, int] | None:
    """claim_change locks the patient for this transaction and reads its pending change.

    None when another worker holds the patient (it will evaluate it) or nothing is pending.
    """
    locked = conn.execute(
        "SELECT pg_try_advisory_xact_lock(hashtextextended(%s, 7))", (str(patient_id),)
    ).fetchone()
    if not locked or not locked[0]:
        return None
    row = conn.execute(
        "SELECT earliest_time, version FROM reading_changes WHERE patient_id = %s",
        (patient_id,),
    ).fetchone()
    return (row[0], row[1]) if row else None


def release_change(conn: psycopg.Connection[Any], patient_id: uuid.UUID, version: int) -> None:
    """release_change removes the announcement unless newer readings arrived meanwhile."""
    conn.execute(
        "DELETE FROM reading_changes WHERE patient_id = %s AND version = %s",
        (patient_id, version),
    )


def load_context(conn: psycopg.Connection[Any], patient_id: uuid.UUID) -> PatientContext | None:
    """load_context reads programs, the hypercapnic flag and threshold overrides."""
    row = conn.execute(
        "SELECT programs, hypercapnic FROM patients WHERE id = %s", (patient_id,)
    ).fetchone()
    if row is None:
        return None
    overrides: dict[str, list[tuple[datetime, float | None]]] = {}
    for rule_id, valid_from, value in conn.execute(
        "SELECT rule_id, valid_from, value FROM threshold_overrides WHERE patient_id = %s"
        " ORDER BY rule_id, valid_from",
        (patient_id,),
    ):
        overrides.setdefault(rule_id, []).append((valid_from, value))
    return PatientContext(patient_id, tuple(row[0]), bool(row[1]), overrides)


def load_readings(
    conn: psycopg.Connection[Any], patient_id: uuid.UUID, since: datetime, until: datetime
) -> list[Reading]:
    """load_readings returns the patient's readings with since <= time <= until."""
    rows = conn.execute(
        "SELECT patient_id, device_id, msg_id, type, time, value, unit, original_value,"
        " original_unit, received_at, on_oxygen, consciousness FROM readings"
        " WHERE patient_id = %s AND time >= %s AND time <= %s ORDER BY time",
        (patient_id, since, until),
    ).fetchall()
    return [Reading(*row) for row in rows]


def initial_states(
    conn: psycopg.Connection[Any], patient_id: uuid.UUID, before: datetime
) -> dict[str, bool]:
    """initial_states gives each rule's state just before ``before`` from the stored findings."""
    rows = conn.execute(
        "SELECT DISTINCT ON (rule_id) rule_id, state FROM findings"
        " WHERE patient_id = %s AND evidence_time < %s AND retracted_at IS NULL"
        " ORDER BY rule_id, evidence_time DESC, state",
        (patient_id, before),
    ).fetchall()
    return {rule_id: state == "active" for rule_id, state in rows}


def current_findings(
    conn: psycopg.Connection[Any],
    patient_id: uuid.UUID | None,
    since: datetime,
    until: datetime,
) -> list[Finding]:
    """current_findings lists the non-retracted findings in [since, until]."""
    rows = conn.execute(
        f"SELECT {_FINDING_COLUMNS} FROM findings WHERE retracted_at IS NULL"
        " AND evidence_time >= %s AND evidence_time <= %s"
        " AND (%s::uuid IS NULL OR patient_id = %s)"
        " ORDER BY patient_id, evidence_time, rule_id, state",
        (since, until, patient_id, patient_id),
    ).fetchall()
    return [Finding(*row) for row in rows]


def reconcile(
    conn: psycopg.Connection[Any],
    patient_id: uuid.UUID,
    since: datetime,
    until: datetime,
    findings: Sequence[Finding],
) -> tuple[int, int]:
    """reconcile makes the stored findings in [since, until] equal ``findings``.

    Returns (inserted, retracted). Findings already stored are left alone, so evaluating the
    same readings twice — a redelivery, a second worker, a replay — changes nothing.
    """
    stored = {f.key: f for f in current_findings(conn, patient_id, since, until)}
    wanted = {f.key: f for f in findings}
    stale = [key for key in stored if key not in wanted]
    new = [f for key, f in wanted.items() if key not in stored]
    for _, rule_id, evidence_time, state in stale:
        conn.execute(
            "UPDATE findings SET retracted_at = now() WHERE patient_id = %s AND rule_id = %s"
            " AND evidence_time = %s AND state = %s AND retracted_at IS NULL",
            (patient_id, rule_id, evidence_time, state),
        )
    if new:
        with conn.cursor() as cur:
            cur.executemany(
                f"INSERT INTO findings ({_FINDING_COLUMNS})"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                [(*f[:8], Jsonb(f.evidence), f.pack, f.pack_version) for f in new],
            )
    return len(new), len(stale)


def set_progress(conn: psycopg.Connection[Any], patient_id: uuid.UUID, until: datetime) -> int:
    """set_progress records that the patient is evaluated up to ``until``; returns how many
    evaluations the patient has had, this one included."""
    row = conn.execute(
        "INSERT INTO rule_progress (patient_id, evaluated_until, evaluations) VALUES (%s, %s, 1)"
        " ON CONFLICT (patient_id) DO UPDATE SET evaluated_until ="
        " greatest(rule_progress.evaluated_until, EXCLUDED.evaluated_until),"
        " evaluations = rule_progress.evaluations + 1"
        " RETURNING evaluations",
        (patient_id, until),
    ).fetchone()
    return int(row[0]) if row else 0


def evaluations(conn: psycopg.Connection[Any], patient_id: uuid.UUID) -> int:
    """evaluations is how many times the patient has been evaluated (0 if never)."""
    row = conn.execute(
        "SELECT evaluations FROM rule_progress WHERE patient_id = %s", (patient_id,)
    ).fetchone()
    return int(row[0]) if row else 0


def enqueue_stale(conn: psycopg.Connection[Any], older_than: datetime) -> int:
    """enqueue_stale announces patients not evaluated since ``older_than`` (missing-data ticks)."""
    cur = conn.execute(
        "INSERT INTO reading_changes (patient_id, earliest_time)"
        " SELECT patient_id, evaluated_until FROM rule_progress WHERE evaluated_until < %s"
        " ON CONFLICT (patient_id) DO NOTHING",
        (older_than,),
    )
    return cur.rowcount


def set_override(
    conn: psycopg.Connection[Any],
    patient_id: uuid.UUID,
    rule_id: str,
    value: float | None,
    *,
    actor: str,
    reason: str,
    at: datetime,
) -> None:
    """set_override puts ``value`` (None: the pack's own) in force for the patient from ``at``,
    closes the previous interval, records it in the audit log, and asks for re-evaluation
    from ``at`` so current findings follow the new threshold at once."""
    with conn.transaction():
        before = conn.execute(
            "UPDATE threshold_overrides SET valid_to = %s WHERE patient_id = %s AND rule_id = %s"
            " AND valid_to IS NULL RETURNING value",
            (at, patient_id, rule_id),
        ).fetchone()
        conn.execute(
            "INSERT INTO threshold_overrides"
            " (patient_id, rule_id, value, reason, set_by, valid_from)"
            " VALUES (%s, %s, %s, %s, %s, %s)",
            (patient_id, rule_id, value, reason, actor, at),
        )
        conn.execute(
            "INSERT INTO audit_log (actor, action, subject, detail) VALUES (%s, %s, %s, %s)",
            (
                actor,
                "threshold_override.set",
                f"patient/{patient_id}",
                Jsonb(
                    {
                        "rule_id": rule_id,
                        "before": before[0] if before else None,
                        "after": value,
                        "reason": reason,
                        "from": at.isoformat(),
                    }
                ),
            ),
        )
        conn.execute(
            "INSERT INTO reading_changes (patient_id, earliest_time) VALUES (%s, %s)"
            " ON CONFLICT (patient_id) DO UPDATE SET"
            " earliest_time = least(reading_changes.earliest_time, EXCLUDED.earliest_time),"
            " version = reading_changes.version + 1, noted_at = now()",
            (patient_id, at),
        )
