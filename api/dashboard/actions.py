"""Actions: what a nurse changes from the dashboard — acknowledge, resolve, note, silence.

Every action is a plain HTML form POST (it works without the script) and starts the same way
(``_acting``): the user must be signed in as a clinician, the form must come from this origin
with this session's token, and what it acts on must be visible to the user's care teams —
otherwise 404, exactly like something that does not exist. Every change then goes through the
alerts stage's ``AlertService`` (which records who, when and why), never through SQL here;
a note is the API's own table and is audited.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response

from homecare.alerts import OUTCOMES, AlertNotFound, AlertService, InvalidTransition
from homecare.api import audit
from homecare.api.accounts import Principal
from homecare.api.auth import Config
from homecare.api.dashboard import queries
from homecare.api.dashboard.web import (
    Page,
    forbidden_post,
    gate,
    not_found,
    redirect,
    refused,
    safe_next,
    session_principal,
)
from homecare.api.db import Conn
from homecare.api.queries import alerts as alert_queries
from homecare.api.scope import patient_teams

__all__ = ["OUTCOME_ORDER", "SILENCE_HOURS", "router"]

router = APIRouter(include_in_schema=False)

SILENCE_HOURS = (1, 4, 12, 24, 72, 168)
OUTCOME_ORDER = (
    "called_patient",
    "adjusted_treatment",
    "home_visit",
    "sent_to_er",
    "device_problem",
    "false_alarm",
    "no_action_needed",
)
assert set(OUTCOME_ORDER) == OUTCOMES, "the resolve form offers every outcome a nurse may choose"

Next = Annotated[str, Form(max_length=500)]
Csrf = Annotated[str, Form()]


@dataclass(frozen=True)
class _Acting:
    """_Acting: who acts, on a subject (an alert's or silence's patient, a patient) they see."""

    principal: Principal
    service: AlertService


def _acting(
    request: Request,
    conn: Conn,
    config: Config,
    csrf: str,
    visible: Callable[[list[str] | None], object | None],
) -> _Acting | Response:
    """_acting is the prologue of every action: a signed-in clinician, a protected form, and a
    subject ``visible`` to their care teams — or the page that refuses it."""
    principal = session_principal(request, conn, config)
    page = Page.make(request, config, principal)
    refusal = gate(page)
    if refusal is not None:
        return refusal
    if forbidden_post(request, csrf):
        return refused(page)
    assert principal is not None
    if visible(patient_teams(principal)) is None:
        return not_found(page)
    service: AlertService = request.app.state.alerts
    return _Acting(principal, service)


def _back(next: str, notice: str | None = None) -> Response:
    target = safe_next(next)
    if notice:
        target += ("&" if "?" in target else "?") + f"notice={notice}"
    return redirect(target)


@router.post("/dashboard/alerts/{alert_id}/ack")
def acknowledge(
    request: Request,
    alert_id: int,
    conn: Conn,
    config: Config,
    csrf: Csrf = "",
    next: Next = "/dashboard/",
) -> Response:
    acting = _acting(
        request,
        conn,
        config,
        csrf,
        lambda teams: alert_queries.alert_patient(conn, alert_id, teams),
    )
    if isinstance(acting, Response):
        return acting
    try:
        acting.service.acknowledge(conn, alert_id, acting.principal.actor)
    except (InvalidTransition, AlertNotFound):
        return _back(next, "stale")
    return _back(next, "acknowledged")


@router.post("/dashboard/alerts/{alert_id}/resolve")
def resolve(
    request: Request,
    alert_id: int,
    conn: Conn,
    config: Config,
    outcome: Annotated[str, Form(max_length=40)] = "",
    note: Annotated[str, Form(max_length=4000)] = "",
    csrf: Csrf = "",
    next: Next = "/dashboard/",
) -> Response:
    acting = _acting(
        request,
        conn,
        config,
        csrf,
        lambda teams: alert_queries.alert_patient(conn, alert_id, teams),
    )
    if isinstance(acting, Response):
        return acting
    if outcome not in OUTCOMES:
        return _back(next, "outcome_required")
    try:
        acting.service.resolve(
            conn, alert_id, acting.principal.actor, outcome, note.strip() or None
        )
    except (InvalidTransition, AlertNotFound):
        return _back(next, "stale")
    return _back(next, "resolved")


@router.post("/dashboard/alerts/{alert_id}/notes")
def add_note(
    request: Request,
    alert_id: int,
    conn: Conn,
    config: Config,
    body: Annotated[str, Form(max_length=4000)] = "",
    csrf: Csrf = "",
    next: Next = "/dashboard/",
) -> Response:
    patient: list[uuid.UUID | None] = []

    def visible(teams: list[str] | None) -> uuid.UUID | None:
        patient.append(alert_queries.alert_patient(conn, alert_id, teams))
        return patient[0]

    with conn.transaction():
        acting = _acting(request, conn, config, csrf, visible)
        if isinstance(acting, Response):
            return acting
        if not body.strip():
            return _back(next, "note_empty")
        principal = acting.principal
        note = alert_queries.add_note(conn, alert_id, principal.actor, body.strip(), config.clock())
        audit.record(
            conn,
            principal,
            "alert.note",
            f"patient/{patient[0]}",
            {"alert": alert_id, "note": note.id},
        )
    return _back(next, "note_added")


@router.post("/dashboard/patients/{patient_id}/silences")
def silence(
    request: Request,
    patient_id: uuid.UUID,
    conn: Conn,
    config: Config,
    hours: Annotated[int, Form()] = 0,
    reason: Annotated[str, Form(max_length=500)] = "",
    rule_id: Annotated[str, Form(max_length=200)] = "",
    csrf: Csrf = "",
    next: Next = "/dashboard/",
) -> Response:
    acting = _acting(
        request, conn, config, csrf, lambda teams: queries.patient(conn, patient_id, teams)
    )
    if isinstance(acting, Response):
        return acting
    if hours not in SILENCE_HOURS:
        return _back(next, "silence_invalid")
    if not reason.strip():
        return _back(next, "silence_reason")
    acting.service.silence(
        conn,
        actor=acting.principal.actor,
        reason=reason.strip(),
        duration=timedelta(hours=hours),
        patient_id=patient_id,
        rule_id=rule_id.strip() or None,
    )
    return _back(next, "silenced")


@router.post("/dashboard/silences/{silence_id}/end")
def end_silence(
    request: Request,
    silence_id: int,
    conn: Conn,
    config: Config,
    csrf: Csrf = "",
    next: Next = "/dashboard/",
) -> Response:
    acting = _acting(
        request,
        conn,
        config,
        csrf,
        lambda teams: alert_queries.silence_patient(conn, silence_id, teams),
    )
    if isinstance(acting, Response):
        return acting
    try:
        acting.service.end_silence(conn, silence_id, acting.principal.actor)
    except AlertNotFound:
        return _back(next, "stale")
    return _back(next, "silence_ended")
