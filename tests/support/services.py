"""Private, throwaway Mosquitto and PostgreSQL instances for tests.

Tests that stop, restart or SIGKILL a service (broker outage, database crash, queued-message
recovery) cannot use the machine's shared broker and database: they would break every other
test and every other engineer using them. These helpers start real, private instances from the
same binaries on a free 127.0.0.1 port, with all state in a work directory, so a test can do to
them whatever it likes.

- :class:`PrivateMosquitto` derives its configuration from the broker config the project ships
  (``deploy/mosquitto/mosquitto.conf`` and ``deploy/mosquitto/acl``), so the tests exercise the
  production security and queueing rules, not a lax test config.
- :class:`PrivatePostgres` is a fresh cluster made with the PostgreSQL server binaries (Debian:
  ``/usr/lib/postgresql/<version>/bin``), trust auth, ``fsync=off`` for speed.

Both are context managers (start on enter, stop on exit) and also clean up on garbage collection
and interpreter exit, so a failing test never leaves a broker or postmaster running.
"""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import re
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import time
import weakref
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, Self
from urllib.parse import quote

import psycopg
from psycopg import sql

__all__ = [
    "DEPLOY_DEVICE_LISTENER",
    "DEPLOY_MOSQUITTO_ACL",
    "DEPLOY_MOSQUITTO_CONF",
    "DEPLOY_SERVICE_LISTENER",
    "LOCALHOST",
    "PrivateMosquitto",
    "PrivatePostgres",
    "ServiceError",
    "children_of",
    "derive_mosquitto_listeners",
    "derive_mosquitto_options",
    "find_dynsec_plugin",
    "find_executable",
    "find_postgres_bindir",
    "free_port",
    "port_is_open",
    "wait_for_port",
]

LOCALHOST = "127.0.0.1"
REPO_ROOT = Path(__file__).resolve().parents[2]
DEPLOY_MOSQUITTO_CONF = REPO_ROOT / "deploy" / "mosquitto" / "mosquitto.conf"
DEPLOY_MOSQUITTO_ACL = REPO_ROOT / "deploy" / "mosquitto" / "acl"

# sbin directories are often missing from a non-root PATH, but Debian installs mosquitto there.
_EXTRA_BIN_DIRS = ("/usr/sbin", "/usr/local/sbin", "/sbin")
# How much of a service log to put into an exception message: enough to see the real error.
_LOG_TAIL_CHARS = 4000


class ServiceError(RuntimeError):
    """A private service failed to start or stop; the message includes the tail of its log."""


# --- ports ----------------------------------------------------------------------------------------


def free_port(host: str = LOCALHOST) -> int:
    """Return a TCP port that is free on ``host`` right now.

    The kernel picks it (bind to port 0), so parallel test runs do not collide the way fixed
    "test ports" do. There is an unavoidable window between this call and the service binding
    the port; it is short and the kernel does not hand the same ephemeral port out again soon.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def port_is_open(host: str, port: int, timeout: float = 0.2) -> bool:
    """True if a TCP connection to ``host:port`` succeeds (something is listening)."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def wait_for_port(host: str, port: int, timeout: float = 10.0) -> None:
    """Block until ``host:port`` accepts TCP connections, or raise :class:`TimeoutError`.

    A started process is not a ready service: brokers and databases accept connections only
    after loading their state, which after a crash or with a big persistence file takes a while.
    """
    deadline = time.monotonic() + timeout
    while not port_is_open(host, port):
        if time.monotonic() >= deadline:
            raise TimeoutError(f"nothing accepted connections on {host}:{port} within {timeout}s")
        time.sleep(0.05)


# --- helpers --------------------------------------------------------------------------------------


def find_executable(name: str) -> Path:
    """Locate a service binary on PATH or in the sbin directories Debian uses for daemons.

    Raises :class:`FileNotFoundError` with an install hint, which is what a test (or a fixture
    deciding to skip) wants to show.
    """
    found = shutil.which(name)
    if found is None:
        extra = os.pathsep.join(_EXTRA_BIN_DIRS)
        found = shutil.which(name, path=extra)
    if found is None:
        raise FileNotFoundError(
            f"{name} not found on PATH or in {', '.join(_EXTRA_BIN_DIRS)}; "
            "install it (Debian: apt-get install mosquitto mosquitto-clients postgresql) "
            "or run scripts/test, which does"
        )
    return Path(found)


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


