"""The database tier for tests: etcd and two Patroni nodes (a primary and a synchronous
standby) from the files the project ships (``deploy/etcd/``, ``deploy/patroni/``), on free
ports with private directories; trust authentication and ``fsync=off`` for speed (a SIGKILL
of a process loses nothing the operating system holds).

Re-exported by :mod:`tests.support.cluster`.
"""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import psycopg
import yaml

from tests.support.postgres import find_postgres_bindir
from tests.support.services import (
    LOCALHOST,
    ServiceError,
    find_executable,
    free_port,
    wait_for_port,
)

REPO_ROOT = Path(__file__).resolve().parents[2]

__all__ = ["EtcdCluster", "PatroniCluster"]

DEPLOY = REPO_ROOT / "deploy"


def _owner() -> dict[str, Any]:
    """PostgreSQL refuses root: as root, run etcd and Patroni as the postgres OS user."""
    if os.geteuid() != 0:
        return {}
    pw = pwd.getpwnam("postgres")
    return {"user": pw.pw_uid, "group": pw.pw_gid, "extra_groups": []}


def _private_dir(prefix: str) -> Path:
    path = Path(tempfile.mkdtemp(prefix=prefix))
    if os.geteuid() == 0:
        pw = pwd.getpwnam("postgres")
        os.chown(path, pw.pw_uid, pw.pw_gid)
    return path


class EtcdCluster:
    """EtcdCluster runs the three members of ``deploy/etcd`` on free ports."""

    def __init__(self) -> None:
        self.dir = _private_dir("homecare-etcd-")
        self.binary = find_executable("etcd")
        configs = [
            yaml.safe_load((DEPLOY / "etcd" / f"etcd{i}.yml").read_text()) for i in (1, 2, 3)
        ]
        ports = {c["name"]: (free_port(), free_port()) for c in configs}  # name -> (client, peer)
        peers = ",".join(f"{n}=http://{LOCALHOST}:{p}" for n, (_, p) in ports.items())
        self.client_ports = [ports[c["name"]][0] for c in configs]
        self.processes: list[subprocess.Popen[bytes]] = []
        self.configs: list[Path] = []
        for config in configs:
            client, peer = ports[config["name"]]
            config.update(
                {
                    "data-dir": str(self.dir / config["name"]),
                    "listen-client-urls": f"http://{LOCALHOST}:{client}",
                    "advertise-client-urls": f"http://{LOCALHOST}:{client}",
                    "listen-peer-urls": f"http://{LOCALHOST}:{peer}",
                    "initial-advertise-peer-urls": f"http://{LOCALHOST}:{peer}",
                    "initial-cluster": peers,
                    "initial-cluster-token": f"homecare-test-{os.getpid()}",
                }
            )
            path = self.dir / f"{config['name']}.yml"
            path.write_text(yaml.safe_dump(config))
            self.configs.append(path)

    @property
    def hosts(self) -> list[str]:
        """hosts are the members' client addresses, for Patroni's etcd3 section."""
        return [f"{LOCALHOST}:{port}" for port in self.client_ports]

    def start(self) -> None:
        for config in self.configs:
            log = open(self.dir / f"{config.stem}.log", "ab")  # noqa: SIM115 (the child keeps it)
            self.processes.append(
                subprocess.Popen(
                    [str(self.binary), "--config-file", str(config)],
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    **_owner(),
                )
            )
            log.close()
        for port in self.client_ports:
            wait_for_port(LOCALHOST, port, 30)

    def stop(self) -> None:
        for process in self.processes:
            process.terminate()
        for process in self.processes:
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(10)
            if process.poll() is None:
                process.kill()
        shutil.rmtree(self.dir, ignore_errors=True)


