"""Cohort: de-identified data for analysts — no names, no birth dates, no patient ids.

Each patient appears under the analytics layer's pseudonym (``analytics.deid``): ``P-`` and 12
hex digits of HMAC-SHA256 over the patient's id, keyed with ``HOMECARE_PSEUDONYM_KEY``, so a
patient has the same pseudonym here, in every notebook and in every API process, and nobody
without the key can link it back. The HMAC is computed in SQL (from the key's inner and outer
pads, made here), so lists sort and page by pseudonym in the database. Ages come in the
analytics layer's bands (top-coded at 90+), enrolment dates as months. Reading and alert times
stay exact: trends and adherence need them. This is pseudonymised data, not anonymised — it
stays health data under access control, and every cohort read is audited. Cursors carry only
pseudonyms, buckets and alert numbers.
"""

from __future__ import annotations

import hashlib
from datetime import date, datetime
from typing import Annotated

from fastapi import APIRouter, Depends
from psycopg import sql
from pydantic import AwareDatetime, BaseModel

from homecare import catalogue
from homecare.analytics.deid import age_band, age_on
from homecare.api import audit
from homecare.api.auth import Analyst, Config
from homecare.api.config import ApiConfig
from homecare.api.db import Conn
from homecare.api.errors import ERROR_RESPONSES, ApiError
from homecare.api.pagination import Page, PageParams, page
from homecare.api.queries.readings import VIEWS
from homecare.api.vocab import Bucket, Program, check_type

_DOMAIN = b"homecare/patient/v1:"  # analytics.deid's domain separation, byte for byte
_PSEUDONYM = (
    "'P-' || substr(encode(sha256(%(opad)s::bytea || sha256(%(ipad)s::bytea || %(domain)s::bytea"
    " || uuid_send(p.id))), 'hex'), 1, 12)"
)


class NoPseudonymKey(ApiError):
    """NoPseudonymKey: no HOMECARE_PSEUDONYM_KEY is configured, so no cohort data is served."""

    status = 503
    code = "no_pseudonym_key"


def pseudonym_params(config: ApiConfig) -> dict[str, bytes]:
    """pseudonym_params are the HMAC's padded keys (RFC 2104) for the SQL pseudonym."""
    if config.pseudonym_key is None:
        raise NoPseudonymKey("HOMECARE_PSEUDONYM_KEY is not set; cohort data is not served")
    key = config.pseudonym_key.encode()
    if len(key) > 64:
        key = hashlib.sha256(key).digest()
    key = key.ljust(64, b"\0")
    return {
        "ipad": bytes(b ^ 0x36 for b in key),
        "opad": bytes(b ^ 0x5C for b in key),
        "domain": _DOMAIN,
    }


def _age_band(birth_date: date | None, today: date) -> str | None:
    return age_band(age_on(birth_date, today) if birth_date else None)


router = APIRouter(prefix="/cohort", tags=["cohort"], responses=ERROR_RESPONSES)


class CohortPatient(BaseModel):
    """CohortPatient: one patient, de-identified."""

    pseudonym: str
    programs: list[str]
    care_team: str | None
    age_band: str | None
    hypercapnic: bool
    enrolled_month: str


class CohortBucket(BaseModel):
    """CohortBucket: one patient's readings of one type in one UTC bucket."""

    pseudonym: str
    bucket: datetime
    type: str
    unit: str
    n: int
    mean: float
    min: float
    max: float


class CohortAlert(BaseModel):
    """CohortAlert: one alert, de-identified (no summary or evidence: they may name values
    and times that, joined with other data, single a person out)."""

    alert: int
    pseudonym: str
    rule_id: str
    severity: str
    status: str
    outcome: str | None
    late: bool
    fired_count: int
    opened_at: datetime
    acknowledged_at: datetime | None
    resolved_at: datetime | None


@router.get("/patients", summary="Patients, de-identified")
def cohort_patients(
    principal: Analyst,
    conn: Conn,
    config: Config,
    params: Annotated[PageParams, Depends()],
    program: Program | None = None,
) -> Page[CohortPatient]:
    after = params.after("cohort_patients", (str,))
    rows = conn.execute(
        f"SELECT * FROM (SELECT {_PSEUDONYM} AS pseudonym, p.programs, p.care_team,"
        " p.birth_date, p.hypercapnic, p.created_at FROM patients p"
        " WHERE %(program)s::text IS NULL OR %(program)s = ANY(p.programs)) x"
        " WHERE %(after)s::text IS NULL OR pseudonym > %(after)s"
        " ORDER BY pseudonym LIMIT %(limit)s",
        {
            **pseudonym_params(config),
            "program": program,
            "after": after[0] if after else None,
            "limit": params.limit + 1,
        },
    ).fetchall()
    kept, cursor = page(rows, params.limit, "cohort_patients", lambda r: (r[0],))
    today = config.clock().date()
    audit.record(conn, principal, "cohort.read", "cohort/patients", {"program": program})
    return Page(
        data=[
            CohortPatient(
                pseudonym=r[0],
                programs=list(r[1]),
                care_team=r[2],
                age_band=_age_band(r[3], today),
                hypercapnic=r[4],
                enrolled_month=r[5].strftime("%Y-%m"),
            )
            for r in kept
        ],
        next_cursor=cursor,
    )