def _version_key(path: Path) -> tuple[int, ...]:
    """Sort key for /usr/lib/postgresql/<version> directories ("15" > "9.6")."""
    return tuple(int(part) for part in re.findall(r"\d+", path.name))


def find_postgres_bindir() -> Path:
    """Directory with the PostgreSQL server binaries (initdb, postgres, pg_ctl).

    Debian keeps them out of PATH in /usr/lib/postgresql/<version>/bin; the newest installed
    version wins. Elsewhere fall back to the directory of ``initdb`` on PATH.
    """
    candidates = [
        p.parent.parent
        for p in Path("/usr/lib/postgresql").glob("*/bin/initdb")
        if os.access(p, os.X_OK)
    ]
    if candidates:
        return max(candidates, key=_version_key) / "bin"
    on_path = shutil.which("initdb")
    if on_path is not None:
        return Path(on_path).resolve().parent
    raise FileNotFoundError(
        "PostgreSQL server binaries not found (no /usr/lib/postgresql/*/bin/initdb, no initdb "
        "on PATH); install them (Debian: apt-get install postgresql) or run scripts/test"
    )


def _tail(path: Path, chars: int = _LOG_TAIL_CHARS) -> str:
    """Last ``chars`` characters of a log file, for error messages."""
    try:
        text = path.read_text(errors="replace")
    except OSError as exc:
        return f"<cannot read {path}: {exc}>"
    return text[-chars:] if len(text) > chars else text


def _reap(proc: subprocess.Popen[bytes] | None, sig: int = signal.SIGKILL) -> None:
    """Send ``sig`` to a still-running child and wait for it (finalizers and error paths).

    Waiting matters: an unwaited Popen raises ResourceWarning, which this project turns into an
    error, and an unreaped child is a zombie that still "exists" for pid checks.
    """
    if proc is None or proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        proc.send_signal(sig)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _is_gone(pid: int) -> bool:
    """True if ``pid`` no longer exists or is a zombie (dead, but not reaped by its parent).

    Orphaned PostgreSQL backends are reparented to PID 1, which in containers often never reaps
    them; a zombie holds no resources, so for our purposes it is gone.
    """
    try:
        status = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return True
    except OSError:
        return False
    # The state follows the parenthesised command name, which may itself contain ") ".
    state = status.rsplit(")", 1)[1].split()[0]
    return state in ("Z", "X")


def children_of(pid: int) -> list[int]:
    """PIDs whose parent is ``pid`` (read from /proc; Linux only, like the rest of this)."""
    children: list[int] = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            children.append(int(entry.name))
    return children


# --- Mosquitto ------------------------------------------------------------------------------------

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


class _Managed:
    """_Managed: a private service as a context manager — started on enter, stopped on exit,
    and its process reaped even when stopping fails."""

    _proc: subprocess.Popen[bytes] | None

    def start(self, timeout: float = ...) -> None:  # pragma: no cover - defined by subclasses
        raise NotImplementedError

    def stop(self) -> None:  # pragma: no cover - defined by subclasses
        raise NotImplementedError

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            self.stop()
        finally:
            _reap(self._proc)


