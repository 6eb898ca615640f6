"""Device credentials: what the API issues is exactly what the broker accepts.

A device logs in to the broker with its device id as MQTT username and a password issued
here, and may publish only to ``homecare/v1/devices/<its id>/readings`` and ``…/status``
(docs/contracts.md). The three
operations an administrator has — issue (on registration), rotate, revoke — each change the
database and the broker together:

- the database is the source of truth: ``devices.mqtt_password_hash`` holds the password's
  hash in Mosquitto's own PBKDF2-SHA512 ``$7$`` format (never the password), ``devices.status``
  says whether the device is ``active`` or ``revoked``;
- the broker is told at once through :class:`BrokerAccounts` (Mosquitto's dynamic-security
  plugin, administered over MQTT, so the API need not run on the broker's host);
- ``sync`` (:mod:`broker.sync`) rebuilds a broker's accounts from the database, for a
  broker that lost its state or drifted.

Each operation is all-or-nothing from the caller's side: it writes the database inside
``conn.transaction()``, tells the broker, and only then lets the transaction end; if the
broker cannot be told, the transaction rolls back and :class:`BrokerUnavailable` is raised, so
the database never claims a credential the broker does not have. (If the caller's *own* outer
transaction later rolls back, the broker is ahead of the database: call these in autocommit
mode or commit at once; ``sync`` repairs such drift.)

Errors::

    CredentialsError
     ├── InvalidDeviceId            not [A-Za-z0-9._-]{1,64}, or a reserved service name
     ├── UnknownDevice              rotate/revoke of a device that was never registered
     ├── DeviceRevoked              issue/rotate of a revoked device (revocation is final)
     ├── CredentialsAlreadyIssued   issue for a device that has credentials: rotate instead
     └── BrokerUnavailable          the broker could not be told; nothing was changed
          ├── BrokerNotConfigured   no admin account configured (HOMECARE_MQTT_ADMIN_URL)
          └── BrokerRefused         the broker answered the command with an error
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, field
from typing import Any, Protocol

import psycopg

from homecare.broker.dynsec import (
    BrokerNotConfigured,
    BrokerRefused,
    BrokerUnavailable,
    CredentialsError,
)
from homecare.broker.hashing import hash_password

__all__ = [
    "RESERVED_PREFIX",
    "AccountsAdmin",
    "BrokerAccounts",
    "BrokerNotConfigured",
    "BrokerRefused",
    "BrokerUnavailable",
    "CredentialsAlreadyIssued",
    "CredentialsError",
    "DeviceCredentials",
    "DeviceRevoked",
    "InvalidDeviceId",
    "UnknownDevice",
    "issue_device_credentials",
    "revoke_device",
    "rotate_device_credentials",
]

_DEVICE_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
# Service accounts (homecare-ingest, homecare-admin) live in the same username space as devices;
# a device registered as "homecare-admin" would take over the broker's administration. So no
# device id may start with this prefix.
RESERVED_PREFIX = "homecare-"
# 32 random bytes: 256 bits, far beyond any brute force, so the hash needs no key stretching
# (see devices/passwords.py). URL-safe base64 without padding: 43 characters, no ':' or '@'.
_PASSWORD_BYTES = 32


class InvalidDeviceId(CredentialsError):
    """InvalidDeviceId: the id breaks the contract's alphabet or uses a reserved name."""

    def __init__(self, device_id: str, why: str) -> None:
        super().__init__(f"invalid device id {device_id!r}: {why}")
        self.device_id = device_id


class UnknownDevice(CredentialsError):
    """UnknownDevice: no device with this id is registered."""

    def __init__(self, device_id: str) -> None:
        super().__init__(f"unknown device {device_id!r}")
        self.device_id = device_id


class DeviceRevoked(CredentialsError):
    """DeviceRevoked: the device was revoked; a revoked id is never given credentials again."""

    def __init__(self, device_id: str) -> None:
        super().__init__(f"device {device_id!r} is revoked")
        self.device_id = device_id


class CredentialsAlreadyIssued(CredentialsError):
    """CredentialsAlreadyIssued: the device already has credentials; rotate them instead."""

    def __init__(self, device_id: str) -> None:
        super().__init__(f"device {device_id!r} already has credentials; rotate them instead")
        self.device_id = device_id


@dataclass(frozen=True)
class DeviceCredentials:
    """DeviceCredentials are shown to the administrator once; the password is kept nowhere.

    ``repr`` leaves the password out, so a logged or printed value cannot leak it.
    """

    device_id: str
    mqtt_username: str
    mqtt_password: str = field(repr=False)


class AccountsAdmin(Protocol):
    """AccountsAdmin is one broker engine's device-account administration: Mosquitto's
    dynamic security (:class:`broker.dynsec.DynsecAdmin`) or the NATS cluster's accounts file
    (:class:`broker.nats_accounts.NatsAccountsAdmin`)."""

    def put_device(self, device_id: str, password: str) -> None: ...

    def remove_device(self, device_id: str) -> None: ...


