"""Outbox: the notify stage's write side — every change to the live stream, pages to routes.

Nothing is sent from here. In the alert's own transaction:

- every change is announced with ``pg_notify('homecare_alerts', …)``, which PostgreSQL delivers
  only if that transaction commits — so the live stream never shows an alert that was rolled
  back, and any process that LISTENs (the API) sees changes committed by any other;
- a change worth paging (an opening, a re-opening, an escalation, a lifted suppression) becomes
  one ``notifications`` row per matching route, delivered later by ``alerts.dispatch``. A channel
  that is down therefore never blocks the pipeline nor loses the alert.

Routes match on severity, the patient's care team and programs, and the role on the escalation
chain the page is for (``alerts.config.Route``).
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import psycopg

from homecare.alerts import repository as repo
from homecare.alerts.config import AlertsConfig
from homecare.alerts.model import AlertChange

__all__ = ["STREAM_CHANNEL", "announce", "enqueue_pages", "stream_payload"]

STREAM_CHANNEL = "homecare_alerts"
# NOTIFY payloads must stay under 8000 bytes; larger changes go out without their evidence.
_MAX_PAYLOAD = 7900


def stream_payload(change: AlertChange) -> str:
    """stream_payload is the change as JSON for the live stream (evidence dropped if huge)."""
    document = change.to_json()
    text = json.dumps(document, separators=(",", ":"), default=str)
    if len(text.encode()) > _MAX_PAYLOAD:
        document["alert"] = {**document["alert"], "evidence": None, "evidence_truncated": True}
        text = json.dumps(document, separators=(",", ":"), default=str)
    return text


def announce(conn: psycopg.Connection[Any], change: AlertChange) -> None:
    """announce queues the change for the live stream; delivered when the transaction commits."""
    conn.execute("SELECT pg_notify(%s, %s)", (STREAM_CHANNEL, stream_payload(change)))


def enqueue_pages(
    conn: psycopg.Connection[Any], config: AlertsConfig, change: AlertChange, now: datetime
) -> int:
    """enqueue_pages writes one notification per route the page matches; returns how many."""
    if not change.page or not config.routes:
        return 0
    recipient = change.recipient or config.chain[0]
    care_team, programs = repo.patient_routing(conn, change.alert.patient_id)
    body = json.dumps(change.to_json(), separators=(",", ":"), default=str)
    rows = [
        (change.alert.id, change.kind, route.channel, route.target, recipient, body, now)
        for route in config.routes
        if route.matches(change.alert.severity, care_team, programs, recipient)
    ]
    if rows:
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO notifications (alert_id, change, channel, target, recipient, body,"
                " next_attempt_at) VALUES (%s, %s, %s, %s, %s, %s, %s)",
                rows,
            )
    return len(rows)
