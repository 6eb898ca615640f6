"""The documentation describes the software as it is, from inside the repository.

A newcomer reads the README first and follows its links; a link to a file that only exists in
the maintainers' workspace, or prose about which work period changed what, sends them nowhere.
History belongs in git. These checks keep both out of the README, the docs and the code.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
_LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
_TEXT_SUFFIXES = {".py", ".md", ".yaml", ".yml", ".sql", ".toml", ".html", ".js", ".css", ".sh", ""}
# Phrases that narrate the project's own development rather than describe the software.
_HISTORY = [
    re.compile(r"\bsession[- ]\d", re.IGNORECASE),
    re.compile(r"\bissue #?\d", re.IGNORECASE),
    re.compile(r"\btried and dropped\b", re.IGNORECASE),
    re.compile(r"\bwork period \d", re.IGNORECASE),
    re.compile(r"\.\./shared/"),
    re.compile(r"\bDESIGN(\.md)? ?§"),
]


def _tracked_text_files() -> list[Path]:
    out = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split("\n")
    files = []
    for name in out:
        if not name or "node_modules/" in name or name.endswith("package-lock.json"):
            continue
        path = ROOT / name
        if path.suffix in _TEXT_SUFFIXES and path.is_file():
            files.append(path)
    return files


def _markdown_files() -> list[Path]:
    return [p for p in _tracked_text_files() if p.suffix == ".md"]


def test_readme_is_a_first_screen_not_a_manual() -> None:
    lines = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    assert len(lines) <= 200, f"README.md has {len(lines)} lines; move detail into docs/"


def test_the_docs_cover_what_a_reader_looks_for() -> None:
    for name in ("architecture", "contracts", "rules", "evaluation", "operations", "benchmarks"):
        assert (ROOT / "docs" / f"{name}.md").is_file(), f"docs/{name}.md is missing"
    assert (ROOT / "SECURITY.md").is_file()


@pytest.mark.parametrize("doc", _markdown_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_resolves_inside_the_repository(doc: Path) -> None:
    text = doc.read_text(encoding="utf-8")
    for target in _LINK.findall(text):
        if re.match(r"^[a-z]+:", target) or target.startswith("#"):
            continue
        path = (doc.parent / target.split("#", 1)[0]).resolve()
        assert path.is_relative_to(ROOT), f"{doc.name} links outside the repository: {target}"
        assert path.exists(), f"{doc.name} links to a missing file: {target}"


def test_nothing_narrates_development_history() -> None:
    found = []
    for path in _tracked_text_files():
        if path == Path(__file__).resolve():
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if any(pattern.search(line) for pattern in _HISTORY):
                found.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()[:100]}")
    assert not found, "history or outside references in the product:\n" + "\n".join(found)
