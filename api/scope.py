"""Scope: which patients a principal may see — decided per patient, in every query.

- A nurse or physician sees the patients of their care teams, and only those: every list is
  filtered by team in its WHERE clause, and a request naming another team's patient (or its
  alert, silence, readings, …) answers **404 not_found, not 403**, exactly as for an id that
  does not exist — so a clinician cannot learn that a patient exists elsewhere, nor probe ids.
- An administrator sees every patient's enrolment record (to enrol, assign devices, fix
  mistakes), but not their clinical data (readings, alerts, FHIR): that is a role rule, a 403.
- An analyst sees no identified patient at all; the cohort endpoints give de-identified data
  (``api.routes.cohort``).
"""

from __future__ import annotations

import uuid
from typing import Any

import psycopg

from homecare.api.accounts import Principal
from homecare.api.errors import NotFound

__all__ = ["check_patient", "patient_teams"]


def patient_teams(principal: Principal) -> list[str] | None:
    """patient_teams is the care teams whose patients the principal sees (None: all)."""
    if principal.role == "admin":
        return None
    if principal.is_clinician:
        return sorted(principal.care_teams)
    return []


def check_patient(
    conn: psycopg.Connection[Any], principal: Principal, patient_id: uuid.UUID
) -> None:
    """check_patient raises NotFound unless the patient exists and the principal sees it."""
    teams = patient_teams(principal)
    row = conn.execute(
        "SELECT 1 FROM patients WHERE id = %s AND (%s::text[] IS NULL OR care_team = ANY(%s))",
        (patient_id, teams, teams),
    ).fetchone()
    if row is None:
        raise NotFound(f"no patient {patient_id}")
