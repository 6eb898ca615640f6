"""Source: the analyst's read-only view of the store, and the cohort every frame starts from.

A ``Source`` is one database connection (read-only, UTC) plus the de-identification policy
(``analytics.deid``): the pseudonymizer, and whether identified columns were asked for and by
whom. Every other module of the package takes a ``Source`` and returns a pandas DataFrame.

The cohort (``patients``): who is monitored, in which programs, from when to when. The
monitoring window of a patient is from the start of their first device assignment (the day
they were equipped: a patient who never measured counts from then, with zero readings —
those are the adherence figures that matter most) to the end of their last one if every
assignment is closed, else to the source's observation end ``as_of``.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pandas as pd
import psycopg
from psycopg.types.datetime import TimestamptzBinaryLoader, TimestamptzLoader
from psycopg.types.json import Jsonb

from homecare import store
from homecare.analytics.deid import Pseudonymizer, age_band, age_on

__all__ = [
    "IdentifiedAccessError",
    "Member",
    "Source",
    "connect",
    "members",
    "patients",
]

log = logging.getLogger(__name__)


class IdentifiedAccessError(ValueError):
    """IdentifiedAccessError: identified data asked for without saying who and why."""


@dataclass
class Source:
    """Source: a read-only connection and the de-identification policy of one analysis."""

    conn: psycopg.Connection[Any]
    pseudonyms: Pseudonymizer
    identified_by: str | None = None
    as_of: datetime | None = None
    _labels: dict[uuid.UUID, str] = field(default_factory=dict, repr=False)

    @property
    def identified(self) -> bool:
        """identified says whether frames carry ids, names, birth dates and staff ids."""
        return self.identified_by is not None

    def label(self, patient_id: uuid.UUID) -> str:
        """label is the patient's pseudonym (cached: one HMAC per patient and source)."""
        name = self._labels.get(patient_id)
        if name is None:
            name = self._labels[patient_id] = self.pseudonyms.pseudonym(patient_id)
        return name

    def rows(self, query: str, params: Any = None) -> list[tuple[Any, ...]]:
        """rows runs one read-only query (the package's only way to the database)."""
        return self.conn.execute(query, params).fetchall()

    def observation_end(self) -> datetime:
        """observation_end is ``as_of``, or the end of the newest day with readings (so a
        simulated cohort that ended weeks ago is not diluted by empty days since)."""
        if self.as_of is None:
            row = self.rows("SELECT max(bucket) FROM readings_daily")
            newest = row[0][0] if row else None
            self.as_of = newest + timedelta(days=1) if newest else datetime.now(UTC)
        return self.as_of

    def close(self) -> None:
        """close releases the connection."""
        self.conn.close()

    def __enter__(self) -> Source:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _UTCLoader(TimestamptzLoader):
    """_UTCLoader: every timestamptz a Source reads comes back in UTC, whatever zone the
    connection reported."""

    def load(self, data: Any) -> datetime:
        return super().load(data).astimezone(UTC)


class _UTCBinaryLoader(TimestamptzBinaryLoader):
    """_UTCBinaryLoader: the same for the binary format."""

    def load(self, data: Any) -> datetime:
        return super().load(data).astimezone(UTC)


def connect(
    database_url: str,
    *,
    pseudonym_key: str,
    identified_by: str | None = None,
    reason: str | None = None,
    as_of: datetime | None = None,
) -> Source:
    """connect opens a Source; identified data needs ``identified_by`` and a ``reason``, and
    the access is written to ``audit_log`` before anything is read."""
    pseudonyms = Pseudonymizer(pseudonym_key)
    if identified_by is not None and not (identified_by.strip() and (reason or "").strip()):
        raise IdentifiedAccessError("identified data needs who (identified_by) and why (reason)")
    conn = store.connect(database_url, autocommit=True, application_name="homecare-analytics")
    try:
        if identified_by is not None:
            conn.execute(
                "INSERT INTO audit_log (actor, action, subject, detail) VALUES (%s, %s, %s, %s)",
                (identified_by, "analytics.identified_access", "cohort", Jsonb({"reason": reason})),
            )
            log.warning("identified analytics access", extra={"actor": identified_by})
        conn.execute("SET default_transaction_read_only = on")
        conn.execute("SET TIME ZONE 'UTC'")
        # psycopg labels a timestamptz with the zone the server last *reported*; a server or
        # proxy that does not report the SET above (the PGlite test engine of TimescaleDB
        # does not) would leave frames in its default zone ("GMT"), unlike on PostgreSQL.
        conn.adapters.register_loader("timestamptz", _UTCLoader)
        conn.adapters.register_loader("timestamptz", _UTCBinaryLoader)
    except BaseException:
        conn.close()
        raise
    return Source(conn, pseudonyms, identified_by, as_of)


@dataclass(frozen=True)
class Member:
    """Member: one monitored patient as the other modules need it (ids stay inside)."""

    patient_id: uuid.UUID
    patient: str  # pseudonym
    programs: tuple[str, ...]
    start: datetime
    stop: datetime
    display_name: str
    birth_date: date | None
    care_team: str | None

    @property
    def first_day(self) -> datetime:
        """first_day is the UTC day (midnight) monitoring started in."""
        return _day(self.start)

    @property
    def end_day(self) -> datetime:
        """end_day is the first UTC day no longer monitored (exclusive end, midnight)."""
        day = _day(self.stop)
        return day if day == self.stop else day + timedelta(days=1)


def members(source: Source) -> list[Member]:
    """members lists the monitored patients (at least one device assignment), by id."""
    end = source.observation_end()
    rows = source.rows(
        "SELECT p.id, p.display_name, p.birth_date, p.programs, p.care_team,"
        " min(a.valid_from), bool_or(a.valid_to IS NULL), max(a.valid_to)"
        " FROM patients p JOIN device_assignments a ON a.patient_id = p.id"
        " GROUP BY p.id ORDER BY p.id"
    )
    cohort = []
    for pid, name, birth, programs, team, start, any_open, last_end in rows:
        stop = end if any_open else min(last_end, end)
        cohort.append(
            Member(
                pid, source.label(pid), tuple(programs), start, max(start, stop), name, birth, team
            )
        )
    return cohort


def patients(source: Source) -> pd.DataFrame:
    """patients is the cohort, one row per monitored patient: ``patient`` (pseudonym),
    ``programs`` (tuple), ``primary_program`` (the first), ``age_band`` (on the observation
    end), ``care_team``, ``monitoring_start``, ``monitoring_end``, ``monitored_days``;
    identified sources add ``patient_id``, ``display_name`` and ``birth_date``."""
    end = source.observation_end().date()
    columns = [
        "patient",
        "programs",
        "primary_program",
        "age_band",
        "care_team",
        "monitoring_start",
        "monitoring_end",
        "monitored_days",
    ]
    if source.identified:
        columns += ["patient_id", "display_name", "birth_date"]
    records = []
    for m in members(source):
        record: dict[str, Any] = {
            "patient": m.patient,
            "programs": m.programs,
            "primary_program": m.programs[0] if m.programs else None,
            "age_band": age_band(age_on(m.birth_date, end) if m.birth_date else None),
            "care_team": m.care_team,
            "monitoring_start": m.start,
            "monitoring_end": m.stop,
            "monitored_days": (m.stop - m.start).total_seconds() / 86400,
        }
        if source.identified:
            record.update(
                patient_id=m.patient_id, display_name=m.display_name, birth_date=m.birth_date
            )
        records.append(record)
    return pd.DataFrame.from_records(records, columns=columns)


def _day(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
