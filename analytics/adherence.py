"""Adherence: how much of the time monitored patients actually measure, and how that fades.

Both figures come from the daily aggregate (``readings_daily``, one row per patient, type and
UTC day with a reading), never from raw readings: a day *with readings* is a UTC day with at
least one stored reading of the chosen types (default: any type). A monitored day is a UTC day
of the patient's monitoring window (``analytics.source``), partial first and last days
included — a patient equipped at 15:00 who measures the next morning has one day without.

- ``adherence``: per patient and program, the share of monitored days with readings;
- ``weekly_activity`` / ``dropoff``: per week since the patient's monitoring started, the days
  with readings; the drop-off curve is the share of patients still monitored that week who
  measured on at least ``min_days`` days of it (3: Tele-HF's "used the system at least three
  times a week", Chaudhry 2010, which the simulator's adherence decay is anchored on).

A patient in two programs counts in both, as in the evaluation harness.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

import pandas as pd

from homecare.analytics.source import Member, Source, members

__all__ = ["adherence", "dropoff", "weekly_activity"]


def _reading_days(source: Source, types: Sequence[str] | None) -> dict[object, set[object]]:
    if types is None:
        rows = source.rows("SELECT DISTINCT patient_id, bucket FROM readings_daily WHERE n > 0")
    else:
        rows = source.rows(
            "SELECT DISTINCT patient_id, bucket FROM readings_daily WHERE n > 0 AND type = ANY(%s)",
            (list(types),),
        )
    days: dict[object, set[object]] = {}
    for patient_id, bucket in rows:
        days.setdefault(patient_id, set()).add(bucket)
    return days


def _days_of(member: Member, reading_days: set[object]) -> list[bool]:
    """_days_of: for each monitored UTC day in order, whether it had readings."""
    flags = []
    day = member.first_day
    while day < member.end_day:
        flags.append(day in reading_days)
        day += timedelta(days=1)
    return flags


def adherence(source: Source, types: Sequence[str] | None = None) -> pd.DataFrame:
    """adherence: one row per (patient, program) with ``monitored_days``,
    ``days_with_readings`` and ``share`` (their ratio; NaN for a window of no whole day)."""
    reading_days = _reading_days(source, types)
    records = []
    for member in members(source):
        flags = _days_of(member, reading_days.get(member.patient_id, set()))
        for program in member.programs:
            records.append(
                {
                    "patient": member.patient,
                    "program": program,
                    "monitored_days": len(flags),
                    "days_with_readings": sum(flags),
                    "share": sum(flags) / len(flags) if flags else float("nan"),
                }
            )
    columns = ["patient", "program", "monitored_days", "days_with_readings", "share"]
    return pd.DataFrame.from_records(records, columns=columns)


def weekly_activity(source: Source, types: Sequence[str] | None = None) -> pd.DataFrame:
    """weekly_activity: one row per (patient, program, week since monitoring started, from 0)
    with ``monitored_days`` (7, or fewer in the last week) and ``days_with_readings``."""
    reading_days = _reading_days(source, types)
    records = []
    for member in members(source):
        flags = _days_of(member, reading_days.get(member.patient_id, set()))
        for week in range(0, len(flags), 7):
            chunk = flags[week : week + 7]
            for program in member.programs:
                records.append(
                    {
                        "patient": member.patient,
                        "program": program,
                        "week": week // 7,
                        "monitored_days": len(chunk),
                        "days_with_readings": sum(chunk),
                    }
                )
    columns = ["patient", "program", "week", "monitored_days", "days_with_readings"]
    return pd.DataFrame.from_records(records, columns=columns)


def dropoff(source: Source, min_days: int = 3, types: Sequence[str] | None = None) -> pd.DataFrame:
    """dropoff: per program and week, ``patients`` monitored for the whole week, ``active``
    (those with readings on at least ``min_days`` days of it) and ``share`` = active/patients.
    A patient's last, partial week is left out rather than counted as inactive."""
    weeks = weekly_activity(source, types)
    full = weeks[weeks["monitored_days"] == 7].copy()
    full["active"] = full["days_with_readings"] >= min_days
    table = (
        full.groupby(["program", "week"])
        .agg(patients=("patient", "nunique"), active=("active", "sum"))
        .reset_index()
    )
    table["active"] = table["active"].astype(int)
    table["share"] = table["active"] / table["patients"]
    return table
