"""Patients: enrol (admin), list and read (scoped), update, per-patient threshold overrides.

Who may do what:
- create, and change name, birth date, programs or care team: an administrator (enrolment);
- change ``hypercapnic`` (it switches NEWS2 to SpO2 scale 2): the patient's physician, or an
  administrator recording a referral;
- read: the patient's care team (nurses, physicians) and administrators; an analyst never sees
  an identified patient (``/cohort`` is theirs);
- threshold overrides: the patient's nurses and physicians — a clinical decision, audited as
  an interval in time so replays judge past readings by the threshold then in force.

A patient of another care team answers 404, as if it did not exist (see ``api.scope``).
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query
from pydantic import BaseModel, ConfigDict, Field

from homecare import store
from homecare.api import audit
from homecare.api.accounts import Principal
from homecare.api.auth import Admin, Clinician, Config, require_role
from homecare.api.db import Conn
from homecare.api.errors import ERROR_RESPONSES, BadRequest, Forbidden, NotFound
from homecare.api.pagination import Page, PageParams, page
from homecare.api.queries import patients as q
from homecare.api.scope import check_patient, patient_teams
from homecare.api.vocab import Program
from homecare.rules import load_packs
from homecare.rules.packs import ThresholdRule
from homecare.rules.repository import set_override

router = APIRouter(prefix="/patients", tags=["patients"], responses=ERROR_RESPONSES)

Reader = Annotated[Principal, Depends(require_role("nurse", "physician", "admin"))]
Editor = Annotated[Principal, Depends(require_role("physician", "admin"))]


class PatientCreate(BaseModel):
    """PatientCreate: a patient to enrol."""

    model_config = ConfigDict(extra="forbid")

    display_name: str = Field(min_length=1, max_length=200)
    birth_date: date | None = None
    programs: list[Program] = Field(min_length=1, max_length=7)
    care_team: str | None = Field(default=None, pattern=r"^[A-Za-z0-9._-]{1,64}$")
    hypercapnic: bool = False


class PatientUpdate(BaseModel):
    """PatientUpdate: the fields to change (absent: unchanged; care_team null: no team)."""

    model_config = ConfigDict(extra="forbid")

    display_name: str | None = Field(default=None, min_length=1, max_length=200)
    birth_date: date | None = None
    programs: list[Program] | None = Field(default=None, min_length=1, max_length=7)
    care_team: str | None = Field(default=None, pattern=r"^[A-Za-z0-9._-]{1,64}$")
    hypercapnic: bool | None = None


class PatientOut(q.PatientRow):
    """PatientOut: a patient as the API shows it."""


class ThresholdSet(BaseModel):
    """ThresholdSet: a new threshold for one rule (null: back to the pack's), and why."""

    model_config = ConfigDict(extra="forbid")

    value: float | None = Field(allow_inf_nan=False)
    reason: str = Field(min_length=1, max_length=1000)


class ThresholdOut(BaseModel):
    """ThresholdOut: one interval of a rule's threshold override for the patient."""

    rule_id: str
    value: float | None
    reason: str
    set_by: str
    valid_from: datetime
    valid_to: datetime | None


def _out(row: q.PatientRow) -> PatientOut:
    return PatientOut(**row.__dict__)


@router.post("", status_code=201, summary="Enrol a patient")
def create_patient(body: PatientCreate, principal: Admin, conn: Conn) -> PatientOut:
    with conn.transaction():
        if body.care_team is not None and not q.care_team_exists(conn, body.care_team):
            raise BadRequest(f"no care team {body.care_team!r}", code="unknown_care_team")
        patient_id = store.create_patient(
            conn,
            display_name=body.display_name,
            birth_date=body.birth_date,
            programs=sorted(set(body.programs)),
            care_team=body.care_team,
            hypercapnic=body.hypercapnic,
        )
        audit.record(
            conn,
            principal,
            "patient.create",
            f"patient/{patient_id}",
            {"programs": sorted(set(body.programs)), "care_team": body.care_team},
        )
        row = q.get_patient(conn, patient_id, None)
    assert row is not None
    return _out(row)


@router.get("", summary="Patients the caller may see, by name")
def list_patients(
    principal: Reader,
    conn: Conn,
    params: Annotated[PageParams, Depends()],
    program: Program | None = None,
    care_team: Annotated[str | None, Query(max_length=64)] = None,
) -> Page[PatientOut]:
    after = params.after("patients", (str, uuid.UUID))
    rows = q.list_patients(
        conn,
        patient_teams(principal),
        program=program,
        care_team=care_team,
        after=after,
        limit=params.limit + 1,
    )
    kept, cursor = page(rows, params.limit, "patients", lambda r: (r.display_name, r.id))
    audit.record_reads(conn, principal, "patient.read", [r.id for r in kept], {"via": "list"})
    return Page(data=[_out(r) for r in kept], next_cursor=cursor)


@router.get("/{patient_id}", summary="One patient")
def get_patient(patient_id: uuid.UUID, principal: Reader, conn: Conn) -> PatientOut:
    row = q.get_patient(conn, patient_id, patient_teams(principal))
    if row is None:
        raise NotFound(f"no patient {patient_id}")
    audit.record_reads(conn, principal, "patient.read", [patient_id])
    return _out(row)


@router.patch("/{patient_id}", summary="Change a patient's record")
def update_patient(
    patient_id: uuid.UUID, body: PatientUpdate, principal: Editor, conn: Conn
) -> PatientOut:
    changes: dict[str, Any] = {f: getattr(body, f) for f in body.model_fields_set}
    if principal.role == "physician" and set(changes) - {"hypercapnic"}:
        raise Forbidden("a physician may change only hypercapnic; enrolment is an admin's")
    for field in ("display_name", "programs", "hypercapnic"):
        if field in changes and changes[field] is None:
            raise BadRequest(f"{field} cannot be null", code="invalid_request")
    if "programs" in changes:
        changes["programs"] = sorted(set(changes["programs"]))
    with conn.transaction():
        before = q.get_patient(conn, patient_id, patient_teams(principal))
        if before is None:
            raise NotFound(f"no patient {patient_id}")
        team = changes.get("care_team")
        if team is not None and not q.care_team_exists(conn, team):
            raise BadRequest(f"no care team {team!r}", code="unknown_care_team")
        if not changes:
            return _out(before)
        after = q.update_patient(conn, patient_id, changes)
        audit.record(
            conn,
            principal,
            "patient.update",
            f"patient/{patient_id}",
            {
                "fields": sorted(changes),
                # Names and birth dates are not copied into the audit log; the rest is.
                "before": {
                    k: _jsonable(getattr(before, k))
                    for k in changes
                    if k not in ("display_name", "birth_date")
                },
                "after": {
                    k: _jsonable(v)
                    for k, v in changes.items()
                    if k not in ("display_name", "birth_date")
                },
            },
        )
    return _out(after)


@router.get("/{patient_id}/thresholds", summary="The patient's threshold overrides over time")
def list_thresholds(
    patient_id: uuid.UUID,
    principal: Clinician,
    conn: Conn,
    params: Annotated[PageParams, Depends()],
) -> Page[ThresholdOut]:
    check_patient(conn, principal, patient_id)
    after = params.after("thresholds", (str, datetime))
    rows = q.threshold_history(
        conn,
        patient_id,
        after=after,
        limit=params.limit + 1,
    )
    kept, cursor = page(rows, params.limit, "thresholds", lambda r: (r[0], r[4]))
    audit.record_reads(conn, principal, "thresholds.read", [patient_id])
    return Page(
        data=[
            ThresholdOut(
                rule_id=r[0], value=r[1], reason=r[2], set_by=r[3], valid_from=r[4], valid_to=r[5]
            )
            for r in kept
        ],
        next_cursor=cursor,
    )


@router.put("/{patient_id}/thresholds/{rule_id}", summary="Override a rule's threshold")
def set_threshold(
    patient_id: uuid.UUID,
    rule_id: Annotated[str, Path(max_length=128)],
    body: ThresholdSet,
    principal: Clinician,
    conn: Conn,
    config: Config,
) -> ThresholdOut:
    patient = q.get_patient(conn, patient_id, patient_teams(principal))
    if patient is None:
        raise NotFound(f"no patient {patient_id}")
    try:
        pack, rule = load_packs(config.packs_dir).rule(rule_id)
    except KeyError:
        raise NotFound(f"no rule {rule_id!r}") from None
    if not isinstance(rule, ThresholdRule):
        raise BadRequest(f"rule {rule_id!r} is not a threshold rule", code="not_a_threshold")
    if pack.pack != "common" and pack.pack not in patient.programs:
        raise BadRequest(
            f"rule {rule_id!r} is not in the patient's programs", code="rule_not_applicable"
        )
    now = config.clock()
    set_override(
        conn, patient_id, rule_id, body.value, actor=principal.actor, reason=body.reason, at=now
    )
    return ThresholdOut(
        rule_id=rule_id,
        value=body.value,
        reason=body.reason,
        set_by=principal.actor,
        valid_from=now,
        valid_to=None,
    )


def _jsonable(value: Any) -> Any:
    return value.isoformat() if isinstance(value, date) else value
