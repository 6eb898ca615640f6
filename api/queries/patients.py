"""Patients: enrolment records, scoped by care team in every query (see ``api.scope``)."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

import psycopg

from homecare.api.queries.row import Row

__all__ = ["PatientRow", "care_team_exists", "get_patient", "list_patients", "update_patient"]

_COLUMNS = "id, display_name, birth_date, programs, care_team, hypercapnic, created_at"


class PatientRow(Row):
    """PatientRow is one ``patients`` row."""

    id: uuid.UUID
    display_name: str
    birth_date: date | None
    programs: list[str]
    care_team: str | None
    hypercapnic: bool
    created_at: datetime


def get_patient(
    conn: psycopg.Connection[Any], patient_id: uuid.UUID, teams: list[str] | None
) -> PatientRow | None:
    """get_patient is the patient if it exists and is in ``teams`` (None: any team)."""
    row = conn.execute(
        f"SELECT {_COLUMNS} FROM patients WHERE id = %s"
        " AND (%s::text[] IS NULL OR care_team = ANY(%s))",
        (patient_id, teams, teams),
    ).fetchone()
    return PatientRow.from_record(row) if row else None


def list_patients(
    conn: psycopg.Connection[Any],
    teams: list[str] | None,
    *,
    program: str | None,
    care_team: str | None,
    after: tuple[str, uuid.UUID] | None,
    limit: int,
) -> list[PatientRow]:
    """list_patients lists patients by name then id, after the keyset ``after``."""
    name, last_id = after if after else (None, None)
    rows = conn.execute(
        f"SELECT {_COLUMNS} FROM patients"
        " WHERE (%(teams)s::text[] IS NULL OR care_team = ANY(%(teams)s))"
        " AND (%(program)s::text IS NULL OR %(program)s = ANY(programs))"
        " AND (%(team)s::text IS NULL OR care_team = %(team)s)"
        " AND (%(name)s::text IS NULL OR (display_name, id) > (%(name)s, %(id)s::uuid))"
        " ORDER BY display_name, id LIMIT %(limit)s",
        {
            "teams": teams,
            "program": program,
            "team": care_team,
            "name": name,
            "id": last_id,
            "limit": limit,
        },
    ).fetchall()
    return [PatientRow.from_record(r) for r in rows]


def update_patient(
    conn: psycopg.Connection[Any], patient_id: uuid.UUID, changes: dict[str, Any]
) -> PatientRow:
    """update_patient sets the given columns (names checked by the caller's schema)."""
    allowed = {"display_name", "birth_date", "programs", "care_team", "hypercapnic"}
    assert set(changes) <= allowed
    assignments = ", ".join(f"{column} = %({column})s" for column in changes)
    row = conn.execute(
        f"UPDATE patients SET {assignments} WHERE id = %(id)s RETURNING {_COLUMNS}",
        {**changes, "id": patient_id},
    ).fetchone()
    assert row is not None
    return PatientRow.from_record(row)


def care_team_exists(conn: psycopg.Connection[Any], team: str) -> bool:
    """care_team_exists: the team is one the API knows (``care_teams``)."""
    return conn.execute("SELECT 1 FROM care_teams WHERE id = %s", (team,)).fetchone() is not None


def threshold_history(
    conn: psycopg.Connection[Any],
    patient_id: uuid.UUID,
    *,
    after: tuple[str, datetime] | None,
    limit: int,
) -> list[tuple[str, float | None, str, str, datetime, datetime | None]]:
    """threshold_history lists the patient's overrides (rule, value, reason, by, from, to)."""
    rule, valid_from = after if after else (None, None)
    rows = conn.execute(
        "SELECT rule_id, value, reason, set_by, valid_from, valid_to FROM threshold_overrides"
        " WHERE patient_id = %(p)s"
        " AND (%(rule)s::text IS NULL OR (rule_id, valid_from) > (%(rule)s, %(from)s::timestamptz))"
        " ORDER BY rule_id, valid_from LIMIT %(limit)s",
        {"p": patient_id, "rule": rule, "from": valid_from, "limit": limit},
    ).fetchall()
    return [tuple(r) for r in rows]
