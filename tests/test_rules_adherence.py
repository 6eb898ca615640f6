"""The adherence kind: too few days with a reading of a type, with hysteresis, from any start."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from homecare.ingest import Reading
from homecare.rules.evaluate import PatientContext, evaluate_patient, history_needed
from homecare.rules.packs import PackError, PackSet, load_packs

T0 = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)
DAY = timedelta(days=1)
PATIENT = uuid.uuid4()
CONTEXT = PatientContext(PATIENT, ("heart_failure",))

RULE = """  - id: hf.weight_adherence
    kind: adherence
    type: body_weight
    days: 7
    min_days: 4
    clear_days: 6
    severity: low
    summary: "Weight on {measured_days} of the last {days} days"
"""


def pack(rule: str = RULE) -> str:
    return f"pack: heart_failure\nversion: 1\nrules:\n{rule}"


@pytest.fixture(scope="module")
def packs(tmp_path_factory: pytest.TempPathFactory) -> PackSet:
    directory: Path = tmp_path_factory.mktemp("packs")
    (directory / "heart_failure.yaml").write_text(pack())
    return load_packs(directory)


def weights(days: list[int]) -> list[Reading]:
    """weights: one morning weight on each of ``days`` (days after T0)."""
    return [
        Reading(PATIENT, "scale", f"m{d}", "body_weight", T0 + d * DAY, 80.0, "kg", 80.0, "kg",
                T0 + d * DAY + timedelta(seconds=5))
        for d in days
    ]  # fmt: skip


def run(
    packs: PackSet, readings: list[Reading], start: datetime, until: datetime,
    initial: dict[str, bool] | None = None,
) -> list[tuple[str, datetime]]:  # fmt: skip
    found = evaluate_patient(packs, CONTEXT, readings, start, until, initial or {}, DAY)
    return [(f.state, f.evidence_time) for f in found if f.rule_id == "hf.weight_adherence"]


def test_fewer_than_four_days_in_seven_opens_it_and_six_close_it(packs: PackSet) -> None:
    # Every day for two weeks, then only days 14, 16 and 19, then every day again from 22.
    days = [*range(14), 14, 16, 19, *range(22, 40)]
    found = run(packs, weights(days), T0, T0 + 40 * DAY)
    # Each day is the 24 h period (at - (k + 1) d, at - k d]. At day 20 08:00 the week back
    # holds days 14, 16 and 19 (day 13's 08:00 is exactly 7 days back: out): 3 < 4.
    opened = T0 + 20 * DAY
    # Back to every day from 22: at day 27 08:00, with that morning's weight, days 22-27 = 6.
    closed = T0 + 27 * DAY
    assert found == [("active", opened), ("cleared", closed)]


def test_between_the_two_levels_the_note_neither_opens_nor_clears(packs: PackSet) -> None:
    # Five days in every seven, for weeks: never below 4, never 6. Nothing happens...
    five_of_seven = [d for d in range(60) if d % 7 not in (2, 5)]
    assert run(packs, weights(five_of_seven), T0 + 14 * DAY, T0 + 60 * DAY) == []
    # ...and an open note stays open (a live worker starting with it active).
    assert run(packs, weights(five_of_seven), T0 + 14 * DAY, T0 + 60 * DAY,
               {"hf.weight_adherence": True}) == []  # fmt: skip


def test_a_patient_who_has_not_started_or_left_long_ago_is_not_judged(packs: PackSet) -> None:
    # Weights only from day 30: the first week is not "3 of 7", it is a start.
    assert run(packs, weights(list(range(30, 34))), T0, T0 + 34 * DAY) == []
    # Gone quiet after day 10: it opens once, and stays so (nothing to clear it) when, after
    # two windows without any weight, the rule can no longer tell.
    found = run(packs, weights(list(range(11))), T0 + 7 * DAY, T0 + 60 * DAY)
    assert found == [("active", T0 + 14 * DAY)]


def test_any_start_gives_the_verdicts_of_one_pass(packs: PackSet) -> None:
    days = [d for d in range(80) if d % 5 != 0 and not 30 <= d < 36 and d % 11 != 3]
    readings = weights(days)
    whole = run(packs, readings, T0, T0 + 80 * DAY)
    assert whole, "the scenario should open and clear the note"
    lookback = history_needed(packs, ("heart_failure",))
    assert lookback >= 14 * DAY
    for split in (T0 + 23 * DAY + timedelta(hours=5), T0 + 37 * DAY, T0 + 51 * DAY):
        before = [f for f in whole if f[1] < split]
        state = bool(before) and before[-1][0] == "active"
        window = [r for r in readings if r.time >= split - lookback]
        after = run(packs, window, split, T0 + 80 * DAY, {"hf.weight_adherence": state})
        assert before + after == whole


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ("    min_days: 4\n", "min_days 8 is more than days 7"),
        ("    clear_days: 6\n", "clear_days 3 must be from min_days 4 to days 7"),
        ("    type: body_weight\n", "unknown measurement type 'weight'"),
    ],
)
def test_a_bad_adherence_rule_is_named(tmp_path: Path, change: str, message: str) -> None:
    bad = {
        "    min_days: 4\n": "    min_days: 8\n",
        "    clear_days: 6\n": "    clear_days: 3\n",
        "    type: body_weight\n": "    type: weight\n",
    }[change]
    (tmp_path / "heart_failure.yaml").write_text(pack(RULE.replace(change, bad)))
    with pytest.raises(PackError) as error:
        load_packs(tmp_path)
    assert "heart_failure.yaml: rule hf.weight_adherence:" in str(error.value)
    assert message in str(error.value)
