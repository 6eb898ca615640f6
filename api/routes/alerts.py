"""Alerts: the triage queue, one alert, acknowledge, resolve, notes, events, the live stream.

For the patients' care teams (nurses, physicians). An analyst cannot act on alerts and sees no
identified alert; an administrator manages the system, not patients' alerts (403 for both).
An alert of another team's patient answers 404, like one that does not exist.

``GET /alerts`` without ``status`` lists every status (docs/contracts.md); ``status`` and
``severity`` may repeat (``status=open&status=acknowledged`` is the working queue).
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Annotated, Any, Literal

import psycopg
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from homecare.alerts import Alert, AlertService, sse
from homecare.api import audit
from homecare.api.accounts import Principal, principal_for_token
from homecare.api.auth import SESSION_COOKIE, Clinician, Config
from homecare.api.config import ApiConfig
from homecare.api.db import Conn
from homecare.api.errors import ERROR_RESPONSES, NotFound
from homecare.api.live import LiveHub
from homecare.api.pagination import Page, PageParams, page
from homecare.api.queries import alerts as q
from homecare.api.scope import patient_teams
from homecare.rules.model import Severity

log = logging.getLogger(__name__)

router = APIRouter(prefix="/alerts", tags=["alerts"], responses=ERROR_RESPONSES)

Status = Literal["open", "acknowledged", "resolved"]
NurseOutcome = Literal[
    "called_patient",
    "adjusted_treatment",
    "home_visit",
    "sent_to_er",
    "false_alarm",
    "device_problem",
    "no_action_needed",
]


class AlertOut(BaseModel):
    """AlertOut: an alert as the REST contract (docs/contracts.md) lists it, with its handling
    and the patient's name."""

    id: int
    patient_id: uuid.UUID
    patient_display_name: str
    rule_id: str
    severity: Severity
    status: Status
    condition: Literal["active", "cleared"]
    opened_at: datetime
    evidence_time: datetime
    summary: str
    evidence: dict[str, Any] | None
    news2: int | None
    late: bool
    fired_count: int
    cleared_at: datetime | None
    acknowledged_at: datetime | None
    acknowledged_by: str | None
    resolved_at: datetime | None
    resolved_by: str | None
    outcome: str | None
    resolution_note: str | None
    suppressed_by: str | None
    escalation_level: int


class ResolveIn(BaseModel):
    """ResolveIn: what came of the alert, and optionally why."""

    model_config = ConfigDict(extra="forbid")

    outcome: NurseOutcome
    note: str | None = Field(default=None, max_length=4000)


class NoteIn(BaseModel):
    """NoteIn: a note on an alert."""

    model_config = ConfigDict(extra="forbid")

    body: str = Field(min_length=1, max_length=4000)


class NoteOut(q.NoteRow):
    """NoteOut: a note, its author and time."""


class EventOut(q.EventRow):
    """EventOut: one change of the alert."""


def alert_out(alert: Alert, patient_name: str) -> AlertOut:
    """alert_out is the public view of an alert."""
    document = alert.to_json()
    document["resolution_note"] = alert.resolution_note
    document["patient_display_name"] = patient_name
    return AlertOut.model_validate(document)


def _service(request: Request) -> AlertService:
    service: AlertService = request.app.state.alerts
    return service


Service = Annotated[AlertService, Depends(_service)]


def _visible(conn: psycopg.Connection[Any], principal: Principal, alert_id: int) -> uuid.UUID:
    patient = q.alert_patient(conn, alert_id, patient_teams(principal))
    if patient is None:
        raise NotFound(f"no alert {alert_id}")
    return patient


@router.get("", summary="The triage queue: most urgent first")
def list_alerts(
    principal: Clinician,
    conn: Conn,
    params: Annotated[PageParams, Depends()],
    status: Annotated[list[Status] | None, Query()] = None,
    severity: Annotated[list[Severity] | None, Query()] = None,
    patient_id: uuid.UUID | None = None,
    since: AwareDatetime | None = None,
) -> Page[AlertOut]:
    after = params.after("alerts", (int, int, datetime, int))
    rows = q.queue(
        conn,
        patient_teams(principal),
        statuses=sorted(set(status)) if status else None,
        severities=sorted(set(severity)) if severity else None,
        patient_id=patient_id,
        since=since,
        after=after,
        limit=params.limit + 1,
    )
    kept, cursor = page(rows, params.limit, "alerts", lambda r: q.queue_key(r[0]))
    audit.record_reads(
        conn, principal, "alerts.read", [a.patient_id for a, _ in kept], {"via": "queue"}
    )
    return Page(data=[alert_out(a, name) for a, name in kept], next_cursor=cursor)


