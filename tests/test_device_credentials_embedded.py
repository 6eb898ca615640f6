"""The demo's embedded broker uses the same credential mechanism as production.

demo/embedded.py with ``device_auth=True``: mosquitto with the dynamic-security plugin,
seeded with fresh service accounts; devices get theirs through broker.credentials (as the demo
does via demo.provision). The amqtt fallback cannot, and must say so.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import psycopg
import pytest
from paho.mqtt.reasoncodes import ReasonCode

from homecare.demo.embedded import start_embedded_broker
from homecare.demo.provision import issue_device_passwords
from homecare.settings import load_settings
from homecare.wiring import broker_accounts

NOT_AUTHORIZED = 0x87


def _session(port: int, username: str | None, password: str | None) -> tuple[mqtt.Client, Any]:
    answers: dict[str, Any] = {}
    done = threading.Event()
    client = mqtt.Client(
        mqtt.CallbackAPIVersion.VERSION2,  # type: ignore[attr-defined]
        client_id=username or "anonymous-test",
        protocol=mqtt.MQTTv5,
    )
    if username is not None:
        client.username_pw_set(username, password)

    def on_connect(c: Any, u: Any, f: Any, reason: ReasonCode, p: Any) -> None:
        answers["connack"] = reason
        done.set()

    client.on_connect = on_connect
    client.on_publish = lambda c, u, mid, reason, p: answers.setdefault("pubacks", {}).update(
        {mid: reason}
    )
    client.connect("127.0.0.1", port)
    client.loop_start()
    assert done.wait(5), "no CONNACK"
    return client, answers


def test_embedded_mosquitto_gives_demo_devices_their_own_credentials(
    tmp_path: Path, db: psycopg.Connection[Any]
) -> None:
    with start_embedded_broker(tmp_path / "broker", device_auth=True) as broker:
        assert broker.admin_url is not None and "homecare-admin:" in broker.admin_url
        assert broker.url.startswith("mqtt://homecare-ingest:")
        assert broker.address.startswith("127.0.0.1:") and "@" not in broker.address
        port = int(broker.address.rsplit(":", 1)[1])
        anonymous, answers = _session(port, None, None)
        anonymous.loop_stop()
        assert answers["connack"].value == NOT_AUTHORIZED

        settings = load_settings(mqtt_url=broker.url, mqtt_admin_url=broker.admin_url)
        accounts = broker_accounts(settings)
        passwords = issue_device_passwords(db, ["demo-a", "demo-b"], accounts)
        again = issue_device_passwords(db, ["demo-a"], accounts)  # a rerun rotates
        assert again["demo-a"] != passwords["demo-a"]

        client, answers = _session(port, "demo-a", again["demo-a"])
        try:
            assert not answers["connack"].is_failure
            own = client.publish("homecare/v1/devices/demo-a/readings", b"{}", qos=1)
            forged = client.publish("homecare/v1/devices/demo-b/readings", b"{}", qos=1)
            own.wait_for_publish(5)
            forged.wait_for_publish(5)
            assert not answers["pubacks"][own.mid].is_failure
            assert answers["pubacks"][forged.mid].value == NOT_AUTHORIZED
        finally:
            client.disconnect()
            client.loop_stop()
        stale, answers = _session(port, "demo-a", passwords["demo-a"])
        stale.loop_stop()
        assert answers["connack"].value == NOT_AUTHORIZED


def test_amqtt_fallback_warns_that_it_authenticates_nobody(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with (
        caplog.at_level(logging.WARNING, logger="homecare.demo.embedded"),
        start_embedded_broker(
            tmp_path / "amqtt", prefer_mosquitto=False, device_auth=True
        ) as broker,
    ):
        assert broker.admin_url is None
        assert "NO device authentication" in broker.detail
    assert any("NOT the secure configuration" in r.getMessage() for r in caplog.records)
