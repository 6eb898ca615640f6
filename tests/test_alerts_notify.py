"""Notifications against real servers on loopback: a webhook receiver (stdlib HTTP server) that
verifies signatures and fails the first tries, an SMTP server (aiosmtpd), and the live stream
over PostgreSQL LISTEN/NOTIFY; routing; dead letters and replay."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import psycopg
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.handlers import Message

from homecare.alerts import (
    AlertStream,
    Dispatcher,
    RetryPolicy,
    Route,
    SmtpConfig,
    WebhookEndpoint,
    replay_dead,
    sse,
    verify_signature,
)
from homecare.alerts.worker import channels_for
from tests.alerts_support import T0, Clock, alerts_of, drain, finding, patient, service
from tests.support.services import free_port

SECRET = "s3cret-for-tests"


class Receiver:
    """Receiver: a real HTTP server that checks each request's signature on its own and
    answers 503 to the first ``fail_first`` requests."""

    def __init__(self, fail_first: int = 0, status: int = 503) -> None:
        self.fail_first = fail_first
        self.status = status
        self.requests: list[tuple[dict[str, str], bytes, bool]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                timestamp = self.headers["X-Homecare-Timestamp"]
                expected = hmac.new(
                    SECRET.encode(), f"{timestamp}.".encode() + body, hashlib.sha256
                ).hexdigest()
                valid = hmac.compare_digest(
                    f"sha256={expected}", self.headers["X-Homecare-Signature"]
                )
                outer.requests.append((dict(self.headers), body, valid))
                code = outer.status if len(outer.requests) <= outer.fail_first else 204
                self.send_response(code if valid else 401)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


class Inbox(Message):
    def __init__(self) -> None:
        super().__init__()
        self.messages: list[Any] = []

    def handle_message(self, message: Any) -> None:
        self.messages.append(message)


@pytest.fixture
def smtp() -> Iterator[tuple[Inbox, int]]:
    inbox = Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield inbox, port
    finally:
        controller.stop()


def test_webhooks_are_signed_retried_with_backoff_and_delivered_once(
    db: psycopg.Connection[Any], database_url: str
) -> None:
    clock = Clock()
    with Receiver(fail_first=2) as receiver:
        svc = service(
            database_url,
            clock,
            webhooks=(WebhookEndpoint("ward", receiver.url, SECRET),),
            routes=(Route("webhook", "ward"),),
            retry=RetryPolicy(max_attempts=5, base=timedelta(seconds=10)),
        )
        dispatcher = Dispatcher(svc.config, channels_for(svc.config))
        pid = patient(db)
        finding(db, pid, "htn.sbp_crisis", "active", T0)
        drain(svc, db)
        assert dispatcher.run_once(db) == 1  # 503
        assert dispatcher.run_once(db) == 0  # not due: the backoff is stored, not slept
        clock.advance(timedelta(seconds=10))
        assert dispatcher.run_once(db) == 1  # 503 again
        clock.advance(timedelta(seconds=19))
        assert dispatcher.run_once(db) == 0  # second backoff is 20 s
        clock.advance(timedelta(seconds=1))
        assert dispatcher.run_once(db) == 1  # delivered
        assert dispatcher.run_once(db) == 0
    assert len(receiver.requests) == 3 and all(valid for _, _, valid in receiver.requests)
    deliveries = {headers["X-Homecare-Delivery"] for headers, _, _ in receiver.requests}
    assert len(deliveries) == 1  # the same notification each time: receivers can de-duplicate
    headers, body, _ = receiver.requests[-1]
    assert verify_signature(SECRET, body, headers["X-Homecare-Timestamp"],
                            headers["X-Homecare-Signature"])  # fmt: skip
    assert not verify_signature("wrong", body, headers["X-Homecare-Timestamp"],
                                headers["X-Homecare-Signature"])  # fmt: skip
    assert not verify_signature(SECRET, body + b" ", headers["X-Homecare-Timestamp"],
                                headers["X-Homecare-Signature"])  # fmt: skip
    payload = json.loads(body)
    assert payload["change"] == "opened" and payload["alert"]["rule_id"] == "htn.sbp_crisis"
    assert payload["recipient"] == "primary_nurse"
    attempts = db.execute("SELECT outcome FROM notification_attempts ORDER BY id").fetchall()
    assert attempts == [("retryable",), ("retryable",), ("sent",)]
    assert db.execute("SELECT status, attempts FROM notifications").fetchone() == ("sent", 3)


def test_a_failing_webhook_is_dead_lettered_and_replayable_without_blocking_the_pipeline(
    db: psycopg.Connection[Any], database_url: str
) -> None:
    clock = Clock()
    with Receiver(fail_first=3) as receiver:
        svc = service(
            database_url,
            clock,
            webhooks=(WebhookEndpoint("ward", receiver.url, SECRET),),
            routes=(Route("webhook", "ward"),),
            retry=RetryPolicy(max_attempts=3, base=timedelta(seconds=1)),
        )
        dispatcher = Dispatcher(svc.config, channels_for(svc.config))
        pid = patient(db)
        finding(db, pid, "htn.sbp_crisis", "active", T0)
        drain(svc, db)
        for _ in range(3):
            dispatcher.run_once(db)
            clock.advance(timedelta(minutes=1))
        assert db.execute("SELECT status, attempts FROM notifications").fetchone() == ("dead", 3)
        # The alert is there and the pipeline goes on meanwhile.
        finding(db, pid, "common.hr_high", "active", T0, severity="medium")
        drain(svc, db)
        assert len(alerts_of(db, pid)) == 2
        assert replay_dead(db, "admin:dana", clock.now) == 1
        assert dispatcher.run_once(db) == 2  # the replayed one and the new alert's
    assert db.execute("SELECT count(*) FROM notifications WHERE status = 'sent'").fetchone() == (2,)
    assert db.execute("SELECT action FROM audit_log").fetchall() == [("notification.replay",)]


def test_a_client_error_is_permanent_at_once(
    db: psycopg.Connection[Any], database_url: str
) -> None:
    with Receiver(fail_first=5, status=410) as receiver:
        svc = service(
            database_url,
            Clock(),
            webhooks=(WebhookEndpoint("ward", receiver.url, SECRET),),
            routes=(Route("webhook", "ward"),),
        )
        pid = patient(db)
        finding(db, pid, "htn.sbp_crisis", "active", T0)
        drain(svc, db)
        Dispatcher(svc.config, channels_for(svc.config)).run_once(db)
    row = db.execute("SELECT status, attempts, last_error FROM notifications").fetchone()
    assert row == ("dead", 1, "HTTP 410")


def test_email_reaches_a_real_smtp_server_and_routes_pick_recipients(
    db: psycopg.Connection[Any], database_url: str, smtp: tuple[Inbox, int]
) -> None:
    inbox, port = smtp
    clock = Clock()
    svc = service(
        database_url,
        clock,
        smtp=SmtpConfig(host="127.0.0.1", port=port, sender="alerts@homecare.test"),
        routes=(
            Route(
                "email",
                "cardio-team@homecare.test",
                care_teams=frozenset({"cardio"}),
                recipients=frozenset({"primary_nurse"}),
            ),
            Route(
                "email",
                "oncall@homecare.test",
                severities=frozenset({"critical"}),
                recipients=frozenset({"physician_on_call"}),
            ),
        ),
        escalation={
            "critical": timedelta(minutes=5),
            "high": timedelta(minutes=5),
            "medium": None,
            "low": None,
        },
    )
    dispatcher = Dispatcher(svc.config, channels_for(svc.config))
    cardio = patient(db, programs=("heart_failure",), care_team="cardio")
    other = patient(db, care_team="renal")
    finding(db, cardio, "common.news2_high", "active", T0, severity="critical", score=9)
    finding(db, other, "htn.sbp_crisis", "active", T0, severity="high")
    drain(svc, db)
    dispatcher.run_once(db)
    assert [m["To"] for m in inbox.messages] == ["cardio-team@homecare.test"]
    clock.advance(timedelta(minutes=11))  # two escalations: nurse on duty, then physician
    svc.housekeeping(db)
    clock.advance(timedelta(minutes=6))
    svc.housekeeping(db)
    dispatcher.run_once(db)
    assert [m["To"] for m in inbox.messages] == [
        "cardio-team@homecare.test",
        "oncall@homecare.test",
    ]
    last = inbox.messages[-1]
    assert last["From"] == "alerts@homecare.test"
    assert last["Subject"].startswith("[CRITICAL] alert ") and "escalated" in last["Subject"]
    assert "physician_on_call" in last.get_payload()


def test_the_live_stream_sees_changes_committed_by_another_process(
    db: psycopg.Connection[Any], database_url: str
) -> None:
    stream = AlertStream(database_url).start()
    try:
        subscription = stream.subscribe()
        svc = service(database_url, Clock())
        pid = patient(db)
        finding(db, pid, "htn.sbp_crisis", "active", T0)
        # A rolled-back change never reaches the stream.
        with pytest.raises(RuntimeError), db.transaction():
            db.execute("SELECT pg_notify('homecare_alerts', %s)", (json.dumps({"rolled": 1}),))
            raise RuntimeError
        drain(svc, db)
        (alert,) = alerts_of(db, pid)
        svc.acknowledge(db, alert.id, "nurse:alice")
        first = subscription.get(timeout=5)
        second = subscription.get(timeout=5)
        assert first is not None and second is not None
        assert (first["change"], second["change"]) == ("opened", "acknowledged")
        assert first["alert"]["id"] == alert.id and second["actor"] == "nurse:alice"
        assert set(first["alert"]) >= {"id", "patient_id", "rule_id", "severity", "status",
                                       "condition", "opened_at", "evidence_time", "summary",
                                       "evidence"}  # fmt: skip
        frame = sse(second)
        assert frame.startswith(f"id: {alert.id}\nevent: alert\ndata: ".encode())
        assert frame.endswith(b"\n\n")
        assert subscription.get(timeout=0.3) is None
        subscription.close()
    finally:
        stream.stop()
