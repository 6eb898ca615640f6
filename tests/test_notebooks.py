"""The analysts' notebooks run top to bottom against a seeded database, and the seeding is real.

One database per module, seeded by ``demo.seed`` (40 simulated patients × 60 days: the
simulator's messages through the ingest code, the rules worker and the alerts stage in
simulated time, a simulated care team answering through ``AlertService``). Each notebook is
executed with nbclient exactly as ``homecare notebooks run`` does; any error in any cell fails
the test, and each notebook must draw at least one figure.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from conftest import BASE_URL, url_with_database

from homecare import analytics, store
from homecare.cli import main
from homecare.demo.seed import SeedConfig, SeedReport, seed_database
from homecare.evaluation.cohorts import evaluate_cohort
from homecare.notebooks import LABELS_ENV, discover, run_notebooks

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
PATIENTS, DAYS, SEED = 40, 60, 3
END = datetime(2026, 10, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
def seeded(
    template_database: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, SeedReport]]:
    name = f"hc_seeded_{uuid.uuid4().hex[:10]}"
    with store.connect(BASE_URL, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name} TEMPLATE {template_database}")
    url = url_with_database(BASE_URL, name)
    labels = tmp_path_factory.mktemp("seed") / "labels.json"
    try:
        report = seed_database(
            SeedConfig(url, patients=PATIENTS, days=DAYS, seed=SEED, end=END, labels_path=labels)
        )
        yield url, report
    finally:
        with store.connect(BASE_URL, autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def _one(url: str, query: str) -> Any:
    with store.connect(url, autocommit=True) as conn:
        row = conn.execute(query).fetchone()
    assert row is not None
    return row[0]


def test_seeding_stores_alerts_and_the_care_teams_answers(seeded: tuple[str, SeedReport]) -> None:
    url, report = seeded
    assert report.patients == PATIENTS and report.readings > 10_000
    assert report.alerts > 50 and report.acknowledged > 20 and report.resolved_by_nurses > 20
    # The alerts stage's own records, at simulated times inside the window: opened when the
    # first firing's evidence had arrived (within the rules' 5 min allowance for clocks ahead).
    early = _one(
        url,
        "SELECT count(*) FROM alerts a WHERE a.opened_at + interval '5 minutes' <"
        " (SELECT min(f.evidence_time) FROM alert_findings af"
        " JOIN findings f ON f.id = af.finding_id WHERE af.alert_id = a.id)",
    )
    assert early == 0
    assert _one(url, f"SELECT count(*) FROM alerts WHERE opened_at > '{END.isoformat()}'") == 0
    assert _one(url, "SELECT count(*) FROM alert_events WHERE kind = 'escalated'") > 0
    nurse_events = _one(
        url,
        "SELECT count(*) FROM alert_events WHERE kind IN ('acknowledged', 'resolved')"
        " AND actor LIKE 'nurse-%'",
    )
    assert nurse_events == report.acknowledged + report.resolved_by_nurses
    outcomes = _one(
        url,
        "SELECT count(DISTINCT outcome) FROM alerts WHERE resolved_by LIKE 'nurse-%'",
    )
    assert outcomes >= 4
    # Acknowledged after opening, never before.
    assert (
        _one(
            url,
            "SELECT count(*) FROM alert_events e JOIN alerts a ON a.id = e.alert_id"
            " WHERE e.kind = 'acknowledged' AND e.at < a.opened_at",
        )
        == 0
    )
    # Every live finding came from the rules worker; the daily aggregate is refreshed.
    assert _one(url, "SELECT count(*) FROM readings_daily") > PATIENTS * DAYS * 0.5


def test_seeded_findings_score_as_homecare_evaluate(seeded: tuple[str, SeedReport]) -> None:
    """The live path in simulated time stores the findings the harness scores: the detection
    figures of the seeded database equal those of ``homecare evaluate`` on the same cohort."""
    url, report = seeded
    assert report.labels_path is not None
    with analytics.connect(url, pseudonym_key="k" * 16) as source:
        seeded_figures = analytics.detection(source, analytics.load_labels(report.labels_path))
    evaluated = evaluate_cohort(BASE_URL, PATIENTS, DAYS, SEED, END)
    overall, _programs, rules = evaluated.results["shipped packs"]
    row = seeded_figures.overall.iloc[0]
    assert (row["episodes"], row["caught"]) == (overall.episodes, overall.caught)
    assert (row["false_alerts"], row["lookalike_alerts"], row["alerts"]) == (
        overall.false_alerts,
        overall.lookalike_alerts,
        overall.alerts,
    )
    by_rule = seeded_figures.by_rule.set_index("rule_id")
    assert sorted(by_rule.index) == sorted(rules)
    for rule_id, group in rules.items():
        assert by_rule.loc[rule_id, "alerts"] == group.alerts, rule_id


@pytest.mark.parametrize("notebook", [p.stem for p in discover(NOTEBOOKS)])
def test_notebook_runs_top_to_bottom(
    seeded: tuple[str, SeedReport],
    notebook: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url, report = seeded
    monkeypatch.setenv("HOMECARE_DATABASE_URL", url)
    monkeypatch.delenv("HOMECARE_PSEUDONYM_KEY", raising=False)
    monkeypatch.setenv("HOMECARE_ENV", "development")
    [result] = run_notebooks([NOTEBOOKS / f"{notebook}.py"], tmp_path, report.labels_path)
    assert result.skipped is None
    assert result.error is None, f"{notebook}: {result.error}"
    assert result.figures >= 1, f"{notebook} drew no figure"
    assert result.output is not None and result.output.exists()


@pytest.fixture(scope="module")
def small(
    template_database: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, SeedReport]]:
    """small: a cohort like the demo's first minutes — a few patients, a few days."""
    name = f"hc_small_{uuid.uuid4().hex[:10]}"
    with store.connect(BASE_URL, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name} TEMPLATE {template_database}")
    url = url_with_database(BASE_URL, name)
    labels = tmp_path_factory.mktemp("small") / "labels.json"
    try:
        report = seed_database(
            SeedConfig(url, patients=3, days=4, seed=SEED, end=END, labels_path=labels)
        )
        yield url, report
    finally:
        with store.connect(BASE_URL, autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.mark.parametrize("cohort", ["empty", "small"])
def test_every_notebook_finishes_with_too_little_data_and_says_so(
    cohort: str,
    database_url: str,
    small: tuple[str, SeedReport],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url, labels = (database_url, None) if cohort == "empty" else (small[0], small[1].labels_path)
    monkeypatch.setenv("HOMECARE_DATABASE_URL", url)
    monkeypatch.delenv("HOMECARE_PSEUDONYM_KEY", raising=False)
    monkeypatch.setenv("HOMECARE_ENV", "development")
    results = run_notebooks(discover(NOTEBOOKS), tmp_path, labels)
    failed = {r.name: r.error for r in results if r.error is not None}
    assert not failed, failed
    for result in results:
        if result.skipped is None:
            assert result.output is not None
            assert "Too little data" in result.output.read_text(), result.name


def test_there_are_four_notebooks_each_kept_without_outputs() -> None:
    paths = discover(NOTEBOOKS)
    assert [p.stem[0] for p in paths] == ["a", "b", "c", "d"]
    for path in paths:
        text = path.read_text(encoding="utf-8")
        assert text.startswith("# ---\n# jupyter:") and "format_name: percent" in text
    assert not list(NOTEBOOKS.glob("*.ipynb"))  # outputs never go to git


def test_the_detection_notebook_is_skipped_with_a_reason_without_labels(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(LABELS_ENV, raising=False)
    [result] = run_notebooks([NOTEBOOKS / "c_detection.py"], tmp_path, None)
    assert result.skipped is not None and "labels" in result.skipped


def test_cli_refuses_an_unknown_notebook(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["notebooks", "run", "no_such_notebook", "--dir", str(NOTEBOOKS)]) == 2
    assert "no notebook no_such_notebook" in capsys.readouterr().err
    assert os.path.isdir(NOTEBOOKS)
