"""Readings: a patient's raw readings, or their hourly/daily aggregates.

The aggregates are ``store.AGGREGATE_VIEWS`` — continuous aggregates on TimescaleDB, ordinary
materialized views refreshed by the scheduler on plain PostgreSQL; both have the same columns
and UTC buckets, so this module runs the same SQL on either engine.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import psycopg
from psycopg import sql

from homecare.api.queries.row import Row

__all__ = ["BucketRow", "RawRow", "bucketed", "raw"]

VIEWS = {"hour": "readings_hourly", "day": "readings_daily"}


class RawRow(Row):
    """RawRow is one stored reading."""

    time: datetime
    type: str
    value: float
    unit: str
    device_id: str
    original_value: float
    original_unit: str
    on_oxygen: bool | None
    consciousness: str | None


class BucketRow(Row):
    """BucketRow is one (bucket, type) aggregate."""

    bucket: datetime
    type: str
    n: int
    mean: float
    min_value: float
    max_value: float


def raw(
    conn: psycopg.Connection[Any],
    patient_id: uuid.UUID,
    *,
    types: list[str] | None,
    since: datetime | None,
    until: datetime | None,
    after: tuple[datetime, str, str] | None,
    limit: int,
) -> list[RawRow]:
    """raw lists readings with since <= time < until by (time, type, device), after a key."""
    t, ty, dev = after if after else (None, None, None)
    rows = conn.execute(
        "SELECT time, type, value, unit, device_id, original_value, original_unit, on_oxygen,"
        " consciousness FROM readings WHERE patient_id = %(p)s"
        " AND (%(types)s::text[] IS NULL OR type = ANY(%(types)s))"
        " AND (%(since)s::timestamptz IS NULL OR time >= %(since)s)"
        " AND (%(until)s::timestamptz IS NULL OR time < %(until)s)"
        " AND (%(t)s::timestamptz IS NULL OR (time, type, device_id) > (%(t)s, %(ty)s, %(dev)s))"
        " ORDER BY time, type, device_id LIMIT %(limit)s",
        {
            "p": patient_id,
            "types": types,
            "since": since,
            "until": until,
            "t": t,
            "ty": ty,
            "dev": dev,
            "limit": limit,
        },
    ).fetchall()
    return [RawRow.from_record(r) for r in rows]


def bucketed(
    conn: psycopg.Connection[Any],
    patient_id: uuid.UUID,
    bucket: str,
    *,
    types: list[str] | None,
    since: datetime | None,
    until: datetime | None,
    after: tuple[datetime, str] | None,
    limit: int,
) -> list[BucketRow]:
    """bucketed lists the aggregate rows of buckets starting in [since, until)."""
    b, ty = after if after else (None, None)
    query = sql.SQL(
        "SELECT bucket, type, n, mean, min_value, max_value FROM {view} WHERE patient_id = %(p)s"
        " AND (%(types)s::text[] IS NULL OR type = ANY(%(types)s))"
        " AND (%(since)s::timestamptz IS NULL OR bucket >= %(since)s)"
        " AND (%(until)s::timestamptz IS NULL OR bucket < %(until)s)"
        " AND (%(b)s::timestamptz IS NULL OR (bucket, type) > (%(b)s, %(ty)s))"
        " ORDER BY bucket, type LIMIT %(limit)s"
    ).format(view=sql.Identifier(VIEWS[bucket]))
    rows = conn.execute(
        query,
        {
            "p": patient_id,
            "types": types,
            "since": since,
            "until": until,
            "b": b,
            "ty": ty,
            "limit": limit,
        },
    ).fetchall()
    return [BucketRow.from_record(r) for r in rows]
