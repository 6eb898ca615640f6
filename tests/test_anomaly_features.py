"""Feature rows of the anomaly detectors: values checked by hand on small histories, and the
properties replay depends on (order of arrival, a recent slice, missing vitals)."""

from __future__ import annotations

import doctest
import importlib
import pkgutil
import random
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

import homecare.rules.anomaly
from homecare.ingest import Reading
from homecare.rules.anomaly import PROGRAM_VITALS, FeatureConfig, build_features, vitals_for
from tests.anomaly_support import reading, synthetic_patient

T = datetime(2026, 5, 4, 6, 0, tzinfo=UTC)
H = timedelta(hours=1)
D = timedelta(days=1)


def test_the_doctests_hold() -> None:
    names = ["homecare.rules.anomaly"] + [
        f"homecare.rules.anomaly.{m.name}"
        for m in pkgutil.iter_modules(homecare.rules.anomaly.__path__)
    ]
    for name in names:
        result = doctest.testmod(importlib.import_module(name))
        assert result.failed == 0, name


def test_every_program_has_vitals_of_the_catalogue() -> None:
    from homecare.catalogue import CATALOGUE, PROGRAMS

    assert set(PROGRAM_VITALS) == set(PROGRAMS)
    assert all(v in CATALOGUE for vitals in PROGRAM_VITALS.values() for v in vitals)
    assert vitals_for(["copd", "heart_failure"])[:3] == ("spo2", "heart_rate", "respiratory_rate")


def test_latest_value_goes_stale_and_means_cover_their_windows() -> None:
    readings = [
        reading("heart_rate", 60, T - 2 * D),
        reading("heart_rate", 70, T - 20 * H),
        reading("heart_rate", 80, T),
        reading("spo2", 95, T + 40 * H),
    ]
    f = build_features(readings, ("heart_rate", "spo2"))
    assert [f.time(i) for i in range(len(f))] == [T - 2 * D, T - 20 * H, T, T + 40 * H]
    assert f.column("heart_rate.last").tolist()[:3] == [60, 70, 80]
    # 40 h after the last heart rate: older than the 36 h of stale_after.
    assert np.isnan(f.column("heart_rate.last")[3])
    # The 24 h mean at T holds the readings in (T - 24 h, T]: 70 and 80.
    assert f.column("heart_rate.mean")[2] == 75
    assert np.isnan(f.column("heart_rate.mean")[3])
    assert f.fresh_of("heart_rate").tolist() == [True, True, True, False]
    assert f.fresh_of("spo2").tolist() == [False, False, False, True]


def test_base_is_the_patients_own_past_three_to_ten_days_back() -> None:
    readings = [reading("spo2", v, T - d * D) for d, v in ((11, 90), (9, 94), (4, 96), (2, 80))]
    readings.append(reading("spo2", 95, T))
    f = build_features(readings, ("spo2",))
    # At T: the base window (T - 10 d, T - 3 d] holds 94 and 96, not 90 (too old) or 80.
    assert f.column("spo2.base")[-1] == 95


def test_weight_change_over_three_days() -> None:
    readings = [
        reading("body_weight", 80.0, T - 3 * D),
        reading("body_weight", 80.4, T - 3 * D - H),
    ]
    readings += [reading("body_weight", 81.9, T - H), reading("body_weight", 82.3, T)]
    f = build_features(readings, ("body_weight", "heart_rate"))
    # Mean of (T - 24 h, T] minus mean of (T - 4 d, T - 3 d]: 82.1 - 80.2.
    assert f.column("body_weight.change_3d")[-1] == pytest.approx(1.9)
    assert "body_weight.change_3d" not in build_features(readings, ("heart_rate",)).columns


def test_time_of_day_is_on_the_utc_clock() -> None:
    f = build_features([reading("heart_rate", 70, T)], ("heart_rate",))
    assert f.column("hour.sin")[0] == pytest.approx(1.0)  # 06:00 UTC: a quarter of the day
    assert f.column("hour.cos")[0] == pytest.approx(0.0, abs=1e-12)


def test_canonical_values_are_used_whatever_unit_was_sent() -> None:
    pounds = reading("body_weight", 81.65, T)._replace(
        original_value=180.0, original_unit="[lb_av]"
    )
    f = build_features([pounds], ("body_weight",))
    assert f.column("body_weight.last")[0] == 81.65


def test_other_types_and_non_finite_values_are_ignored() -> None:
    readings = [reading("pain_score", 3, T), reading("heart_rate", float("nan"), T + H)]
    readings.append(reading("heart_rate", 66, T + 2 * H))
    f = build_features(readings, ("heart_rate", "spo2"))
    assert len(f) == 1
    assert f.column("heart_rate.last")[0] == 66
    assert np.isnan(f.column("spo2.mean")[0])


def test_no_readings_give_no_rows() -> None:
    f = build_features([], ("heart_rate",))
    assert len(f) == 0
    assert f.values.shape == (0, len(f.columns))


def test_arrival_order_does_not_matter() -> None:
    readings = synthetic_patient(30)
    shuffled = list(readings)
    random.Random(3).shuffle(shuffled)
    vitals = vitals_for(["heart_failure"])
    a, b = build_features(readings, vitals), build_features(shuffled, vitals)
    assert np.array_equal(a.values, b.values, equal_nan=True)
    assert np.array_equal(a.times, b.times)
    assert np.array_equal(a.fresh, b.fresh)


def test_a_recent_slice_gives_the_same_rows_bit_for_bit() -> None:
    """Live evaluation builds features from the readings of ``config.history`` before the new
    instants; the rows must equal those of a replay over the whole history, to the last bit
    (float prefix sums would not: their rounding depends on every earlier reading)."""
    readings: list[Reading] = synthetic_patient(60, seed=5)
    readings = [r._replace(value=r.value + 1e-7 * i) for i, r in enumerate(readings)]
    vitals = vitals_for(["heart_failure"])
    config = FeatureConfig()
    full = build_features(readings, vitals, config)
    since = full.time(len(full) - 30)
    recent = build_features(
        [r for r in readings if r.time >= since - config.history], vitals, config, since=since
    )
    assert len(recent) == 30
    assert np.array_equal(recent.values, full.values[-30:], equal_nan=True)
