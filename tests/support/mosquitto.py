"""A private Mosquitto broker for tests, configured like production.

:class:`PrivateMosquitto` derives its configuration from the broker config the project ships
(``deploy/mosquitto/mosquitto.conf`` and ``deploy/mosquitto/acl``), so the tests exercise the
production security and queueing rules, not a lax test config: whatever the deploy config adds
that is not a path or listener setting applies to the tests too.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
import weakref
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

from tests.support.services import (
    LOCALHOST,
    ManagedService,
    ServiceError,
    find_executable,
    free_port,
    log_tail,
    port_is_open,
    reap,
)

__all__ = [
    "DEPLOY_DEVICE_LISTENER",
    "DEPLOY_MOSQUITTO_ACL",
    "DEPLOY_MOSQUITTO_CONF",
    "DEPLOY_SERVICE_LISTENER",
    "PrivateMosquitto",
    "derive_mosquitto_listeners",
    "derive_mosquitto_options",
    "find_dynsec_plugin",
]

REPO_ROOT = Path(__file__).resolve().parents[2]
DEPLOY_MOSQUITTO_CONF = REPO_ROOT / "deploy" / "mosquitto" / "mosquitto.conf"
DEPLOY_MOSQUITTO_ACL = REPO_ROOT / "deploy" / "mosquitto" / "acl"


def find_dynsec_plugin() -> Path:
    """Locate Mosquitto's dynamic-security plugin (Debian: /usr/lib/<triplet>/, in the
    ``mosquitto`` package). Raises :class:`FileNotFoundError` with an install hint."""
    name = "mosquitto_dynamic_security.so"
    for pattern in (f"/usr/lib/*/{name}", f"/usr/lib/{name}", f"/usr/local/lib/{name}"):
        for found in sorted(Path("/").glob(pattern.lstrip("/"))):
            return found
    raise FileNotFoundError(
        f"{name} not found in /usr/lib/*/ or /usr/local/lib; it ships with Debian's mosquitto "
        "package (apt-get install mosquitto)"
    )


# Options of the deploy config that only make sense on the production host (paths, listeners,
# TLS material, privilege drop, logging). PrivateMosquitto drops them and supplies its own;
# everything else (authentication rules, persistence, queue and size limits) is kept verbatim.
_MOSQUITTO_HOST_SPECIFIC = frozenset(
    {
        "acl_file",
        "auth_plugin",
        "bind_address",
        "bind_interface",
        "cafile",
        "capath",
        "certfile",
        "ciphers",
        "ciphers_tls1.3",
        "crlfile",
        "dhparamfile",
        "http_dir",
        "include_dir",
        "keyfile",
        "listener",
        "log_dest",
        "log_type",
        "max_connections",
        "mount_point",
        "password_file",
        "persistence_file",
        "persistence_location",
        "pid_file",
        "plugin",
        "port",
        "protocol",
        "psk_file",
        "psk_hint",
        "require_certificate",
        "socket_domain",
        "tls_engine",
        "tls_engine_kpass_sha1",
        "tls_keyform",
        "tls_version",
        "use_identity_as_username",
        "use_subject_as_username",
        "user",
        "websockets_headers_size",
        "websockets_log_level",
    }
)


# Options that belong to the listener above them (mosquitto 2.0 with per_listener_settings false).
# PrivateMosquitto keeps them, under the private listener that stands for that deploy listener.
_MOSQUITTO_LISTENER_SCOPED = frozenset({"max_qos", "max_topic_alias", "use_username_as_clientid"})

# The deploy config's listeners that PrivateMosquitto reproduces on private ports: the device
# listener (client id replaced by the username) and the service listener (ingest, admin).
DEPLOY_DEVICE_LISTENER = 1883
DEPLOY_SERVICE_LISTENER = 1884


def _option_lines(base_config: Path) -> list[str]:
    lines = (raw.strip() for raw in base_config.read_text().splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def derive_mosquitto_options(base_config: Path = DEPLOY_MOSQUITTO_CONF) -> list[str]:
    """The host-independent global option lines of a mosquitto config, comments stripped.

    This is how a private test broker inherits the production rules: anything added to the
    deploy config that is not a path or listener setting automatically applies to tests too.
    Listener-scoped options are left to :func:`derive_mosquitto_listeners`.
    """
    kept: list[str] = []
    for line in _option_lines(base_config):
        key = line.split(None, 1)[0]
        if key in _MOSQUITTO_HOST_SPECIFIC or key.startswith(("auth_opt_", "plugin_opt_")):
            continue
        if key in _MOSQUITTO_LISTENER_SCOPED:
            continue
        kept.append(line)
    return kept


def derive_mosquitto_listeners(base_config: Path = DEPLOY_MOSQUITTO_CONF) -> dict[int, list[str]]:
    """The listeners of a mosquitto config: port -> the listener-scoped option lines under it
    (``use_username_as_clientid true`` for a device listener), host-specific ones left out."""
    listeners: dict[int, list[str]] = {}
    current: list[str] | None = None
    for line in _option_lines(base_config):
        key, _, rest = line.partition(" ")
        if key == "listener":
            current = listeners.setdefault(int(rest.split()[0]), [])
        elif key in _MOSQUITTO_LISTENER_SCOPED:
            if current is None:
                raise ValueError(f"{base_config}: {key} before any listener line")
            current.append(line)
    return listeners


class PrivateMosquitto(ManagedService):
    """A private mosquitto broker on free 127.0.0.1 ports, configured like production.

    The generated config (``<work_dir>/mosquitto.conf``) is the deploy config's host-independent
    options (``allow_anonymous false``, persistence, queue/size limits, ...) plus private
    listeners, password file, ACL file, persistence directory and log, all in ``work_dir``.

    Like production it has two listeners: ``port`` stands for the deploy config's service
    listener (1884: client ids kept, for the ingest and admin) and ``device_port`` for its device
    listener (1883: the client id is replaced by the username). Devices connect to
    ``device_port``; with ``dynsec`` a device account is bound to client id = device id, so on
    ``port`` a device must use its own id as client id.

    - ``users``: username -> password, hashed into the password file with ``mosquitto_passwd``.
    - ``acl_lines``: the ACL file's lines; default is the project's ``deploy/mosquitto/acl``
      (devices write only under ``homecare/v1/devices/<username>/``, ``homecare-ingest`` reads).
    - ``extra_config``: more option lines appended at the end (e.g. ``"autosave_interval 1"``).
      mosquitto rejects some options when given twice, so prefer options the deploy config lacks.

    - ``dynsec``: instead of ``users``/``acl_lines``, Mosquitto's dynamic-security plugin with
      this JSON document as its initial state (``broker.sync.render_dynsec_config``
      makes one), in ``<work_dir>/dynamic-security.json`` — the production mechanism.

    ``restart()`` keeps port and persistence: QoS 1 messages queued for an offline persistent
    session survive a clean restart (SIGTERM makes mosquitto save its database); after
    ``kill()`` only what the last autosave wrote survives - as in production.
    """

    def __init__(
        self,
        work_dir: Path | str,
        users: Mapping[str, str],
        acl_lines: Sequence[str] | None = None,
        *,
        port: int | None = None,
        base_config: Path = DEPLOY_MOSQUITTO_CONF,
        extra_config: Sequence[str] = (),
        verbose: bool = False,
        dynsec: Mapping[str, Any] | None = None,
        device_port: int | None = None,
    ) -> None:
        self.work_dir = Path(work_dir).resolve()
        if re.search(r"\s", str(self.work_dir)):
            # mosquitto splits option values on whitespace; a path with a space would silently
            # point somewhere else.
            raise ValueError(f"mosquitto cannot use a work dir containing whitespace: {work_dir}")
        self.host = LOCALHOST
        self.port = port if port is not None else free_port()
        self.device_port = device_port if device_port is not None else free_port()
        self.users = dict(users)
        self.binary = find_executable("mosquitto")
        self.config_path = self.work_dir / "mosquitto.conf"
        self.password_file = self.work_dir / "passwd"
        self.acl_file = self.work_dir / "acl"
        self.persistence_dir = self.work_dir / "data"
        self.log_path = self.work_dir / "mosquitto.log"
        self.dynsec_file: Path | None = None
        if dynsec is not None:
            if self.users or acl_lines is not None:
                raise ValueError("dynsec replaces users and acl_lines; give one or the other")
            self.dynsec_file = self.work_dir / "dynamic-security.json"
        self._proc: subprocess.Popen[bytes] | None = None
        # The finalizer must not reference self; it gets this holder of the current process.
        self._holder: list[subprocess.Popen[bytes] | None] = [None]
        self._finalizer = weakref.finalize(self, _finalize_mosquitto, self._holder)

        self.work_dir.mkdir(parents=True, exist_ok=True)
        self.persistence_dir.mkdir(exist_ok=True)
        if self.dynsec_file is not None and dynsec is not None:
            self.dynsec_file.write_text(json.dumps(dynsec, indent=1))
            self.dynsec_file.chmod(0o600)
        self._write_password_file()
        acl = acl_lines if acl_lines is not None else DEPLOY_MOSQUITTO_ACL.read_text().splitlines()
        self.acl_file.write_text("\n".join(acl) + "\n")
        self.acl_file.chmod(0o600)
        self.config_path.write_text(self._render_config(base_config, extra_config, verbose))

    # -- files --

    def _write_password_file(self) -> None:
        """Hash the passwords with the real ``mosquitto_passwd`` (``-U`` upgrades a plain file).

        Using the real tool keeps the file format in step with the installed broker.
        """
        for name in self.users:
            if ":" in name or not name or re.search(r"\s", name):
                raise ValueError(f"invalid mosquitto username: {name!r}")
        lines = "".join(f"{name}:{password}\n" for name, password in self.users.items())
        self.password_file.write_text(lines)
        self.password_file.chmod(0o600)
        if self.users:
            passwd_tool = find_executable("mosquitto_passwd")
            result = subprocess.run(
                [str(passwd_tool), "-U", str(self.password_file)],
                capture_output=True,
                text=True,
                check=False,
            )
            if result.returncode != 0:
                raise ServiceError(
                    f"mosquitto_passwd -U failed ({result.returncode}): "
                    f"{result.stdout}{result.stderr}"
                )

    def _render_config(self, base_config: Path, extra: Sequence[str], verbose: bool) -> str:
        lines = [
            f"# Generated by tests/support/mosquitto.py from {base_config}.",
            "# Host-independent options copied from the deploy config:",
            *derive_mosquitto_options(base_config),
            "# Private instance settings:",
        ]
        if os.geteuid() == 0:
            # Started as root, mosquitto switches to the "mosquitto" user, which could not read
            # the work dir (pytest's tmp dirs are 0700 root). "root" disables the switch; for a
            # non-root user the option has no effect at all, so it is only written for root.
            lines.append("user root")
        if self.dynsec_file is not None:
            auth = [
                f"plugin {find_dynsec_plugin()}",
                f"plugin_opt_config_file {self.dynsec_file}",
            ]
        else:
            auth = [f"password_file {self.password_file}", f"acl_file {self.acl_file}"]
        listeners = derive_mosquitto_listeners(base_config)
        private = {DEPLOY_SERVICE_LISTENER: self.port, DEPLOY_DEVICE_LISTENER: self.device_port}
        if set(private) - set(listeners):
            raise ServiceError(
                f"{base_config} lacks the device ({DEPLOY_DEVICE_LISTENER}) or service "
                f"({DEPLOY_SERVICE_LISTENER}) listener that PrivateMosquitto reproduces"
            )
        for deploy_port, private_port in private.items():
            lines += [f"listener {private_port} {self.host}", *listeners[deploy_port]]
        lines += [
            *auth,
            f"persistence_location {self.persistence_dir}/",
            # stdout is redirected to log_path, together with errors printed before the log is
            # set up (bad config), so a single file explains any failure.
            "log_dest stdout",
            "log_type all" if verbose else "log_type error warning notice information",
            *extra,
        ]
        return "\n".join(lines) + "\n"

    # -- lifecycle --

    def start(self, timeout: float = 30.0) -> None:
        """Start the broker and wait until it accepts connections.

        ``timeout`` also covers loading a large persistence database after a restart.
        """
        if self.is_running:
            raise ServiceError(f"mosquitto on port {self.port} is already running")
        with self.log_path.open("ab") as log:
            log.write(f"--- starting mosquitto on {self.host}:{self.port}\n".encode())
            log.flush()
            self._proc = subprocess.Popen(
                [str(self.binary), "-c", str(self.config_path)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.work_dir,
                # Own session: a Ctrl-C aimed at pytest must not kill the broker mid-test.
                start_new_session=True,
            )
        self._holder[0] = self._proc
        deadline = time.monotonic() + timeout
        while not (
            port_is_open(self.host, self.port) and port_is_open(self.host, self.device_port)
        ):
            if self._proc.poll() is not None or time.monotonic() >= deadline:
                code = self._proc.poll()
                reap(self._proc)
                reason = f"exited with {code}" if code is not None else f"not up in {timeout}s"
                raise ServiceError(
                    f"mosquitto ({self.binary}) {reason} on {self.host}:{self.port}; "
                    f"config {self.config_path}; log {self.log_path}:\n{log_tail(self.log_path)}"
                )
            time.sleep(0.05)

    def stop(self, timeout: float = 60.0) -> None:
        """Clean shutdown (SIGTERM): mosquitto saves its persistence database, then exits.

        The save of a big queue takes seconds, hence the generous timeout. A broker that does
        not exit in time is killed and :class:`ServiceError` raised.
        """
        proc = self._proc
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            reap(proc)
            raise ServiceError(
                f"mosquitto did not exit within {timeout}s of SIGTERM; killed. "
                f"Log:\n{log_tail(self.log_path)}"
            ) from None

    def kill(self) -> None:
        """Crash the broker (SIGKILL): nothing is saved, as in an OOM kill or power loss."""
        reap(self._proc, signal.SIGKILL)

    def restart(self, timeout: float = 30.0) -> None:
        """Clean stop then start on the same port with the same persistence directory."""
        self.stop()
        self.start(timeout=timeout)

    def url_for(self, user: str, *, device: bool = False) -> str:
        """``mqtt://user:password@127.0.0.1:PORT`` for one of the configured users: the service
        listener's port, or with ``device`` the device listener's."""
        password = self.users[user]
        port = self.device_port if device else self.port
        return f"mqtt://{quote(user, safe='')}:{quote(password, safe='')}@{self.host}:{port}"

    def __repr__(self) -> str:
        state = "running" if self.is_running else "stopped"
        return f"<PrivateMosquitto {self.host}:{self.port} {state} in {self.work_dir}>"


def _finalize_mosquitto(holder: list[subprocess.Popen[bytes] | None]) -> None:
    reap(holder[0])
