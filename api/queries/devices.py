"""Devices: the registry with each device's current assignment, and assignment history."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import psycopg

from homecare.api.queries.row import Row

__all__ = ["AssignmentRow", "DeviceRow", "assignments", "get_device", "list_devices"]

_DEVICE = (
    "SELECT d.device_id, d.model, d.status, d.mqtt_password_hash IS NOT NULL, d.created_at,"
    " a.patient_id, a.valid_from FROM devices d"
    " LEFT JOIN device_assignments a ON a.device_id = d.device_id AND a.valid_to IS NULL"
)


class DeviceRow(Row):
    """DeviceRow: a device, whether it has credentials, and whom it measures now."""

    device_id: str
    model: str | None
    status: str
    has_credentials: bool
    created_at: datetime
    patient_id: uuid.UUID | None
    assigned_since: datetime | None


class AssignmentRow(Row):
    """AssignmentRow: one interval during which the device measured a patient."""

    id: int
    patient_id: uuid.UUID
    valid_from: datetime
    valid_to: datetime | None
    assigned_at: datetime


def get_device(conn: psycopg.Connection[Any], device_id: str) -> DeviceRow | None:
    """get_device is the device, or None."""
    row = conn.execute(_DEVICE + " WHERE d.device_id = %s", (device_id,)).fetchone()
    return DeviceRow.from_record(row) if row else None


def list_devices(
    conn: psycopg.Connection[Any],
    *,
    status: str | None,
    patient_id: uuid.UUID | None,
    after: str | None,
    limit: int,
) -> list[DeviceRow]:
    """list_devices lists devices by id."""
    rows = conn.execute(
        _DEVICE + " WHERE (%(status)s::text IS NULL OR d.status = %(status)s)"
        " AND (%(patient)s::uuid IS NULL OR a.patient_id = %(patient)s)"
        " AND (%(after)s::text IS NULL OR d.device_id > %(after)s)"
        " ORDER BY d.device_id LIMIT %(limit)s",
        {"status": status, "patient": patient_id, "after": after, "limit": limit},
    ).fetchall()
    return [DeviceRow.from_record(r) for r in rows]


def assignments(
    conn: psycopg.Connection[Any], device_id: str, *, after: int | None, limit: int
) -> list[AssignmentRow]:
    """assignments is the device's assignment history, newest first."""
    rows = conn.execute(
        "SELECT id, patient_id, valid_from, valid_to, assigned_at FROM device_assignments"
        " WHERE device_id = %s AND (%s::bigint IS NULL OR id < %s) ORDER BY id DESC LIMIT %s",
        (device_id, after, after, limit),
    ).fetchall()
    return [AssignmentRow.from_record(r) for r in rows]
