"""The alerts worker follows pack edits (which rules may resolve by themselves) without restart."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from homecare.alerts import AlertsConfig, AlertsWorker
from homecare.rules.packs import DEFAULT_PACKS


def bump(path: Path, text: str) -> None:
    path.write_text(text)
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))


def test_pack_edits_are_followed_and_a_bad_edit_changes_nothing(
    tmp_path: Path, database_url: str
) -> None:
    packs = tmp_path / "packs"
    shutil.copytree(DEFAULT_PACKS, packs)
    worker = AlertsWorker(AlertsConfig(database_url=database_url, packs_dir=packs))
    try:
        assert worker.service.auto_resolve["common.hr_high"] is True
        assert worker.reload_packs_if_changed() is False  # nothing changed yet

        common = packs / "common.yaml"
        original = common.read_text()
        edited = original.replace(
            "  - id: common.hr_high\n", "  - id: common.hr_high\n    auto_resolve: false\n"
        )
        assert edited != original
        bump(common, edited)
        assert worker.reload_packs_if_changed() is True
        assert worker.service.auto_resolve["common.hr_high"] is False

        bump(common, edited + "  - id: broken\n")
        assert worker.reload_packs_if_changed() is False
        assert worker.service.auto_resolve["common.hr_high"] is False  # the last good packs stay
    finally:
        worker.close()
