"""Provision: enrol simulated patients, register and assign their devices, give them credentials.

The ingest only accepts readings from registered devices assigned to a patient at the
reading's time, and the broker only accepts devices with their own credentials, so whatever
publishes simulated traffic provisions it first, through the same store functions and the same
``broker.credentials`` operations an administrator's API calls use.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import psycopg

from homecare import store
from homecare.broker.credentials import (
    BrokerAccounts,
    CredentialsAlreadyIssued,
    issue_device_credentials,
    rotate_device_credentials,
)
from homecare.devices.sim import Enrolment, EnrolmentAssignment

__all__ = ["issue_device_passwords", "provision_devices", "provision_simulation"]


def issue_device_passwords(
    conn: psycopg.Connection[Any], device_ids: Sequence[str], accounts: BrokerAccounts
) -> dict[str, str]:
    """issue_device_passwords gives each device its own broker password; returns them by id.

    A device that already has credentials (a cohort provisioned by an earlier run) is rotated:
    its clear password is kept nowhere, so a new one is the only way to publish as it again.
    """
    passwords: dict[str, str] = {}
    for device_id in device_ids:
        try:
            creds = issue_device_credentials(conn, device_id, None, accounts)
        except CredentialsAlreadyIssued:
            creds = rotate_device_credentials(conn, device_id, accounts)
        passwords[device_id] = creds.mqtt_password
    return passwords


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


def provision_simulation(
    conn: psycopg.Connection[Any], enrolment: Enrolment, care_team: str = "simulated"
) -> int:
    """provision_simulation enrols a simulated cohort; returns how many patients it created.

    Each simulated patient becomes a store patient whose display name is its simulation key
    (the labels' patient id), with its devices registered and assigned from the plan's
    enrolment time; then device handovers close the donor's interval and open the receiver's.
    Idempotent: a patient whose devices are already assigned is found again, not duplicated.
    """
    first_owner = {
        device_id: patient_id
        for device_id, patient_id in conn.execute(
            "SELECT DISTINCT ON (device_id) device_id, patient_id FROM device_assignments"
            " WHERE device_id = ANY(%s) ORDER BY device_id, valid_from",
            ([d for d, _ in enrolment.devices],),
        )
    }
    models = dict(enrolment.devices)
    own: dict[str, list[EnrolmentAssignment]] = {}
    handovers: list[EnrolmentAssignment] = []
    for assignment in enrolment.assignments:
        if assignment.handover:
            handovers.append(assignment)
        else:
            own.setdefault(assignment.patient_key, []).append(assignment)
    ids: dict[str, uuid.UUID] = {}
    created = 0
    for patient in enrolment.patients:
        assignments = own.get(patient.key, [])
        known = [first_owner[a.device_id] for a in assignments if a.device_id in first_owner]
        if known:
            ids[patient.key] = known[0]
            continue
        with conn.transaction():
            patient_id = store.create_patient(
                conn,
                display_name=patient.key,
                programs=patient.programs,
                birth_date=patient.birth_date,
                care_team=care_team,
                hypercapnic=patient.hypercapnic,
            )
            for assignment in assignments:
                store.register_device(
                    conn, assignment.device_id, model=models[assignment.device_id]
                )
                store.assign_device(conn, assignment.device_id, patient_id, assignment.since)
        ids[patient.key] = patient_id
        created += 1
    for handover in handovers:
        current = conn.execute(
            "SELECT patient_id FROM device_assignments WHERE device_id = %s AND valid_to IS NULL",
            (handover.device_id,),
        ).fetchone()
        receiver = ids[handover.patient_key]
        if current is None or current[0] != receiver:
            store.assign_device(conn, handover.device_id, receiver, handover.since)
    return created
