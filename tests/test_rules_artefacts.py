"""Suspected device artefacts: one extreme reading is a note to re-measure, not a page.

common.suspect_reading (rules/packs/common.yaml v5, kind artefact): a pulse above 220/min, an
SpO2 below 80 % or a temperature below 35.0 °C counts only once an earlier reading within 24 h
confirmed it; the bounds' sources are named in the pack. Pure engine tests on the shipped packs,
with the same packs less the artefact rule as the control (today's behaviour).
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from homecare.ingest import Reading
from homecare.rules.evaluate import PatientContext, evaluate_patient, history_needed
from homecare.rules.model import Finding
from homecare.rules.packs import ArtefactRule, PackError, PackSet, load_packs

T0 = datetime(2026, 9, 1, 8, 0, tzinfo=UTC)
DAY = timedelta(days=1)
HOUR = timedelta(hours=1)
SECOND = timedelta(seconds=1)
PATIENT = uuid.uuid4()
LATE = timedelta(hours=6)
COPD = ("copd",)
RULE = "common.suspect_reading"
SHIPPED = load_packs()
WITHOUT = PackSet(
    {
        name: pack.model_copy(
            update={"rules": tuple(r for r in pack.rules if not isinstance(r, ArtefactRule))}
        )
        for name, pack in SHIPPED.packs.items()
    }
)
PAGES = {"medium", "high", "critical"}  # rules/harness.py: low is not a page


def reading(type_: str, value: float, at: datetime, delay: timedelta = 5 * SECOND) -> Reading:
    return Reading(
        PATIENT, "dev-1", f"m-{type_}-{at.isoformat()}-{value}", type_, at, float(value), "u",
        float(value), "u", at + delay, None, None,
    )  # fmt: skip


def vitals(at: datetime, **values: float) -> list[Reading]:
    return [reading(type_, value, at) for type_, value in values.items()]


def evaluate(
    readings: Sequence[Reading],
    packs: PackSet = SHIPPED,
    start: datetime = T0,
    until: datetime = T0 + 30 * DAY,
    initial: dict[str, bool] | None = None,
    programs: tuple[str, ...] = COPD,
) -> list[Finding]:
    return evaluate_patient(
        packs, PatientContext(PATIENT, programs), readings, start, until, initial or {}, LATE
    )


def pages(findings: list[Finding]) -> list[tuple[str, datetime]]:
    return [(f.rule_id, f.evidence_time) for f in findings
            if f.state == "active" and f.severity in PAGES]  # fmt: skip


def notes(findings: list[Finding]) -> list[tuple[str, datetime]]:
    return [(f.state, f.evidence_time) for f in findings if f.rule_id == RULE]


def usual_copd(days: int = 14) -> list[Reading]:
    """usual_copd: a stable COPD patient morning (08:00) and evening (20:00): SpO2 96-97, pulse
    78-82, respiratory rate 18-19, temperature 36.8, systolic 125 — NEWS2 0 (RCP 2017 chart 1)."""
    return [
        r
        for half_day in range(2 * days)
        for r in vitals(
            T0 + half_day * 12 * HOUR,
            spo2=(96, 97)[half_day % 2],
            heart_rate=(78, 80, 82)[half_day % 3],
            respiratory_rate=(18, 19)[half_day % 2],
            body_temperature=36.8,
            systolic_bp=125,
        )
    ]


MORNING = T0 + 15 * DAY  # 08:00, 12 h after the last usual reading
EVENING = MORNING + 12 * HOUR


def measured(at: datetime, **glitch: float) -> list[Reading]:
    """measured: one home measurement, a little worse than usual (respiratory rate 21, pulse 84:
    NEWS2 2, neither a page alone), with ``glitch`` replacing one value."""
    values = {"spo2": 97, "heart_rate": 84, "respiratory_rate": 21, "body_temperature": 36.8,
              "systolic_bp": 125, **glitch}  # fmt: skip
    return vitals(at, **values)


def normal(at: datetime) -> list[Reading]:
    """normal: a measurement at the patient's usual values."""
    return vitals(at, spo2=97, heart_rate=80, respiratory_rate=18, body_temperature=36.8,
                  systolic_bp=125)  # fmt: skip


GLITCHES = [
    pytest.param({"spo2": 70}, id="cold finger SpO2 70"),
    pytest.param({"heart_rate": 280}, id="motion artefact pulse 280"),
    pytest.param({"body_temperature": 33.0}, id="thermometer in the air 33.0"),
]