@router.get("/readings", summary="Bucketed readings per patient, de-identified")
def cohort_readings(
    principal: Analyst,
    conn: Conn,
    config: Config,
    params: Annotated[PageParams, Depends()],
    type: str,
    bucket: Bucket = "day",
    program: Program | None = None,
    since: AwareDatetime | None = None,
    until: AwareDatetime | None = None,
) -> Page[CohortBucket]:
    check_type(type)
    after = params.after(f"cohort_readings_{bucket}", (datetime, str))
    query = sql.SQL(
        "WITH p AS (SELECT p.id, " + _PSEUDONYM + " AS pseudonym FROM patients p"
        " WHERE %(program)s::text IS NULL OR %(program)s = ANY(p.programs))"
        " SELECT a.bucket, p.pseudonym, a.n, a.mean, a.min_value, a.max_value"
        " FROM {view} a JOIN p ON p.id = a.patient_id WHERE a.type = %(type)s"
        " AND (%(since)s::timestamptz IS NULL OR a.bucket >= %(since)s)"
        " AND (%(until)s::timestamptz IS NULL OR a.bucket < %(until)s)"
        " AND (%(b)s::timestamptz IS NULL OR (a.bucket, p.pseudonym) > (%(b)s, %(ps)s::text))"
        " ORDER BY a.bucket, p.pseudonym LIMIT %(limit)s"
    ).format(view=sql.Identifier(VIEWS[bucket]))
    rows = conn.execute(
        query,
        {
            **pseudonym_params(config),
            "program": program,
            "type": type,
            "since": since,
            "until": until,
            "b": after[0] if after else None,
            "ps": after[1] if after else None,
            "limit": params.limit + 1,
        },
    ).fetchall()
    kind = f"cohort_readings_{bucket}"
    kept, cursor = page(rows, params.limit, kind, lambda r: (r[0], r[1]))
    unit = catalogue.lookup(type).canonical_unit
    audit.record(
        conn,
        principal,
        "cohort.read",
        "cohort/readings",
        {"type": type, "bucket": bucket, "program": program},
    )
    return Page(
        data=[
            CohortBucket(
                pseudonym=r[1],
                bucket=r[0],
                type=type,
                unit=unit,
                n=r[2],
                mean=r[3],
                min=r[4],
                max=r[5],
            )
            for r in kept
        ],
        next_cursor=cursor,
    )


@router.get("/alerts", summary="Alerts, de-identified, by alert number")
def cohort_alerts(
    principal: Analyst,
    conn: Conn,
    config: Config,
    params: Annotated[PageParams, Depends()],
    program: Program | None = None,
    since: AwareDatetime | None = None,
) -> Page[CohortAlert]:
    after = params.after("cohort_alerts", (int,))
    rows = conn.execute(
        f"SELECT a.id, {_PSEUDONYM}, a.rule_id, a.severity, a.status, a.outcome, a.late,"
        " a.fired_count, a.opened_at, a.acknowledged_at, a.resolved_at"
        " FROM alerts a JOIN patients p ON p.id = a.patient_id"
        " WHERE (%(program)s::text IS NULL OR %(program)s = ANY(p.programs))"
        " AND (%(since)s::timestamptz IS NULL OR a.opened_at >= %(since)s)"
        " AND (%(after)s::bigint IS NULL OR a.id > %(after)s)"
        " ORDER BY a.id LIMIT %(limit)s",
        {
            **pseudonym_params(config),
            "program": program,
            "since": since,
            "after": after[0] if after else None,
            "limit": params.limit + 1,
        },
    ).fetchall()
    kept, cursor = page(rows, params.limit, "cohort_alerts", lambda r: (r[0],))
    audit.record(conn, principal, "cohort.read", "cohort/alerts", {"program": program})
    keys = (
        "alert",
        "pseudonym",
        "rule_id",
        "severity",
        "status",
        "outcome",
        "late",
        "fired_count",
        "opened_at",
        "acknowledged_at",
        "resolved_at",
    )
    return Page(
        data=[CohortAlert(**dict(zip(keys, r, strict=True))) for r in kept],
        next_cursor=cursor,
    )
