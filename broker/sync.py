"""Broker sync: the database rebuilds and repairs the broker's accounts.

The devices table is the source of truth for who may publish; the broker's dynamic-security
state is a copy. Two ways to bring the copy in line, both idempotent:

- :func:`render_dynsec_config` / :func:`write_dynsec_config` (``homecare broker render``)
  write the plugin's whole JSON file from the database: every active device with its stored
  ``$7$`` hash and own-topic role, the ingest account (read-only) and the admin account. This
  is the rebuild for a broker that lost its state (new host, lost disk) — and the only one
  possible, since the admin account that would work over MQTT lives in that lost state too, and
  2.0.11's plugin accepts only clear passwords over MQTT. Start the broker on the file (or stop
  it, write, start: the plugin reads the file only at start-up). Devices keep their passwords.
- :func:`reconcile` (``homecare broker sync``) works over MQTT on a running broker: it deletes
  device accounts that the database says are revoked or never existed (e.g. left by an
  operation whose database transaction rolled back) and reports active devices the broker
  lacks — those need the offline render, or a rotation.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import psycopg

from homecare.broker.dynsec import DynsecAdmin, device_acls, device_role
from homecare.broker.hashing import hash_password, parse_hash

__all__ = [
    "ADMIN_ROLE",
    "INGEST_ROLE",
    "ServiceAccount",
    "SyncReport",
    "active_device_hashes",
    "reconcile",
    "render_dynsec_config",
    "service_accounts",
    "write_dynsec_config",
]

ADMIN_ROLE = "homecare-admin"
INGEST_ROLE = "homecare-ingest"
_DEVICE_TOPICS = ("homecare/v1/devices/+/readings", "homecare/v1/devices/+/status")


@dataclass(frozen=True)
class ServiceAccount:
    """ServiceAccount is a non-device login: its username and its password's ``$7$`` hash."""

    username: str
    password_hash: str

    @classmethod
    def from_password(cls, username: str, password: str) -> ServiceAccount:
        return cls(username, hash_password(password))


@dataclass(frozen=True)
class SyncReport:
    """SyncReport: what :func:`reconcile` changed at the broker and what it could not."""

    removed: tuple[str, ...]
    missing: tuple[str, ...]


def service_accounts(
    admin_url: str | None, ingest_url: str
) -> tuple[ServiceAccount, ServiceAccount]:
    """service_accounts: the admin and ingest accounts named by their ``mqtt://user:pw@`` URLs
    (HOMECARE_MQTT_ADMIN_URL, HOMECARE_MQTT_URL); ``ValueError`` says which one lacks what."""
    accounts = []
    for setting, url in (("HOMECARE_MQTT_ADMIN_URL", admin_url), ("HOMECARE_MQTT_URL", ingest_url)):
        parts = urlsplit(url or "")
        if not parts.username or not parts.password:
            raise ValueError(f"{setting} must name the account with its password (mqtt://user:pw@)")
        accounts.append(
            ServiceAccount.from_password(unquote(parts.username), unquote(parts.password))
        )
    if accounts[0].username == accounts[1].username:
        raise ValueError("the admin and ingest accounts must differ")
    return accounts[0], accounts[1]


def _role_acls() -> dict[str, list[dict[str, Any]]]:
    """The two service roles: least privilege for each.

    The admin may only administer (it reads no readings: the API never needs them from the
    broker). The ingest may only read readings and status — plain or through any shared
    subscription group, because 2.0.11's plugin checks a SUBSCRIBE against the filter *with*
    its ``$share/<group>/`` prefix — and publishes nothing.
    """
    control = "$CONTROL/dynamic-security/#"
    admin = [
        {"acltype": kind, "topic": control, "allow": True, "priority": 0}
        for kind in ("publishClientSend", "publishClientReceive", "subscribePattern")
    ]
    ingest: list[dict[str, Any]] = []
    for topic in _DEVICE_TOPICS:
        for pattern in (topic, f"$share/+/{topic}"):
            ingest.append(
                {"acltype": "subscribePattern", "topic": pattern, "allow": True, "priority": 0}
            )
        ingest.append(
            {"acltype": "publishClientReceive", "topic": topic, "allow": True, "priority": 0}
        )
    return {ADMIN_ROLE: admin, INGEST_ROLE: ingest}


