"""Logging set-up: one structured line per event, and no library drowning the service's own."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from apscheduler.schedulers.background import BackgroundScheduler

from homecare.logs import configure_logging


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    root, scheduler = logging.getLogger(), logging.getLogger("apscheduler")
    saved = (root.handlers[:], root.level, scheduler.level)
    yield
    root.handlers[:], root.level = saved[0], saved[1]
    scheduler.setLevel(saved[2])


def run_a_scheduled_job(runs: int = 3) -> None:
    """run_a_scheduled_job: a real APScheduler running a job a few times, as the services do."""
    done: list[float] = []
    scheduler = BackgroundScheduler()
    scheduler.add_job(lambda: done.append(time.monotonic()), "interval", seconds=0.05)
    scheduler.start()
    deadline = time.monotonic() + 10
    while len(done) < runs and time.monotonic() < deadline:
        time.sleep(0.02)
    scheduler.shutdown()
    assert len(done) >= runs


def test_scheduled_jobs_do_not_log_each_run_at_info(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("INFO", "json")
    run_a_scheduled_job()
    logging.getLogger("homecare.test").info("service line", extra={"patients": 3})
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    assert [line["logger"] for line in lines] == ["homecare.test"]
    assert lines[0]["patients"] == 3 and lines[0]["level"] == "info"


def test_at_debug_the_scheduler_says_what_it_runs(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("DEBUG", "text")
    run_a_scheduled_job()
    err = capsys.readouterr().err
    assert "apscheduler" in err and "executed successfully" in err


def test_scheduler_warnings_still_show(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("INFO", "text")
    logging.getLogger("apscheduler.executors.default").warning("Run time of job was missed")
    assert "Run time of job was missed" in capsys.readouterr().err


def test_uvicorns_coloured_copy_of_a_message_is_not_logged(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_logging("INFO", "json")
    logging.getLogger("uvicorn.error").info(
        "Started server process [%d]", 42, extra={"color_message": "Started [\x1b[36m%d\x1b[0m]"}
    )
    [line] = capsys.readouterr().err.strip().splitlines()
    assert json.loads(line)["msg"] == "Started server process [42]"
    assert "color_message" not in line and "\\u001b" not in line


def test_logs_can_go_to_a_file_with_only_errors_on_the_terminal(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    configure_logging("INFO", "json", tmp_path / "logs" / "demo.log")
    logging.getLogger("ingest.worker").info("ingest stats", extra={"stored": 3})
    logging.getLogger("ingest.worker").error("broker refused connection")
    for handler in logging.getLogger().handlers:
        handler.close()
    lines = (tmp_path / "logs" / "demo.log").read_text().splitlines()
    assert [json.loads(line)["msg"] for line in lines] == [
        "ingest stats",
        "broker refused connection",
    ]
    assert capsys.readouterr().err.strip() == "error   ingest.worker: broker refused connection"
