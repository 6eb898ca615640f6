"""Pages: the nurse dashboard's routes — sign-in, the triage queue, a patient, and the actions.

Who sees what is the API's rule, applied by the API's own code: a page for a patient of another
care team, or an alert or silence of one, answers 404 exactly like one that does not exist
(``api.scope``); administrators and analysts get a 403 page (they see no identified clinical
data). Every page that shows a patient's data writes the API's audit rows (``api.audit``), and
every change goes through the alerts stage's ``AlertService`` (which records who, when and
why), never through SQL here.

The queue updates itself live: the page's script listens to ``GET /api/v1/alerts/stream`` (the
API's Server-Sent Events, filtered to the user's care teams) and, on each change and on every
(re)connection, fetches ``/dashboard/queue`` — the same rows, server-rendered — so the live
view and a reload can never disagree. Actions are plain HTML forms (they work without the
script); the script only adds the live updates and the charts.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response

from alerts import OUTCOMES, Alert, AlertNotFound, AlertService, InvalidTransition
from api import audit
from api.accounts import Principal, revoke_token
from api.auth import SESSION_COOKIE, Config
from api.dashboard import charts, queries
from api.dashboard.i18n import LOCALES, pick_locale
from api.dashboard.web import (
    LANG_COOKIE,
    Page,
    forbidden_post,
    redirect,
    render,
    safe_next,
    session_principal,
)
from api.db import Conn
from api.errors import TooManyRequests, Unauthorized
from api.queries import alerts as alert_queries
from api.routes.auth import client_address, set_session_cookie
from api.scope import patient_teams
from api.signin import sign_in

__all__ = ["router"]

router = APIRouter(include_in_schema=False)

QUEUE_LIMIT = 200
HISTORY_LIMIT = 50
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


def _service(request: Request) -> AlertService:
    service: AlertService = request.app.state.alerts
    return service


def _gate(page: Page) -> Response | None:
    """_gate: sign in first (redirect), or a 403 page for roles that see no patients."""
    if page.principal is None:
        return redirect(f"/dashboard/login?next={page.request.url.path}")
    if not page.principal.is_clinician:
        return render(
            page,
            "error.html",
            403,
            title=page.t("error.forbidden.title"),
            message=page.t("error.forbidden.body"),
        )
    return None


def _not_found(page: Page) -> Response:
    return render(
        page,
        "error.html",
        404,
        title=page.t("error.not_found.title"),
        message=page.t("error.not_found.body"),
    )


def _refused(page: Page) -> Response:
    return render(
        page, "error.html", 403, title=page.t("error.csrf.title"), message=page.t("error.csrf.body")
    )


def _queue_zone(conn: Conn, principal: Principal) -> str:
    zones = queries.team_zones(conn, sorted(principal.care_teams))
    return next(iter(zones)) if len(zones) == 1 else principal.time_zone


# --- sign-in ---------------------------------------------------------------------------------


@router.get("/")
def root() -> Response:
    return redirect("/dashboard/")


@router.get("/dashboard")
def dashboard_root() -> Response:
    return redirect("/dashboard/")


@router.get("/dashboard/login")
def login_form(request: Request, conn: Conn, config: Config, next: str | None = None) -> Response:
    principal = session_principal(request, conn, config)
    if principal is not None:  # already signed in
        return redirect(safe_next(next))
    page = Page.make(request, config, None)
    return render(page, "login.html", next=safe_next(next), error=None, username="")


@router.post("/dashboard/login")
def login(
    request: Request,
    conn: Conn,
    config: Config,
    username: Annotated[str, Form(max_length=64)] = "",
    password: Annotated[str, Form(max_length=1024)] = "",
    next: Annotated[str, Form(max_length=500)] = "/dashboard/",
) -> Response:
    page = Page.make(request, config, None)
    if forbidden_post(request, "", signed_in=False):
        return _refused(page)
    try:
        issued = sign_in(conn, config, username, password, client_address(request))
    except TooManyRequests as exc:
        error = page.t("login.throttled")
        answer = render(page, "login.html", 429, next=safe_next(next), error=error, username="")
        answer.headers["Retry-After"] = str(exc.retry_after)
        return answer
    except Unauthorized:
        error = page.t("login.failed")
        return render(page, "login.html", 401, next=safe_next(next), error=error, username=username)
    response = redirect(safe_next(next))
    set_session_cookie(response, issued, config)
    return response


@router.post("/dashboard/logout")
def logout(
    request: Request, conn: Conn, config: Config, csrf: Annotated[str, Form()] = ""
) -> Response:
    principal = session_principal(request, conn, config)
    page = Page.make(request, config, principal)
    if principal is not None:
        if forbidden_post(request, csrf):
            return _refused(page)
        revoke_token(conn, principal.token_id, config.clock())
        audit.record(conn, principal, "auth.logout", "auth/session")
    response = redirect("/dashboard/login")
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@router.post("/dashboard/language")
def language(
    request: Request,
    conn: Conn,
    config: Config,
    lang: Annotated[str, Form(max_length=10)] = "",
    csrf: Annotated[str, Form()] = "",
    next: Annotated[str, Form(max_length=500)] = "/dashboard/",
) -> Response:
    """language switches the page language: remembered for the user (or, before sign-in, in a
    cookie for the sign-in page)."""
    principal = session_principal(request, conn, config)
    page = Page.make(request, config, principal)
    if forbidden_post(request, csrf, signed_in=principal is not None):
        return _refused(page)
    locale = pick_locale(lang if lang in LOCALES else None, page.t.locale)
    if principal is not None and locale != principal.locale:
        queries.set_locale(conn, principal.user_id, locale)
        audit.record(
            conn, principal, "user.locale", f"user/{principal.username}", {"locale": locale}
        )
    response = redirect(safe_next(next, "/dashboard/login" if principal is None else "/dashboard/"))
    response.set_cookie(
        LANG_COOKIE,
        locale,
        max_age=365 * 86400,
        samesite="strict",
        secure=config.cookie_secure,
        path="/",
    )
    return response


# --- the queue -------------------------------------------------------------------------------


def _queue_rows(
    request: Request, conn: Conn, config: Config
) -> tuple[Page, Response | None, list[tuple[Alert, str]]]:
    principal = session_principal(request, conn, config)
    zone_name = _queue_zone(conn, principal) if principal and principal.is_clinician else None
    page = Page.make(request, config, principal, zone_name)
    gate = _gate(page)
    if gate is not None or principal is None:
        return page, gate, []
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
    return page, None, rows


@router.get("/dashboard/")
def queue_page(request: Request, conn: Conn, config: Config) -> Response:
    page, gate, rows = _queue_rows(request, conn, config)
    if gate is not None:
        return gate
    return render(page, "queue.html", rows=rows, outcomes=OUTCOME_ORDER)


@router.get("/dashboard/queue")
def queue_fragment(request: Request, conn: Conn, config: Config) -> Response:
    """queue_fragment is the queue's rows alone, for the live update (401 when signed out)."""
    page, gate, rows = _queue_rows(request, conn, config)
    if gate is not None:
        return Response(status_code=401 if page.principal is None else 403)
    return render(page, "_queue_rows.html", rows=rows, outcomes=OUTCOME_ORDER)


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
    gate = _gate(page)
    if gate is not None:
        return gate
    assert principal is not None
    if found is None:
        return _not_found(page)
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


