"""Silences: mute a patient's alerts (all, or one rule's) for a while, with a reason.

A silence made through the API always names a patient the caller sees: muting a rule for every
patient would silence other teams' patients, so that is a rule-pack change (an administrator's
``/packs``), not a clinician's silence. Matching alerts are still recorded, not paged; ending a
silence early keeps it, with who ended it. For the patient's care team.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field

from homecare.alerts import AlertService
from homecare.api import audit
from homecare.api.auth import Clinician, Config
from homecare.api.db import Conn
from homecare.api.errors import ERROR_RESPONSES, NotFound
from homecare.api.pagination import Page, PageParams, page
from homecare.api.queries import alerts as q
from homecare.api.scope import check_patient, patient_teams

router = APIRouter(prefix="/silences", tags=["alerts"], responses=ERROR_RESPONSES)


class SilenceIn(BaseModel):
    """SilenceIn: whose alerts (and which rule's, or all), why, for how long (≤ 30 days)."""

    model_config = ConfigDict(extra="forbid")

    patient_id: uuid.UUID
    rule_id: str | None = Field(default=None, min_length=1, max_length=128)
    reason: str = Field(min_length=1, max_length=1000, pattern=r"\S")
    duration_minutes: int = Field(ge=1, le=30 * 24 * 60)


class SilenceOut(q.SilenceRow):
    """SilenceOut: a silence and its span."""


def _service(request: Request) -> AlertService:
    service: AlertService = request.app.state.alerts
    return service


@router.post("", status_code=201, summary="Silence a patient's alerts for a while")
def create_silence(
    body: SilenceIn,
    principal: Clinician,
    conn: Conn,
    service: Annotated[AlertService, Depends(_service)],
) -> SilenceOut:
    check_patient(conn, principal, body.patient_id)
    silence_id = service.silence(
        conn,
        actor=principal.actor,
        reason=body.reason,
        duration=timedelta(minutes=body.duration_minutes),
        patient_id=body.patient_id,
        rule_id=body.rule_id,
    )
    row = q.silence_patient(conn, silence_id, None)
    assert row is not None
    return SilenceOut(**row.__dict__)


@router.get("", summary="Silences of the caller's patients, newest first")
def list_silences(
    principal: Clinician,
    conn: Conn,
    config: Config,
    params: Annotated[PageParams, Depends()],
    patient_id: uuid.UUID | None = None,
    active: bool = False,
) -> Page[SilenceOut]:
    after = params.after("silences", (int,))
    rows = q.silences(
        conn,
        patient_teams(principal),
        patient_id=patient_id,
        active_at=config.clock() if active else None,
        after=after[0] if after else None,
        limit=params.limit + 1,
    )
    kept, cursor = page(rows, params.limit, "silences", lambda r: (r.id,))
    audit.record_reads(
        conn, principal, "silences.read", [r.patient_id for r in kept if r.patient_id]
    )
    return Page(data=[SilenceOut(**r.__dict__) for r in kept], next_cursor=cursor)


@router.post("/{silence_id}/end", summary="End a silence now")
def end_silence(
    silence_id: int,
    principal: Clinician,
    conn: Conn,
    service: Annotated[AlertService, Depends(_service)],
) -> SilenceOut:
    if q.silence_patient(conn, silence_id, patient_teams(principal)) is None:
        raise NotFound(f"no silence {silence_id}")
    service.end_silence(conn, silence_id, principal.actor)
    row = q.silence_patient(conn, silence_id, None)
    assert row is not None
    return SilenceOut(**row.__dict__)
