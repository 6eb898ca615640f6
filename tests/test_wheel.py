"""The package installed from a wheel works from any directory: packs, migrations, dashboard.

Builds a wheel from the files a clone has (``git ls-files``), installs it without its
dependencies into a fresh venv that borrows this venv's installed libraries through a path
file (fast, offline, and without this checkout's editable install), then runs ``homecare demo``
from an empty directory against a test database: the rule packs are loaded, the dashboard
serves its charting library, and readings, findings and alerts flow.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import sysconfig
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from tests.conftest import BASE_URL, url_with_database
from tests.support.services import free_port

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """installed: the ``bin`` directory of a fresh venv holding only the wheel."""
    work = tmp_path_factory.mktemp("wheel")
    source = work / "source"
    files = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard", "-z"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.split(b"\0")
    for name in filter(None, (f.decode() for f in files)):
        if (ROOT / name).is_symlink():  # homecare/<stage> -> ../<stage>: the package's links
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            (source / name).symlink_to(os.readlink(ROOT / name))
        elif (ROOT / name).is_file():
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, source / name)
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps",
         "--wheel-dir", str(work / "dist"), str(source)],
        check=True,
    )  # fmt: skip
    [wheel] = (work / "dist").glob("homecare_rpm-*.whl")
    venv = work / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    where = "import sysconfig; print(sysconfig.get_path('purelib'))"
    purelib = Path(
        subprocess.run(
            [str(venv / "bin" / "python"), "-c", where], capture_output=True, text=True, check=True
        ).stdout.strip()
    )
    # The dependencies, not the checkout: a bare path line does not run this venv's .pth files
    # (the editable install's finder among them).
    (purelib / "borrowed-dependencies.pth").write_text(sysconfig.get_path("purelib") + "\n")
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"),
         "install", "--quiet", "--no-deps", str(wheel)],
        check=True,
    )  # fmt: skip
    return venv / "bin"


@pytest.fixture
def empty_dir(tmp_path: Path) -> Path:
    here = tmp_path / "elsewhere"
    here.mkdir()
    return here


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HOMECARE_", "PYTHON"))}
    return env | {"HOMECARE_LOG_LEVEL": "INFO"} | extra


def test_the_wheel_imports_its_own_files(installed: Path, empty_dir: Path) -> None:
    shown = subprocess.run(
        [str(installed / "python"), "-c",
         "from homecare import rules, store; import homecare.api.dashboard.static as s;"
         " print(rules.__file__);"
         " print(store.__file__); print(s.vendor_missing())"],
        cwd=empty_dir, env=clean_env(), capture_output=True, text=True, check=True,
    ).stdout.splitlines()  # fmt: skip
    venv = str(installed.parent)
    assert shown[0].startswith(venv) and shown[1].startswith(venv), shown
    assert shown[2] == "[]"


def test_the_wheel_installs_one_import_name(installed: Path) -> None:
    # Generic names (`rules`, `api`, `catalogue`) belong to other distributions too: installing
    # both in one environment would break one of them.
    purelib = next((installed.parent / "lib").glob("python*/site-packages"))
    [dist_info] = purelib.glob("homecare_rpm-*.dist-info")
    top = {
        line.split(",")[0].split("/")[0] for line in (dist_info / "RECORD").read_text().splitlines()
    }
    # Scripts are recorded relative to site-packages (``../../../bin/homecare``).
    shipped = {t for t in top if not t.endswith(".dist-info") and t not in ("..", "__pycache__")}
    assert shipped == {"homecare"}
    assert (purelib / "homecare" / "rules" / "packs").is_dir()


@pytest.fixture
def demo_database() -> Iterator[str]:
    name = f"hc_wheel_{uuid.uuid4().hex[:10]}"
    yield url_with_database(BASE_URL, name)  # the demo creates it
    with psycopg.connect(BASE_URL, autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def test_the_installed_demo_runs_from_an_empty_directory(
    installed: Path, empty_dir: Path, demo_database: str
) -> None:
    api_port = free_port()
    env = clean_env(
        HOMECARE_DATABASE_URL=demo_database,
        HOMECARE_MQTT_URL=f"mqtt://127.0.0.1:{free_port()}",  # none there: an embedded broker
        HOMECARE_API_PORT=str(api_port),
    )
    # Two days of history in about 25 s, then live: enough readings for alerts.
    args = ["demo", "--patients", "12", "--days", "2", "--speed", "7000", "--duration", "45"]
    demo = subprocess.Popen(
        [str(installed / "homecare"), *args, "--data-dir", str(empty_dir / "data")],
        cwd=empty_dir,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    charts: bytes = b""
    try:
        deadline = time.monotonic() + 60
        while not charts and time.monotonic() < deadline and demo.poll() is None:
            try:
                url = f"http://127.0.0.1:{api_port}/dashboard/static/uplot.js"
                with urllib.request.urlopen(url, timeout=2) as answer:
                    charts = answer.read()
            except OSError:
                time.sleep(0.5)
        out, err = demo.communicate(timeout=120)
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.wait()
    assert demo.returncode == 0, err
    assert b"uPlot" in charts and len(charts) > 10_000
    packs = re.search(r"^rules +(\d+) packs", out, re.MULTILINE)
    assert packs is not None and int(packs.group(1)) >= 8, out
    # The terminal is for people: what runs and the counts; the logs are in the file it names.
    assert not [line for line in out.splitlines() if line.startswith("{") or "\x1b" in line], out
    assert f"logs       {empty_dir / 'data' / 'demo.log'}" in out
    assert re.search(r"^live +\S+ caught up with the clock: .* about \d+ messages an", out, re.M)
    log = (empty_dir / "data" / "demo.log").read_text()
    assert '"rules worker running"' in log and '"packs": []' not in log
    with psycopg.connect(demo_database) as conn:
        readings, findings, alerts = conn.execute(
            "SELECT (SELECT count(*) FROM readings), (SELECT count(*) FROM findings),"
            " (SELECT count(*) FROM alerts)"
        ).fetchone() or (0, 0, 0)
    assert readings > 100 and findings > 0 and alerts > 0, (readings, findings, alerts)
    assert not list(empty_dir.glob("rules")), "nothing read from or written to rules/ here"


@pytest.mark.parametrize("command", ["rules", "alerts", "run", "api", "demo"])
def test_a_worker_without_packs_refuses_to_start(
    installed: Path, empty_dir: Path, command: str
) -> None:
    result = subprocess.run(
        [str(installed / "homecare"), command],
        cwd=empty_dir,
        env=clean_env(
            HOMECARE_RULES_PACKS_DIR="rules/packs",  # relative, and absent here
            HOMECARE_DATABASE_URL=f"postgresql://postgres@127.0.0.1:{free_port()}/none",
        ),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "no rule packs" in lines[0], result.stderr
    assert str(empty_dir / "rules" / "packs") in lines[0]