class BrokerAccounts:
    """BrokerAccounts is how the broker is told about device accounts.

    With Mosquitto it speaks to the dynamic-security plugin over MQTT as the admin account
    (``HOMECARE_MQTT_ADMIN_URL``; see :mod:`broker.dynsec` for why that mechanism); with the
    NATS cluster it rewrites the accounts file and reloads the nodes (:mod:`broker.nats_accounts`).
    Building one does not connect: each operation opens a short admin connection, so a broker
    outage costs only the operations made during it, and an API process can build this at
    start-up without needing the broker up.
    """

    def __init__(self, admin: AccountsAdmin) -> None:
        self.admin = admin

    def put_device(self, device_id: str, password: str) -> None:
        """put_device creates or updates the device's account (password, own-topic role) and
        disconnects any session logged in with an earlier password."""
        self.admin.put_device(device_id, password)

    def remove_device(self, device_id: str) -> None:
        """remove_device deletes the device's account; the broker disconnects its sessions."""
        self.admin.remove_device(device_id)


def new_password() -> str:
    """new_password is a fresh 256-bit secret, printable and URL-safe."""
    return secrets.token_urlsafe(_PASSWORD_BYTES)


def check_device_id(device_id: str) -> None:
    """check_device_id raises :class:`InvalidDeviceId` unless the id may be a device's."""
    if not _DEVICE_ID.match(device_id):
        raise InvalidDeviceId(device_id, "must match [A-Za-z0-9._-]{1,64}")
    if device_id.lower().startswith(RESERVED_PREFIX):
        raise InvalidDeviceId(device_id, f"the prefix {RESERVED_PREFIX!r} is reserved")


def issue_device_credentials(
    conn: psycopg.Connection[Any], device_id: str, model: str | None, accounts: BrokerAccounts
) -> DeviceCredentials:
    """issue_device_credentials registers the device if new and gives it its first password.

    Works for a device registered earlier without credentials (e.g. by provisioning); raises
    :class:`CredentialsAlreadyIssued` if it has some and :class:`DeviceRevoked` if revoked.
    When this returns, the broker accepts the password.
    """
    check_device_id(device_id)
    password = new_password()
    with conn.transaction():
        row = conn.execute(
            "SELECT status, mqtt_password_hash FROM devices WHERE device_id = %s FOR UPDATE",
            (device_id,),
        ).fetchone()
        if row is None:
            conn.execute(
                "INSERT INTO devices (device_id, model, mqtt_password_hash) VALUES (%s, %s, %s)",
                (device_id, model, hash_password(password)),
            )
        else:
            status, existing = row
            if status == "revoked":
                raise DeviceRevoked(device_id)
            if existing is not None:
                raise CredentialsAlreadyIssued(device_id)
            conn.execute(
                "UPDATE devices SET mqtt_password_hash = %s, model = coalesce(%s, model)"
                " WHERE device_id = %s",
                (hash_password(password), model, device_id),
            )
        accounts.put_device(device_id, password)
    return DeviceCredentials(device_id, device_id, password)


def rotate_device_credentials(
    conn: psycopg.Connection[Any], device_id: str, accounts: BrokerAccounts
) -> DeviceCredentials:
    """rotate_device_credentials replaces the password; the old one stops working at once and
    a session logged in with it is disconnected (the device reconnects with the new one)."""
    check_device_id(device_id)
    password = new_password()
    with conn.transaction():
        status = _locked_status(conn, device_id)
        if status == "revoked":
            raise DeviceRevoked(device_id)
        conn.execute(
            "UPDATE devices SET mqtt_password_hash = %s WHERE device_id = %s",
            (hash_password(password), device_id),
        )
        accounts.put_device(device_id, password)
    return DeviceCredentials(device_id, device_id, password)


def revoke_device(conn: psycopg.Connection[Any], device_id: str, accounts: BrokerAccounts) -> None:
    """revoke_device ends the device's access: its account is deleted at the broker, which
    disconnects a connected session at once, and the device is marked revoked. Idempotent:
    revoking a revoked device tells the broker again (harmless) and succeeds."""
    check_device_id(device_id)
    with conn.transaction():
        _locked_status(conn, device_id)
        conn.execute(
            "UPDATE devices SET status = 'revoked', mqtt_password_hash = NULL WHERE device_id = %s",
            (device_id,),
        )
        accounts.remove_device(device_id)


def _locked_status(conn: psycopg.Connection[Any], device_id: str) -> str:
    row = conn.execute(
        "SELECT status FROM devices WHERE device_id = %s FOR UPDATE", (device_id,)
    ).fetchone()
    if row is None:
        raise UnknownDevice(device_id)
    return str(row[0])
