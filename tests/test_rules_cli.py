"""``homecare rules`` as an operator runs it: it yields the CPU to the ingest when asked to."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path


def _nice(pid: int) -> int:
    # /proc/PID/stat: field 19 is the nice value (after the parenthesised command name).
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[16])


def test_the_rules_worker_runs_at_the_configured_niceness(database_url: str) -> None:
    env = os.environ | {
        "HOMECARE_DATABASE_URL": database_url,
        "HOMECARE_RULES_NICE": "7",
        "HOMECARE_LOG_LEVEL": "WARNING",
    }
    base = _nice(os.getpid())
    worker = subprocess.Popen([sys.executable, "-m", "homecare", "rules"], env=env)
    try:
        deadline = time.monotonic() + 20
        while _nice(worker.pid) == base and worker.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert worker.poll() is None, "homecare rules exited"
        assert _nice(worker.pid) == min(base + 7, 19)
    finally:
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(30) == 0
