"""A private PostgreSQL cluster for tests, to stop, restart or crash at will.

:class:`PrivatePostgres` is a fresh cluster made with the PostgreSQL server binaries (Debian:
``/usr/lib/postgresql/<version>/bin``), trust auth, ``fsync=off`` for speed. The per-test
databases of ``tests/conftest.py`` live on the machine's shared server; this is for the tests
that must do to a server what a test may not do to a shared one.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import re
import shutil
import signal
import stat
import subprocess
import tempfile
import time
import weakref
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote

import psycopg
from psycopg import sql

from tests.support.services import (
    LOCALHOST,
    ManagedService,
    ServiceError,
    children_of,
    free_port,
    log_tail,
    port_is_open,
    reap,
)

__all__ = ["PrivatePostgres", "StopMode", "find_postgres_bindir"]

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


class PrivatePostgres(ManagedService):
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
            conf.write("\n# Added by tests/support/postgres.py\n")
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
                reap(self._proc)
                reason = f"exited with {code}" if code is not None else f"not up in {timeout}s"
                raise ServiceError(
                    f"postgres ({self.bindir}) {reason} on {self.host}:{self.port} "
                    f"({last_error}); log {self.log_path}:\n{log_tail(self.log_path)}"
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
            reap(proc)
            raise ServiceError(
                f"postgres did not stop ({mode}) within {timeout}s; killed. "
                f"Log:\n{log_tail(self.log_path)}"
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
        reap(proc, signal.SIGKILL)
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

    def __repr__(self) -> str:
        state = "running" if self.is_running else "stopped"
        return f"<PrivatePostgres {self.host}:{self.port} {state} in {self.base_dir}>"


def _finalize_postgres(
    holder: list[subprocess.Popen[bytes] | None], cleanup_dir: Path | None
) -> None:
    # SIGQUIT = immediate shutdown: the postmaster takes its backends down with it.
    reap(holder[0], signal.SIGQUIT)
    if cleanup_dir is not None:
        shutil.rmtree(cleanup_dir, ignore_errors=True)
