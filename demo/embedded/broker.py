"""Embedded MQTT broker for ``homecare demo``: mosquitto when it is on PATH, else amqtt.

``mosquitto`` speaks MQTT 5; ``amqtt`` (pure Python, MQTT 3.1.1 only) runs in a child process,
so its asyncio loop is not ours. The handle's ``protocol`` says which MQTT version the caller must
speak. With ``device_auth=True`` (what the demo uses) mosquitto runs like production: anonymous
clients refused, accounts in the dynamic-security plugin, seeded with a fresh admin and ingest
account (``admin_url`` and ``url`` carry their passwords), so devices get per-device credentials
through ``broker.credentials`` exactly as with a deployed broker. amqtt cannot do that (its
plugins only know a static per-user topic list, no per-device pattern and no changes while
running), so the amqtt fallback admits any client: it is NOT the secure configuration, and says
so with a warning. It is not as reliable either: amqtt 0.12 loses a QoS 1 message published to
a persistent session while it is still processing that session's DISCONNECT
(tests/test_embedded.py), so a demo on amqtt can miss a reading across an ingest restart.
Install mosquitto for anything beyond a first look.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote

from homecare.demo.embedded.service import (
    HOST,
    EmbeddedService,
    EmbeddedServiceError,
    ensure_free,
    free_port,
    log_tail,
    service_handle,
    wait_for_port,
)

__all__ = ["start_embedded_broker"]

logger = logging.getLogger(__name__)

# Runs in a child interpreter: `python -c _AMQTT_RUNNER PORT`. amqtt's AnonymousAuthPlugin marks
# sessions anonymous, and amqtt then drops their persistent sessions and queued QoS 1 messages;
# this plugin admits everyone without that mark, so clean_session=False works as with mosquitto.
_AMQTT_RUNNER = """
import asyncio, logging, signal, sys
from amqtt.broker import Broker
from amqtt.plugins.base import BaseAuthPlugin

class LoopbackAuth(BaseAuthPlugin):
    async def authenticate(self, *, session):
        return True

async def main(port):
    config = {"listeners": {"default": {"type": "tcp", "bind": f"127.0.0.1:{port}"}},
              "plugins": {"__main__.LoopbackAuth": {}}}
    broker = Broker(config)
    await broker.start()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set)
    await stop.wait()
    await broker.shutdown()

logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s %(message)s")
# wait_for_port's probe connects and closes without a CONNECT packet: amqtt logs that as an error
logging.getLogger("amqtt.broker").addFilter(lambda record: "No data" not in record.getMessage())
asyncio.run(main(int(sys.argv[1])))
"""


def _dynsec_plugin() -> Path | None:
    """The dynamic-security plugin shipped with mosquitto (Debian: /usr/lib/<triplet>/)."""
    name = "mosquitto_dynamic_security.so"
    for pattern in (f"usr/lib/*/{name}", f"usr/lib/{name}", f"usr/local/lib/{name}"):
        for found in sorted(Path("/").glob(pattern)):
            return found
    return None


def _seed_accounts(work_dir: Path, port: int) -> tuple[list[str], str, str]:
    """Fresh admin and ingest accounts in a new dynamic-security file (no devices yet: the demo
    issues theirs through broker.credentials). Returns config lines, ingest and admin URLs."""
    import secrets

    from homecare.broker.sync import ServiceAccount, render_dynsec_config, write_dynsec_config

    plugin = _dynsec_plugin()
    if plugin is None:
        raise EmbeddedServiceError(
            "mosquitto's dynamic-security plugin (mosquitto_dynamic_security.so) was not found; "
            "it ships with Debian's mosquitto package"
        )
    passwords = {user: secrets.token_urlsafe(24) for user in ("homecare-admin", "homecare-ingest")}
    config = render_dynsec_config(
        [],
        ServiceAccount.from_password("homecare-admin", passwords["homecare-admin"]),
        ServiceAccount.from_password("homecare-ingest", passwords["homecare-ingest"]),
    )
    state = work_dir / "dynamic-security.json"
    write_dynsec_config(state, config)
    urls = {
        user: f"mqtt://{user}:{quote(password, safe='')}@{HOST}:{port}"
        for user, password in passwords.items()
    }
    lines = ["allow_anonymous false", f"plugin {plugin}", f"plugin_opt_config_file {state}"]
    return lines, urls["homecare-ingest"], urls["homecare-admin"]


def _mosquitto_config(work_dir: Path, port: int, auth: list[str]) -> Path:
    lines = [
        f"listener {port} {HOST}",
        *(auth or ["allow_anonymous true"]),  # without auth: a loopback-only demo broker
        "persistence true",
        f"persistence_location {work_dir}/",
        "max_queued_messages 1000000",
        "log_dest stderr",  # the child's stderr goes to work_dir/mosquitto.log
    ]
    if os.geteuid() == 0:
        lines.append("user root")  # else mosquitto drops to user 'mosquitto', who can't write here
    path = work_dir / "mosquitto.conf"
    path.write_text("\n".join(lines) + "\n")
    return path


def start_embedded_broker(
    work_dir: Path,
    port: int | None = None,
    *,
    prefer_mosquitto: bool = True,
    timeout: float = 15.0,
    device_auth: bool = False,
) -> EmbeddedService:
    """Start an MQTT broker on 127.0.0.1: mosquitto (MQTT 5) if on PATH, else amqtt (3.1.1).

    ``device_auth``: mosquitto with the dynamic-security plugin and fresh service accounts
    (a new set each start; what an earlier run issued is gone, as the demo uses new device ids
    each run). The amqtt fallback cannot authenticate devices and only warns.
    """
    started = time.monotonic()
    work_dir = work_dir.resolve()
    work_dir.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    ensure_free(port, "the embedded MQTT broker")
    mosquitto = shutil.which("mosquitto") if prefer_mosquitto else None
    url, admin_url = f"mqtt://{HOST}:{port}", None
    if mosquitto:
        name, protocol = "mosquitto", "5"
        auth: list[str] = []
        if device_auth:
            auth, url, admin_url = _seed_accounts(work_dir, port)
        cmd = [mosquitto, "-c", str(_mosquitto_config(work_dir, port, auth))]
    elif importlib.util.find_spec("amqtt") is not None:
        name, protocol = "amqtt", "3.1.1"
        cmd = [sys.executable, "-c", _AMQTT_RUNNER, str(port)]
        if device_auth:
            logger.warning(
                "embedded amqtt broker admits every client: devices are not authenticated and "
                "may publish under any device id; this zero-setup fallback is NOT the secure "
                "configuration (install mosquitto for per-device credentials)"
            )
    else:
        raise EmbeddedServiceError(
            "no MQTT broker available: mosquitto is not on PATH and amqtt is not installed "
            "(pip install 'homecare-rpm[demo]')"
        )
    log = work_dir / f"{name}.log"
    log_at = log.stat().st_size if log.exists() else 0
    with log.open("ab") as out:
        proc = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=work_dir,
            start_new_session=True,
        )

    def stop() -> None:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
        proc.wait()

    try:
        wait_for_port(HOST, port, timeout, service=f"embedded {name} broker", process=proc)
    except (TimeoutError, EmbeddedServiceError) as exc:
        stop()
        raise EmbeddedServiceError(f"{exc}: {log_tail(log, log_at)}") from exc
    except BaseException:  # e.g. Ctrl-C: the broker is in its own session, so stop it here
        stop()
        raise
    security = "per-device credentials" if admin_url else "NO device authentication"
    detail = (
        f"embedded {name} (MQTT {protocol}, pid {proc.pid}; {security}), dir {work_dir}, "
        f"ready in {time.monotonic() - started:.2f} s"
    )
    return service_handle(name, url, detail, stop, protocol, admin_url, f"{HOST}:{port}")