def _client(
    username: str, password_hash: str, role: str, clientid: str | None = None
) -> dict[str, Any]:
    """One account; ``clientid`` binds it to that client id (devices: their own id, see
    ``DynsecAdmin.put_device``). Service accounts stay unbound: several ingest workers share
    one account with distinct client ids."""
    bound = {"clientid": clientid} if clientid is not None else {}
    return {
        "username": username,
        **bound,
        "roles": [{"rolename": role}],
        **parse_hash(password_hash).dynsec_fields(),
    }


def render_dynsec_config(
    devices: Iterable[tuple[str, str]], admin: ServiceAccount, ingest: ServiceAccount
) -> dict[str, Any]:
    """render_dynsec_config is the plugin's JSON document for these accounts.

    ``devices`` are ``(device_id, $7$ hash)`` pairs of active devices. Everything not granted is
    denied (``defaultACLAccess``): in particular a device receives nothing, so a device that
    subscribes to ``#`` does not read other patients' vitals.
    """
    roles = [{"rolename": name, "acls": acls} for name, acls in _role_acls().items()]
    clients = [
        _client(admin.username, admin.password_hash, ADMIN_ROLE),
        _client(ingest.username, ingest.password_hash, INGEST_ROLE),
    ]
    for device_id, password_hash in sorted(devices):
        roles.append({"rolename": device_role(device_id), "acls": device_acls(device_id)})
        clients.append(_client(device_id, password_hash, device_role(device_id), device_id))
    return {
        "defaultACLAccess": {
            "publishClientSend": False,
            "publishClientReceive": False,
            "subscribe": False,
            "unsubscribe": True,
        },
        "clients": clients,
        "groups": [],
        "roles": roles,
    }


def active_device_hashes(conn: psycopg.Connection[Any]) -> list[tuple[str, str]]:
    """active_device_hashes: ``(device_id, hash)`` of every active device with credentials."""
    rows = conn.execute(
        "SELECT device_id, mqtt_password_hash FROM devices"
        " WHERE status = 'active' AND mqtt_password_hash IS NOT NULL ORDER BY device_id"
    ).fetchall()
    return [(str(device_id), str(password_hash)) for device_id, password_hash in rows]


def write_dynsec_config(path: Path, config: dict[str, Any]) -> None:
    """write_dynsec_config replaces ``path`` atomically, readable by its owner only.

    The file holds password hashes: 0600 from the first byte (never a window with the
    process umask), written beside the target and renamed over it, so a broker starting at
    that moment reads the old or the new file, never half of one.
    """
    path = path.resolve()
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as out:
            json.dump(config, out, indent=1)
            out.write("\n")
            out.flush()
            os.fsync(out.fileno())
        if path.exists():
            st = path.stat()
            os.chown(tmp, st.st_uid, st.st_gid)  # keep the broker user's ownership
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def reconcile(
    conn: psycopg.Connection[Any], admin: DynsecAdmin, service_accounts: Iterable[str]
) -> SyncReport:
    """reconcile aligns a running broker with the database as far as MQTT allows.

    Accounts in ``service_accounts`` (and any under the reserved ``homecare-`` prefix) are
    left alone. Device accounts the database does not list as active are deleted (their
    sessions are disconnected); active devices without an account are reported as missing.
    """
    from homecare.broker.credentials import RESERVED_PREFIX

    keep = set(service_accounts)
    active = {device_id for device_id, _ in active_device_hashes(conn)}
    at_broker = {name for name in admin.list_clients() if name not in keep}
    at_broker = {name for name in at_broker if not name.lower().startswith(RESERVED_PREFIX)}
    removed = sorted(at_broker - active)
    for device_id in removed:
        admin.remove_device(device_id)
    return SyncReport(removed=tuple(removed), missing=tuple(sorted(active - at_broker)))
