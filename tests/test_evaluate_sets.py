"""The tuning and held-out cohort sets: their declaration, and ``homecare evaluate --set`` end to
end on small cohorts (real ingest code, real PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from homecare.devices.sim.variants import VARIANTS
from homecare.evaluation.cohort_cache import cached_cohort
from homecare.evaluation.cohorts import StoredCohort, StoredPatient, score_cohort, store_cohort
from homecare.evaluation.report import format_sets
from homecare.evaluation.sets import EVALUATION_SETS, HELD_OUT, TUNING
from homecare.rules.harness import Alert, Group, Labels
from tests.conftest import BASE_URL
from tests.test_evaluate_tuning import homecare_evaluate, refused_in_one_line

END = datetime(2026, 6, 1, tzinfo=UTC)


def test_the_declaration_is_what_was_declared_before_any_tuning() -> None:
    # Changing these is a decision to make in review, not a side effect of tuning.
    assert TUNING.variants == ("default", "varied")
    assert TUNING.seeds == (1, 2, 3, 4, 5, 6, 7, 8)
    assert HELD_OUT.variants == ("slow-burn", "abrupt", "other-physiology", "devices-and-habits")
    assert HELD_OUT.seeds == (101, 102, 103, 104)
    assert set(EVALUATION_SETS) == {"tuning", "held-out"}
    assert not set(TUNING.variants) & set(HELD_OUT.variants)
    assert not set(TUNING.seeds) & set(HELD_OUT.seeds)


def test_each_held_out_variant_leaves_the_tuning_world_in_kind() -> None:
    tuning = [VARIANTS[v] for v in TUNING.variants]
    # No tuning variant changes a course's duration, adds episode kinds or sessions, drops a
    # session, touches the devices' faults, or moves variability past 1.35.
    assert all(
        all(c.days_to_er is None for c in v.courses.values())
        and not v.more_episodes
        and not v.more_sessions
        and not v.drop_slots
        and not v.fault_scale
        and v.variability[1] <= 1.35
        for v in tuning
    )
    slow, abrupt = VARIANTS["slow-burn"], VARIANTS["abrupt"]
    assert slow.courses["hf_decompensation"].days_to_er == (7.0, 12.0)
    assert slow.courses["infection"].days_to_er == abrupt.courses["infection"].days_to_er
    assert abrupt.courses["infection"].days_to_er == (1.5, 2.5)  # 36-60 h
    assert VARIANTS["other-physiology"].variability[0] > 1.35
    habits = VARIANTS["devices-and-habits"]
    assert habits.fault_scale["wrong_unit"] > 1 and habits.drop_slots


def test_sets_are_scored_side_by_side_end_to_end(tmp_path: Path) -> None:
    result = homecare_evaluate(
        "--set", "both", "--patients", "4", "--days", "15", "--end", "2026-06-01",
        "--cache", str(tmp_path),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert out.startswith(f"tuning: {TUNING.describe()}")
    assert f"held-out: {HELD_OUT.describe()}" in out
    blocks = {b.splitlines()[0]: b for b in out.split("\n\n")[1:]}
    assert "== shipped packs" in blocks and "== single readings, no persistence" in blocks
    shipped = blocks["== shipped packs"].splitlines()
    assert shipped[1].split() == ["tuning", "held-out"]
    # The figures are the sums over each set's cohorts, as the cache kept them.
    for column, cohort_set in enumerate((TUNING, HELD_OUT)):
        total = Group()
        for variant, seed in cohort_set.cohorts():
            cohort = cached_cohort(tmp_path, 4, 15, seed, END, _never, variant)
            assert cohort.labels.variant == variant
            total.add(score_cohort(cohort).results["shipped packs"][0])
        row = next(line for line in shipped if "caught ≥ 24 h ahead" in line).split()
        assert row[6 + 2 * column] == f"{total.caught}/{total.episodes}"
        notes = next(line for line in shipped if "notes / patient-month" in line).split()
        assert notes[-2 + column] == f"{total.notes_per_patient_month:.2f}"
    assert len(list(tmp_path.glob("*.pickle"))) == 32
    by_variant = blocks["== shipped packs"].split("by variant")[1]
    assert all(f"{v} (" in by_variant for v in (*TUNING.variants, *HELD_OUT.variants))


def _never() -> StoredCohort:
    raise AssertionError("the command should have cached every cohort")


def test_set_is_refused_with_seeds_and_named_in_help() -> None:
    line = refused_in_one_line(homecare_evaluate("--set", "held-out", "--seed", "3"))
    assert "--set" in line
    usage = homecare_evaluate("--help").stdout
    assert "held-out" in usage and "other-physiology" in usage and "101-104" in usage


def test_notes_count_apart_and_any_alert_source_is_a_rule_set() -> None:
    cohort = store_cohort(BASE_URL, 14, 30, 3, END, "devices-and-habits")
    assert cohort.labels.variant == "devices-and-habits"

    def every_first_reading(patient: StoredPatient, labels: Labels) -> list[Alert]:
        return [Alert(patient.key, "anomaly.first", "high", r.time) for r in patient.readings[:1]]

    result = score_cohort(cohort, {"anomaly only": every_first_reading})
    shipped, _, rules = result.results["shipped packs"]
    # Once-a-day measuring and fading adherence: missing-data notes, none a clinical alert.
    assert shipped.notes > 0
    assert not any(".missing" in r or "adherence" in r for r in rules)
    anomaly, _, _ = result.results["anomaly only"]
    assert anomaly.alerts == sum(1 for p in cohort.patients if p.readings) and anomaly.notes == 0
    table = format_sets({"held-out": {("devices-and-habits", 3): result}}, {})
    assert "== anomaly only" in table and "== shipped packs" in table
