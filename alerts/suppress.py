"""Suppress: the inhibit and silence stages — why a page is not sent.

Each suppressor is one method, ``reason(conn, change) -> str | None``: None lets the page
through, a string is the reason it is held back, recorded on the change (and, for the lasting
reasons, on the alert, which then does not escalate). The pipeline asks them in order and stops
at the first reason. A suppressed alert is still stored, listed and streamed — only not paged.

Reasons: ``inhibited:<alert id>`` (a higher-level alert of the patient explains this one),
``silence:<silence id>``, ``late`` (evidence from a backlog: history, not news) and
``flapping`` (it re-fired within the flap window of its last page). The first three last: the
alert keeps ``suppressed_by`` until the cause ends (``AlertPipeline.lift_expired``).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Protocol

import psycopg

from homecare.alerts.config import InhibitRule
from homecare.alerts.model import AlertChange

__all__ = [
    "LASTING",
    "FlappingSuppressor",
    "InhibitionSuppressor",
    "LateSuppressor",
    "SilenceSuppressor",
    "Suppressor",
    "reason_still_holds",
]

# Reasons (by prefix) that stay on the alert until their cause ends.
LASTING = ("inhibited:", "silence:", "late")


class Suppressor(Protocol):
    """Suppressor: one question — why should this page not be sent (None: send it)?"""

    def reason(self, conn: psycopg.Connection[Any], change: AlertChange) -> str | None: ...


class LateSuppressor:
    """LateSuppressor holds back alerts opened from a late backlog: shown as history."""

    def reason(self, conn: psycopg.Connection[Any], change: AlertChange) -> str | None:
        return "late" if change.kind in ("opened", "refired") and change.alert.late else None


class FlappingSuppressor:
    """FlappingSuppressor holds back a re-firing within ``window`` of the alert's last page."""

    def __init__(self, window: timedelta) -> None:
        self.window = window

    def reason(self, conn: psycopg.Connection[Any], change: AlertChange) -> str | None:
        last = change.alert.last_paged_at
        if change.kind == "refired" and last is not None and change.at - last < self.window:
            return "flapping"
        return None


class InhibitionSuppressor:
    """InhibitionSuppressor mutes an alert while an unresolved, active alert of the same
    patient whose rule inhibits it (``InhibitRule``) exists — and is not itself muted."""

    def __init__(self, rules: tuple[InhibitRule, ...]) -> None:
        self.rules = rules

    def reason(self, conn: psycopg.Connection[Any], change: AlertChange) -> str | None:
        source = inhibitor(conn, self.rules, change.alert.patient_id, change.alert.rule_id)
        return f"inhibited:{source}" if source is not None else None


class SilenceSuppressor:
    """SilenceSuppressor mutes alerts matching a silence in force at the change's time."""

    def reason(self, conn: psycopg.Connection[Any], change: AlertChange) -> str | None:
        silence = matching_silence(conn, change.alert.patient_id, change.alert.rule_id, change.at)
        return f"silence:{silence}" if silence is not None else None


def inhibitor(
    conn: psycopg.Connection[Any], rules: tuple[InhibitRule, ...], patient_id: Any, rule_id: str
) -> int | None:
    """inhibitor is the id of an alert of the patient that mutes alerts of ``rule_id``."""
    rows = conn.execute(
        "SELECT id, rule_id FROM alerts WHERE patient_id = %s AND status <> 'resolved'"
        " AND condition = 'active' AND rule_id <> %s AND (suppressed_by IS NULL OR"
        " suppressed_by NOT LIKE 'inhibited:%%') ORDER BY id",
        (patient_id, rule_id),
    ).fetchall()
    for alert_id, source_rule in rows:
        if any(rule.mutes(source_rule, rule_id) for rule in rules):
            return int(alert_id)
    return None


def matching_silence(
    conn: psycopg.Connection[Any], patient_id: Any, rule_id: str, at: datetime
) -> int | None:
    """matching_silence is the id of a silence covering (patient, rule) at ``at``."""
    row = conn.execute(
        "SELECT id FROM silences WHERE starts_at <= %s AND ends_at > %s"
        " AND (patient_id IS NULL OR patient_id = %s) AND (rule_id IS NULL OR rule_id = %s)"
        " ORDER BY ends_at DESC LIMIT 1",
        (at, at, patient_id, rule_id),
    ).fetchone()
    return int(row[0]) if row else None


def reason_still_holds(
    conn: psycopg.Connection[Any],
    rules: tuple[InhibitRule, ...],
    reason: str,
    patient_id: Any,
    rule_id: str,
    now: datetime,
) -> bool:
    """reason_still_holds says whether a lasting reason still applies to an alert."""
    if reason.startswith("silence:"):
        return matching_silence(conn, patient_id, rule_id, now) is not None
    if reason.startswith("inhibited:"):
        return inhibitor(conn, rules, patient_id, rule_id) is not None
    return True  # late: the alert stays history until a fresh firing or a nurse
