"""Provision: enrol simulated patients and register and assign their devices.

The ingest only accepts readings from registered devices assigned to a patient at the
reading's time, so whatever publishes simulated traffic provisions it first, through the same
store functions an administrator's API calls use.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import psycopg

import store

__all__ = ["provision_devices"]


def provision_devices(
    conn: psycopg.Connection[Any],
    device_ids: Sequence[str],
    since: datetime,
    programs: Sequence[str] = ("hypertension",),
    care_team: str = "demo-team",
) -> int:
    """provision_devices gives each unassigned device its own new patient; returns how many."""
    assigned = {
        row[0]
        for row in conn.execute(
            "SELECT device_id FROM device_assignments"
            " WHERE device_id = ANY(%s) AND valid_to IS NULL",
            (list(device_ids),),
        )
    }
    created = 0
    for device_id in device_ids:
        if device_id in assigned:
            continue
        with conn.transaction():
            store.register_device(conn, device_id, model="simulated BP cuff")
            patient = store.create_patient(
                conn,
                display_name=f"Simulated patient {device_id}",
                programs=programs,
                care_team=care_team,
            )
            store.assign_device(conn, device_id, patient, since)
        created += 1
    return created
