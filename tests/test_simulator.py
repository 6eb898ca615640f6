"""The simulator's contract: deterministic bytes, messages the ingest accepts except the labelled
faults (each with the quarantine reason its label states), faults at their configured rates,
and the labels file and CLI the issue asks for."""

from __future__ import annotations

import hashlib
import io
import json
import math
import statistics
from collections import Counter, defaultdict
from pathlib import Path

import pytest

import homecare.devices.sim
from homecare import catalogue
from homecare.cli import main
from homecare.devices.sim import (
    LABELS_SCHEMA,
    FaultRates,
    SimConfig,
    Simulation,
    cuff_messages,
    live_window,
    write_messages,
)
from homecare.devices.sim.clock import DAY_MS, HOUR_MS
from homecare.ingest import Delivery, ParsedMessage, ParseLimits, parse_message
from tests.support.simulated import END, generate, ms

LIMITS = ParseLimits()


def digest(config: SimConfig) -> tuple[str, str]:
    sim = Simulation(config)
    out = io.StringIO()
    write_messages(sim.messages(), out)
    labels = json.dumps(sim.labels(), indent=1)
    return hashlib.sha256(out.getvalue().encode()).hexdigest(), labels


def test_the_public_surface_is_what_it_should_be() -> None:
    assert sorted(homecare.devices.sim.__all__) == sorted(
        [
            "EPISODE_KINDS",
            "LABELS_SCHEMA",
            "LOOKALIKE_KINDS",
            "Enrolment",
            "EnrolmentAssignment",
            "EnrolmentPatient",
            "FaultRates",
            "SimConfig",
            "SimMessage",
            "Simulation",
            "SimulationCounts",
            "cuff_messages",
            "live_window",
            "paced",
            "write_messages",
        ]
    )
    assert set(homecare.devices.sim.EPISODE_KINDS) == {
        "hf_decompensation",
        "copd_exacerbation",
        "infection",
        "hypertensive_crisis",
        "hypoglycaemia",
        "wound_infection",
        "symptom_flare",
        "postop_complication",
    }


def test_same_seed_same_bytes_and_another_seed_other_bytes() -> None:
    config = SimConfig(patients=12, days=10, seed=5, end=END, wearable=True)
    first, second = digest(config), digest(config)
    assert first == second
    other = digest(SimConfig(patients=12, days=10, seed=6, end=END, wearable=True))
    assert other[0] != first[0] and other[1] != first[1]


def test_a_patient_does_not_depend_on_the_size_of_the_cohort() -> None:
    small = Simulation(SimConfig(patients=2, days=5, seed=9, end=END))
    large = Simulation(SimConfig(patients=9, days=5, seed=9, end=END))
    keep = {"sim-00000", "sim-00001"}
    assert [m.payload for m in small.messages()] == [
        m.payload for m in large.messages() if m.patient in keep
    ]


def test_messages_come_in_send_order_and_never_after_the_window() -> None:
    sim = Simulation(SimConfig(patients=20, days=15, seed=2, end=END))
    sent = [m.sent_ms for m in sim.messages()]
    assert sent == sorted(sent)
    assert sent[-1] <= round(END.timestamp() * 1000)
    assert sim.counts.messages == len(sent)


def test_every_payload_parses_and_only_labelled_faults_are_quarantined() -> None:
    config = SimConfig(
        patients=40,
        days=30,
        seed=4,
        end=END,
        faults=FaultRates(resend=0.02, clock_skew=0.3, clock_reset=0.2, glitch=0.03),
    )
    sim = Simulation(config)
    messages = list(sim.messages())
    labels = sim.labels()
    expected: dict[tuple[str, str, int | None], str] = {}
    for fault in labels["faults"]:
        if fault["scope"] != "message" or fault["kind"] == "resend":
            continue
        if fault["expected"] == "stored":
            continue
        expected[(fault["device_id"], fault["msg_id"], fault.get("reading_index"))] = fault[
            "expected"
        ]
    seen: dict[tuple[str, str, int | None], str] = {}
    reasons: Counter[str] = Counter()
    for message in messages:
        if message.resend:
            continue
        parsed = parse_message(Delivery(message.topic, message.payload, message.sent_at), LIMITS)
        assert isinstance(parsed, ParsedMessage), parsed  # never a whole-message rejection
        outcomes = ["stored"] * len(message.expected)
        for rejection in parsed.rejections:
            assert rejection.reading_index is not None
            outcomes[rejection.reading_index] = rejection.reason.value
            reasons[rejection.reason.value] += 1
            glitch = (message.device_id, message.msg_id, rejection.reading_index)
            clock = (message.device_id, message.msg_id, None)
            labelled = [k for k in (glitch, clock) if expected.get(k) == rejection.reason.value]
            assert labelled, (message, rejection)
            seen.update((k, rejection.reason.value) for k in labelled)
        assert tuple(outcomes) == message.expected
    assert seen == expected  # every labelled quarantine happened
    assert reasons["implausible_value"] and reasons["future_time"] and reasons["too_old"]


