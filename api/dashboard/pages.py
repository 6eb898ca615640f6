"""Pages: what the nurse dashboard shows — the worklist, the alert view, and a patient.

Who sees what is the API's rule, applied by the API's own code: a page for a patient of another
care team answers 404 exactly like one that does not exist (``api.scope``); administrators and
analysts get a 403 page (they see no identified clinical data). Every page that shows a
patient's data writes the API's audit rows (``api.audit``): the worklist and the alert view an
``alerts.read`` row per patient listed, a patient page a ``patient.read``.

The **worklist** (the home page) has one row per patient with an unresolved alert, most urgent
first (``api.dashboard.worklist``), the patient's alerts grouped under it. The **alert view**
(``/dashboard/alerts``) is the same alerts one row each, in the API's queue order. Both update
themselves live: the page's script listens to ``GET /api/v1/alerts/stream`` (the API's
Server-Sent Events, filtered to the user's care teams) and, on each change and on every
(re)connection, fetches the page's rows again, server-rendered — so the live view and a reload
can never disagree. The script keeps the keyboard focus, open disclosures and what the nurse
typed across that re-read.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from homecare.api import audit
from homecare.api.accounts import Principal
from homecare.api.auth import Config
from homecare.api.dashboard import charts, queries, worklist
from homecare.api.dashboard.actions import OUTCOME_ORDER, SILENCE_HOURS
from homecare.api.dashboard.web import Page, gate, not_found, render, session_principal
from homecare.api.db import Conn
from homecare.api.queries import alerts as alert_queries
from homecare.api.scope import patient_teams

__all__ = ["router"]

router = APIRouter(include_in_schema=False)

QUEUE_LIMIT = 200
HISTORY_LIMIT = 50


def _queue_zone(conn: Conn, principal: Principal) -> str:
    zones = queries.team_zones(conn, sorted(principal.care_teams))
    return next(iter(zones)) if len(zones) == 1 else principal.time_zone


def _signed_in(request: Request, conn: Conn, config: Config) -> tuple[Page, Response | None]:
    """_signed_in: the page in the user's teams' zone, or why it cannot be shown."""
    principal = session_principal(request, conn, config)
    zone_name = _queue_zone(conn, principal) if principal and principal.is_clinician else None
    page = Page.make(request, config, principal, zone_name)
    return page, gate(page)


def _fragment_refused(page: Page) -> Response:
    return Response(status_code=401 if page.principal is None else 403)


# --- the worklist ----------------------------------------------------------------------------


def _worklist(conn: Conn, config: Config, page: Page) -> dict[str, Any]:
    principal = page.principal
    assert principal is not None
    now = config.clock()
    entries = worklist.entries(
        conn,
        patient_teams(principal),
        now=now,
        time_zone=page.t.tz,
        pack_set=charts.packs(config.packs_dir),
    )
    audit.record_reads(
        conn, principal, "alerts.read", [e.patient.id for e in entries], {"via": "dashboard"}
    )
    return {"entries": entries, "now": now, "outcomes": OUTCOME_ORDER}


@router.get("/dashboard/")
def worklist_page(request: Request, conn: Conn, config: Config) -> Response:
    page, refusal = _signed_in(request, conn, config)
    if refusal is not None:
        return refusal
    return render(page, "worklist.html", **_worklist(conn, config, page))


@router.get("/dashboard/queue")
def worklist_fragment(request: Request, conn: Conn, config: Config) -> Response:
    """worklist_fragment is the worklist's rows alone, for the live update (401 signed out)."""
    page, refusal = _signed_in(request, conn, config)
    if refusal is not None:
        return _fragment_refused(page)
    return render(page, "_worklist_rows.html", **_worklist(conn, config, page))


# --- the alert view --------------------------------------------------------------------------


def _alert_rows(conn: Conn, page: Page) -> list[Any]:
    principal = page.principal
    assert principal is not None
    rows = alert_queries.queue(
        conn,
        patient_teams(principal),
        statuses=["acknowledged", "open"],
        severities=None,
        patient_id=None,
        since=None,
        after=None,
        limit=QUEUE_LIMIT,
    )
    audit.record_reads(
        conn, principal, "alerts.read", [a.patient_id for a, _ in rows], {"via": "dashboard"}
    )
    return rows


@router.get("/dashboard/alerts")
def alerts_page(request: Request, conn: Conn, config: Config) -> Response:
    page, refusal = _signed_in(request, conn, config)
    if refusal is not None:
        return refusal
    return render(page, "queue.html", rows=_alert_rows(conn, page), outcomes=OUTCOME_ORDER)


@router.get("/dashboard/alerts/rows")
def alerts_fragment(request: Request, conn: Conn, config: Config) -> Response:
    """alerts_fragment is the alert view's rows alone, for the live update."""
    page, refusal = _signed_in(request, conn, config)
    if refusal is not None:
        return _fragment_refused(page)
    return render(page, "_queue_rows.html", rows=_alert_rows(conn, page), outcomes=OUTCOME_ORDER)


# --- a patient -------------------------------------------------------------------------------


@router.get("/dashboard/patients/{patient_id}")
def patient_page(
    request: Request, patient_id: uuid.UUID, conn: Conn, config: Config, days: str = "7"
) -> Response:
    principal = session_principal(request, conn, config)
    found = (
        queries.patient(conn, patient_id, patient_teams(principal))
        if principal is not None and principal.is_clinician
        else None
    )
    page = Page.make(request, config, principal, found.time_zone if found else None)
    refusal = gate(page)
    if refusal is not None:
        return refusal
    assert principal is not None
    if found is None:
        return not_found(page)
    window = int(days) if days.isdigit() and int(days) in charts.WINDOWS else charts.WINDOWS[0]
    now = config.clock()
    pack_set = charts.packs(config.packs_dir)
    series = charts.vitals(
        conn,
        patient_id,
        found.programs,
        days=window,
        now=now,
        time_zone=page.t.tz.key,
        pack_set=pack_set,
    )
    news2_rules = charts.news2_rules(pack_set, found.programs)
    news2 = charts.news2(
        conn,
        patient_id,
        since=now - timedelta(days=window),
        until=now,
        hypercapnic=found.hypercapnic,
        rule=news2_rules[0] if news2_rules else None,
    )
    header = worklist.entry(conn, found, now=now, time_zone=page.t.tz, pack_set=pack_set)
    history = queries.patient_alerts(conn, patient_id, HISTORY_LIMIT)
    notes = queries.notes_for(conn, [a.id for a in history])
    silences = alert_queries.silences(
        conn, patient_teams(principal), patient_id=patient_id, active_at=now, after=None, limit=50
    )
    audit.record_reads(
        conn, principal, "patient.read", [patient_id], {"via": "dashboard", "days": window}
    )
    chart_data = {
        "zone": page.t.tz.key,
        "locale": page.t.locale,
        "series": [s.to_json() for s in series],
        "news2": {
            "x": [int(p.time.timestamp()) for p in news2],
            "score": [p.score for p in news2],
            "thresholds": [
                {"rule_id": r.id, "value": r.min_score, "severity": r.severity} for r in news2_rules
            ],
        },
    }
    return render(
        page,
        "patient.html",
        patient=found,
        e=header,
        now=now,
        days=window,
        windows=charts.WINDOWS,
        series=series,
        news2=news2,
        history=history,
        notes=notes,
        silences=silences,
        outcomes=OUTCOME_ORDER,
        silence_hours=SILENCE_HOURS,
        chart_data=chart_data,
        rule_ids=sorted({a.rule_id for a in history}),
    )
