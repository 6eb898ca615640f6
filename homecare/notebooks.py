"""Notebooks: execute the analysts' notebooks from the command line, top to bottom.

``homecare notebooks run`` reads each ``notebooks/*.py`` (jupytext percent format: the
notebook as it is kept in git, without outputs), executes it with nbclient on a fresh
IPython kernel (the project's interpreter) against the configured database, and writes the
executed notebook, outputs and figures included, to ``--out`` (default
``.homecare/notebooks/``, ignored by git). A notebook fails the run on any error in any cell.

The kernel inherits the environment, so the notebooks see the same ``HOMECARE_*`` settings as
the command (``open_configured`` below), plus ``HOMECARE_SIM_LABELS`` — the labels file of
a seeded simulated cohort — which the detection notebook needs and declares with the
``homecare_needs: labels`` key in its header; without labels that notebook is skipped with its
reason printed (a real cohort has no ground truth), never silently.

Needs the ``notebooks`` extra (``pip install 'homecare-rpm[notebooks]'``).
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from homecare.analytics import Source

__all__ = [
    "LABELS_ENV",
    "NotebookResult",
    "discover",
    "execute_notebook",
    "figures_in",
    "needs_labels",
    "open_configured",
]

LABELS_ENV = "HOMECARE_SIM_LABELS"
_TIMEOUT_S = 600


@dataclass(frozen=True)
class NotebookResult:
    """NotebookResult: how one notebook's run went."""

    name: str
    seconds: float
    figures: int
    error: str | None = None
    skipped: str | None = None
    output: Path | None = None


def discover(directory: Path) -> list[Path]:
    """discover lists the notebooks (jupytext ``.py`` files) of a directory, in name order."""
    return sorted(p for p in directory.glob("*.py") if not p.name.startswith("_"))


def _read(path: Path) -> Any:
    import jupytext

    return jupytext.read(path, fmt="py:percent")


def needs_labels(path: Path) -> bool:
    """needs_labels says whether a notebook declares it needs a labelled simulated cohort."""
    metadata = _read(path).metadata
    return bool(metadata.get("homecare_needs") == "labels")


def figures_in(notebook: Any) -> int:
    """figures_in counts the figures (PNG or SVG outputs) of an executed notebook."""
    count = 0
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if "image/png" in data or "image/svg+xml" in data:
                count += 1
    return count


def execute_notebook(
    path: Path, env: Mapping[str, str], out_dir: Path | None = None, timeout_s: int = _TIMEOUT_S
) -> tuple[Any, NotebookResult]:
    """execute_notebook runs one notebook; returns the executed notebook and its result (an
    error in a cell is the result's ``error``, with the cell's exception name and message)."""
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    notebook = _read(path)
    client = NotebookClient(
        notebook,
        timeout=timeout_s,
        kernel_name="python3",
        resources={"metadata": {"path": str(path.parent)}},
    )
    started = time.perf_counter()
    error = None
    try:
        client.execute(env=dict(env), cwd=str(path.parent))
    except CellExecutionError as exc:
        error = f"{exc.ename}: {exc.evalue}"
    seconds = time.perf_counter() - started
    output = None
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        output = out_dir / f"{path.stem}.ipynb"
        nbformat.write(notebook, output)  # type: ignore[no-untyped-call]
    return notebook, NotebookResult(path.stem, seconds, figures_in(notebook), error, None, output)


def run_notebooks(
    paths: Sequence[Path], out_dir: Path, labels: Path | None
) -> list[NotebookResult]:
    """run_notebooks executes each notebook in turn; labels go to the kernels' environment."""
    env = dict(os.environ)
    # jupyter_core warns (DeprecationWarning) unless told to use the platformdirs layout.
    env.setdefault("JUPYTER_PLATFORM_DIRS", "1")
    if labels is not None:
        env[LABELS_ENV] = str(labels.resolve())
    results = []
    for path in paths:
        if labels is None and needs_labels(path):
            results.append(
                NotebookResult(
                    path.stem,
                    0.0,
                    0,
                    skipped="needs the labels of a simulated cohort (homecare seed, --labels)",
                )
            )
            continue
        _, result = execute_notebook(path, env, out_dir)
        results.append(result)
    return results


def open_configured(
    *, identified_by: str | None = None, reason: str | None = None, as_of: datetime | None = None
) -> Source:
    """open_configured opens an analytics Source on the configured database (``HOMECARE_*``
    settings): what a notebook calls first. Production requires ``HOMECARE_PSEUDONYM_KEY``;
    development falls back to a public key (pseudonyms then stable, not secret — fine for
    simulated data)."""
    from homecare.analytics import connect
    from homecare.analytics.deid import DEVELOPMENT_KEY
    from homecare.settings import load_settings

    settings = load_settings()
    key = settings.pseudonym_key
    if key is None:
        if settings.env == "production":
            raise ValueError("HOMECARE_PSEUDONYM_KEY must be set (16+ characters) in production")
        key = DEVELOPMENT_KEY
    return connect(
        settings.database_url,
        pseudonym_key=key,
        identified_by=identified_by,
        reason=reason,
        as_of=as_of,
    )