def test_readings_stay_inside_the_plausible_ranges_except_labelled_glitches() -> None:
    cohort = generate(SimConfig(patients=70, days=30, seed=8, end=END))
    total = implausible = 0
    for message in cohort.messages:
        if message.resend:
            continue  # the same bytes as a message checked already
        document = json.loads(message.payload)
        glitched = {f["reading_index"] for f in message.faults if f["kind"] == "glitch"}
        for index, reading in enumerate(document["readings"]):
            kind = catalogue.lookup(reading["type"])
            assert reading["unit"] in kind.accepted_units
            total += 1
            if not kind.is_plausible(kind.to_canonical(reading["value"], reading["unit"])):
                implausible += 1
                assert index in glitched
    assert implausible / total < 0.005


def test_faults_appear_at_their_configured_rates() -> None:
    rates = FaultRates(
        resend=0.05,
        offline_per_day=0.05,
        clock_skew=0.2,
        clock_reset=0.1,
        glitch=0.03,
        wrong_unit=0.3,
        reassign=0.3,
    )
    config = SimConfig(patients=200, days=30, seed=3, end=END, faults=rates, episode_rate_scale=0)
    sim = Simulation(config)
    messages = list(sim.messages())
    labels = sim.labels()

    def near(measured: float, rate: float, n: int) -> bool:
        return abs(measured - rate) <= 4 * math.sqrt(rate * (1 - rate) / n) + 1e-9

    # Resends: the same msg_id from the same device again, counted in the data.
    first = [m for m in messages if not m.resend]
    ids = Counter((m.device_id, m.msg_id) for m in messages)
    again = sum(n - 1 for n in ids.values())
    assert near(again / len(first), rates.resend, len(first))
    assert all(
        m.payload == next(o.payload for o in first if o.msg_id == m.msg_id)
        for m in messages[:2000]
        if m.resend
    )

    # Glitches: artefact values no physiology reaches (this cohort has no episodes).
    eligible = artefacts = 0
    for message in first:
        for reading in json.loads(message.payload)["readings"]:
            name, value = reading["type"], reading["value"]
            if name not in ("heart_rate", "spo2", "body_temperature"):
                continue
            eligible += 1
            if reading["unit"] == "[degF]":
                value = (value - 32) * 5 / 9
            artefact = (
                (name == "heart_rate" and (value >= 250 or value == 0))
                or (name == "spo2" and value <= 78)
                or (name == "body_temperature" and value < 34.6)
            )
            artefacts += artefact
    assert near(artefacts / eligible, rates.glitch, eligible)

    # Wrong-unit devices: scales, thermometers and glucometers publishing lb, °F, mg/dL.
    units_by_device: dict[str, set[str]] = defaultdict(set)
    for message in first:
        for reading in json.loads(message.payload)["readings"]:
            if reading["type"] in ("body_weight", "body_temperature", "blood_glucose"):
                units_by_device[message.device_id].add(reading["unit"])
    wrong = sum(1 for units in units_by_device.values() if units & {"[lb_av]", "[degF]", "mg/dL"})
    assert near(wrong / len(units_by_device), rates.wrong_unit, len(units_by_device))
    assert all(len(units) == 1 for units in units_by_device.values())

    # Offline periods: backlog uploads in the data fall in labelled periods, sent at their end;
    # and the labelled periods come at the configured rate per device-day online.
    offline: dict[str, list[tuple[int, int]]] = defaultdict(list)
    clocked = {f["device_id"] for f in labels["faults"] if f["kind"].startswith("clock")}
    for fault in labels["faults"]:
        if fault["kind"] == "offline":
            offline[fault["device_id"]].append((ms(fault["start"]), ms(fault["end"])))
    backlog = 0
    for message in first:
        if message.device_id in clocked:
            continue
        event = ms(json.loads(message.payload)["readings"][0]["time"])
        if message.sent_ms - event > HOUR_MS:
            backlog += 1
            assert any(
                s <= event < e and e <= message.sent_ms < e + HOUR_MS
                for s, e in offline[message.device_id]
            )
    assert backlog > 100
    devices = len(labels["devices"])
    periods = sum(len(v) for v in offline.values())
    offline_days = sum(
        (min(e, ms(labels["generator"]["end"])) - s) / DAY_MS
        for v in offline.values()
        for s, e in v
    )
    online_days = devices * config.days - offline_days
    assert abs(periods / online_days - rates.offline_per_day) <= 4 * math.sqrt(
        rates.offline_per_day / online_days
    )

    # Clock faults per device, and device handovers per pair of patients.
    skewed = {f["device_id"] for f in labels["faults"] if f["kind"] == "clock_skew"}
    reset = {f["device_id"] for f in labels["faults"] if f["kind"] == "clock_reset"}
    assert near(len(skewed) / devices, rates.clock_skew, devices)
    assert near(len(reset) / devices, rates.clock_reset, devices)
    handovers = [f for f in labels["faults"] if f["kind"] == "device_reassigned"]
    pairs = config.patients // 2
    assert near(len(handovers) / pairs, rates.reassign, pairs)


