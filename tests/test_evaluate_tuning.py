"""``homecare evaluate`` for a pack change: candidate packs, several seeds, a cohort cache.

Real ingest code and a real PostgreSQL; the cohorts are small so the file runs in seconds.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import yaml

from homecare.evaluation.cohort_cache import cached_cohort, code_digest
from homecare.evaluation.cohorts import StoredCohort, score_cohort, store_cohort
from homecare.evaluation.report import format_summary
from homecare.rules import load_packs
from homecare.rules.harness import Group
from homecare.rules.packs import DEFAULT_PACKS
from tests.conftest import BASE_URL

END = datetime(2026, 6, 1, tzinfo=UTC)


def homecare_evaluate(*args: str) -> subprocess.CompletedProcess[str]:
    """homecare_evaluate: the command as a user runs it, on the test database server."""
    return subprocess.run(
        [sys.executable, "-m", "homecare", "evaluate", *args],
        env=os.environ | {"HOMECARE_LOG_LEVEL": "WARNING", "HOMECARE_DATABASE_URL": BASE_URL},
        capture_output=True,
        text=True,
        timeout=300,
    )


def refused_in_one_line(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()
    return line


def _cohort() -> StoredCohort:
    return store_cohort(BASE_URL, patients=12, days=30, seed=5, end=END)


def test_the_cache_builds_a_cohort_once_and_gives_it_back_equal(tmp_path: Path) -> None:
    builds: list[StoredCohort] = []

    def build() -> StoredCohort:
        builds.append(_cohort())
        return builds[-1]

    first = cached_cohort(tmp_path, 12, 30, 5, END, build)
    again = cached_cohort(tmp_path, 12, 30, 5, END, build)
    assert len(builds) == 1
    assert again == first and again.readings == first.readings > 0
    (kept,) = tmp_path.glob("*.pickle")
    assert kept.name == f"cohort-p12-d30-s5-20260601T000000-{code_digest()}.pickle"
    # Another seed is another entry, built anew.
    cached_cohort(tmp_path, 12, 30, 6, END, build)
    assert len(builds) == 2 and len(list(tmp_path.glob("*.pickle"))) == 2


def test_the_code_digest_changes_when_the_simulator_does(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    for package in ("devices", "catalogue", "ingest", "store"):
        (root / package).mkdir(parents=True)
        (root / package / "x.py").write_text("A = 1\n")
    (root / "rules").mkdir()
    (root / "rules" / "repository.py").write_text("Q = 1\n")
    (root / "rules" / "evaluate.py").write_text("E = 1\n")
    before = code_digest(root)
    assert code_digest(root) == before
    (root / "devices" / "x.py").write_text("A = 2\n")
    changed = code_digest(root)
    assert changed != before
    # The query that reads readings back counts; the rule engine does not (it is what is scored).
    (root / "rules" / "repository.py").write_text("Q = 2\n")
    queried = code_digest(root)
    assert queried != changed
    (root / "rules" / "evaluate.py").write_text("E = 2\n")
    assert code_digest(root) == queried


def test_a_candidate_scores_like_the_shipped_packs_until_it_differs(tmp_path: Path) -> None:
    cohort = _cohort()
    same = tmp_path / "same"
    shutil.copytree(DEFAULT_PACKS, same)
    # The candidate drops every rule of the common pack that is neither a combination nor one
    # of its building blocks.
    fewer = tmp_path / "fewer"
    shutil.copytree(DEFAULT_PACKS, fewer)
    referenced = {
        ref
        for path in fewer.glob("*.yaml")
        for rule in yaml.safe_load(path.read_text())["rules"]
        for ref in rule.get("rules", ())
    }
    common = yaml.safe_load((fewer / "common.yaml").read_text())
    kept = [r for r in common["rules"] if r["id"] in referenced or r["kind"] == "combination"]
    assert 0 < len(kept) < len(common["rules"])
    common["rules"] = kept
    (fewer / "common.yaml").write_text(yaml.safe_dump(common))

    result = score_cohort(
        cohort,
        {"candidate packs (same)": load_packs(same), "candidate packs (fewer)": load_packs(fewer)},
    )
    shipped, _, shipped_rules = result.results["shipped packs"]
    copy, _, _ = result.results["candidate packs (same)"]
    assert copy == shipped
    _, _, fewer_rules = result.results["candidate packs (fewer)"]
    dropped = {r["id"] for r in yaml.safe_load((same / "common.yaml").read_text())["rules"]} - {
        r["id"] for r in kept
    }
    assert not dropped & set(fewer_rules)
    assert dropped & set(shipped_rules), "the cohort should give the dropped rules something to do"


def test_several_seeds_print_one_line_each_and_totals(tmp_path: Path) -> None:
    result = homecare_evaluate(
        "--patients", "10", "--days", "20", "--seed", "3", "4", "--end", "2026-06-01",
        "--cache", str(tmp_path), "--packs", str(DEFAULT_PACKS),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    summary, *tables = result.stdout.split("\n\n")
    rows = [line.split() for line in summary.splitlines()[1:]]
    seeds = [row[0] for row in rows]
    # shipped, rules only, anomaly only, rules + anomaly, candidate, two baselines, two oracles
    assert seeds.count("3") == seeds.count("4") == seeds.count("all") == 9
    shipped = {row[0]: row[3:] for row in rows if row[1:3] == ["shipped", "packs"]}
    candidate = {row[0]: row[4:] for row in rows if row[1:3] == ["candidate", "packs"]}
    assert shipped.keys() == candidate.keys() == {"3", "4", "all"}
    # The shipped directory given as a candidate scores exactly as the shipped packs.
    assert candidate == shipped
    assert len(list(tmp_path.glob("*.pickle"))) == 2
    # Then each rule's figures over both seeds, for the shipped and the candidate packs alike.
    titles = [table.splitlines()[0] for table in tables]
    candidate_title = f"== candidate packs ({DEFAULT_PACKS}), all seeds"
    kinds_title = "== by episode kind, all seeds (caught in time / episodes)"
    assert titles == ["== shipped packs, all seeds", candidate_title, kinds_title]
    assert tables[0].splitlines()[1:] == tables[1].splitlines()[1:]


def test_the_rule_figures_over_seeds_are_the_sums_of_each_seed() -> None:
    results = {
        seed: score_cohort(store_cohort(BASE_URL, patients=10, days=20, seed=seed, end=END))
        for seed in (3, 4)
    }
    summary = format_summary(results)
    shipped_table, kind_table = summary.split("== shipped packs, all seeds\n")[1].split("\n\n")
    program_table, rule_table = shipped_table.split("  by rule (")
    # Per program: episodes, and false alerts per patient-month over both cohorts together.
    programs = {line.split()[0]: line.split() for line in program_table.splitlines()[1:]}
    expected_programs: dict[str, Group] = {}
    for result in results.values():
        for name, group in result.results["shipped packs"][1].items():
            expected_programs.setdefault(name, Group()).add(group)
    assert programs.keys() == expected_programs.keys()
    for name, group in expected_programs.items():
        assert int(programs[name][1]) == group.episodes
        assert programs[name][4] == f"{(group.false_alerts / group.patient_days * 30):.2f}"
    lines = rule_table.splitlines()[1:]
    table = {line.split()[0]: [int(n) for n in line.split()[2::2]] for line in lines}
    expected: dict[str, list[int]] = {}
    for result in results.values():
        for rule_id, group in result.results["shipped packs"][2].items():
            figures = [group.caught, group.caught_only, group.false_alerts]
            figures += [group.lookalike_alerts, group.alerts]
            before = expected.get(rule_id, [0] * 5)
            expected[rule_id] = [a + b for a, b in zip(before, figures, strict=True)]
    assert table == expected
    assert sum(figures[4] for figures in table.values()) > 0, "the cohorts should alert"
    # Per episode kind, the shipped packs' column [1] adds up the seeds too.
    kind_lines = kind_table.splitlines()
    assert kind_lines[1] == "  [1] shipped packs"
    kinds = {line.split()[0]: line.split()[1] for line in kind_lines[1:] if "/" in line}
    expected_kinds: dict[str, list[int]] = {}
    for result in results.values():
        for kind, group in result.kinds["shipped packs"].items():
            counts = expected_kinds.setdefault(kind, [0, 0])
            counts[0] += group.caught
            counts[1] += group.episodes
    assert kinds == {kind: f"{c}/{n}" for kind, (c, n) in expected_kinds.items()}
    assert sum(n for _, n in expected_kinds.values()) > 0, "the cohorts should have episodes"


def test_a_broken_candidate_is_named_before_any_cohort_is_built(tmp_path: Path) -> None:
    broken = tmp_path / "broken"
    shutil.copytree(DEFAULT_PACKS, broken)
    text = (broken / "copd.yaml").read_text().replace("min_score: 3.5", "min_score: -1")
    (broken / "copd.yaml").write_text(text)
    line = refused_in_one_line(homecare_evaluate("--packs", str(broken)))
    assert "copd.yaml" in line and "min_score" in line


def test_a_candidate_directory_without_packs_is_refused(tmp_path: Path) -> None:
    # A mistyped path would otherwise score an empty pack set: no alert, no false alert.
    line = refused_in_one_line(homecare_evaluate("--packs", str(tmp_path / "nowhere")))
    assert "nowhere" in line and "no *.yaml pack there" in line
