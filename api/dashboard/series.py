"""Series: hour-by-hour readings of a few patients, from the hourly aggregate and, past what it
holds, from the raw readings — so a reading stored a second ago is on the page at once.

``readings_hourly`` is a continuous aggregate on TimescaleDB (its real-time part already covers
the newest hours) but, on plain PostgreSQL, a materialized view the scheduler refreshes once a
minute: a new patient's first readings, or the last minute of anyone's, are not in it yet. For
each (patient, type) the view's newest bucket in the window is its *edge*: that bucket and every
later one are recomputed from ``readings`` (index ``readings_patient_type_time``, a short range
scan per pair, forced by LATERAL) and replace the view's rows. A type with no bucket in the
window is read from ``readings`` for the whole window. Late data for an hour older than the edge
shows at the next refresh.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg

__all__ = ["Bucket", "hourly"]

_BIN = "date_bin(INTERVAL '1 hour', r.time, TIMESTAMPTZ '2000-01-01 00:00:00+00')"


@dataclass(frozen=True)
class Bucket:
    """Bucket: one hour of one patient's readings of one type."""

    patient_id: uuid.UUID
    type: str
    at: datetime
    n: int
    mean: float
    low: float
    high: float


def hourly(
    conn: psycopg.Connection[Any],
    pairs: Iterable[tuple[uuid.UUID, str]],
    since: datetime,
    until: datetime,
) -> dict[tuple[uuid.UUID, str], list[Bucket]]:
    """hourly is every hour bucket in [since, until] of each (patient, type) pair, oldest
    first; pairs with no reading are absent."""
    pairs = list(dict.fromkeys(pairs))
    if not pairs:
        return {}
    patients, types = [p for p, _ in pairs], [t for _, t in pairs]
    found: dict[tuple[uuid.UUID, str], dict[datetime, Bucket]] = {}
    for row in conn.execute(
        "SELECT e.patient_id, e.type, h.bucket, h.n, h.mean, h.min_value, h.max_value"
        " FROM unnest(%s::uuid[], %s::text[]) AS e(patient_id, type) CROSS JOIN LATERAL"
        " (SELECT bucket, n, mean, min_value, max_value FROM readings_hourly"
        " WHERE patient_id = e.patient_id AND type = e.type AND bucket >= %s AND bucket <= %s) h",
        (patients, types, since, until),
    ):
        found.setdefault((row[0], row[1]), {})[row[2]] = _bucket(row)
    edges = [max(found[pair]) if pair in found else since for pair in pairs]
    for row in conn.execute(
        "SELECT e.patient_id, e.type, r.bucket, r.n, r.mean, r.low, r.high"
        " FROM unnest(%s::uuid[], %s::text[], %s::timestamptz[]) AS e(patient_id, type, edge)"
        f" CROSS JOIN LATERAL (SELECT {_BIN} AS bucket, count(*) AS n, avg(r.value) AS mean,"
        " min(r.value) AS low, max(r.value) AS high FROM readings r"
        " WHERE r.patient_id = e.patient_id AND r.type = e.type AND r.time >= e.edge"
        " AND r.time <= %s GROUP BY 1) r",
        (patients, types, edges, until),
    ):
        found.setdefault((row[0], row[1]), {})[row[2]] = _bucket(row)
    return {pair: [b[at] for at in sorted(b)] for pair, b in found.items()}


def _bucket(row: tuple[Any, ...]) -> Bucket:
    patient_id, type_name, at, n, mean, low, high = row
    return Bucket(patient_id, type_name, at, int(n), float(mean), float(low), float(high))