def test_a_handed_over_device_measures_its_first_patient_then_its_second() -> None:
    config = SimConfig(patients=20, days=40, seed=1, end=END, faults=FaultRates(reassign=1.0))
    sim = Simulation(config)
    messages = list(sim.messages())
    labels = sim.labels()
    intervals: dict[str, list[tuple[str, int, int]]] = defaultdict(list)
    for a in labels["assignments"]:
        intervals[a["device_id"]].append(
            (a["patient_id"], ms(a["from"]), ms(a["to"]) if a["to"] else 2**62)
        )
    handed = {f["device_id"] for f in labels["faults"] if f["kind"] == "device_reassigned"}
    assert len(handed) >= 8
    owners: dict[str, set[str]] = defaultdict(set)
    for message in messages:
        if any(f["kind"] == "clock_reset" for f in message.faults):
            continue  # stamped in the year 2000 on purpose: nobody's reading
        event = ms(json.loads(message.payload)["readings"][0]["time"])
        owner = [p for p, s, e in intervals[message.device_id] if s <= event < e]
        assert owner == [message.patient], message  # attribution by event time is right
        owners[message.device_id].add(message.patient)
    assert all(len(owners[d]) == 2 for d in handed if d in owners)
    donors = {p["id"]: p for p in labels["patients"] if p["monitoring_end"]}
    assert len(donors) == len(handed)


def test_the_labels_document_has_the_documented_shape() -> None:
    sim = Simulation(SimConfig(patients=14, days=40, seed=7, end=END, episode_rate_scale=4))
    for _ in sim.messages():
        pass
    labels = sim.labels()
    assert labels["schema"] == LABELS_SCHEMA and labels["complete"] is True
    assert list(labels) == [
        "schema",
        "generator",
        "complete",
        "patients",
        "devices",
        "assignments",
        "episodes",
        "lookalikes",
        "hospital_stays",
        "faults",
    ]
    patient = labels["patients"][0]
    assert {"id", "programs", "age", "baseline", "devices", "medications"} <= set(patient)
    assert {p["programs"][0] for p in labels["patients"]} == set(catalogue.PROGRAMS)
    assert labels["episodes"] and labels["lookalikes"] and labels["hospital_stays"]
    for episode in labels["episodes"]:
        assert {"id", "kind", "patient_id", "onset", "er_visit", "expected_signals"} <= set(episode)
        assert episode["expected_signals"], episode
    for lookalike in labels["lookalikes"]:
        assert ms(lookalike["start"]) < ms(lookalike["end"])
    device_ids = {d["id"] for d in labels["devices"]}
    assert {a["device_id"] for a in labels["assignments"]} == device_ids
    assert all(f["scope"] in ("device", "message") for f in labels["faults"])


