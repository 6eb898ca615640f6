"""Readings: ``GET /patients/{id}/readings?type=&since=&until=&bucket=`` (docs/contracts.md).

Without ``bucket``, the stored readings in canonical units (with what the device sent); with
``bucket=hour`` or ``bucket=day``, the aggregates (count, mean, min, max per bucket and type),
read from the hourly/daily aggregate views — a 90-day chart is 90 rows per type, not thousands.
Buckets are UTC, as stored; the dashboard shows them in the care team's time zone. ``type``
may repeat (``type=systolic_bp&type=diastolic_bp``); ``since`` is inclusive, ``until``
exclusive, both RFC 3339 with an offset. For the patient's care team only.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from pydantic import AwareDatetime, BaseModel

from homecare import catalogue
from homecare.api import audit
from homecare.api.auth import Clinician
from homecare.api.db import Conn
from homecare.api.errors import ERROR_RESPONSES, BadRequest
from homecare.api.pagination import Page, PageParams, page
from homecare.api.queries import readings as q
from homecare.api.scope import check_patient
from homecare.api.vocab import Bucket, check_type

router = APIRouter(prefix="/patients", tags=["readings"], responses=ERROR_RESPONSES)


class ReadingOut(q.RawRow):
    """ReadingOut: one reading (value in the type's canonical UCUM unit)."""


class BucketOut(BaseModel):
    """BucketOut: the readings of one type in one UTC bucket (hour or day)."""

    bucket: datetime
    type: str
    unit: str
    n: int
    mean: float
    min: float
    max: float


@router.get("/{patient_id}/readings", summary="A patient's readings, raw or bucketed")
def list_readings(
    patient_id: uuid.UUID,
    principal: Clinician,
    conn: Conn,
    params: Annotated[PageParams, Depends()],
    type: Annotated[list[str] | None, Query(max_length=30)] = None,
    since: AwareDatetime | None = None,
    until: AwareDatetime | None = None,
    bucket: Bucket | None = None,
) -> Page[ReadingOut] | Page[BucketOut]:
    check_patient(conn, principal, patient_id)
    types = sorted({checked for t in type if (checked := check_type(t))}) if type else None
    if since is not None and until is not None and until <= since:
        raise BadRequest("until must be after since", code="invalid_range")
    detail = {"bucket": bucket, "types": types}
    if bucket is None:
        raw_after = params.after("readings", (datetime, str, str))
        rows = q.raw(
            conn,
            patient_id,
            types=types,
            since=since,
            until=until,
            after=raw_after,
            limit=params.limit + 1,
        )
        kept, cursor = page(rows, params.limit, "readings", lambda r: (r.time, r.type, r.device_id))
        audit.record_reads(conn, principal, "readings.read", [patient_id], detail)
        return Page[ReadingOut](data=[ReadingOut(**r.__dict__) for r in kept], next_cursor=cursor)
    kind = f"readings_{bucket}"
    bucket_after = params.after(kind, (datetime, str))
    buckets = q.bucketed(
        conn,
        patient_id,
        bucket,
        types=types,
        since=since,
        until=until,
        after=bucket_after,
        limit=params.limit + 1,
    )
    kept_b, cursor = page(buckets, params.limit, kind, lambda r: (r.bucket, r.type))
    audit.record_reads(conn, principal, "readings.read", [patient_id], detail)
    return Page[BucketOut](
        data=[
            BucketOut(
                bucket=r.bucket,
                type=r.type,
                unit=catalogue.lookup(r.type).canonical_unit,
                n=r.n,
                mean=r.mean,
                min=r.min_value,
                max=r.max_value,
            )
            for r in kept_b
        ],
        next_cursor=cursor,
    )
