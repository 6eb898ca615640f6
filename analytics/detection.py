"""Detection: how well the stored findings (or the alerts) catch a labelled simulated cohort.

Only for a cohort that came from the simulator with its labels (``homecare seed`` writes
them): the scoring is the evaluation harness's own (``rules.harness.score``), so the figures
are defined exactly as ``homecare evaluate`` prints them — episodes alerted in time (≥ 24 h
before the ER visit), median lead time, false and look-alike alerts per patient-month, alerts
per nurse-day. Two views of the same cohort:

- ``of="findings"``: every stored (not retracted) ``active`` finding, as the harness scores the
  rules — the figures of ``homecare evaluate`` for this cohort;
- ``of="alerts"``: what reached the care team — each alert once, at ``opened_at`` (after
  de-duplication; the time the nurse could first act).

The labels name patients by their simulation key, which the store holds as the display name;
the match is made here and only aggregates (per program, per rule) leave this module.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import pandas as pd

from homecare.analytics.source import Source
from homecare.rules.harness import Alert, Group, Labels, parse_labels, score

__all__ = ["Detection", "detection", "load_labels"]

_COLUMNS = [
    "episodes",
    "caught",
    "caught_share",
    "median_lead_days",
    "false_alerts",
    "false_per_patient_month",
    "lookalike_alerts",
    "lookalike_per_patient_month",
    "alerts",
    "alerts_per_nurse_day",
]


@dataclass(frozen=True)
class Detection:
    """Detection: the harness's figures overall, per program and per rule, and the labels."""

    overall: pd.DataFrame
    by_program: pd.DataFrame
    by_rule: pd.DataFrame
    labels: Labels


def load_labels(path: str | Path) -> Labels:
    """load_labels reads a simulator labels file (schema ``homecare-sim-labels/1``)."""
    with open(path, encoding="utf-8") as handle:
        document: dict[str, Any] = json.load(handle)
    return parse_labels(document)


def detection(
    source: Source,
    labels: Labels,
    of: Literal["findings", "alerts"] = "findings",
    min_severity: str = "medium",
) -> Detection:
    """detection scores the stored findings or alerts of the labelled patients."""
    keys = {
        pid: name
        for pid, name in source.rows("SELECT id, display_name FROM patients")
        if name in labels.programs
    }
    if of == "findings":
        rows = source.rows(
            "SELECT patient_id, rule_id, severity, evidence_time FROM findings"
            " WHERE state = 'active' AND retracted_at IS NULL"
        )
    else:
        rows = source.rows("SELECT patient_id, rule_id, severity, opened_at FROM alerts")
    found = [
        Alert(keys[pid], rule_id, severity, time)
        for pid, rule_id, severity, time in rows
        if pid in keys and labels.start <= time <= labels.end
    ]
    overall, programs, rules = score(found, labels, min_severity)
    return Detection(
        overall=_frame({"all": overall}, "group"),
        by_program=_frame(programs, "program"),
        by_rule=_frame(rules, "rule_id"),
        labels=labels,
    )


def _frame(groups: dict[str, Group], index: str) -> pd.DataFrame:
    records = []
    for name, group in sorted(groups.items()):
        per_month = 30 / group.patient_days if group.patient_days else float("nan")
        records.append(
            {
                index: name,
                "episodes": group.episodes,
                "caught": group.caught,
                "caught_share": _nan(group.caught_share),
                "median_lead_days": _nan(group.median_lead_days),
                "false_alerts": group.false_alerts,
                "false_per_patient_month": group.false_alerts * per_month,
                "lookalike_alerts": group.lookalike_alerts,
                "lookalike_per_patient_month": group.lookalike_alerts * per_month,
                "alerts": group.alerts,
                "alerts_per_nurse_day": _nan(group.burden_per_nurse_day),
            }
        )
    return pd.DataFrame.from_records(records, columns=[index, *_COLUMNS])


def _nan(value: float | None) -> float:
    return float("nan") if value is None else value
