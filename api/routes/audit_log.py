"""Audit log: who saw or changed what, and when — for administrators, newest first."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import AwareDatetime, BaseModel

from homecare.api import audit
from homecare.api.auth import Admin
from homecare.api.db import Conn
from homecare.api.errors import ERROR_RESPONSES
from homecare.api.pagination import Page, PageParams, page

router = APIRouter(prefix="/audit", tags=["audit"], responses=ERROR_RESPONSES)


class AuditOut(BaseModel):
    """AuditOut: one audit row."""

    id: int
    at: datetime
    actor: str
    action: str
    subject: str
    detail: dict[str, Any]


@router.get("", summary="The audit log, newest first")
def list_audit(
    principal: Admin,
    conn: Conn,
    params: Annotated[PageParams, Depends()],
    actor: Annotated[str | None, Query(max_length=200)] = None,
    action: Annotated[str | None, Query(max_length=200)] = None,
    subject: Annotated[str | None, Query(max_length=200)] = None,
    since: AwareDatetime | None = None,
    until: AwareDatetime | None = None,
) -> Page[AuditOut]:
    after = params.after("audit", (int,))
    rows = conn.execute(
        "SELECT id, at, actor, action, subject, detail FROM audit_log"
        " WHERE (%(actor)s::text IS NULL OR actor = %(actor)s)"
        " AND (%(action)s::text IS NULL OR action = %(action)s)"
        " AND (%(subject)s::text IS NULL OR subject = %(subject)s)"
        " AND (%(since)s::timestamptz IS NULL OR at >= %(since)s)"
        " AND (%(until)s::timestamptz IS NULL OR at < %(until)s)"
        " AND (%(after)s::bigint IS NULL OR id < %(after)s)"
        " ORDER BY id DESC LIMIT %(limit)s",
        {
            "actor": actor,
            "action": action,
            "subject": subject,
            "since": since,
            "until": until,
            "after": after[0] if after else None,
            "limit": params.limit + 1,
        },
    ).fetchall()
    kept, cursor = page(rows, params.limit, "audit", lambda r: (r[0],))
    # Reading the audit log is itself audited: it says who looked at which patients.
    audit.record(conn, principal, "audit.read", "audit", {"subject": subject, "actor": actor})
    return Page(
        data=[
            AuditOut(id=r[0], at=r[1], actor=r[2], action=r[3], subject=r[4], detail=r[5])
            for r in kept
        ],
        next_cursor=cursor,
    )
