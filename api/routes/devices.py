"""Devices: register (MQTT credentials shown once), rotate, revoke, assign, history — admin.

Credentials are made by ``broker.credentials``, which writes the password's hash and tells the
broker in one step: when ``POST /devices`` answers 201, the broker accepts exactly the
``mqtt_username`` / ``mqtt_password`` in the answer, and the device may publish only under
``homecare/v1/devices/<its id>/``. The password is in that answer and nowhere else (not in the
database, the audit log or the logs); a lost password is replaced by ``rotate``. Revocation is
final: the broker deletes the account and disconnects the device at once.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Request
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from homecare import store
from homecare.api import audit
from homecare.api.auth import Admin, Config
from homecare.api.db import Conn
from homecare.api.errors import ERROR_RESPONSES, ApiError, BadRequest, Conflict, NotFound
from homecare.api.pagination import Page, PageParams, page
from homecare.api.queries import devices as q
from homecare.broker import credentials as creds

router = APIRouter(prefix="/devices", tags=["devices"], responses=ERROR_RESPONSES)

DeviceId = Annotated[str, Path(pattern=r"^[A-Za-z0-9._-]{1,64}$")]


class DeviceCreate(BaseModel):
    """DeviceCreate: a device to register (its id is its MQTT username)."""

    model_config = ConfigDict(extra="forbid")

    device_id: str = Field(pattern=r"^[A-Za-z0-9._-]{1,64}$")
    model: str | None = Field(default=None, max_length=200)


class CredentialsOut(BaseModel):
    """CredentialsOut: the device's MQTT credentials — the password is shown this once."""

    device_id: str
    mqtt_username: str
    mqtt_password: str


class DeviceOut(q.DeviceRow):
    """DeviceOut: a device and whom it measures now."""


class AssignmentIn(BaseModel):
    """AssignmentIn: the device measures ``patient_id`` from ``since`` (default now)."""

    model_config = ConfigDict(extra="forbid")

    patient_id: uuid.UUID
    since: AwareDatetime | None = None


class AssignmentOut(BaseModel):
    """AssignmentOut: one interval of the device's assignment history."""

    device_id: str
    patient_id: uuid.UUID
    valid_from: datetime
    valid_to: datetime | None


class BrokerUnavailable(ApiError):
    """BrokerUnavailable: the broker could not be told; nothing was changed."""

    status = 503
    code = "broker_unavailable"


def _accounts(request: Request) -> creds.BrokerAccounts:
    accounts: creds.BrokerAccounts | None = request.app.state.config.broker
    if accounts is None:
        raise BrokerUnavailable("no broker administration is configured (HOMECARE_MQTT_ADMIN_URL)")
    return accounts


Accounts = Annotated[creds.BrokerAccounts, Depends(_accounts)]


def _translate(exc: creds.CredentialsError) -> ApiError:
    if isinstance(exc, creds.InvalidDeviceId):
        return BadRequest(str(exc), code="invalid_device_id")
    if isinstance(exc, creds.UnknownDevice):
        return NotFound(str(exc))
    if isinstance(exc, creds.DeviceRevoked):
        return Conflict(str(exc), code="device_revoked")
    if isinstance(exc, creds.CredentialsAlreadyIssued):
        return Conflict(str(exc), code="credentials_already_issued")
    if isinstance(exc, creds.BrokerUnavailable):
        return BrokerUnavailable(f"the broker could not be told; nothing changed: {exc}")
    return ApiError(str(exc))


def _out(row: q.DeviceRow) -> DeviceOut:
    return DeviceOut(**row.__dict__)


@router.post("", status_code=201, summary="Register a device; its MQTT credentials, once")
def register_device(
    body: DeviceCreate, principal: Admin, conn: Conn, accounts: Accounts
) -> CredentialsOut:
    try:
        issued = creds.issue_device_credentials(conn, body.device_id, body.model, accounts)
    except creds.CredentialsError as exc:
        raise _translate(exc) from None
    audit.record(
        conn, principal, "device.register", f"device/{body.device_id}", {"model": body.model}
    )
    return CredentialsOut(
        device_id=issued.device_id,
        mqtt_username=issued.mqtt_username,
        mqtt_password=issued.mqtt_password,
    )