class PatroniCluster:
    """PatroniCluster runs ``deploy/patroni/pg1.yml`` and ``pg2.yml`` against an etcd."""

    def __init__(self, etcd: EtcdCluster, database: str = "homecare", fsync: bool = False) -> None:
        self.dir = _private_dir("homecare-patroni-")
        self.database = database
        self.binary = find_executable("patroni")
        bindir = find_postgres_bindir()
        self.nodes: list[dict[str, Any]] = []
        scope = f"homecare-test-{os.getpid()}-{id(self)}"
        for i in (1, 2):
            config = yaml.safe_load((DEPLOY / "patroni" / f"pg{i}.yml").read_text())
            rest, pg = free_port(), free_port()
            config["scope"] = scope
            config["restapi"] = {
                "listen": f"{LOCALHOST}:{rest}",
                "connect_address": f"{LOCALHOST}:{rest}",
            }
            config["etcd3"] = {"hosts": etcd.hosts}
            config["bootstrap"]["pg_hba"] = [
                "local all all trust",
                f"host replication replicator {LOCALHOST}/32 trust",
                f"host all all {LOCALHOST}/32 trust",
            ]
            config["bootstrap"]["initdb"] = [{"encoding": "UTF8"}, {"locale": "C.UTF-8"}]
            postgresql = config["postgresql"]
            postgresql.update(
                {
                    "listen": f"{LOCALHOST}:{pg}",
                    "connect_address": f"{LOCALHOST}:{pg}",
                    "data_dir": str(self.dir / f"pg{i}"),
                    "pgpass": str(self.dir / f"pg{i}.pgpass"),
                    "bin_dir": str(bindir),
                }
            )
            postgresql["parameters"].update(
                {"unix_socket_directories": str(self.dir), "fsync": "on" if fsync else "off"}
            )
            path = self.dir / f"pg{i}.yml"
            path.write_text(yaml.safe_dump(config))
            os.chmod(path, 0o644)
            self.nodes.append({"name": f"pg{i}", "config": path, "rest": rest, "port": pg})
        self.processes: dict[str, subprocess.Popen[bytes]] = {}

    # --- lifecycle --------------------------------------------------------------------------

    def start(self) -> None:
        """start runs every node not running and waits for a leader and a sync standby."""
        for node in self.nodes:
            process = self.processes.get(node["name"])
            if process is None or process.poll() is not None:
                self.start_node(node["name"])
        self.wait_healthy()

    def start_node(self, name: str) -> None:
        node = self._node(name)
        log = open(self.dir / f"{name}.log", "ab")  # noqa: SIM115 (the child keeps it)
        self.processes[name] = subprocess.Popen(
            [str(self.binary), str(node["config"])],
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=self.dir,
            **_owner(),
        )
        log.close()

    def kill(self, name: str) -> None:
        """kill SIGKILLs a node whole: its Patroni and its postmaster, as a machine dies."""
        process = self.processes.get(name)
        if process is not None:
            process.kill()
            process.wait(10)
        pid_file = self.dir / name / "postmaster.pid"
        with contextlib.suppress(FileNotFoundError, ValueError, ProcessLookupError):
            os.kill(int(pid_file.read_text().splitlines()[0]), signal.SIGKILL)

    def stop(self) -> None:
        """stop kills every node: the data is thrown away, a clean shutdown buys nothing."""
        for node in self.nodes:
            self.kill(node["name"])
        shutil.rmtree(self.dir, ignore_errors=True)

    # --- state ------------------------------------------------------------------------------

    def members(self) -> list[dict[str, Any]]:
        """members is Patroni's view of the cluster (from any node that answers)."""
        for node in self.nodes:
            with contextlib.suppress(OSError, ValueError):
                url = f"http://{LOCALHOST}:{node['rest']}/cluster"
                with urllib.request.urlopen(url, timeout=2) as answer:
                    members: list[dict[str, Any]] = json.load(answer)["members"]
                    return members
        return []

    def leader(self) -> str | None:
        """leader is the name of the running primary, if any."""
        for member in self.members():
            if member["role"] == "leader" and member["state"] == "running":
                return str(member["name"])
        return None

    def wait_healthy(self, timeout_s: float = 90) -> None:
        """wait_healthy waits for a running leader and a streaming synchronous standby."""
        deadline = time.monotonic() + timeout_s
        while True:
            roles = {(m["role"], m["state"]) for m in self.members()}
            if {("leader", "running"), ("sync_standby", "running")} <= roles:
                for node in self.nodes:
                    wait_for_port(LOCALHOST, node["port"], 30)
                return
            if time.monotonic() > deadline:
                logs = {
                    n["name"]: (self.dir / f"{n['name']}.log").read_text()[-2000:]
                    for n in self.nodes
                }
                raise ServiceError(f"Patroni cluster not healthy: {self.members()} {logs}")
            time.sleep(0.5)

    def url(self, database: str | None = None) -> str:
        """url is the multi-host URL the workers use: whichever node is the primary."""
        hosts = ",".join(f"{LOCALHOST}:{node['port']}" for node in self.nodes)
        return (
            f"postgresql://postgres@{hosts}/{database or self.database}"
            "?target_session_attrs=read-write"
        )

    def create_database(self, name: str) -> str:
        """create_database makes an empty database on the primary; returns its URL."""
        with psycopg.connect(self.url("postgres"), autocommit=True, connect_timeout=5) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def _node(self, name: str) -> dict[str, Any]:
        return next(node for node in self.nodes if node["name"] == name)
