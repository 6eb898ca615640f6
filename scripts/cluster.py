"""The clustered topology on one machine, from the files in deploy/ (run by scripts/cluster).

    up [--ingest N --rules N --alerts N]   start etcd x3, Patroni x2, NATS x3 and the workers
    down                                    stop everything this started
    status                                  what runs, who leads the database and the stream

Every node listens on 127.0.0.1 at the ports the deploy/ files give (etcd 2379/2479/2579,
PostgreSQL 5441/5442, Patroni REST 8008/8009, NATS 4231-4233, MQTT 1884-1886). State, logs,
pid files and the generated secrets live in .homecare/cluster/; `down` keeps them, so `up`
again resumes the same data. PostgreSQL refuses root: as root, etcd and Patroni run as the
postgres OS user.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import pwd
import secrets
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import psycopg
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from homecare.broker.nats_accounts import NatsAccountsAdmin, ingest_permissions  # noqa: E402
from homecare.ingest.nats import NatsConfig, ensure_consumer  # noqa: E402

DEPLOY = ROOT / "deploy"
STATE = Path(os.environ.get("HOMECARE_CLUSTER_DIR", ROOT / ".homecare" / "cluster"))
PG_PORTS = (5441, 5442)
NATS_PORTS = (4231, 4232, 4233)
MQTT_PORTS = (1884, 1885, 1886)
REST_PORTS = (8008, 8009)
DATABASE = "homecare"


def _secrets() -> dict[str, str]:
    path = STATE / "secrets.json"
    if path.exists():
        loaded: dict[str, str] = json.loads(path.read_text())
        return loaded
    values = {name: secrets.token_urlsafe(18) for name in ("postgres", "replicator", "rewinder")}
    values["ingest"] = secrets.token_urlsafe(24)
    path.write_text(json.dumps(values))
    path.chmod(0o600)
    return values


def _as_postgres() -> dict[str, Any]:
    if os.geteuid() != 0:
        return {}
    pw = pwd.getpwnam("postgres")
    return {"user": pw.pw_uid, "group": pw.pw_gid, "extra_groups": []}


def _give_to_postgres(path: Path) -> None:
    if os.geteuid() == 0:
        pw = pwd.getpwnam("postgres")
        os.chown(path, pw.pw_uid, pw.pw_gid)


def _spawn(name: str, argv: list[str], env: dict[str, str] | None = None, **kw: Any) -> None:
    pid_file = STATE / f"{name}.pid"
    if _alive(pid_file):
        print(f"  {name}: already running")
        return
    with open(STATE / f"{name}.log", "ab") as log:
        process = subprocess.Popen(
            argv,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env=env,
            cwd=STATE,
            **kw,
        )
    pid_file.write_text(str(process.pid))
    print(f"  {name}: pid {process.pid}")


def _alive(pid_file: Path) -> bool:
    try:
        os.kill(int(pid_file.read_text()), 0)
        return True
    except (FileNotFoundError, ValueError, ProcessLookupError):
        return False
    except PermissionError:
        return True


def _wait(what: str, check: Any, timeout_s: float = 90) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            sys.exit(f"scripts/cluster: {what} not ready within {timeout_s:g}s (see {STATE}/*.log)")
        time.sleep(0.5)


def _members() -> list[dict[str, Any]]:
    for port in REST_PORTS:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/cluster", timeout=2) as answer:
                members: list[dict[str, Any]] = json.load(answer)["members"]
                return members
        except (OSError, ValueError):
            continue
    return []


def database_url(values: dict[str, str], database: str = DATABASE) -> str:
    hosts = ",".join(f"127.0.0.1:{port}" for port in PG_PORTS)
    return (
        f"postgresql://postgres:{values['postgres']}@{hosts}/{database}"
        "?target_session_attrs=read-write"
    )


def nats_urls(values: dict[str, str]) -> str:
    urls = [f"nats://127.0.0.1:{port}" for port in NATS_PORTS]
    urls[0] = f"nats://homecare-ingest:{values['ingest']}@127.0.0.1:{NATS_PORTS[0]}"
    return ",".join(urls)


def up(args: argparse.Namespace) -> None:
    STATE.mkdir(parents=True, exist_ok=True)
    _give_to_postgres(STATE)
    values = _secrets()
    print("etcd")
    for i in (1, 2, 3):
        config = yaml.safe_load((DEPLOY / "etcd" / f"etcd{i}.yml").read_text())
        config["data-dir"] = str(STATE / f"etcd-{i}")
        path = STATE / f"etcd{i}.yml"
        path.write_text(yaml.safe_dump(config))
        _spawn(f"etcd{i}", ["etcd", "--config-file", str(path)], **_as_postgres())
    print("patroni")
    env = {
        **os.environ,
        "PATRONI_SUPERUSER_PASSWORD": values["postgres"],
        "PATRONI_REPLICATION_PASSWORD": values["replicator"],
        "PATRONI_REWIND_PASSWORD": values["rewinder"],
    }
    for i in (1, 2):
        config = yaml.safe_load((DEPLOY / "patroni" / f"pg{i}.yml").read_text())
        config["postgresql"]["data_dir"] = str(STATE / f"pg-{i}")
        config["postgresql"]["pgpass"] = str(STATE / f"pg-{i}.pgpass")
        config["postgresql"]["parameters"]["unix_socket_directories"] = str(STATE)
        path = STATE / f"pg{i}.yml"
        path.write_text(yaml.safe_dump(config))
        path.chmod(0o644)
        _spawn(f"patroni{i}", ["patroni", str(path)], env=env, **_as_postgres())
    _wait(
        "the database (a leader and a synchronous standby)",
        lambda: {"leader", "sync_standby"} <= {m["role"] for m in _members()},
        120,
    )
    print("nats")
    nats_dir = STATE / "nats"
    nats_dir.mkdir(exist_ok=True)
    accounts = NatsAccountsAdmin(
        nats_dir / "accounts.conf", [STATE / f"nats-{i}.pid" for i in (1, 2, 3)]
    )
    if not (nats_dir / "accounts.conf").exists():
        accounts.pid_files = []  # nothing to reload yet
        accounts.put_service(
            "homecare-ingest", values["ingest"], ingest_permissions("homecare-ingest")
        )
    for i in (1, 2, 3):
        text = (DEPLOY / "nats" / f"node{i}.conf").read_text()
        text = text.replace(f'"/run/homecare/nats-{i}.pid"', f'"{STATE}/nats-{i}.pid"')
        text = text.replace(f'"/var/lib/homecare/nats-{i}"', f'"{STATE}/nats-{i}"')
        (nats_dir / f"node{i}.conf").write_text(text)
        _spawn(f"nats{i}-server", ["nats-server", "-c", str(nats_dir / f"node{i}.conf")])
    _bootstrap_streams(values)
    print("database")
    with psycopg.connect(database_url(values, "postgres"), autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE,)).fetchone():
            conn.execute(f"CREATE DATABASE {DATABASE}")
    env = _homecare_env(values)
    subprocess.run([sys.executable, "-m", "homecare", "migrate"], env=env, check=True)
    print("workers")
    for kind, count in (("ingest", args.ingest), ("rules", args.rules), ("alerts", args.alerts)):
        for n in range(1, count + 1):
            argv = [sys.executable, "-m", "homecare", kind]
            if kind == "ingest":
                argv += ["--client-id", f"homecare-ingest-{n}"]
            _spawn(f"{kind}-{n}", argv, env=env)
    env_file = STATE / "homecare.env"
    env_file.write_text("".join(f"{k}={v}\n" for k, v in env.items() if k.startswith("HOMECARE_")))
    env_file.chmod(0o600)
    print(f"\nup. Settings for other homecare commands: {env_file}")
    print(f"devices: MQTT 3.1.1 on 127.0.0.1:{', '.join(map(str, MQTT_PORTS))}")


def _homecare_env(values: dict[str, str]) -> dict[str, str]:
    return {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "HOMECARE_DATABASE_URL": database_url(values),
        "HOMECARE_BROKER_KIND": "nats",
        "HOMECARE_NATS_URLS": nats_urls(values),
        "HOMECARE_NATS_ACCOUNTS_FILE": str(STATE / "nats" / "accounts.conf"),
        "HOMECARE_NATS_PID_FILES": ",".join(str(STATE / f"nats-{i}.pid") for i in (1, 2, 3)),
    }


def _bootstrap_streams(values: dict[str, str]) -> None:
    """The MQTT streams appear at the account's first MQTT connection; then the shared ingest
    consumer is created, before any device publishes (the stream keeps messages by interest)."""
    import paho.mqtt.client as mqtt

    deadline = time.monotonic() + 90
    while True:
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="homecare-bootstrap")  # type: ignore[attr-defined]
        client.username_pw_set("homecare-ingest", values["ingest"])
        try:
            client.connect("127.0.0.1", MQTT_PORTS[0], 10)
            attempt = time.monotonic() + 15
            while not client.is_connected() and time.monotonic() < attempt:
                if client.loop(0.5) != mqtt.MQTT_ERR_SUCCESS:
                    break
        except OSError:
            pass
        if client.is_connected():
            client.disconnect()
            break
        if time.monotonic() > deadline:
            sys.exit("scripts/cluster: the NATS cluster's MQTT listener never accepted a client")
        time.sleep(1)

    async def consumer() -> None:
        import nats

        servers = [f"nats://127.0.0.1:{port}" for port in NATS_PORTS]
        nc = await nats.connect(servers=servers, user="homecare-ingest", password=values["ingest"])
        try:
            await ensure_consumer(nc.jetstream(), NatsConfig(tuple(servers), None, None, "cluster"))
        finally:
            await nc.close()

    asyncio.run(consumer())


def down(args: argparse.Namespace) -> None:
    order = ["ingest", "rules", "alerts", "nats", "patroni", "etcd"]
    pid_files = sorted(
        STATE.glob("*.pid"),
        key=lambda p: next(
            (n for n, prefix in enumerate(order) if p.name.startswith(prefix)), len(order)
        ),
    )
    for pid_file in pid_files:
        if pid_file.name.startswith("nats-"):
            continue  # nats-server's own pid files; the nats<i>-server ones are ours
        if _alive(pid_file):
            pid = int(pid_file.read_text())
            os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + 30
            while _alive(pid_file) and time.monotonic() < deadline:
                time.sleep(0.2)
            if _alive(pid_file):
                os.kill(pid, signal.SIGKILL)
            print(f"  stopped {pid_file.stem}")
        pid_file.unlink(missing_ok=True)


def status(args: argparse.Namespace) -> None:
    for pid_file in sorted(STATE.glob("*.pid")):
        if pid_file.name.startswith("nats-"):
            continue
        print(f"  {pid_file.stem:16} {'running' if _alive(pid_file) else 'stopped'}")
    for member in _members():
        print(f"  database {member['name']}: {member['role']} ({member['state']})")


def main() -> None:
    parser = argparse.ArgumentParser(prog="scripts/cluster", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    start = commands.add_parser("up", help="start the whole topology")
    start.add_argument("--ingest", type=int, default=3)
    start.add_argument("--rules", type=int, default=2)
    start.add_argument("--alerts", type=int, default=2)
    start.set_defaults(run=up)
    commands.add_parser("down", help="stop it (data kept)").set_defaults(run=down)
    commands.add_parser("status", help="what runs").set_defaults(run=status)
    args = parser.parse_args()
    args.run(args)


if __name__ == "__main__":
    main()
