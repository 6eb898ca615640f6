"""Alerts: the triage queue and an alert's history, scoped to the caller's care teams.

The queue's order is ``alerts.urgency_key`` in SQL: severity, then NEWS2, then age (oldest
first), then id — and the keyset cursor is that same tuple, so a page boundary never splits or
repeats an alert. The alerts stage owns these tables; the API reads them here (the stage's
``list_alerts`` has no care-team scope and no cursor) and changes them only through
``alerts.AlertService``. ``alert_notes`` is the API's own table.
"""

from __future__ import annotations

import dataclasses
import uuid
from datetime import datetime
from typing import Any

import psycopg

from homecare.alerts import Alert
from homecare.api.queries.row import Row

__all__ = [
    "EventRow",
    "NoteRow",
    "QueueKey",
    "SilenceRow",
    "add_note",
    "alert_patient",
    "events",
    "get_alert",
    "notes",
    "queue",
    "silence_patient",
    "silences",
]

_COLUMNS = ", ".join(f"a.{f.name}" for f in dataclasses.fields(Alert))
_RANK = "CASE a.severity WHEN 'critical' THEN 3 WHEN 'high' THEN 2 WHEN 'medium' THEN 1 ELSE 0 END"
_TEAMS = "(%(teams)s::text[] IS NULL OR p.care_team = ANY(%(teams)s))"

QueueKey = tuple[int, int, datetime, int]


class EventRow(Row):
    """EventRow: one change of an alert, by whom and when."""

    id: int
    at: datetime
    actor: str
    kind: str
    detail: dict[str, Any]


class NoteRow(Row):
    """NoteRow: a note a clinician wrote on an alert."""

    id: int
    alert_id: int
    author: str
    body: str
    created_at: datetime


class SilenceRow(Row):
    """SilenceRow: a silence (patient and/or rule), its reason, author and span."""

    id: int
    patient_id: uuid.UUID | None
    rule_id: str | None
    reason: str
    created_by: str
    created_at: datetime
    starts_at: datetime
    ends_at: datetime
    ended_by: str | None


def queue_key(alert: Alert) -> QueueKey:
    """queue_key is the alert's place in the queue as the cursor stores it (ascending)."""
    rank = {"low": 0, "medium": 1, "high": 2, "critical": 3}[alert.severity]
    return (-rank, -(alert.news2 or 0), alert.opened_at, alert.id)


def queue(
    conn: psycopg.Connection[Any],
    teams: list[str] | None,
    *,
    statuses: list[str] | None,
    severities: list[str] | None,
    patient_id: uuid.UUID | None,
    since: datetime | None,
    after: QueueKey | None,
    limit: int,
) -> list[tuple[Alert, str]]:
    """queue lists alerts most urgent first, with the patient's display name."""
    k1, k2, k3, k4 = after if after else (None, None, None, None)
    rows = conn.execute(
        f"SELECT {_COLUMNS}, p.display_name FROM alerts a JOIN patients p ON p.id = a.patient_id"
        f" WHERE {_TEAMS}"
        " AND (%(statuses)s::text[] IS NULL OR a.status = ANY(%(statuses)s))"
        " AND (%(severities)s::text[] IS NULL OR a.severity = ANY(%(severities)s))"
        " AND (%(patient)s::uuid IS NULL OR a.patient_id = %(patient)s)"
        " AND (%(since)s::timestamptz IS NULL OR a.opened_at >= %(since)s)"
        f" AND (%(k1)s::int IS NULL OR (-{_RANK}, -coalesce(a.news2, 0), a.opened_at, a.id)"
        " > (%(k1)s, %(k2)s::int, %(k3)s::timestamptz, %(k4)s::bigint))"
        f" ORDER BY -{_RANK}, -coalesce(a.news2, 0), a.opened_at, a.id LIMIT %(limit)s",
        {
            "teams": teams,
            "statuses": statuses,
            "severities": severities,
            "patient": patient_id,
            "since": since,
            "k1": k1,
            "k2": k2,
            "k3": k3,
            "k4": k4,
            "limit": limit,
        },
    ).fetchall()
    return [(Alert(*r[:-1]), r[-1]) for r in rows]


