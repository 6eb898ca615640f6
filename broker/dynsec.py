"""Broker accounts through Mosquitto's dynamic-security plugin, administered over MQTT.

Why this mechanism (rather than a password file and ``pattern write .../%u/#`` reloaded by
SIGHUP), measured with Debian 12's mosquitto 2.0.11 and its ``mosquitto_dynamic_security.so``:

- it is administered over MQTT (``$CONTROL/dynamic-security/v1``), so the API that issues
  credentials may run on any host that reaches the broker; a password file needs the API on the
  broker's host (or a shared disk) and the right to signal the broker process;
- a change applies at once and the plugin disconnects the sessions of a deleted or disabled
  client (``mosquitto_kick_client_by_username``): revocation cuts a live device off;
- it persists its own state (``plugin_opt_config_file``), which the database can rebuild
  (``broker.sync``) because both keep the same PBKDF2-SHA512 hash.

What 2.0.11's plugin lacks, and how this module copes:
- no ``%u`` substitution in ACL topics (it matches with plain ``mosquitto_topic_matches_sub``),
  so each device gets its own role ``device:<id>`` granting ``publishClientSend`` on
  ``homecare/v1/devices/<id>/readings`` and ``.../status``;
- ``createClient`` takes only a clear password (it hashes with its own salt), so a lost broker
  state is rebuilt by writing the plugin's JSON file, not over MQTT (see ``broker.sync``).

The admin connection is opened per operation: administration is rare, and a short connection
has no stale state to manage across broker restarts. The password travels in the command
payload, so across a network the admin URL must be ``mqtts://``; the plugin logs commands with
the password masked (checked by the tests).
"""

from __future__ import annotations

import json
import logging
import ssl
import threading
import uuid
from collections.abc import Sequence
from typing import Any
from urllib.parse import unquote, urlsplit

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

__all__ = [
    "CONTROL_TOPIC",
    "DEVICE_TOPICS",
    "RESPONSE_TOPIC",
    "BrokerNotConfigured",
    "BrokerRefused",
    "BrokerUnavailable",
    "CredentialsError",
    "DynsecAdmin",
    "device_acls",
    "device_role",
]

CONTROL_TOPIC = "$CONTROL/dynamic-security/v1"
# The only topics under homecare/v1/devices/<id>/ that the MQTT contract defines.
DEVICE_TOPICS = ("readings", "status")
RESPONSE_TOPIC = "$CONTROL/dynamic-security/v1/response"
log = logging.getLogger(__name__)


class CredentialsError(Exception):
    """CredentialsError is the root of every error of device credentials."""


class BrokerUnavailable(CredentialsError):
    """BrokerUnavailable: the broker could not be told (unreachable, refused, no answer)."""


class BrokerNotConfigured(BrokerUnavailable):
    """BrokerNotConfigured: no broker admin account is configured (HOMECARE_MQTT_ADMIN_URL)."""


class BrokerRefused(BrokerUnavailable):
    """BrokerRefused: the broker answered a command with an error (``.errors`` lists them)."""

    def __init__(self, errors: Sequence[str]) -> None:
        super().__init__("broker refused: " + "; ".join(errors))
        self.errors = list(errors)


def device_role(device_id: str) -> str:
    """device_role is the name of the role that lets one device publish under its own id."""
    return f"device:{device_id}"


def device_acls(device_id: str) -> list[dict[str, Any]]:
    """device_acls: publish exactly the device's own ``readings`` and ``status`` topics.

    Not its whole tree: every topic a device may publish to can hold one retained message, so
    two topics bound what one device can make the broker keep (two messages of at most
    ``max_packet_size``) — ``status`` is retained by contract. Device ids use [A-Za-z0-9._-]
    only, so the id cannot smuggle a wildcard into the topic.
    """
    return [
        {
            "acltype": "publishClientSend",
            "topic": f"homecare/v1/devices/{device_id}/{leaf}",
            "allow": True,
            "priority": 0,
        }
        for leaf in DEVICE_TOPICS
    ]