@router.get(
    "/stream",
    summary="Live stream (Server-Sent Events) of alert changes for the caller's patients",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}, "description": "event stream"}},
)
async def stream(
    request: Request, principal: Clinician, conn: Conn, config: Config
) -> StreamingResponse:
    """Each change is one ``event: alert`` frame whose data is the change as JSON (the alert
    after it, who, when). A comment line every 15 s keeps proxies from closing the connection.
    The stream starts from now: a client (re)connecting reads ``GET /alerts`` first. The
    subscription is audited once, with its scope; the changes it carries are in each alert's
    events."""
    hub: LiveHub = request.app.state.live
    teams = patient_teams(principal)
    # Blocking work off the event loop: the audit row, and (once) the LISTEN connection.
    await run_in_threadpool(
        audit.record, conn, principal, "alerts.stream", "alerts/stream", {"care_teams": teams}
    )
    await run_in_threadpool(hub.start)
    client = hub.subscribe(teams)
    token = _credential(request)
    recheck = config.stream_recheck.total_seconds()

    async def frames() -> AsyncIterator[bytes]:
        checked = time.monotonic()
        try:
            yield b"retry: 3000\n\n"
            while True:
                change = await client.get(timeout=min(15.0, recheck))
                if change == {}:
                    return  # the server is shutting down; the browser reconnects elsewhere
                if time.monotonic() - checked >= recheck:
                    # The request was authorised once, but it lasts for hours: a token revoked
                    # or expired since, a disabled user or changed care teams end it here (the
                    # client reconnects, and is answered by the rules in force now).
                    if not await _still_allowed(request, token, principal, config):
                        return
                    checked = time.monotonic()
                yield b": keepalive\n\n" if change is None else sse(change)
        finally:
            client.close()

    return StreamingResponse(
        frames(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


def _credential(request: Request) -> str:
    """_credential is the token the request was authenticated with (header, else cookie)."""
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and value:
        return value
    return request.cookies.get(SESSION_COOKIE, "")


async def _still_allowed(
    request: Request, token: str, principal: Principal, config: ApiConfig
) -> bool:
    """_still_allowed: the stream's token is still valid and its user sees the same care
    teams (a connection is borrowed from the pool for the check, then given back); when the
    check cannot be made, the stream is not trusted further."""
    pool = request.app.state.pool
    try:
        async with request.app.state.db_gate:
            conn = await run_in_threadpool(pool.getconn)
            try:
                now = await run_in_threadpool(principal_for_token, conn, token, config.clock())
            finally:
                await run_in_threadpool(pool.putconn, conn)
    except psycopg.Error:
        log.warning("live stream: could not check the token again; ending the stream")
        return False  # unchecked, the stream ends: the client reconnects when it can
    return (
        now is not None
        and now.user_id == principal.user_id
        and (patient_teams(now) == patient_teams(principal))
    )


@router.get("/{alert_id}", summary="One alert")
def get_alert(alert_id: int, principal: Clinician, conn: Conn) -> AlertOut:
    found = q.get_alert(conn, alert_id, patient_teams(principal))
    if found is None:
        raise NotFound(f"no alert {alert_id}")
    audit.record_reads(conn, principal, "alerts.read", [found[0].patient_id], {"alert": alert_id})
    return alert_out(*found)


@router.post("/{alert_id}/ack", summary="Acknowledge: I am on it (stops the escalation)")
def acknowledge(alert_id: int, principal: Clinician, conn: Conn, service: Service) -> AlertOut:
    _visible(conn, principal, alert_id)
    service.acknowledge(conn, alert_id, principal.actor)
    found = q.get_alert(conn, alert_id, None)
    assert found is not None
    return alert_out(*found)


@router.post("/{alert_id}/resolve", summary="Resolve with an outcome (and a note)")
def resolve(
    alert_id: int, body: ResolveIn, principal: Clinician, conn: Conn, service: Service
) -> AlertOut:
    _visible(conn, principal, alert_id)
    service.resolve(conn, alert_id, principal.actor, body.outcome, body.note)
    found = q.get_alert(conn, alert_id, None)
    assert found is not None
    return alert_out(*found)


@router.get("/{alert_id}/events", summary="The alert's changes, in order")
def list_events(
    alert_id: int,
    principal: Clinician,
    conn: Conn,
    params: Annotated[PageParams, Depends()],
) -> Page[EventOut]:
    patient = _visible(conn, principal, alert_id)
    after = params.after("events", (int,))
    rows = q.events(conn, alert_id, after=after[0] if after else None, limit=params.limit + 1)
    kept, cursor = page(rows, params.limit, "events", lambda r: (r.id,))
    audit.record_reads(conn, principal, "alerts.read", [patient], {"alert": alert_id})
    return Page(data=[EventOut(**r.__dict__) for r in kept], next_cursor=cursor)


@router.get("/{alert_id}/notes", summary="Notes on the alert, in order")
def list_notes(
    alert_id: int,
    principal: Clinician,
    conn: Conn,
    params: Annotated[PageParams, Depends()],
) -> Page[NoteOut]:
    patient = _visible(conn, principal, alert_id)
    after = params.after("notes", (int,))
    rows = q.notes(conn, alert_id, after=after[0] if after else None, limit=params.limit + 1)
    kept, cursor = page(rows, params.limit, "notes", lambda r: (r.id,))
    audit.record_reads(conn, principal, "alerts.read", [patient], {"alert": alert_id})
    return Page(data=[NoteOut(**r.__dict__) for r in kept], next_cursor=cursor)


@router.post("/{alert_id}/notes", status_code=201, summary="Add a note to the alert")
def add_note(
    alert_id: int, body: NoteIn, principal: Clinician, conn: Conn, config: Config
) -> NoteOut:
    with conn.transaction():
        patient = _visible(conn, principal, alert_id)
        note = q.add_note(conn, alert_id, principal.actor, body.body, config.clock())
        audit.record(
            conn,
            principal,
            "alert.note",
            f"patient/{patient}",
            {"alert": alert_id, "note": note.id},
        )
    return NoteOut(**note.__dict__)
