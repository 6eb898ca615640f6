"""Audit: who saw or changed what, and when — into the shared ``audit_log`` (0005).

Every read of a patient's data writes one row per patient read (``subject`` =
``patient/<id>``), so "who looked at this patient" is one index range on ``(subject, at)``;
a list that shows twenty patients writes twenty rows, in one statement. Every change writes a
row with what changed. Rows go in the request's own work: if the audit row cannot be written,
the answer is an error, never unaudited data.

``actor`` is the principal's ``user:<username>``; ``detail`` never carries names or values of
health data, only ids, filters and what changed in the record's own fields.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from homecare.api.accounts import Principal

__all__ = ["record", "record_reads"]


def record(
    conn: psycopg.Connection[Any],
    principal: Principal | str,
    action: str,
    subject: str,
    detail: dict[str, Any] | None = None,
) -> None:
    """record writes one audit row (``principal`` may be an actor string, e.g. ``cli:…``)."""
    actor = principal.actor if isinstance(principal, Principal) else principal
    conn.execute(
        "INSERT INTO audit_log (actor, action, subject, detail) VALUES (%s, %s, %s, %s)",
        (actor, action, subject, Jsonb(detail or {})),
    )


def record_reads(
    conn: psycopg.Connection[Any],
    principal: Principal,
    action: str,
    patient_ids: Iterable[uuid.UUID],
    detail: dict[str, Any] | None = None,
) -> None:
    """record_reads writes one ``action`` row per distinct patient whose data was read."""
    subjects = sorted({f"patient/{p}" for p in patient_ids})
    if not subjects:
        return
    conn.execute(
        "INSERT INTO audit_log (actor, action, subject, detail)"
        " SELECT %s, %s, s, %s FROM unnest(%s::text[]) AS s",
        (principal.actor, action, Jsonb(detail or {}), subjects),
    )