class PrivateMosquitto(_Managed):
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
            f"# Generated by tests/support/services.py from {base_config}.",
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

    @property
    def is_running(self) -> bool:
        """True while the broker process is alive."""
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int | None:
        """PID of the broker process while it runs."""
        return self._proc.pid if self.is_running and self._proc is not None else None

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
                _reap(self._proc)
                reason = f"exited with {code}" if code is not None else f"not up in {timeout}s"
                raise ServiceError(
                    f"mosquitto ({self.binary}) {reason} on {self.host}:{self.port}; "
                    f"config {self.config_path}; log {self.log_path}:\n{_tail(self.log_path)}"
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
            _reap(proc)
            raise ServiceError(
                f"mosquitto did not exit within {timeout}s of SIGTERM; killed. "
                f"Log:\n{_tail(self.log_path)}"
            ) from None

    def kill(self) -> None:
        """Crash the broker (SIGKILL): nothing is saved, as in an OOM kill or power loss."""
        _reap(self._proc, signal.SIGKILL)

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

    def log_text(self) -> str:
        """Everything the broker logged so far (all runs of this instance)."""
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def __repr__(self) -> str:
        state = "running" if self.is_running else "stopped"
        return f"<PrivateMosquitto {self.host}:{self.port} {state} in {self.work_dir}>"


def _finalize_mosquitto(holder: list[subprocess.Popen[bytes] | None]) -> None:
    _reap(holder[0])


# --- PostgreSQL -----------------------------------------------------------------------------------

StopMode = Literal["smart", "fast", "immediate"]
# The postmaster's documented shutdown signals (what pg_ctl stop -m <mode> sends).
_STOP_SIGNALS: dict[str, signal.Signals] = {
    "smart": signal.SIGTERM,
    "fast": signal.SIGINT,
    "immediate": signal.SIGQUIT,
}
# Unix socket paths are limited to 107 bytes (sun_path); PostgreSQL appends "/.s.PGSQL.<port>".
_MAX_SOCKET_DIR_LEN = 107 - len("/.s.PGSQL.65535")


def _can_traverse(path: Path, uid: int, gids: set[int]) -> bool:
    """Whether ``uid`` (with groups ``gids``) may reach ``path``: search permission on it and
    every ancestor. pytest's tmp dirs under /tmp/pytest-of-root are 0700, so as root a cluster
    inside them would be unreachable for the ``postgres`` user."""
    for directory in (path, *path.parents):
        try:
            st = directory.stat()
        except OSError:
            return False
        if st.st_uid == uid:
            bit = stat.S_IXUSR
        elif st.st_gid in gids:
            bit = stat.S_IXGRP
        else:
            bit = stat.S_IXOTH
        if not st.st_mode & bit:
            return False
    return True


class PrivatePostgres(_Managed):
    """A throwaway PostgreSQL cluster on a free 127.0.0.1 port, trust auth, superuser
    ``postgres``.

    The cluster is created (initdb) on the first ``start()``; ``restart()`` keeps port and data,
    ``kill()`` SIGKILLs the postmaster so the next start goes through crash recovery. Committed
    data survives ``kill()``: ``fsync=off`` only risks data on an operating-system crash, and
    ``synchronous_commit`` stays on so a commit is written before it is acknowledged.

    PostgreSQL refuses to run as root. When the tests run as root, the server binaries run as
    the ``postgres`` OS user (like ``runuser -u postgres --``, without a PAM session) and the
    cluster directory belongs to it. If ``work_dir`` is not reachable by that user (e.g. under
    pytest's 0700 tmp dirs), the cluster lives in a private ``/tmp/homecare-pg-*`` directory
    instead, linked from ``<work_dir>/cluster`` and deleted when this object is finalized.
    ``.base_dir`` is where it really is: ``data/``, ``sock/`` (unix socket) and ``postgres.log``.
    """

    def __init__(
        self,
        work_dir: Path | str,
        *,
        port: int | None = None,
        bindir: Path | None = None,
        superuser: str = "postgres",
        settings: Mapping[str, str] | None = None,
    ) -> None:
        self.work_dir = Path(work_dir).resolve()
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self.host = LOCALHOST
        self.port = port if port is not None else free_port()
        self.bindir = bindir if bindir is not None else find_postgres_bindir()
        self.superuser = superuser
        self.settings = dict(settings or {})
        self._owner_kwargs: dict[str, Any] = {}
        self._owner: tuple[int, int] | None = None
        if os.geteuid() == 0:
            try:
                pw = pwd.getpwnam("postgres")
            except KeyError:
                raise ServiceError(
                    "running as root, but PostgreSQL refuses to run as root and there is no "
                    "'postgres' OS user to run it as (Debian's postgresql package creates it)"
                ) from None
            self._owner = (pw.pw_uid, pw.pw_gid)
            self._owner_kwargs = {"user": pw.pw_uid, "group": pw.pw_gid, "extra_groups": []}

        cleanup_dir: Path | None = None
        if self._owner is not None and not _can_traverse(
            self.work_dir, self._owner[0], {self._owner[1]}
        ):
            cleanup_dir = Path(tempfile.mkdtemp(prefix="homecare-pg-"))
            link = self.work_dir / "cluster"
            with contextlib.suppress(FileNotFoundError):
                link.unlink()
            link.symlink_to(cleanup_dir, target_is_directory=True)
            self.base_dir = cleanup_dir
        else:
            self.base_dir = self.work_dir
        self.data_dir = self.base_dir / "data"
        self.socket_dir = self.base_dir / "sock"
        self.log_path = self.base_dir / "postgres.log"
        self._proc: subprocess.Popen[bytes] | None = None
        self._holder: list[subprocess.Popen[bytes] | None] = [None]
        self._finalizer = weakref.finalize(self, _finalize_postgres, self._holder, cleanup_dir)

    # -- helpers --

    def _chown(self, path: Path) -> None:
        if self._owner is not None:
            os.chown(path, *self._owner)

    def _run(self, argv: Sequence[str], timeout: float = 120.0) -> None:
        """Run a PostgreSQL tool as the cluster owner; raise with its output on failure."""
        result = subprocess.run(
            list(argv),
            capture_output=True,
            text=True,
            check=False,
            cwd=self.base_dir,
            timeout=timeout,
            **self._owner_kwargs,
        )
        if result.returncode != 0:
            raise ServiceError(
                f"{' '.join(argv)} failed ({result.returncode}):\n{result.stdout}{result.stderr}"
            )

    @property
    def initialized(self) -> bool:
        """True once initdb has created the cluster."""
        return (self.data_dir / "PG_VERSION").exists()

    def _initdb(self) -> None:
        self._chown(self.base_dir)
        self._run(
            [
                str(self.bindir / "initdb"),
                "-D",
                str(self.data_dir),
                "-U",
                self.superuser,
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C",
                # No fsync of the new cluster: it is thrown away after the test run.
                "--no-sync",
            ]
        )
        socket_dir = str(self.socket_dir)
        if len(socket_dir) <= _MAX_SOCKET_DIR_LEN:
            self.socket_dir.mkdir(mode=0o700, exist_ok=True)
            self._chown(self.socket_dir)
        else:
            # The socket path would not fit in sun_path; tests connect over TCP anyway, and an
            # empty list disables unix sockets rather than falling back to the shared
            # /var/run/postgresql of the machine's own cluster.
            socket_dir = ""
        config = {
            "listen_addresses": LOCALHOST,
            "port": str(self.port),
            # Own socket dir: the shared /var/run/postgresql may be unwritable or in use.
            "unix_socket_directories": socket_dir,
            # Speed: no fsync (only an OS crash could lose data, and this cluster is disposable).
            "fsync": "off",
            "full_page_writes": "off",
            # Small footprint: tests start several clusters and the machine runs its own.
            "shared_buffers": "16MB",
            "max_connections": "100",
            **self.settings,
        }
        with (self.data_dir / "postgresql.conf").open("a") as conf:
            conf.write("\n# Added by tests/support/services.py\n")
            for key, value in config.items():
                escaped = value.replace("'", "''")
                conf.write(f"{key} = '{escaped}'\n")

    def _postmaster_pid(self) -> int | None:
        try:
            first = (self.data_dir / "postmaster.pid").read_text().splitlines()[0]
        except (OSError, IndexError):
            return None
        return int(first) if first.strip().isdigit() else None

    # -- lifecycle --

    @property
    def is_running(self) -> bool:
        """True while the postmaster process is alive."""
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int | None:
        """PID of the postmaster while it runs."""
        return self._proc.pid if self.is_running and self._proc is not None else None

    def start(self, timeout: float = 60.0) -> None:
        """initdb if needed, start the postmaster, wait until it accepts SQL connections.

        The postmaster is our direct child (not daemonized by ``pg_ctl start``) so that after
        ``kill()`` we reap it ourselves: an unreaped postmaster stays a zombie in containers
        whose PID 1 does not reap, and its lingering PID would make the next start refuse.
        """
        if self.is_running:
            raise ServiceError(f"PostgreSQL on port {self.port} is already running")
        if not self.initialized:
            self._initdb()
        with self.log_path.open("ab") as log:
            self._chown(self.log_path)
            log.write(f"--- starting postgres on {self.host}:{self.port}\n".encode())
            log.flush()
            self._proc = subprocess.Popen(
                [str(self.bindir / "postgres"), "-D", str(self.data_dir)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.base_dir,
                start_new_session=True,
                **self._owner_kwargs,
            )
        self._holder[0] = self._proc
        deadline = time.monotonic() + timeout
        last_error = "not listening yet"
        while True:
            if self._proc.poll() is not None or time.monotonic() >= deadline:
                code = self._proc.poll()
                _reap(self._proc)
                reason = f"exited with {code}" if code is not None else f"not up in {timeout}s"
                raise ServiceError(
                    f"postgres ({self.bindir}) {reason} on {self.host}:{self.port} "
                    f"({last_error}); log {self.log_path}:\n{_tail(self.log_path)}"
                )
            if port_is_open(self.host, self.port):
                # Listening is not ready: during crash recovery connections are refused with
                # "the database system is starting up".
                try:
                    with psycopg.connect(self.url(), connect_timeout=5):
                        return
                except psycopg.OperationalError as exc:
                    last_error = str(exc).strip()
            time.sleep(0.05)

    def stop(self, mode: StopMode = "fast", timeout: float = 60.0) -> None:
        """Shut down like ``pg_ctl stop -m <mode>`` and wait for the postmaster to exit.

        ``fast`` (default) disconnects clients and checkpoints; ``smart`` waits for clients to
        leave; ``immediate`` skips the checkpoint, so the next start runs crash recovery.
        """
        if mode not in _STOP_SIGNALS:
            raise ValueError(f"stop mode must be one of {sorted(_STOP_SIGNALS)}, not {mode!r}")
        proc = self._proc
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(_STOP_SIGNALS[mode])
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            _reap(proc)
            raise ServiceError(
                f"postgres did not stop ({mode}) within {timeout}s; killed. "
                f"Log:\n{_tail(self.log_path)}"
            ) from None

    def kill(self, children_timeout: float = 10.0) -> None:
        """Crash the server: SIGKILL the postmaster, as the OOM killer would.

        The orphaned backends notice the postmaster's death and exit on their own; we wait for
        that (and SIGKILL stragglers) because a new postmaster refuses to start while old
        processes are still attached to the shared memory.
        """
        proc = self._proc
        if proc is None or proc.poll() is not None:
            return
        children = children_of(proc.pid)
        _reap(proc, signal.SIGKILL)
        deadline = time.monotonic() + children_timeout
        for child in children:
            while not _is_gone(child) and time.monotonic() < deadline:
                time.sleep(0.02)
            if not _is_gone(child):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(child, signal.SIGKILL)

    def restart(self, mode: StopMode = "fast", timeout: float = 60.0) -> None:
        """Stop (if running) and start again with the same port and data directory."""
        self.stop(mode=mode)
        self.start(timeout=timeout)

    def url(self, dbname: str = "postgres") -> str:
        """``postgresql://postgres@127.0.0.1:PORT/dbname`` (trust auth: no password)."""
        return (
            f"postgresql://{quote(self.superuser, safe='')}@{self.host}:{self.port}/"
            f"{quote(dbname, safe='')}"
        )

    def create_database(self, name: str) -> str:
        """``CREATE DATABASE name`` and return its URL."""
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return self.url(name)

    def log_text(self) -> str:
        """Everything the server logged so far."""
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def __repr__(self) -> str:
        state = "running" if self.is_running else "stopped"
        return f"<PrivatePostgres {self.host}:{self.port} {state} in {self.base_dir}>"


def _finalize_postgres(
    holder: list[subprocess.Popen[bytes] | None], cleanup_dir: Path | None
) -> None:
    # SIGQUIT = immediate shutdown: the postmaster takes its backends down with it.
    _reap(holder[0], signal.SIGQUIT)
    if cleanup_dir is not None:
        shutil.rmtree(cleanup_dir, ignore_errors=True)