# --- actions ---------------------------------------------------------------------------------


def _act(
    request: Request, conn: Conn, config: Config, csrf: str
) -> tuple[Page, Principal | None, Response | None]:
    principal = session_principal(request, conn, config)
    page = Page.make(request, config, principal)
    gate = _gate(page)
    if gate is not None:
        return page, None, gate
    if forbidden_post(request, csrf):
        return page, None, _refused(page)
    return page, principal, None


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
    csrf: Annotated[str, Form()] = "",
    next: Annotated[str, Form(max_length=500)] = "/dashboard/",
) -> Response:
    page, principal, refused = _act(request, conn, config, csrf)
    if refused is not None or principal is None:
        return refused or _not_found(page)
    if alert_queries.alert_patient(conn, alert_id, patient_teams(principal)) is None:
        return _not_found(page)
    try:
        _service(request).acknowledge(conn, alert_id, principal.actor)
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
    csrf: Annotated[str, Form()] = "",
    next: Annotated[str, Form(max_length=500)] = "/dashboard/",
) -> Response:
    page, principal, refused = _act(request, conn, config, csrf)
    if refused is not None or principal is None:
        return refused or _not_found(page)
    if alert_queries.alert_patient(conn, alert_id, patient_teams(principal)) is None:
        return _not_found(page)
    if outcome not in OUTCOMES:
        return _back(next, "outcome_required")
    try:
        _service(request).resolve(conn, alert_id, principal.actor, outcome, note.strip() or None)
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
    csrf: Annotated[str, Form()] = "",
    next: Annotated[str, Form(max_length=500)] = "/dashboard/",
) -> Response:
    page, principal, refused = _act(request, conn, config, csrf)
    if refused is not None or principal is None:
        return refused or _not_found(page)
    if not body.strip():
        return _back(next, "note_empty")
    with conn.transaction():
        patient = alert_queries.alert_patient(conn, alert_id, patient_teams(principal))
        if patient is None:
            return _not_found(page)
        note = alert_queries.add_note(conn, alert_id, principal.actor, body.strip(), config.clock())
        audit.record(
            conn,
            principal,
            "alert.note",
            f"patient/{patient}",
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
    csrf: Annotated[str, Form()] = "",
    next: Annotated[str, Form(max_length=500)] = "/dashboard/",
) -> Response:
    page, principal, refused = _act(request, conn, config, csrf)
    if refused is not None or principal is None:
        return refused or _not_found(page)
    if queries.patient(conn, patient_id, patient_teams(principal)) is None:
        return _not_found(page)
    if hours not in SILENCE_HOURS:
        return _back(next, "silence_invalid")
    if not reason.strip():
        return _back(next, "silence_reason")
    _service(request).silence(
        conn,
        actor=principal.actor,
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
    csrf: Annotated[str, Form()] = "",
    next: Annotated[str, Form(max_length=500)] = "/dashboard/",
) -> Response:
    page, principal, refused = _act(request, conn, config, csrf)
    if refused is not None or principal is None:
        return refused or _not_found(page)
    if alert_queries.silence_patient(conn, silence_id, patient_teams(principal)) is None:
        return _not_found(page)
    try:
        _service(request).end_silence(conn, silence_id, principal.actor)
    except AlertNotFound:
        return _back(next, "stale")
    return _back(next, "silence_ended")
