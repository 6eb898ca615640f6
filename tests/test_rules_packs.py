"""Rule packs: the shipped packs load, and every kind of mistake is named precisely."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from homecare import catalogue
from homecare.rules.packs import CombinationRule, PackError, load_packs, parse_duration

GOOD_RULE = """
  - id: {pack}.hr_high
    kind: threshold
    type: heart_rate
    op: ">"
    value: 120
    severity: medium
    summary: "Heart rate {{value}}"
"""


BASELINE_RULE = """
  - id: {pack}.fall
    kind: baseline_change
    type: spo2
    change: -3
    over: 1d
    baseline: 14d
    severity: medium
    summary: "SpO2 {{value}}"
"""


def write_pack(directory: Path, name: str, body: str, version: int = 1) -> None:
    (directory / f"{name}.yaml").write_text(f"pack: {name}\nversion: {version}\nrules:\n{body}")


def test_the_shipped_packs_load_and_cover_every_program() -> None:
    packs = load_packs()
    assert set(packs.packs) == {"common", *catalogue.PROGRAMS}
    ids = [rule.id for pack in packs.packs.values() for rule in pack.rules]
    assert len(ids) == len(set(ids))
    assert all(pack.version >= 1 for pack in packs.packs.values())


def test_rules_for_a_patient_are_common_plus_their_programs() -> None:
    packs = load_packs()
    chosen = {pack.pack for pack, _ in packs.rules_for(["copd", "heart_failure"])}
    assert chosen == {"common", "copd", "heart_failure"}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (GOOD_RULE.replace("heart_rate", "heart_beat"), "rule copd.hr_high: field type:"),
        (GOOD_RULE.replace('">"', '"=>"'), "rule copd.hr_high: field op:"),
        (GOOD_RULE.replace("medium", "urgent"), "rule copd.hr_high: field severity:"),
        (GOOD_RULE + "    colour: red\n", "rule copd.hr_high: field colour: Extra inputs"),
        (GOOD_RULE.replace("value: 120", "value: high"), "rule copd.hr_high: field value:"),
        (
            GOOD_RULE + "    persistence: {count: 3, of: 2}\n",
            "rule copd.hr_high: field persistence: Value error, count 3 is more than of 2",
        ),
        (
            GOOD_RULE + "    persistence: {for: 2 hours}\n",
            "rule copd.hr_high: field persistence.for: Value error, invalid duration",
        ),
        (GOOD_RULE.replace("{{value}}", "{{value.x}}"), "rule copd.hr_high: field summary:"),
        (GOOD_RULE.replace("id: {pack}.hr_high", "id: HR"), "rule HR: field id:"),
        (GOOD_RULE.replace("kind: threshold", "kind: magic"), "rule copd.hr_high: field kind"),
        (
            BASELINE_RULE.replace("over: 1d", "over: 1d\n    same_time_of_day: 12h"),
            "rule copd.fall: field same_time_of_day: Value error, same_time_of_day must be",
        ),
        (
            BASELINE_RULE.replace("over: 1d", "over: 1d\n    same_time_of_day: soon"),
            "rule copd.fall: field same_time_of_day: Value error, invalid duration",
        ),
    ],
)
def test_a_bad_rule_is_named_by_file_rule_and_field(
    tmp_path: Path, body: str, message: str
) -> None:
    write_pack(
        tmp_path, "copd", body.replace("{pack}", "copd").replace("{{", "{").replace("}}", "}")
    )
    with pytest.raises(PackError) as error:
        load_packs(tmp_path)
    assert str(error.value).startswith("copd.yaml: ")
    assert message in str(error.value)


def test_duplicate_ids_and_dangling_references_are_refused(tmp_path: Path) -> None:
    write_pack(tmp_path, "common", GOOD_RULE.format(pack="copd"))
    write_pack(tmp_path, "copd", GOOD_RULE.format(pack="copd"))
    with pytest.raises(PackError, match=r"rule copd.hr_high: id already used in common.yaml"):
        load_packs(tmp_path)

    (tmp_path / "common.yaml").unlink()
    combo = """
  - id: copd.combo
    kind: combination
    mode: all
    rules: [copd.hr_high, copd.nothing]
    within: 1d
    severity: high
    summary: "both"
"""
    write_pack(tmp_path, "copd", GOOD_RULE.format(pack="copd") + combo)
    with pytest.raises(PackError, match=r"rule copd.combo: field rules: 'copd.nothing'"):
        load_packs(tmp_path)


def test_a_file_must_hold_the_pack_it_is_named_after(tmp_path: Path) -> None:
    (tmp_path / "copd.yaml").write_text(
        "pack: diabetes\nversion: 1\nrules:\n" + GOOD_RULE.format(pack="dm")
    )
    with pytest.raises(PackError, match=r"holds pack 'diabetes'; name the file diabetes\.yaml"):
        load_packs(tmp_path)


def test_unknown_program_and_bad_yaml(tmp_path: Path) -> None:
    write_pack(tmp_path, "cardiology", GOOD_RULE.format(pack="cardiology"))
    with pytest.raises(
        PackError, match=r"cardiology\.yaml: field pack: Value error, unknown program"
    ):
        load_packs(tmp_path)
    (tmp_path / "cardiology.yaml").write_text("pack: [unclosed\n")
    with pytest.raises(PackError, match=r"cardiology\.yaml: not valid YAML"):
        load_packs(tmp_path)


def test_durations() -> None:
    assert parse_duration("90m") == timedelta(minutes=90)
    assert parse_duration("3d") == timedelta(days=3)
    with pytest.raises(ValueError, match="invalid duration"):
        parse_duration("3 days")


def test_combination_at_least_needs_its_count() -> None:
    with pytest.raises(ValueError, match="at_least is required"):
        CombinationRule.model_validate(
            {
                "id": "x.y",
                "kind": "combination",
                "mode": "at_least",
                "rules": ["a.b", "c.d"],
                "within": "1d",
                "severity": "low",
                "summary": "s",
            }
        )
