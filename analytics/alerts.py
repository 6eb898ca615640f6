"""Alerts: what the alerts cost the care team, and how the team responded.

Read from the alerts stage's records: ``alerts`` (one row per fingerprint episode) and
``alert_events`` (every change, with who and when). Definitions:

- **time to acknowledge**: from ``opened_at`` to the alert's *first* ``acknowledged`` event
  (a re-firing re-opens an acknowledged alert, so the row's own ``acknowledged_at`` is only
  the latest); an alert resolved without an acknowledgement has none;
- **time to resolve**: from ``opened_at`` to ``resolved_at``; ``resolver`` is ``person`` or
  ``system`` (auto-resolution after the hold time, retraction);
- **escalations**: the ``escalated`` events (one per step along the chain); ``escalated_to``
  is the last role reached;
- **paged**: whether any change of the alert paged someone (suppressed ones — inhibited,
  silenced, late, flapping — are in the queue without a page);
- **alerts per patient-month**: alerts opened in the monitoring windows per 30 monitored days,
  a patient in two programs counting in both (as in the evaluation harness).

Staff ids (``acknowledged_by``, ``resolved_by``) come only with an identified source.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from homecare.analytics.source import Source, members

__all__ = ["alert_burden", "alerts"]

SEVERITY_RANK = {"low": 0, "medium": 1, "high": 2, "critical": 3}

_QUERY = """
SELECT a.id, a.patient_id, a.rule_id, f.pack, a.severity, a.status, a.condition, a.opened_at,
       a.evidence_time, a.resolved_at, a.resolved_by, a.outcome, a.late, a.fired_count,
       a.suppressed_by, e.first_ack_at, e.first_ack_by, e.escalations, e.escalated_to, e.paged
FROM alerts a
JOIN findings f ON f.id = a.finding_id
LEFT JOIN LATERAL (
    SELECT min(at) FILTER (WHERE kind = 'acknowledged') AS first_ack_at,
           (array_agg(actor ORDER BY at, id) FILTER (WHERE kind = 'acknowledged'))[1]
               AS first_ack_by,
           count(*) FILTER (WHERE kind = 'escalated') AS escalations,
           (array_agg(detail->>'recipient' ORDER BY at DESC, id DESC)
               FILTER (WHERE kind = 'escalated'))[1] AS escalated_to,
           coalesce(bool_or((detail->>'paged')::boolean), false) AS paged
    FROM alert_events WHERE alert_id = a.id
) e ON true
ORDER BY a.opened_at, a.id
"""

_COLUMNS = [
    "alert_id",
    "patient",
    "programs",
    "pack",
    "rule_id",
    "severity",
    "status",
    "condition",
    "opened_at",
    "evidence_time",
    "first_ack_at",
    "minutes_to_ack",
    "resolved_at",
    "minutes_to_resolve",
    "resolver",
    "outcome",
    "escalations",
    "escalated_to",
    "paged",
    "suppressed_by",
    "late",
    "fired_count",
]


def alerts(source: Source, min_severity: str = "low") -> pd.DataFrame:
    """alerts: one row per alert of at least ``min_severity`` (columns: see ``_COLUMNS``; an
    identified source adds ``patient_id``, ``acknowledged_by`` and ``resolved_by``)."""
    floor = SEVERITY_RANK[min_severity]
    cohort = {m.patient_id: m for m in members(source)}
    records = []
    for row in source.rows(_QUERY):
        (alert_id, pid, rule_id, pack, severity, status, condition, opened, evidence, resolved,
         resolved_by, outcome, late, fired, suppressed, ack_at, ack_by, escalations,
         escalated_to, paged) = row  # fmt: skip
        if SEVERITY_RANK[severity] < floor:
            continue
        member = cohort.get(pid)
        record: dict[str, Any] = {
            "alert_id": alert_id,
            "patient": source.label(pid),
            "programs": member.programs if member else (),
            "pack": pack,
            "rule_id": rule_id,
            "severity": severity,
            "status": status,
            "condition": condition,
            "opened_at": opened,
            "evidence_time": evidence,
            "first_ack_at": ack_at,
            "minutes_to_ack": _minutes(opened, ack_at),
            "resolved_at": resolved,
            "minutes_to_resolve": _minutes(opened, resolved),
            "resolver": None if resolved_by is None else _actor_kind(resolved_by),
            "outcome": outcome,
            "escalations": int(escalations or 0),
            "escalated_to": escalated_to,
            "paged": bool(paged),
            "suppressed_by": suppressed.split(":")[0] if suppressed else None,
            "late": late,
            "fired_count": fired,
        }
        if source.identified:
            record.update(patient_id=pid, acknowledged_by=ack_by, resolved_by=resolved_by)
        records.append(record)
    columns = _COLUMNS + (["patient_id", "acknowledged_by", "resolved_by"] if source.identified
                          else [])  # fmt: skip
    frame = pd.DataFrame.from_records(records, columns=columns)
    for column in ("opened_at", "evidence_time", "first_ack_at", "resolved_at"):
        frame[column] = pd.to_datetime(frame[column], utc=True)
    return frame


def alert_burden(source: Source, min_severity: str = "low") -> pd.DataFrame:
    """alert_burden: per program (and ``all``), ``patients``, ``patient_months`` (30 monitored
    days), ``alerts`` opened inside the monitoring windows, ``paged`` among them, and both
    per patient-month."""
    cohort = members(source)
    frame = alerts(source, min_severity)
    window = {m.patient: (m.start, m.stop) for m in cohort}
    inside = [
        window.get(p) is not None and window[p][0] <= t < window[p][1]
        for p, t in zip(frame["patient"], frame["opened_at"], strict=True)
    ]
    # A Series, not the list: an empty list would select no columns instead of no rows.
    frame = frame[pd.Series(inside, index=frame.index, dtype=bool)]
    counts = frame.groupby("patient").agg(alerts=("alert_id", "size"), paged=("paged", "sum"))
    rows = []
    programs = sorted({p for m in cohort for p in m.programs})
    for program in [*programs, "all"]:
        group = [m for m in cohort if program == "all" or program in m.programs]
        days = sum((m.stop - m.start).total_seconds() / 86400 for m in group)
        names = [m.patient for m in group]
        n_alerts = int(counts["alerts"].reindex(names, fill_value=0).sum())
        n_paged = int(counts["paged"].reindex(names, fill_value=0).sum())
        months = days / 30
        rows.append(
            {
                "program": program,
                "patients": len(group),
                "patient_months": months,
                "alerts": n_alerts,
                "paged": n_paged,
                "alerts_per_patient_month": n_alerts / months if months else float("nan"),
                "paged_per_patient_month": n_paged / months if months else float("nan"),
            }
        )
    return pd.DataFrame.from_records(rows)


def _minutes(start: Any, end: Any) -> float:
    if start is None or end is None:
        return float("nan")
    return float((end - start).total_seconds() / 60)


def _actor_kind(actor: str) -> str:
    return "system" if actor.startswith("system:") else "person"