@pytest.mark.parametrize("glitch", GLITCHES)
def test_a_lone_extreme_reading_is_a_low_note_and_pages_nobody(glitch: dict[str, float]) -> None:
    readings = [*usual_copd(), *measured(MORNING, **glitch), *normal(EVENING)]
    # Today (no artefact rule) the glitch alone scores 3 NEWS2 points (SpO2 <= 91, pulse >= 131,
    # temperature <= 35.0): 5 with the respiratory rate, 5 above the usual 0 — a page.
    assert ("common.news2_medium", MORNING) in pages(evaluate(readings, WITHOUT))
    found = evaluate(readings)
    assert pages(found) == []
    assert notes(found) == [("active", MORNING), ("cleared", EVENING)]
    note = next(f for f in found if f.rule_id == RULE)
    assert note.severity == "low"
    assert note.evidence["type"] == next(iter(glitch))
    assert "not confirmed by a second reading within 24h" in note.summary
    assert "re-measure" in note.summary


def test_a_cold_finger_spo2_no_longer_moves_the_copd_deviation() -> None:
    # Pulse 84 against a usual 80 (spread 3) is 1.33 spreads; SpO2 70 adds 3 (the cap) — 4.33,
    # above copd.deviation's 3.5, from one reading.
    readings = [*usual_copd(), *measured(MORNING, spo2=70, respiratory_rate=19), *normal(EVENING)]
    assert pages(evaluate(readings, WITHOUT)) == [("copd.deviation", MORNING)]
    assert pages(evaluate(readings)) == []


def test_the_summary_names_the_reading() -> None:
    found = evaluate([*usual_copd(), *measured(MORNING, spo2=70)])
    note = next(f for f in found if f.rule_id == RULE)
    assert note.summary.startswith("SpO2 70 % not confirmed by a second reading within 24h")
    found = evaluate([*usual_copd(), *measured(MORNING, body_temperature=33.1)])
    note = next(f for f in found if f.rule_id == RULE)
    assert note.summary.startswith("Temperature 33.1 °C not confirmed")


def test_a_second_extreme_reading_within_24_h_confirms_it_and_pages() -> None:
    # A real SpO2 of 70: the morning reading is a note; the evening one, 12 h later, confirms it
    # and counts — NEWS2 5, and the deviation — one reading later than without the rule.
    readings = [*usual_copd(), *measured(MORNING, spo2=70), *measured(EVENING, spo2=70)]
    found = evaluate(readings)
    assert ("common.news2_medium", EVENING) in pages(found)
    assert ("copd.deviation", EVENING) in pages(found)
    assert all(at == EVENING for _, at in pages(found))
    assert notes(found) == [("active", MORNING), ("cleared", EVENING)]
    # The evening NEWS2 is today's (the rules that need two low SpO2 readings counted, copd
    # .spo2_very_low and .spo2_drop, wait for a third: the cost of distrusting the first).
    score = {f.rule_id: f.evidence.get("score") for f in found if f.evidence_time == EVENING}
    before = evaluate(readings, WITHOUT, start=EVENING)
    assert score["common.news2_medium"] == 5
    assert {f.rule_id: f.evidence.get("score") for f in before}["common.news2_medium"] == 5


@pytest.mark.parametrize(
    ("gap", "confirmed"), [(24 * HOUR, True), (24 * HOUR + 60 * SECOND, False), (36 * HOUR, False)]
)
def test_confirmation_looks_back_24_hours_and_no_further(gap: timedelta, confirmed: bool) -> None:
    second = MORNING + gap
    readings = [*usual_copd(), *measured(MORNING, spo2=70), *measured(second, spo2=70)]
    found = evaluate(readings)
    assert (("common.news2_medium", second) in pages(found)) is confirmed
    assert ("active", MORNING) in notes(found)
    if not confirmed:  # two unconfirmed readings: still a note, still no page
        assert pages(found) == []


def test_only_earlier_readings_confirm() -> None:
    # The later of two extreme readings confirms nothing before it: the morning one stays out
    # even when the evaluation sees the evening one (replay equals live).
    readings = [*usual_copd(), *measured(MORNING, spo2=70), *measured(EVENING, spo2=70)]
    live = evaluate(readings[:-5], until=EVENING - HOUR)
    assert evaluate(readings, until=EVENING - HOUR) == live
    assert pages(live) == []


def test_an_unconfirmed_note_expires_when_the_time_to_confirm_it_has_passed() -> None:
    readings = [*usual_copd(), *measured(MORNING, body_temperature=33.0)]
    # Readings without a temperature do not clear the note; none of that type for 24 h does.
    readings += vitals(EVENING, spo2=96, heart_rate=80, respiratory_rate=18)
    assert notes(evaluate(readings)) == [("active", MORNING), ("cleared", MORNING + 24 * HOUR)]


