"""The NATS accounts file the API maintains: what nats-server accepts, what it refuses to issue,
and when a change counts as applied. (Live behaviour — permissions, rotation, revocation — is
in tests/test_cluster_broker.py.)"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import bcrypt
import pytest

from homecare.broker.dynsec import BrokerNotConfigured, BrokerRefused, BrokerUnavailable
from homecare.broker.nats_accounts import NatsAccountsAdmin, ingest_permissions
from tests.support.cluster import DEPLOY_NATS
from tests.support.services import find_executable


def test_the_rendered_file_is_a_configuration_nats_server_accepts(tmp_path: Path) -> None:
    admin = NatsAccountsAdmin(tmp_path / "accounts.conf")
    admin.put_service("homecare-ingest", "ingest-secret", ingest_permissions("homecare-ingest"))
    admin.put_devices({"cuff-1": "pw-1", "oxi_2": "pw-2"})
    admin.put_device("scale-3", "pw-3")
    admin.remove_device("oxi_2")
    node = tmp_path / "node1.conf"
    node.write_text(
        (DEPLOY_NATS / "node1.conf").read_text().replace("/run/homecare", str(tmp_path))
    )
    checked = subprocess.run(
        [str(find_executable("nats-server")), "-t", "-c", str(node)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert checked.returncode == 0, checked.stderr + checked.stdout
    text = (tmp_path / "accounts.conf").read_text()
    assert '"cuff-1"' in text and '"scale-3"' in text and '"oxi_2"' not in text
    assert "pw-1" not in text  # hashes only
    digest = json.loads((tmp_path / "accounts.conf.json").read_text())["devices"]["cuff-1"]
    assert digest in text and bcrypt.checkpw(b"pw-1", digest.encode())


def test_an_id_with_a_dot_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    admin = NatsAccountsAdmin(tmp_path / "accounts.conf")
    with pytest.raises(BrokerRefused):
        admin.put_device("bp.7", "secret")
    with pytest.raises(BrokerRefused):
        admin.put_devices({"ok-1": "a", "bp.7": "b"})
    assert not (tmp_path / "accounts.conf").exists()


def test_a_change_no_running_node_took_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(BrokerNotConfigured):
        NatsAccountsAdmin(None).put_device("cuff-1", "pw")
    gone = tmp_path / "nats-1.pid"
    gone.write_text("999999999")  # no such process: that node is down and reads the file later
    with pytest.raises(BrokerUnavailable, match="none runs"):
        NatsAccountsAdmin(tmp_path / "accounts.conf", [gone]).put_device("cuff-1", "pw")