def test_homecare_simulate_writes_messages_and_labels(tmp_path: Path) -> None:
    out, labels = tmp_path / "messages.jsonl", tmp_path / "labels.json"
    argv = [
        "simulate",
        "--patients",
        "4",
        "--days",
        "3",
        "--seed",
        "2",
        "--end",
        "2026-01-01T00:00:00Z",
        "--out",
        str(out),
        "--labels",
        str(labels),
    ]
    assert main(argv) == 0
    first = out.read_bytes(), labels.read_bytes()
    assert main(argv) == 0
    assert (out.read_bytes(), labels.read_bytes()) == first  # same seed, same bytes
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert lines and all(list(line) == ["topic", "payload", "sent_at"] for line in lines)
    parsed = parse_message(Delivery(lines[0]["topic"], lines[0]["payload"].encode(), END), LIMITS)
    assert isinstance(parsed, ParsedMessage)
    assert json.loads(labels.read_text())["generator"]["seed"] == 2


def test_live_window_never_publishes_from_the_future() -> None:
    from datetime import timedelta

    start, end = live_window(2, 3600, END)
    assert end - start == timedelta(days=2)
    assert end == END + timedelta(days=2) / 3600
    for speed in (1.0, 10.0, 86_400.0):
        start, end = live_window(3, speed, END)
        for fraction in (0.0, 0.3, 0.99, 1.0):
            sent = start + (end - start) * fraction
            published = END + (sent - start) / speed
            assert published >= sent - timedelta(microseconds=1)


def test_cuff_messages_are_deterministic_valid_bp_cuff_messages() -> None:
    from datetime import timedelta

    devices_ = tuple(f"cuff-{i}" for i in range(5))
    first = list(cuff_messages(devices_, 500, END - timedelta(days=1), seed=3))
    again = list(cuff_messages(devices_, 500, END - timedelta(days=1), seed=3))
    assert [o.payload for o in first] == [o.payload for o in again]
    assert [o.device_id for o in first[:6]] == [*devices_, devices_[0]]
    systolic = []
    for item in first:
        parsed = parse_message(Delivery(item.topic, item.payload, END), LIMITS)
        assert isinstance(parsed, ParsedMessage) and not parsed.rejections
        assert [r.type for r in parsed.readings] == ["systolic_bp", "diastolic_bp", "heart_rate"]
        systolic.append(parsed.readings[0].value)
        assert item.expected == "stored" and item.readings == 3
    assert 120 <= statistics.median(systolic) <= 165
    assert len({o.msg_id for o in first}) == 500


def test_a_bad_configuration_is_refused() -> None:
    with pytest.raises(ValueError, match="days"):
        SimConfig(patients=1, days=0, seed=1, end=END)
    with pytest.raises(ValueError, match="aware"):
        SimConfig(patients=1, days=1, seed=1, end=END.replace(tzinfo=None))
    with pytest.raises(ValueError, match="resend"):
        FaultRates(resend=1.5)
    with pytest.raises(ValueError, match="id_prefix"):
        SimConfig(patients=1, days=1, seed=1, end=END, id_prefix="a b")


def test_paced_publishing_never_runs_ahead_of_the_clock() -> None:
    import time
    from datetime import UTC, datetime

    from homecare.devices.sim import paced

    now = datetime.now(UTC)
    start, end = live_window(1, 432_000, now)  # a simulated day in 0.2 s
    sim = Simulation(SimConfig(patients=30, days=1, seed=1, end=end, faults=FaultRates.none()))
    late = []
    for message in paced(sim.messages(), start, 432_000):
        late.append(time.time() - message.sent_ms / 1000)
    assert late and min(late) >= -0.005  # published at or after its own send time
    assert time.time() - now.timestamp() < 5