def test_missing_data_rules_still_count_an_unconfirmed_reading() -> None:
    # copd.missing_spo2 (36 h): the last usual SpO2 is at day 14 20:00; a glitch at day 15
    # 08:00 is a measurement all the same, so the 36 h count from it.
    readings = [*usual_copd(), *measured(MORNING, spo2=70)]
    missing = [f.evidence_time for f in evaluate(readings)
               if f.rule_id == "copd.missing_spo2" and f.state == "active"]  # fmt: skip
    assert missing == [MORNING + 36 * HOUR]


def test_history_needed_covers_the_time_to_confirm() -> None:
    rule = SHIPPED.rule(RULE)[1]
    assert rule.confirm_within == 24 * HOUR
    assert history_needed(SHIPPED, COPD) == history_needed(WITHOUT, COPD) + rule.confirm_within


SHORT = """pack: common
version: 1
rules:
  - id: common.suspect_reading
    kind: artefact
    bounds: [{type: spo2, below: 80}]
    confirm_within: 24h
    severity: low
    summary: "{readings}"
  - id: common.spo2_low_twice
    kind: threshold
    type: spo2
    op: "<"
    value: 85
    persistence: {count: 2, of: 2, within: 1h}
    severity: high
    summary: "SpO2 {value}"
"""


def test_a_window_of_history_needed_sees_what_confirmed_its_oldest_readings(
    tmp_path: Path,
) -> None:
    # The threshold looks back 1 h, the artefact rule 24 h; the 23:30 reading the threshold sees
    # counts only because of the 00:00 one: a live pass from 00:15 the next day must load 24 h
    # + 1 h back, further than any rule looks.
    (tmp_path / "common.yaml").write_text(SHORT)
    packs = load_packs(tmp_path)
    low = [reading("spo2", 70, T0 + h * HOUR) for h in (0, 23.5, 24.25)]
    whole = evaluate(low, packs, until=T0 + 2 * DAY)
    assert [(f.rule_id, f.evidence_time) for f in whole if f.severity == "high"] == [
        ("common.spo2_low_twice", T0 + 24.25 * HOUR)
    ]
    start = T0 + 24.25 * HOUR
    window = [r for r in low if r.time >= start - history_needed(packs, COPD)]
    initial = state_before(whole, start)
    assert evaluate(window, packs, start=start, until=T0 + 2 * DAY, initial=initial) == [
        f for f in whole if f.evidence_time >= start
    ]


def test_without_the_rule_nothing_is_left_out() -> None:
    readings = [*usual_copd(), *measured(MORNING, spo2=70), *normal(EVENING)]
    found = evaluate(readings, WITHOUT)
    assert notes(found) == []
    # The glitch is a NEWS2 instant of its own, scored with it, as before artefact rules.
    news2 = next(f for f in found if f.rule_id == "common.news2_medium")
    assert news2.evidence["components"]["spo2"] == 3


def glitchy(seed: int, count: int = 160) -> list[Reading]:
    """glitchy: sparse, gappy home readings of a COPD patient with many extreme values."""
    rng = random.Random(seed)
    readings = []
    at = T0
    for _ in range(count):
        at += timedelta(hours=rng.choice([0.5, 4, 12, 12, 12, 20, 30]))
        values = {
            "spo2": rng.choice([rng.uniform(88, 98)] * 4 + [rng.uniform(65, 79)]),
            "heart_rate": rng.choice([rng.uniform(60, 130)] * 5 + [rng.uniform(250, 300)]),
            "respiratory_rate": rng.uniform(14, 26),
            "body_temperature": rng.choice([rng.uniform(36, 38.5)] * 4 + [rng.uniform(31, 34.5)]),
            "systolic_bp": rng.uniform(85, 150),
        }
        for type_, value in values.items():
            if rng.random() < 0.8:
                readings.append(
                    reading(type_, round(value, 1), at, rng.choice([5 * SECOND, 3 * DAY]))
                )
    return readings


def state_before(findings: list[Finding], at: datetime) -> dict[str, bool]:
    state: dict[str, bool] = {}
    for f in sorted(findings, key=lambda f: f.evidence_time):
        if f.evidence_time < at:
            state[f.rule_id] = f.state == "active"
    return state


@pytest.mark.parametrize("seed", range(12))
def test_any_starting_point_gives_the_same_verdicts(seed: int) -> None:
    """Live evaluation starts at the newest data, replays anywhere: evaluating in two steps,
    the second from only what a live worker loads (history_needed), equals one pass."""
    readings = glitchy(seed)
    programs = ("copd", "heart_failure")
    until = max(r.time for r in readings) + 3 * DAY
    whole = evaluate(readings, start=T0, until=until, programs=programs)
    assert any(f.rule_id == RULE for f in whole)
    middle = T0 + (until - T0) * random.Random(seed).uniform(0.2, 0.8)
    first = evaluate(
        readings, start=T0, until=middle - timedelta(microseconds=1), programs=programs
    )
    window = [r for r in readings if r.time >= middle - history_needed(SHIPPED, programs)]
    second = evaluate(window, start=middle, until=until, initial=state_before(first, middle),
                      programs=programs)  # fmt: skip
    assert first + second == whole


