"""Broker accounts for the NATS cluster: an accounts file the API rewrites, then reloads.

Why this mechanism, for Debian 12's nats-server 2.9.10:

- its MQTT listener authenticates MQTT users against the server's configured users (or JWTs
  in operator mode, which an MQTT client can only present as a bearer password); a users file
  with per-user ``permissions`` is the plain mechanism, and a configuration reload applies a
  change without dropping anyone else: the server re-checks every connected client and closes
  those whose user is gone or whose password no longer matches, so a revoked or rotated
  device is cut off at once;
- passwords are stored as bcrypt hashes (the only hash nats-server checks), so the file holds
  no secret: a device password is 256 random bits, and the bcrypt cost is kept low (it is paid
  at every connect, not as protection against guessing);
- the file is rendered from a JSON state beside it under a file lock, written atomically, and
  the nodes named by their pid files are sent SIGHUP. Nodes on other hosts read the same file
  through the deployment's own distribution (a shared directory or configuration management)
  and reload on change (``deploy/systemd/homecare-nats-accounts.path``).

What a device may do, as the engine allows it: publish on
``homecare.v1.devices.<id>.readings`` and ``.status`` (its own MQTT topics) and nothing else;
subscribe to nothing. nats-server 2.9 cannot bind an MQTT client id to a user, and every device
is in one account (the stream the ingest reads is per account), so a device that connects with
another device's client id takes that session over: the other device is disconnected, and
reconnects (taking it back). That is the whole of what one device can do to another: it cannot
publish under another id, read anything, or see or remove another device's stored messages
(tested in ``tests/test_cluster_broker.py``). Ids with a ``.`` cannot publish at all (2.9 refuses
``.`` in MQTT topics); ``put_device`` refuses them so the API never issues a credential that
cannot work.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import signal
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import bcrypt

from homecare.broker.dynsec import BrokerNotConfigured, BrokerRefused, BrokerUnavailable

__all__ = [
    "NatsAccountsAdmin",
    "device_permissions",
    "hash_password",
    "ingest_permissions",
    "pid_files",
    "render_accounts",
]

ACCOUNT = "HOMECARE"
_BCRYPT_ROUNDS = 6  # device passwords are 256-bit random: cost only slows every connect


def device_permissions(device_id: str) -> dict[str, Any]:
    """device_permissions: publish its own readings and status, subscribe to nothing."""
    base = f"homecare.v1.devices.{device_id}"
    return {
        "publish": {"allow": [f"{base}.readings", f"{base}.status"]},
        "subscribe": {"deny": [">"]},
    }


def ingest_permissions(durable: str, stream: str = "$MQTT_msgs") -> dict[str, Any]:
    """ingest_permissions: its consumer's API, fetch and acks, and replies; no publishing
    where a device would (it cannot forge a reading)."""
    return {
        "publish": {
            "allow": [
                "$JS.API.INFO",
                f"$JS.API.STREAM.INFO.{stream}",
                f"$JS.API.CONSUMER.*.{stream}.{durable}",
                f"$JS.API.CONSUMER.*.{stream}.{durable}.>",
                f"$JS.API.CONSUMER.DURABLE.CREATE.{stream}.{durable}",
                f"$JS.API.CONSUMER.MSG.NEXT.{stream}.{durable}",
                f"$JS.ACK.{stream}.{durable}.>",
            ]
        },
        "subscribe": {"allow": ["_INBOX.>"]},
    }


def hash_password(password: str) -> str:
    """hash_password is the bcrypt hash nats-server checks a password against."""
    return bcrypt.hashpw(password.encode(), bcrypt.gensalt(_BCRYPT_ROUNDS)).decode()


def render_accounts(state: dict[str, Any]) -> str:
    """render_accounts turns the JSON state into nats-server's ``accounts`` block.

    JSON is valid in nats-server's configuration syntax, so values are written with
    ``json.dumps`` and need no escaping of their own.
    """
    users = [
        {"user": name, "password": entry["hash"], "permissions": entry["permissions"]}
        for name, entry in sorted(state.get("services", {}).items())
    ]
    users += [
        {"user": device, "password": digest, "permissions": device_permissions(device)}
        for device, digest in sorted(state.get("devices", {}).items())
    ]
    system = state.get("system")
    accounts: dict[str, Any] = {ACCOUNT: {"jetstream": "enabled", "users": users}}
    if system:
        accounts["SYS"] = {"users": [{"user": "homecare-sys", "password": system}]}
    text = "# Written by broker.nats_accounts; edits are overwritten.\n"
    text += "accounts: " + json.dumps(accounts, indent=2) + "\n"
    if system:
        text += 'system_account: "SYS"\n'
    return text


@dataclass
class NatsAccountsAdmin:
    """NatsAccountsAdmin keeps the device users of the NATS cluster (``put_device`` and
    ``remove_device``, the interface ``broker.credentials.BrokerAccounts`` uses)."""

    accounts_file: Path | None
    pid_files: Sequence[Path] = ()

    def put_device(self, device_id: str, password: str) -> None:
        """put_device adds or re-keys the device's user and reloads the nodes."""
        if "." in device_id:
            raise BrokerRefused([f"device id {device_id!r}: nats-server 2.9 refuses '.' in topics"])
        digest = hash_password(password)
        with self._state() as state:
            state.setdefault("devices", {})[device_id] = digest

    def put_devices(self, passwords: dict[str, str]) -> None:
        """put_devices adds or re-keys many devices with one rewrite and one reload (bulk
        provisioning)."""
        for device_id in passwords:
            if "." in device_id:
                raise BrokerRefused([f"device id {device_id!r}: nats-server 2.9 refuses '.'"])
        digests = {device_id: hash_password(pw) for device_id, pw in passwords.items()}
        with self._state() as state:
            state.setdefault("devices", {}).update(digests)

    def remove_device(self, device_id: str) -> None:
        """remove_device deletes the device's user; the reload disconnects its sessions."""
        with self._state() as state:
            state.setdefault("devices", {}).pop(device_id, None)

    def put_service(self, name: str, password: str, permissions: dict[str, Any]) -> None:
        """put_service adds or re-keys a service user (the ingest's)."""
        with self._state() as state:
            state.setdefault("services", {})[name] = {
                "hash": hash_password(password),
                "permissions": permissions,
            }

    def set_system_password(self, password: str) -> None:
        """set_system_password enables the system account (for ``nats-server`` monitoring)."""
        with self._state() as state:
            state["system"] = hash_password(password)

    @contextlib.contextmanager
    def _state(self) -> Iterator[dict[str, Any]]:
        if self.accounts_file is None:
            raise BrokerNotConfigured("no NATS accounts file (HOMECARE_NATS_ACCOUNTS_FILE)")
        path = self.accounts_file
        state_path = path.with_name(path.name + ".json")
        lock_path = path.with_name(path.name + ".lock")
        try:
            with open(lock_path, "a") as lock:
                fcntl.flock(lock, fcntl.LOCK_EX)
                state: dict[str, Any] = (
                    json.loads(state_path.read_text()) if state_path.exists() else {}
                )
                yield state
                _write_atomically(state_path, json.dumps(state, indent=1, sort_keys=True))
                _write_atomically(path, render_accounts(state))
        except OSError as exc:
            raise BrokerUnavailable(f"cannot write the NATS accounts file {path}: {exc}") from exc
        self._reload()

    def _reload(self) -> None:
        """_reload signals every running node; a node that is down reads the file when it
        starts, but if none runs, nothing was applied and the caller must know."""
        signalled, failures = 0, []
        for pid_file in self.pid_files:
            try:
                os.kill(int(pid_file.read_text().strip()), signal.SIGHUP)
                signalled += 1
            except (FileNotFoundError, ProcessLookupError):
                continue  # not running
            except (OSError, ValueError) as exc:
                failures.append(f"{pid_file}: {exc}")
        if failures or (self.pid_files and not signalled):
            why = "; ".join(failures) or "none runs"
            raise BrokerUnavailable(f"NATS nodes not reloaded: {why}")


def _write_atomically(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def pid_files(setting: str) -> list[Path]:
    """pid_files splits ``HOMECARE_NATS_PID_FILES`` (comma-separated paths)."""
    return [Path(p.strip()) for p in setting.split(",") if p.strip()]