def get_alert(
    conn: psycopg.Connection[Any], alert_id: int, teams: list[str] | None
) -> tuple[Alert, str] | None:
    """get_alert is the alert (and patient name) if its patient is in ``teams``."""
    row = conn.execute(
        f"SELECT {_COLUMNS}, p.display_name FROM alerts a JOIN patients p ON p.id = a.patient_id"
        f" WHERE a.id = %(id)s AND {_TEAMS}",
        {"id": alert_id, "teams": teams},
    ).fetchone()
    return (Alert(*row[:-1]), row[-1]) if row else None


def alert_patient(
    conn: psycopg.Connection[Any], alert_id: int, teams: list[str] | None
) -> uuid.UUID | None:
    """alert_patient is the alert's patient if visible to ``teams``."""
    row = conn.execute(
        "SELECT a.patient_id FROM alerts a JOIN patients p ON p.id = a.patient_id"
        f" WHERE a.id = %(id)s AND {_TEAMS}",
        {"id": alert_id, "teams": teams},
    ).fetchone()
    return row[0] if row else None


def events(
    conn: psycopg.Connection[Any], alert_id: int, *, after: int | None, limit: int
) -> list[EventRow]:
    """events lists the alert's changes in order."""
    rows = conn.execute(
        "SELECT id, at, actor, kind, detail FROM alert_events WHERE alert_id = %s"
        " AND (%s::bigint IS NULL OR id > %s) ORDER BY id LIMIT %s",
        (alert_id, after, after, limit),
    ).fetchall()
    return [EventRow.from_record(r) for r in rows]


def notes(
    conn: psycopg.Connection[Any], alert_id: int, *, after: int | None, limit: int
) -> list[NoteRow]:
    """notes lists the alert's notes in order."""
    rows = conn.execute(
        "SELECT id, alert_id, author, body, created_at FROM alert_notes WHERE alert_id = %s"
        " AND (%s::bigint IS NULL OR id > %s) ORDER BY id LIMIT %s",
        (alert_id, after, after, limit),
    ).fetchall()
    return [NoteRow.from_record(r) for r in rows]


def add_note(
    conn: psycopg.Connection[Any], alert_id: int, author: str, body: str, at: datetime
) -> NoteRow:
    """add_note writes a note on the alert."""
    row = conn.execute(
        "INSERT INTO alert_notes (alert_id, author, body, created_at) VALUES (%s, %s, %s, %s)"
        " RETURNING id, alert_id, author, body, created_at",
        (alert_id, author, body, at),
    ).fetchone()
    assert row is not None
    return NoteRow.from_record(row)


_SILENCE = (
    "SELECT s.id, s.patient_id, s.rule_id, s.reason, s.created_by, s.created_at, s.starts_at,"
    " s.ends_at, s.ended_by FROM silences s JOIN patients p ON p.id = s.patient_id"
)


def silences(
    conn: psycopg.Connection[Any],
    teams: list[str] | None,
    *,
    patient_id: uuid.UUID | None,
    active_at: datetime | None,
    after: int | None,
    limit: int,
) -> list[SilenceRow]:
    """silences lists patient silences visible to ``teams``, newest first (``active_at``: only
    those in force then)."""
    rows = conn.execute(
        _SILENCE + f" WHERE {_TEAMS}"
        " AND (%(patient)s::uuid IS NULL OR s.patient_id = %(patient)s)"
        " AND (%(at)s::timestamptz IS NULL OR (s.starts_at <= %(at)s AND s.ends_at > %(at)s))"
        " AND (%(after)s::bigint IS NULL OR s.id < %(after)s)"
        " ORDER BY s.id DESC LIMIT %(limit)s",
        {
            "teams": teams,
            "patient": patient_id,
            "at": active_at,
            "after": after,
            "limit": limit,
        },
    ).fetchall()
    return [SilenceRow.from_record(r) for r in rows]


def silence_patient(
    conn: psycopg.Connection[Any], silence_id: int, teams: list[str] | None
) -> SilenceRow | None:
    """silence_patient is the silence if its patient is visible to ``teams``."""
    row = conn.execute(
        _SILENCE + f" WHERE s.id = %(id)s AND {_TEAMS}", {"id": silence_id, "teams": teams}
    ).fetchone()
    return SilenceRow.from_record(row) if row else None
