"""Registry: the anomaly models in the database (table ``anomaly_models``, migration 0013).

When a model judges: ``in_force_from``
--------------------------------------
Replay must give exactly the stored findings, so the model that judges an instant must be a
function of the instant and the registry alone, and must not change once a live pass has
judged that instant. Models are chosen by event time (``PatientContext.model(kind, at)``: the
newest version whose ``in_force_from`` is at or before ``at``) and the registry is append-only
(a trigger refuses updates and deletes). What remains is to pick ``in_force_from`` so that no
instant already judged live falls at or after it:

    in_force_from = greatest(evaluated_until of the patient(s),
                             newest event time of their stored readings,
                             trained_until) + 1 µs

``rule_progress.evaluated_until`` is the furthest instant any live pass has evaluated (a pass
evaluates up to its clock plus the future skew, and progress keeps the greatest), so every
instant judged before registration lies before ``in_force_from`` and keeps the model it was
judged with; a late reading re-evaluates them with that same model, as replay does. The newest
reading bounds what was stored but not yet evaluated (so the model never judges a reading it may
have been trained on), and ``trained_until`` keeps a model's judgements out of sample.

Registration and a live pass must not interleave, or a pass could judge an instant past the
``in_force_from`` just computed with the previous model. So registration takes the same lock
the pass holds: a personal model, the patient's advisory lock (the rules worker's claim); a
cohort model, its program's lock in exclusive mode, which every pass takes in shared mode
before it reads the registry (``lock_program``). In READ COMMITTED a statement sees what was
committed when it began, so the lock is taken in a statement of its own, before the read.

A cohort model is keyed by a patient's first program (``programs[0]``), as the cohort benches
do; a patient whose first program changes is judged by the new program's cohort models from
their own ``in_force_from`` on, which may precede instants already judged: like a change of
programs for the rule packs, such a change is a change of history that replay reports.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any, NamedTuple

import psycopg
from psycopg.types.json import Jsonb

from homecare.rules.anomaly import Detector, Scope

__all__ = [
    "ModelRow",
    "StoredVersion",
    "blobs",
    "list_models",
    "lock_program",
    "register",
    "versions_for",
]

_PATIENT_LOCK = "SELECT pg_advisory_xact_lock(hashtextextended(%s, 7))"
_PROGRAM_KEY = "hashtextextended('anomaly-cohort:' || %s, 7)"

_ROW_COLUMNS = (
    "id, model_id, kind, detector_version, scope, patient_id, program, version, trained_from,"
    " trained_until, instants, data_digest, metrics, in_force_from, created_at, trained_by"
)


class ModelRow(NamedTuple):
    """ModelRow: one registered model version, without its blob."""

    id: int
    model_id: str
    kind: str
    detector_version: int
    scope: Scope
    patient_id: uuid.UUID | None
    program: str | None
    version: int
    trained_from: datetime
    trained_until: datetime
    instants: int
    data_digest: str
    metrics: dict[str, Any]
    in_force_from: datetime
    created_at: datetime
    trained_by: str


class StoredVersion(NamedTuple):
    """StoredVersion: what a rules pass needs to know of a version before it reads a blob."""

    model_id: str
    kind: str
    scope: Scope
    in_force_from: datetime


def lock_program(conn: psycopg.Connection[Any], program: str) -> None:
    """lock_program holds ``program``'s cohort lock in shared mode until the transaction ends,
    so no cohort model of it is registered while this pass judges with the registry it read."""
    conn.execute(f"SELECT pg_advisory_xact_lock_shared({_PROGRAM_KEY})", (program,))


def versions_for(
    conn: psycopg.Connection[Any], patient_id: uuid.UUID, program: str | None
) -> list[StoredVersion]:
    """versions_for: the patient's personal versions and their cohort's, by in_force_from."""
    rows = conn.execute(
        "SELECT model_id, kind, scope, in_force_from FROM anomaly_models"
        " WHERE (scope = 'personal' AND patient_id = %s)"
        " OR (scope = 'cohort' AND program = %s)"
        " ORDER BY in_force_from, id",
        (patient_id, program),
    ).fetchall()
    return [StoredVersion(*row) for row in rows]


def blobs(
    conn: psycopg.Connection[Any], keys: Iterable[tuple[Scope, str]]
) -> dict[tuple[Scope, str], tuple[str, bytes]]:
    """blobs: the detector kind and stored blob of each (scope, model id) the registry holds."""
    wanted = set(keys)
    rows = conn.execute(
        "SELECT scope, model_id, kind, blob FROM anomaly_models WHERE model_id = ANY(%s)",
        ([model_id for _, model_id in wanted],),
    ).fetchall()
    return {(r[0], r[1]): (r[2], bytes(r[3])) for r in rows if (r[0], r[1]) in wanted}


def register(
    conn: psycopg.Connection[Any],
    model: Detector,
    *,
    subject: uuid.UUID | str,
    data_digest: str,
    metrics: Mapping[str, Any],
    trained_by: str,
) -> ModelRow | None:
    """register stores ``model`` as the next version for its kind and subject (a patient id
    for a personal model, a program for a cohort one); None when the newest version was trained
    on the same rows, or this very model is already registered (a rerun changes nothing)."""
    info = model.info
    personal = info.scope == "personal"
    if personal != isinstance(subject, uuid.UUID):
        wanted = "patient id" if personal else "program"
        raise ValueError(f"a {info.scope} model's subject is a {wanted}")
    blob = model.to_bytes()
    column = "patient_id" if personal else "program"
    with conn.transaction():
        if personal:
            conn.execute(_PATIENT_LOCK, (str(subject),))
            bound = conn.execute(
                "SELECT greatest((SELECT evaluated_until FROM rule_progress WHERE patient_id = %s),"
                " (SELECT max(time) FROM readings WHERE patient_id = %s))",
                (subject, subject),
            ).fetchone()
        else:
            conn.execute(f"SELECT pg_advisory_xact_lock({_PROGRAM_KEY})", (subject,))
            bound = conn.execute(
                "SELECT greatest("
                "(SELECT max(g.evaluated_until) FROM rule_progress g"
                "  JOIN patients p ON p.id = g.patient_id WHERE p.programs[1] = %s),"
                "(SELECT max(r.time) FROM readings r"
                "  JOIN patients p ON p.id = r.patient_id WHERE p.programs[1] = %s))",
                (subject, subject),
            ).fetchone()
        newest = conn.execute(
            f"SELECT version, data_digest FROM anomaly_models WHERE scope = %s AND {column} = %s"
            " AND kind = %s ORDER BY version DESC LIMIT 1",
            (info.scope, subject, info.kind),
        ).fetchone()
        if newest is not None and newest[1] == data_digest:
            return None
        if conn.execute(
            "SELECT 1 FROM anomaly_models WHERE scope = %s AND model_id = %s",
            (info.scope, info.model_id),
        ).fetchone():
            return None
        stored = bound[0] if bound is not None else None
        start = max(t for t in (stored, info.trained_until) if t is not None)
        row = conn.execute(
            "INSERT INTO anomaly_models (model_id, kind, detector_version, scope, patient_id,"
            " program, version, trained_from, trained_until, instants, data_digest, metrics, blob,"
            " in_force_from, trained_by)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s,"
            " %s::timestamptz + interval '1 microsecond', %s)"
            f" RETURNING {_ROW_COLUMNS}",
            (
                info.model_id,
                info.kind,
                info.version,
                info.scope,
                subject if personal else None,
                None if personal else subject,
                (newest[0] if newest else 0) + 1,
                info.trained_from,
                info.trained_until,
                info.instants,
                data_digest,
                Jsonb(dict(metrics)),
                blob,
                start,
                trained_by,
            ),
        ).fetchone()
    assert row is not None
    return ModelRow(*row)


def list_models(
    conn: psycopg.Connection[Any],
    *,
    patient_id: uuid.UUID | None = None,
    program: str | None = None,
) -> list[ModelRow]:
    """list_models: registered versions (all, or one patient's personal ones, or one program's
    cohort ones), oldest first."""
    rows = conn.execute(
        f"SELECT {_ROW_COLUMNS} FROM anomaly_models"
        " WHERE (%s::uuid IS NULL OR patient_id = %s) AND (%s::text IS NULL OR program = %s)"
        " ORDER BY scope, program NULLS LAST, patient_id, kind, version",
        (patient_id, patient_id, program, program),
    ).fetchall()
    return [ModelRow(*row) for row in rows]
