"""Account: the dashboard's sign-in, sign-out and language switch.

Sign-in is the API's (``api.signin``: the same throttle, the same tokens); the session cookie it
sets is an API token. The language is remembered for the signed-in user (``users.locale``) and,
before sign-in, in a cookie for the sign-in page.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response

from homecare.api import audit
from homecare.api.accounts import revoke_token
from homecare.api.auth import SESSION_COOKIE, Config
from homecare.api.dashboard import queries
from homecare.api.dashboard.i18n import LOCALES, pick_locale
from homecare.api.dashboard.web import (
    LANG_COOKIE,
    Page,
    forbidden_post,
    redirect,
    refused,
    render,
    safe_next,
    session_principal,
)
from homecare.api.db import Conn
from homecare.api.errors import TooManyRequests, Unauthorized
from homecare.api.routes.auth import client_address, set_session_cookie
from homecare.api.signin import sign_in

__all__ = ["router"]

router = APIRouter(include_in_schema=False)


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
        return refused(page)
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
            return refused(page)
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
        return refused(page)
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
