"""Queries: what the dashboard reads beyond the API's own queries, each scoped in SQL.

The queue, an alert's visibility, notes and silences are read with the API's queries
(``api.queries.alerts``), so the dashboard and ``GET /api/v1/alerts`` share one ordering and one
care-team filter. What is here is what only the pages need: the patient header with the care
team's time zone, the patient's alert history, notes of many alerts at once, the time zones of
the user's teams, and the user's language. ``teams`` is ``api.scope.patient_teams(principal)``;
a patient of another team is simply not found (the page answers 404, as the API does).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import psycopg

from homecare.alerts import Alert
from homecare.alerts.repository import ALERT_COLUMNS

__all__ = [
    "NoteRow",
    "PatientRow",
    "notes_for",
    "patient",
    "patient_alerts",
    "set_locale",
    "team_zones",
]

_URGENCY = (
    "CASE a.severity WHEN 'critical' THEN 3 WHEN 'high' THEN 2 WHEN 'medium' THEN 1 ELSE 0 END"
    " DESC, coalesce(a.news2, 0) DESC, a.opened_at, a.id"
)
_A_COLUMNS = ", ".join(f"a.{c.strip()}" for c in ALERT_COLUMNS.split(","))


@dataclass(frozen=True)
class PatientRow:
    """PatientRow: what the patient page's header shows."""

    id: uuid.UUID
    display_name: str
    birth_date: date | None
    programs: list[str]
    care_team: str | None
    hypercapnic: bool
    time_zone: str | None


@dataclass(frozen=True)
class NoteRow:
    """NoteRow: a nurse's note on an alert."""

    alert_id: int
    author: str
    body: str
    created_at: datetime


def patient(
    conn: psycopg.Connection[Any], patient_id: uuid.UUID, teams: list[str] | None
) -> PatientRow | None:
    """patient is the patient if the teams see it (None: not found, or another team's)."""
    row = conn.execute(
        "SELECT p.id, p.display_name, p.birth_date, p.programs, p.care_team, p.hypercapnic,"
        " ct.time_zone FROM patients p LEFT JOIN care_teams ct ON ct.id = p.care_team"
        " WHERE p.id = %s AND (%s::text[] IS NULL OR p.care_team = ANY(%s))",
        (patient_id, teams, teams),
    ).fetchone()
    return PatientRow(*row) if row else None


def patient_alerts(conn: psycopg.Connection[Any], patient_id: uuid.UUID, limit: int) -> list[Alert]:
    """patient_alerts is the patient's alerts, unresolved first (most urgent first), then the
    resolved ones newest first (call after ``patient`` has checked the scope)."""
    rows = conn.execute(
        f"SELECT {_A_COLUMNS} FROM alerts a WHERE a.patient_id = %s"
        f" ORDER BY (a.status = 'resolved'), CASE WHEN a.status = 'resolved' THEN a.resolved_at"
        f" END DESC, {_URGENCY} LIMIT %s",
        (patient_id, limit),
    ).fetchall()
    return [Alert(*r) for r in rows]


def notes_for(conn: psycopg.Connection[Any], alert_ids: Sequence[int]) -> dict[int, list[NoteRow]]:
    """notes_for is the notes of each alert, oldest first."""
    rows = conn.execute(
        "SELECT alert_id, author, body, created_at FROM alert_notes"
        " WHERE alert_id = ANY(%s) ORDER BY alert_id, id",
        (list(alert_ids),),
    ).fetchall()
    notes: dict[int, list[NoteRow]] = {}
    for row in rows:
        notes.setdefault(row[0], []).append(NoteRow(*row))
    return notes


def set_locale(conn: psycopg.Connection[Any], user_id: uuid.UUID, locale: str) -> None:
    """set_locale remembers the user's language."""
    conn.execute("UPDATE users SET locale = %s WHERE id = %s", (locale, user_id))


def team_zones(conn: psycopg.Connection[Any], teams: Sequence[str]) -> set[str]:
    """team_zones is the set of time zones of ``teams``."""
    rows = conn.execute(
        "SELECT DISTINCT time_zone FROM care_teams WHERE id = ANY(%s)", (list(teams),)
    ).fetchall()
    return {r[0] for r in rows}
