"""Web: what every dashboard page shares — who is signed in, the page's language and time zone,
protection of its forms, and rendering.

**Sign-in** is the API's: the session cookie set by the sign-in form is an API token
(``api.auth.SESSION_COOKIE``), checked by ``api.auth.require_principal`` — the same function,
hence the same expiry, revocation and disabled-user rules as every API call.

**Forms** are protected against cross-site request forgery three ways: the session cookie is
SameSite=Strict (a browser never sends it on a request another site started); every POST must
come from this origin (``Origin``, or ``Referer`` when a browser sends no Origin); and every form
carries a token derived from the session secret (HMAC-SHA256 of it, so the page can show the
token without revealing the secret, and it needs no server-side state). A POST failing any of
the three is refused with 403.

**Language**: the signed-in user's (``users.locale``, changed from any page and remembered);
before sign-in, a ``homecare_lang`` cookie set by the sign-in page's switch, else fr-CA.
**Time zone**: the care team's — the patient's team on a patient page; on the queue, the
user's teams' zone when they share one, else the user's own zone.

Pages are never cached (they hold health data) and carry a strict Content-Security-Policy:
scripts, styles and data only from this origin.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import psycopg
from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from homecare.api.accounts import Principal
from homecare.api.auth import SESSION_COOKIE, authenticate, same_origin
from homecare.api.config import ApiConfig
from homecare.api.dashboard.charts import packs
from homecare.api.dashboard.i18n import Translator, pick_locale, zone
from homecare.api.errors import Unauthorized
from homecare.rules import PackError

__all__ = [
    "LANG_COOKIE",
    "Page",
    "csrf_token",
    "forbidden_post",
    "gate",
    "not_found",
    "redirect",
    "refused",
    "render",
    "safe_next",
    "session_principal",
]

LANG_COOKIE = "homecare_lang"
TEMPLATES = Path(__file__).parent / "templates"
_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:;"
    " connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
)
NO_STORE = {"Cache-Control": "no-store", "Content-Security-Policy": _CSP}


@cache
def environment() -> Environment:
    """environment is the templates' Jinja2 environment (autoescaped; an undefined name fails)."""
    return Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(["html"]),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def session_principal(
    request: Request, conn: psycopg.Connection[Any], config: ApiConfig
) -> Principal | None:
    """session_principal is the signed-in user of the session cookie (None: sign in first)."""
    if not request.cookies.get(SESSION_COOKIE):
        return None
    try:
        return authenticate(request, conn, config, None)
    except Unauthorized:
        return None


def csrf_token(request: Request) -> str:
    """csrf_token is the form token of this session (empty before sign-in)."""
    secret = request.cookies.get(SESSION_COOKIE, "")
    if not secret:
        return ""
    return hmac.new(secret.encode(), b"homecare-dashboard-form", hashlib.sha256).hexdigest()


def forbidden_post(request: Request, token: str, *, signed_in: bool = True) -> bool:
    """forbidden_post: this POST must be refused (other origin, or a wrong form token)."""
    if not same_origin(request):  # a client without Origin/Referer still needs the token
        return True
    if not signed_in:
        return False
    expected = csrf_token(request)
    return not expected or not hmac.compare_digest(token.encode(), expected.encode())


def safe_next(target: str | None, default: str = "/dashboard/") -> str:
    """safe_next is ``target`` if it is a dashboard path of this site (no open redirect)."""
    if target and target.startswith("/dashboard/") and "//" not in target and "\\" not in target:
        return target
    return default


def redirect(target: str) -> RedirectResponse:
    """redirect answers a form with 303 See Other (the browser then GETs ``target``)."""
    return RedirectResponse(target, status_code=303, headers={"Cache-Control": "no-store"})


@dataclass(frozen=True)
class Page:
    """Page: the request's principal (if any), translator and form token."""

    request: Request
    principal: Principal | None
    t: Translator

    @classmethod
    def make(
        cls,
        request: Request,
        config: ApiConfig,
        principal: Principal | None,
        time_zone: str | None = None,
    ) -> Page:
        locale = pick_locale(
            principal.locale if principal else None,
            request.cookies.get(LANG_COOKIE),
            config.default_locale,
        )
        tz_name = time_zone or (principal.time_zone if principal else None)
        tz = zone(tz_name, config.default_time_zone)
        return cls(request, principal, Translator(locale, tz, _pack_summaries(config)))


def _pack_summaries(config: ApiConfig) -> dict[str, str]:
    """_pack_summaries: each rule's summary template as its pack writes it (English)."""
    try:
        pack_set = packs(config.packs_dir)
    except (PackError, OSError):  # no packs readable: the stored summaries are shown
        return {}
    return {rule.id: rule.summary for pack in pack_set.packs.values() for rule in pack.rules}


def render(page: Page, template: str, status: int = 200, **context: Any) -> Response:
    """render is ``template`` rendered for ``page`` as an uncached HTML answer."""
    notice = page.request.query_params.get("notice")
    notice_text = page.t(f"notice.{notice}") if f"notice.{notice}" in page.t.messages else None
    html = (
        environment()
        .get_template(template)
        .render(
            t=page.t,
            me=page.principal,
            csrf=csrf_token(page.request),
            notice=notice_text,
            path=page.request.url.path
            + (f"?{page.request.url.query}" if page.request.url.query else ""),
            **context,
        )
    )
    return HTMLResponse(html, status_code=status, headers=NO_STORE)


def gate(page: Page) -> Response | None:
    """gate: sign in first (redirect), or a 403 page for roles that see no patients."""
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


def not_found(page: Page) -> Response:
    """not_found is the 404 page (also for what another care team's user may not see)."""
    return render(
        page,
        "error.html",
        404,
        title=page.t("error.not_found.title"),
        message=page.t("error.not_found.body"),
    )


def refused(page: Page) -> Response:
    """refused is the 403 page of a form that failed its protection."""
    return render(
        page, "error.html", 403, title=page.t("error.csrf.title"), message=page.t("error.csrf.body")
    )