@pytest.mark.parametrize("seed", range(6))
def test_a_shuffled_backlog_evaluated_as_it_arrives_gives_the_findings_of_one_pass(
    seed: int,
) -> None:
    """The worker's path: readings arrive in batches, out of event-time order; each pass
    evaluates from the earliest new event time with what is stored, and replaces the findings
    from there (repository.reconcile). The end state equals one pass over everything."""
    rng = random.Random(seed)
    readings = glitchy(seed, count=80)
    programs = ("copd",)
    until = max(r.time for r in readings) + 3 * DAY
    arrivals = readings[:]
    rng.shuffle(arrivals)
    stored: list[Finding] = []
    arrived: list[Reading] = []
    while arrivals:
        size = rng.randint(1, 25)
        batch, arrivals = arrivals[:size], arrivals[size:]
        arrived += batch
        since = min(r.time for r in batch)
        window = [r for r in arrived if r.time >= since - history_needed(SHIPPED, programs)]
        fresh = evaluate(window, start=since, until=until, initial=state_before(stored, since),
                         programs=programs)  # fmt: skip
        stored = [f for f in stored if f.evidence_time < since] + fresh
    key = lambda f: (f.evidence_time, f.rule_id, f.state)  # noqa: E731
    whole = evaluate(readings, start=min(r.time for r in readings), until=until, programs=programs)
    assert sorted(map(key, stored)) == sorted(map(key, whole))
    assert any(f.rule_id == RULE for f in whole)


GOOD = """pack: common
version: 1
rules:
  - id: common.suspect_reading
    kind: artefact
    bounds:
{bounds}
    confirm_within: {within}
    severity: low
    summary: "{{readings}}: re-measure"
"""


def write_common(directory: Path, bounds: str, within: str = "24h") -> None:
    (directory / "common.yaml").write_text(GOOD.format(bounds=bounds, within=within))


@pytest.mark.parametrize(
    ("bounds", "within", "message"),
    [
        (
            "      - {type: spo2}",
            "24h",
            "field bounds.0: Value error, give exactly one of above or below",
        ),
        (
            "      - {type: spo2, above: 100, below: 80}",
            "24h",
            "field bounds.0: Value error, give exactly one of above or below",
        ),
        (
            "      - {type: spo2, below: 80}\n      - {type: oxygen, below: 80}",
            "24h",
            "field bounds.1.type: Value error, unknown measurement type 'oxygen'",
        ),
        (
            "      - {type: spo2, below: 80, colour: red}",
            "24h",
            "field bounds.0.colour: Extra inputs are not permitted",
        ),
        (
            "      - {type: spo2, below: 80}\n      - {type: spo2, below: 70}",
            "24h",
            "field bounds: Value error, spo2 has two bounds below",
        ),
        ("      - {type: spo2, below: 80}", "1 day", "field confirm_within: Value error, invalid"),
        (
            "      - {type: spo2, below: 80}",
            "0h",
            "field confirm_within: Value error, confirm_within must be more than 0",
        ),
        ("      - {type: spo2, below: low}", "24h", "field bounds.0.below:"),
    ],
)
def test_a_bad_artefact_rule_is_named_by_file_rule_and_field(
    tmp_path: Path, bounds: str, within: str, message: str
) -> None:
    write_common(tmp_path, bounds, within)
    with pytest.raises(PackError) as error:
        load_packs(tmp_path)
    assert str(error.value).startswith("common.yaml: rule common.suspect_reading: ")
    assert message in str(error.value)


def test_an_artefact_rule_belongs_in_the_common_pack(tmp_path: Path) -> None:
    (tmp_path / "copd.yaml").write_text(
        GOOD.replace("pack: common", "pack: copd")
        .replace("common.suspect_reading", "copd.suspect_reading")
        .format(bounds="      - {type: spo2, below: 80}", within="24h")
    )
    with pytest.raises(PackError) as error:
        load_packs(tmp_path)
    assert str(error.value).startswith("copd.yaml: rule copd.suspect_reading: field kind: ")
    assert "common.yaml" in str(error.value)


def test_a_good_artefact_rule_loads(tmp_path: Path) -> None:
    write_common(tmp_path, "      - {type: spo2, below: 80}\n      - {type: spo2, above: 100}",
                 "36h")  # fmt: skip
    rule = load_packs(tmp_path).rule("common.suspect_reading")[1]
    assert isinstance(rule, ArtefactRule)
    assert rule.confirm_within == 36 * HOUR
    assert [(b.type, b.side) for b in rule.bounds] == [("spo2", "below"), ("spo2", "above")]