@router.get("", summary="Devices, by id")
def list_devices(
    principal: Admin,
    conn: Conn,
    params: Annotated[PageParams, Depends()],
    status: Literal["active", "revoked"] | None = None,
    patient_id: uuid.UUID | None = None,
) -> Page[DeviceOut]:
    after = params.after("devices", (str,))
    rows = q.list_devices(
        conn,
        status=status,
        patient_id=patient_id,
        after=after[0] if after else None,
        limit=params.limit + 1,
    )
    kept, cursor = page(rows, params.limit, "devices", lambda r: (r.device_id,))
    return Page(data=[_out(r) for r in kept], next_cursor=cursor)


@router.get("/{device_id}", summary="One device")
def get_device(device_id: DeviceId, principal: Admin, conn: Conn) -> DeviceOut:
    row = q.get_device(conn, device_id)
    if row is None:
        raise NotFound(f"no device {device_id!r}")
    return _out(row)


@router.post("/{device_id}/rotate", summary="New MQTT password (the old one stops at once)")
def rotate(device_id: DeviceId, principal: Admin, conn: Conn, accounts: Accounts) -> CredentialsOut:
    try:
        issued = creds.rotate_device_credentials(conn, device_id, accounts)
    except creds.CredentialsError as exc:
        raise _translate(exc) from None
    audit.record(conn, principal, "device.rotate", f"device/{device_id}")
    return CredentialsOut(
        device_id=issued.device_id,
        mqtt_username=issued.mqtt_username,
        mqtt_password=issued.mqtt_password,
    )


@router.post("/{device_id}/revoke", summary="Revoke the device (final)")
def revoke(device_id: DeviceId, principal: Admin, conn: Conn, accounts: Accounts) -> DeviceOut:
    try:
        creds.revoke_device(conn, device_id, accounts)
    except creds.CredentialsError as exc:
        raise _translate(exc) from None
    audit.record(conn, principal, "device.revoke", f"device/{device_id}")
    row = q.get_device(conn, device_id)
    assert row is not None
    return _out(row)


@router.put("/{device_id}/assignment", summary="Assign the device to a patient from a time")
def assign(
    device_id: DeviceId, body: AssignmentIn, principal: Admin, conn: Conn, config: Config
) -> AssignmentOut:
    device = q.get_device(conn, device_id)
    if device is None:
        raise NotFound(f"no device {device_id!r}")
    if device.status == "revoked":
        raise Conflict(f"device {device_id!r} is revoked", code="device_revoked")
    since = body.since or config.clock()
    try:
        with conn.transaction():
            assignment = store.assign_device(conn, device_id, body.patient_id, since)
            audit.record(
                conn,
                principal,
                "device.assign",
                f"patient/{body.patient_id}",
                {"device_id": device_id, "since": since.isoformat()},
            )
    except store.UnknownPatient:
        raise NotFound(f"no patient {body.patient_id}") from None
    except store.UnknownDevice:
        raise NotFound(f"no device {device_id!r}") from None
    except store.AssignmentConflict as exc:
        raise Conflict(str(exc), code="assignment_conflict") from None
    return AssignmentOut(
        device_id=device_id,
        patient_id=assignment.patient_id,
        valid_from=assignment.valid_from,
        valid_to=assignment.valid_to,
    )


@router.get("/{device_id}/assignments", summary="The device's assignment history, newest first")
def assignment_history(
    device_id: DeviceId,
    principal: Admin,
    conn: Conn,
    params: Annotated[PageParams, Depends()],
) -> Page[AssignmentOut]:
    if q.get_device(conn, device_id) is None:
        raise NotFound(f"no device {device_id!r}")
    after = params.after("assignments", (int,))
    rows = q.assignments(conn, device_id, after=after[0] if after else None, limit=params.limit + 1)
    kept, cursor = page(rows, params.limit, "assignments", lambda r: (r.id,))
    return Page(
        data=[
            AssignmentOut(
                device_id=device_id,
                patient_id=r.patient_id,
                valid_from=r.valid_from,
                valid_to=r.valid_to,
            )
            for r in kept
        ],
        next_cursor=cursor,
    )
