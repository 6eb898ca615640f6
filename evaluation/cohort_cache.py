"""Cohort cache: a stored evaluation cohort kept on disk, to score rule packs again quickly.

Simulating and storing a 200-patient, 90-day cohort takes about a minute; scoring it against a
pack set takes seconds. Whoever tunes or reviews a pack change scores the same cohorts over and
over, so ``homecare evaluate --cache DIR`` keeps each one, keyed by its parameters and by a
digest of the code that made it (simulator, catalogue, ingest, store, the read-back query and
the harness): a change there makes a new entry instead of scoring stale readings. The files
are pickles, a local developer's cache: never point ``--cache`` at a directory others can
write to.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import tempfile
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from homecare.evaluation.cohorts import StoredCohort

__all__ = ["cached_cohort", "code_digest"]

_ROOT = Path(__file__).resolve().parents[1]
# The code whose change alters what a cohort's stored readings are: the packages that simulate,
# parse and store them, the query that reads them back, and the harness that drives all three
# (an edit to its scoring also makes a new entry: a minute of rebuilding, never a stale cohort).
_SOURCES = (
    "devices",
    "catalogue",
    "ingest",
    "store",
    "rules/repository.py",
    "evaluation/cohorts.py",
)


def code_digest(root: Path = _ROOT) -> str:
    """code_digest: sha256 over the Python and data files of the code that makes a cohort."""
    digest = hashlib.sha256()
    for source in _SOURCES:
        top = root / source
        paths = [top] if top.is_file() else sorted(top.rglob("*"))
        for path in paths:
            if path.suffix in (".py", ".yaml", ".json", ".sql") and path.is_file():
                digest.update(str(path.relative_to(root)).encode())
                digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def cached_cohort(
    directory: Path,
    patients: int,
    days: float,
    seed: int,
    end: datetime,
    build: Callable[[], StoredCohort],
    variant: str = "default",
) -> StoredCohort:
    """cached_cohort returns the cohort kept in ``directory``, building and keeping it if absent.

    A simulator variant other than the default is part of the name (the default's names are
    those of the caches made before variants existed)."""
    tag = "" if variant == "default" else f"-v{variant}"
    name = f"cohort-p{patients}-d{days:g}-s{seed}{tag}-{end:%Y%m%dT%H%M%S}-{code_digest()}.pickle"
    path = directory / name
    if path.exists():
        with path.open("rb") as file:
            cohort = pickle.load(file)
        if isinstance(cohort, StoredCohort):
            return cohort
    cohort = build()
    directory.mkdir(parents=True, exist_ok=True)
    # Written aside and renamed, so two runs on the same seed never read half a file.
    handle, temporary = tempfile.mkstemp(dir=directory, suffix=".partial")
    with os.fdopen(handle, "wb") as file:
        pickle.dump(cohort, file, protocol=pickle.HIGHEST_PROTOCOL)
    os.replace(temporary, path)
    return cohort
