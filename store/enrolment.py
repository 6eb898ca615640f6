"""Enrolment: patients, devices and which device measures whom, over time.

The assignment history is the ground truth for attributing readings: a reading belongs to the
patient its device was assigned to at the reading's event time. So an assignment never
overwrites the previous one; it closes the open interval and opens a new one in one
transaction, under a row lock on the device, which keeps intervals from overlapping even when
two administrators reassign the same device at once.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg

from homecare.store.errors import Rejected

__all__ = [
    "AssignmentConflict",
    "UnknownDevice",
    "UnknownPatient",
    "assign_device",
    "create_patient",
    "register_device",
]


class UnknownDevice(Rejected):
    """UnknownDevice: no device with this id is registered."""

    def __init__(self, device_id: str) -> None:
        super().__init__(f"unknown device {device_id!r}", None)


class UnknownPatient(Rejected):
    """UnknownPatient: no patient with this id exists."""

    def __init__(self, patient_id: uuid.UUID) -> None:
        super().__init__(f"unknown patient {patient_id}", None)


class AssignmentConflict(Rejected):
    """AssignmentConflict: the new interval would start before the current one."""

    def __init__(self, message: str) -> None:
        super().__init__(message, None)


@dataclass(frozen=True)
class Assignment:
    """Assignment is one interval during which a device measured one patient."""

    device_id: str
    patient_id: uuid.UUID
    valid_from: datetime
    valid_to: datetime | None


def create_patient(
    conn: psycopg.Connection[Any],
    *,
    display_name: str,
    programs: Sequence[str],
    birth_date: Any = None,
    care_team: str | None = None,
    hypercapnic: bool = False,
) -> uuid.UUID:
    """create_patient enrols a patient in programs and returns the new id."""
    row = conn.execute(
        "INSERT INTO patients (display_name, birth_date, programs, care_team, hypercapnic)"
        " VALUES (%s, %s, %s, %s, %s) RETURNING id",
        (display_name, birth_date, list(programs), care_team, hypercapnic),
    ).fetchone()
    assert row is not None
    return row[0]  # type: ignore[no-any-return]


def register_device(
    conn: psycopg.Connection[Any],
    device_id: str,
    *,
    model: str | None = None,
    mqtt_password_hash: str | None = None,
) -> None:
    """register_device adds a device (idempotent for the same id: the model is updated)."""
    conn.execute(
        "INSERT INTO devices (device_id, model, mqtt_password_hash) VALUES (%s, %s, %s)"
        " ON CONFLICT (device_id) DO UPDATE SET model = EXCLUDED.model,"
        " mqtt_password_hash = coalesce(EXCLUDED.mqtt_password_hash,"
        " devices.mqtt_password_hash)",
        (device_id, model, mqtt_password_hash),
    )


def assign_device(
    conn: psycopg.Connection[Any], device_id: str, patient_id: uuid.UUID, since: datetime
) -> Assignment:
    """assign_device makes ``patient_id`` the device's patient from ``since`` on.

    The open interval (if any) is closed at ``since``; starting before it is a conflict, since
    it would rewrite whom past readings belong to.
    """
    with conn.transaction():
        device = conn.execute(
            "SELECT device_id FROM devices WHERE device_id = %s FOR UPDATE", (device_id,)
        ).fetchone()
        if device is None:
            raise UnknownDevice(device_id)
        if conn.execute("SELECT 1 FROM patients WHERE id = %s", (patient_id,)).fetchone() is None:
            raise UnknownPatient(patient_id)
        current = conn.execute(
            "SELECT id, patient_id, valid_from FROM device_assignments"
            " WHERE device_id = %s AND valid_to IS NULL",
            (device_id,),
        ).fetchone()
        if current is not None:
            current_id, current_patient, current_from = current
            if current_patient == patient_id:
                return Assignment(device_id, patient_id, current_from, None)
            if since <= current_from:
                raise AssignmentConflict(
                    f"device {device_id!r} is assigned since {current_from.isoformat()};"
                    f" a new assignment must start after it, not at {since.isoformat()}"
                )
            conn.execute(
                "UPDATE device_assignments SET valid_to = %s WHERE id = %s", (since, current_id)
            )
        else:
            last_end = conn.execute(
                "SELECT max(valid_to) FROM device_assignments WHERE device_id = %s",
                (device_id,),
            ).fetchone()
            if last_end is not None and last_end[0] is not None and since < last_end[0]:
                raise AssignmentConflict(
                    f"device {device_id!r} was assigned until {last_end[0].isoformat()};"
                    f" a new assignment cannot start at {since.isoformat()}"
                )
        conn.execute(
            "INSERT INTO device_assignments (device_id, patient_id, valid_from)"
            " VALUES (%s, %s, %s)",
            (device_id, patient_id, since),
        )
    return Assignment(device_id, patient_id, since, None)