class DynsecAdmin:
    """DynsecAdmin sends dynamic-security commands as the admin account and checks answers."""

    def __init__(
        self, admin_url: str | None, *, tls_ca_file: str | None = None, timeout_s: float = 5.0
    ) -> None:
        self.admin_url = admin_url
        self.tls_ca_file = tls_ca_file
        self.timeout_s = timeout_s

    # -- account operations --

    def put_device(self, device_id: str, password: str) -> None:
        """put_device makes the account exist with this password, its own-topic role and its
        client id binding.

        One batch, one round trip: delete the account and role if present (the plugin
        disconnects the sessions), create the role, create the account. Deleting rather than
        ``setClientPassword`` because 2.0.11 keeps a session open on a password change, and a
        rotation must end a session that logged in with the old (perhaps leaked) password; it
        also resets whatever drifted on the account or role (a stray role, a disabled flag, an
        older, wider ACL).

        The account is bound to client id = device id: on the service listener, where client
        ids are kept as sent, a device can then never present an ingest worker's id and take
        over its session. On the device listeners the broker replaces whatever id the device
        sends by its username first (``use_username_as_clientid``), so devices are free to send
        any client id there, as the MQTT contract allows.
        """
        role = device_role(device_id)
        self.run(
            [
                {"command": "deleteClient", "username": device_id},
                {"command": "deleteRole", "rolename": role},
                {"command": "createRole", "rolename": role, "acls": device_acls(device_id)},
                {
                    "command": "createClient",
                    "username": device_id,
                    "clientid": device_id,
                    "password": password,
                    "roles": [{"rolename": role}],
                },
            ],
            tolerate=("Client not found", "Role not found"),
        )

    def remove_device(self, device_id: str) -> None:
        """remove_device deletes the account (the broker kicks its sessions) and its role."""
        self.run(
            [
                {"command": "deleteClient", "username": device_id},
                {"command": "deleteRole", "rolename": device_role(device_id)},
            ],
            tolerate=("Client not found", "Role not found"),
        )

    def list_clients(self) -> list[str]:
        """list_clients is every username the plugin knows."""
        answers = self.run_raw([{"command": "listClients", "verbose": False, "count": -1}])
        data = answers[0].get("data", {})
        return [str(name) for name in data.get("clients", [])]

    # -- protocol --

    def run(self, commands: list[dict[str, Any]], tolerate: Sequence[str] = ()) -> list[str]:
        """run sends commands in one message; returns the tolerated errors, raises the others."""
        answers = self.run_raw(commands)
        errors = [str(a["error"]) for a in answers if a.get("error")]
        fatal = [e for e in errors if e not in tolerate]
        if fatal:
            raise BrokerRefused(fatal)
        return errors

    def run_raw(self, commands: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """run_raw sends commands and returns the plugin's answers in order."""
        if not self.admin_url:
            raise BrokerNotConfigured(
                "no broker admin account: set HOMECARE_MQTT_ADMIN_URL "
                "(mqtt://<admin>:<password>@<broker>:1884, the service listener) to manage device "
                "credentials"
            )
        tag = uuid.uuid4().hex
        for index, command in enumerate(commands):
            command["correlationData"] = f"{tag}-{index}"
        answers = self._exchange(json.dumps({"commands": commands}).encode())
        by_tag = {a.get("correlationData"): a for a in answers}
        missing = [c["command"] for c in commands if c["correlationData"] not in by_tag]
        if missing:
            raise BrokerUnavailable(f"broker did not answer {', '.join(missing)}")
        return [by_tag[c["correlationData"]] for c in commands]

    def _exchange(self, payload: bytes) -> list[dict[str, Any]]:
        assert self.admin_url is not None
        host, port, username, password, tls = _split_url(self.admin_url)
        where = f"{host}:{port}"
        client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,  # type: ignore[attr-defined]
            client_id=f"homecare-admin-{uuid.uuid4().hex[:12]}",
            protocol=mqtt.MQTTv5,
        )
        client.username_pw_set(username, password)
        if tls:
            client.tls_set(ca_certs=self.tls_ca_file, tls_version=ssl.PROTOCOL_TLS_CLIENT)
        done = threading.Event()
        state: dict[str, Any] = {"answers": None, "error": None}

        def fail(why: str) -> None:
            if state["error"] is None and state["answers"] is None:
                state["error"] = why
            done.set()

        def on_connect(c: mqtt.Client, u: object, f: object, reason: ReasonCode, p: object) -> None:
            if reason.is_failure:
                fail(f"broker at {where} refused the admin login: {reason}")
                return
            c.subscribe(RESPONSE_TOPIC, qos=1)

        def on_subscribe(
            c: mqtt.Client, u: object, mid: int, reasons: list[ReasonCode], p: object
        ) -> None:
            if any(r.is_failure for r in reasons):
                fail(f"broker at {where} refused the admin subscription: {reasons[0]}")
                return
            c.publish(CONTROL_TOPIC, payload, qos=1)

        def on_message(c: mqtt.Client, u: object, message: mqtt.MQTTMessage) -> None:
            try:
                answers = json.loads(message.payload)["responses"]
            except (ValueError, KeyError, TypeError):
                fail("broker answered the admin command with a malformed response")
                return
            state["answers"] = answers
            done.set()

        def on_disconnect(c: mqtt.Client, u: object, f: object, reason: object, p: object) -> None:
            fail(f"broker at {where} closed the admin connection: {reason}")

        client.on_connect = on_connect
        client.on_subscribe = on_subscribe
        client.on_message = on_message
        client.on_disconnect = on_disconnect
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = 0
        try:
            client.connect(host, port, keepalive=30, clean_start=True, properties=props)
        except OSError as exc:
            raise BrokerUnavailable(f"broker at {where} unreachable: {exc}") from None
        client.loop_start()
        try:
            if not done.wait(self.timeout_s):
                fail(f"broker at {where} did not answer the admin command in {self.timeout_s:g} s")
        finally:
            client.disconnect()
            client.loop_stop()
        if state["answers"] is None:
            raise BrokerUnavailable(str(state["error"]))
        answers: list[dict[str, Any]] = state["answers"]
        return answers


def _split_url(url: str) -> tuple[str, int, str | None, str | None, bool]:
    """_split_url: host, port, user, password and TLS flag of ``mqtt[s]://user:pw@host:port``.

    (Not ingest's parser: devices come before ingest and must not import it.)
    """
    parts = urlsplit(url)
    tls = parts.scheme == "mqtts"
    user = unquote(parts.username) if parts.username else None
    password = unquote(parts.password) if parts.password else None
    return parts.hostname or "127.0.0.1", parts.port or (8883 if tls else 1883), user, password, tls
