"""Trajectories: a patient's vitals in the days around an alert, from the daily aggregate.

For each alert (of at least ``min_severity``), the daily means of the chosen types from
``days_before`` days before to ``days_after`` days after the UTC day the alert opened, as a
long frame (``day`` 0 = the day it opened). ``change`` is the day's mean minus the patient's
own *baseline* — the mean of the daily means from ``days_before`` to 8 days before the alert
(the week before the last week, where an episode's run-up does not yet show; NaN without one)
— so patients with different baselines can be drawn on one axis.

``program`` is the program whose rule pack raised the alert; for the shared pack (``common``,
e.g. NEWS2) it is the patient's primary program.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

import pandas as pd

from homecare.analytics.alerts import alerts
from homecare.analytics.source import Source

__all__ = ["BASELINE_LAST_DAY", "vitals_around_alerts"]

BASELINE_LAST_DAY = -8


def vitals_around_alerts(
    source: Source,
    types: Sequence[str],
    *,
    days_before: int = 14,
    days_after: int = 14,
    min_severity: str = "medium",
) -> pd.DataFrame:
    """vitals_around_alerts: one row per (alert, type, day with a reading) with ``alert_id``,
    ``patient``, ``program``, ``rule_id``, ``severity``, ``type``, ``day``, ``mean``, ``n``,
    ``baseline`` and ``change``."""
    if days_before < -BASELINE_LAST_DAY:
        raise ValueError(f"days_before must be at least {-BASELINE_LAST_DAY} for a baseline")
    columns = [
        "alert_id",
        "patient",
        "program",
        "rule_id",
        "severity",
        "type",
        "day",
        "mean",
        "n",
        "baseline",
        "change",
    ]
    chosen = alerts(source, min_severity)
    if chosen.empty:
        return pd.DataFrame(columns=columns)
    rows = source.rows(
        "SELECT a.id, r.type, r.bucket, r.mean, r.n FROM alerts a"
        " JOIN readings_daily r ON r.patient_id = a.patient_id"
        " AND r.bucket >= date_bin('1 day', a.opened_at, TIMESTAMPTZ '2000-01-01') - %s"
        " AND r.bucket <= date_bin('1 day', a.opened_at, TIMESTAMPTZ '2000-01-01') + %s"
        " WHERE a.id = ANY(%s) AND r.type = ANY(%s)",
        (
            timedelta(days=days_before),
            timedelta(days=days_after),
            [int(a) for a in chosen["alert_id"]],
            list(types),
        ),
    )
    daily = pd.DataFrame(rows, columns=["alert_id", "type", "bucket", "mean", "n"])
    daily["bucket"] = pd.to_datetime(daily["bucket"], utc=True)
    meta = chosen.assign(
        program=[
            pack if pack != "common" else (programs[0] if programs else None)
            for pack, programs in zip(chosen["pack"], chosen["programs"], strict=True)
        ],
        opened_day=chosen["opened_at"].dt.floor("D"),
    )[["alert_id", "patient", "program", "rule_id", "severity", "opened_day"]]
    frame = daily.merge(meta, on="alert_id")
    frame["day"] = ((frame["bucket"] - frame["opened_day"]).dt.days).astype(int)
    frame["mean"] = frame["mean"].astype(float)
    frame["n"] = frame["n"].astype(int)
    baseline = (
        frame[frame["day"] <= BASELINE_LAST_DAY]
        .groupby(["alert_id", "type"])["mean"]
        .mean()
        .rename("baseline")
    )
    frame = frame.merge(baseline, on=["alert_id", "type"], how="left")
    frame["change"] = frame["mean"] - frame["baseline"]
    return frame[columns].sort_values(["alert_id", "type", "day"]).reset_index(drop=True)
