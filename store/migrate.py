"""Migrations: ordered, versioned, idempotent schema changes, run by ``homecare migrate``.

Files in ``store/migrations`` are named ``NNNN_name.sql`` (every engine) or
``NNNN_name.<flavour>.sql`` (only TimescaleDB or only plain PostgreSQL). A version that has no
file for the running flavour is recorded as applied with nothing to do, so both engines walk the
same version numbers. Each applied version is stored with a checksum: editing a migration after
it ran is an error, not a silent drift. A session advisory lock lets several processes call
``migrate`` at once (an ingest worker and the API starting together) without racing.

The flavour is decided once, on the first run, and recorded in ``store_info``: ``auto`` picks
TimescaleDB when the extension can be created, plain PostgreSQL otherwise.
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass
from importlib import resources
from typing import Any, Literal

import psycopg

from homecare.store.errors import MigrationError

__all__ = ["Flavour", "Migration", "apply_policies", "available_migrations", "flavour", "migrate"]

Flavour = Literal["timescaledb", "postgres"]
_FILE = re.compile(
    r"^(?P<version>\d{4})_(?P<name>[a-z0-9_]+)(?:\.(?P<flavour>timescaledb|postgres))?\.sql$"
)
_LOCK_KEY = 0x686F6D65  # "home": one advisory lock id for all migrators
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Migration:
    """Migration is one version's SQL for one flavour (empty when the flavour has none)."""

    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def available_migrations(target: Flavour) -> list[Migration]:
    """available_migrations lists every version in order, with the SQL ``target`` runs."""
    by_version: dict[int, dict[str | None, tuple[str, str]]] = {}
    for entry in resources.files("homecare.store.migrations").iterdir():
        match = _FILE.match(entry.name)
        if match is None:
            continue
        files = by_version.setdefault(int(match["version"]), {})
        files[match["flavour"]] = (match["name"], entry.read_text(encoding="utf-8"))
    migrations = []
    for version in sorted(by_version):
        files = by_version[version]
        if None in files and len(files) > 1:
            raise MigrationError(f"version {version:04d} has both a shared and a flavour file")
        chosen = files.get(None) or files.get(target)
        name = (chosen or next(iter(files.values())))[0]
        migrations.append(Migration(version, name, chosen[1] if chosen else ""))
    return migrations


def migrate(conn: psycopg.Connection[Any], wanted: Literal["auto", Flavour] = "auto") -> list[int]:
    """migrate brings the schema to the newest version and returns the versions it applied.

    ``conn`` must be in autocommit mode: each migration runs in its own transaction.
    """
    if not conn.autocommit:
        raise MigrationError("migrate needs an autocommit connection")
    conn.execute("SELECT pg_advisory_lock(%s)", (_LOCK_KEY,))
    try:
        with conn.transaction():
            conn.execute(
                "CREATE TABLE IF NOT EXISTS store_info (key text PRIMARY KEY, value text NOT NULL)"
            )
            conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations (version integer PRIMARY KEY,"
                " name text NOT NULL, checksum text NOT NULL,"
                " applied_at timestamptz NOT NULL DEFAULT now())"
            )
        target = _decide_flavour(conn, wanted)
        applied = {
            row[0]: row[1]
            for row in conn.execute("SELECT version, checksum FROM schema_migrations")
        }
        done: list[int] = []
        for migration in available_migrations(target):
            if migration.version in applied:
                if applied[migration.version] != migration.checksum:
                    raise MigrationError(
                        f"migration {migration.version:04d}_{migration.name} was edited after "
                        "it was applied; add a new migration instead"
                    )
                continue
            _apply(conn, migration)
            done.append(migration.version)
        return done
    finally:
        conn.execute("SELECT pg_advisory_unlock(%s)", (_LOCK_KEY,))


def flavour(conn: psycopg.Connection[Any]) -> Flavour:
    """flavour tells which engine the migrated schema is on (after ``migrate``)."""
    row = conn.execute("SELECT value FROM store_info WHERE key = 'flavour'").fetchone()
    if row is None:
        raise MigrationError("the database is not migrated: run `homecare migrate`")
    value = row[0]
    if value not in ("timescaledb", "postgres"):
        raise MigrationError(f"unknown store flavour {value!r}")
    return value  # type: ignore[no-any-return]


def apply_policies(
    conn: psycopg.Connection[Any], *, compress_after_days: int, retention_days: int
) -> None:
    """apply_policies (re)sets compression and retention on TimescaleDB from the settings.

    On plain PostgreSQL there is no compression and retention is a scheduled delete
    (``store.maintenance``), so nothing is registered here.
    """
    if flavour(conn) != "timescaledb":
        return
    with conn.transaction():
        conn.execute("SELECT remove_compression_policy('readings', if_exists => true)")
        conn.execute(
            "SELECT add_compression_policy('readings', make_interval(days => %s))",
            (compress_after_days,),
        )
        conn.execute("SELECT remove_retention_policy('readings', if_exists => true)")
        conn.execute(
            "SELECT add_retention_policy('readings', make_interval(days => %s))",
            (retention_days,),
        )


def _decide_flavour(conn: psycopg.Connection[Any], wanted: Literal["auto", Flavour]) -> Flavour:
    row = conn.execute("SELECT value FROM store_info WHERE key = 'flavour'").fetchone()
    if row is not None:
        recorded: Flavour = row[0]
        if wanted != "auto" and wanted != recorded:
            raise MigrationError(
                f"database was migrated as {recorded}; HOMECARE_DB_FLAVOUR={wanted} disagrees"
            )
        return recorded
    available = conn.execute(
        "SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb'"
    ).fetchone()
    if wanted == "timescaledb" and available is None:
        raise MigrationError("HOMECARE_DB_FLAVOUR=timescaledb but the extension is not available")
    chosen: Flavour = "timescaledb" if wanted != "postgres" and available else "postgres"
    with conn.transaction():
        if chosen == "timescaledb":
            conn.execute("CREATE EXTENSION IF NOT EXISTS timescaledb")
        conn.execute("INSERT INTO store_info (key, value) VALUES ('flavour', %s)", (chosen,))
    log.info("store flavour chosen", extra={"flavour": chosen})
    return chosen


def _apply(conn: psycopg.Connection[Any], migration: Migration) -> None:
    label = f"{migration.version:04d}_{migration.name}"
    try:
        with conn.transaction():
            if migration.sql.strip():
                conn.execute(migration.sql.encode())
            conn.execute(
                "INSERT INTO schema_migrations (version, name, checksum) VALUES (%s, %s, %s)",
                (migration.version, migration.name, migration.checksum),
            )
    except psycopg.Error as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise MigrationError(f"migration {label} failed: {first}") from exc
    log.info("migration applied", extra={"version": migration.version, "migration": migration.name})
