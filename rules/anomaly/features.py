"""Features: a patient's readings as one feature vector per instant, for the anomaly detectors.

An *instant* is the event time of a reading of one of the chosen vitals (readings taken
together, such as an oximeter's SpO2, pulse and respiratory rate, share one instant). At each
instant, for each vital, from the readings at or before it only:

    <vital>.last    the latest value, if measured within ``stale_after`` (else missing)
    <vital>.mean    the mean over the last ``window`` (24 h)
    <vital>.base    the mean over [t − ``base_until`` − ``base_span``, t − ``base_until``]: the
                    patient's own recent past, a few days back, before a slow change began
    body_weight.change_3d   weight mean of the last 24 h minus that of the 24 h three days ago
    hour.sin, hour.cos      time of day on the UTC clock, as the rules' same_time_of_day uses
                            (the pure evaluator knows no patient's time zone; a DST change
                            shifts the circadian phase by an hour, which the models tolerate)

Missing is NaN: patients skip readings and programs measure different vitals, so every
detector must live with holes. Values are the canonical units the ingest stored, so a weight
sent in pounds and one sent in kilograms are the same feature. The result depends only on the
set of readings (they are sorted here), never on their arrival order: replay equals live.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np
import numpy.typing as npt

from homecare.ingest import Reading

__all__ = [
    "PROGRAM_VITALS",
    "FeatureConfig",
    "Features",
    "build_features",
    "vitals_for",
]

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
IntArray = npt.NDArray[np.int64]

# The vitals whose joint state says how a patient of each program is: those the program's
# devices measure and its deteriorations move (devices/sim/MODEL.md, episodes table).
PROGRAM_VITALS: dict[str, tuple[str, ...]] = {
    "heart_failure": (
        "body_weight", "heart_rate", "systolic_bp", "diastolic_bp", "spo2", "respiratory_rate",
    ),
    "copd": (
        "spo2", "heart_rate", "respiratory_rate", "body_temperature", "systolic_bp",
        "diastolic_bp",
    ),
    "hypertension": ("systolic_bp", "diastolic_bp", "heart_rate", "body_weight"),
    "diabetes": ("blood_glucose", "systolic_bp", "diastolic_bp", "heart_rate", "body_weight"),
    "post_surgical_rehab": (
        "pain_score", "range_of_motion", "body_temperature", "systolic_bp", "diastolic_bp",
    ),
    "wound_care": (
        "wound_area", "pain_score", "body_temperature", "systolic_bp", "diastolic_bp",
    ),
    "oncology": (
        "esas_pain", "esas_tiredness", "esas_nausea", "esas_appetite", "esas_wellbeing",
        "esas_drowsiness", "body_temperature", "heart_rate", "spo2",
    ),
}  # fmt: skip

HOUR_COLUMNS = ("hour.sin", "hour.cos")
WEIGHT_CHANGE = "body_weight.change_3d"
_DAY_S = 86400.0
_SCALE = 1_000_000


def vitals_for(programs: Iterable[str]) -> tuple[str, ...]:
    """vitals_for: the union of the programs' vitals, in a fixed (first-seen) order.

    >>> vitals_for(["hypertension", "diabetes"])
    ('systolic_bp', 'diastolic_bp', 'heart_rate', 'body_weight', 'blood_glucose')
    """
    seen: dict[str, None] = {}
    for program in programs:
        for vital in PROGRAM_VITALS[program]:
            seen.setdefault(vital, None)
    return tuple(seen)


@dataclass(frozen=True)
class FeatureConfig:
    """FeatureConfig: the windows of the features (defaults suit twice-daily home readings)."""

    window: timedelta = timedelta(hours=24)
    stale_after: timedelta = timedelta(hours=36)
    base_until: timedelta = timedelta(days=3)
    base_span: timedelta = timedelta(days=7)
    weight_change_over: timedelta = timedelta(days=3)

    @property
    def history(self) -> timedelta:
        """history: how far before an instant its features read."""
        return max(self.base_until + self.base_span, self.weight_change_over + self.window)


def columns_for(vitals: Sequence[str]) -> tuple[str, ...]:
    """columns_for: the feature columns built for ``vitals``, in order."""
    columns = [f"{v}.{part}" for v in vitals for part in ("last", "mean", "base")]
    if "body_weight" in vitals:
        columns.append(WEIGHT_CHANGE)
    return (*columns, *HOUR_COLUMNS)


@dataclass(frozen=True, eq=False)
class Features:
    """Features: one row per instant (times ascending, epoch seconds), one column per feature.

    ``fresh[i, j]`` says vital ``vitals[j]`` was measured at instant ``i`` itself: residual
    models judge a vital only where it was measured, not where its last value was carried on.
    """

    vitals: tuple[str, ...]
    columns: tuple[str, ...]
    times: FloatArray
    values: FloatArray
    fresh: BoolArray

    def __len__(self) -> int:
        return len(self.times)

    def column(self, name: str) -> FloatArray:
        """column: one feature over all instants (all NaN if it was not built)."""
        if name in self.columns:
            return self.values[:, self.columns.index(name)]
        return np.full(len(self.times), np.nan)

    def matrix(self, names: Sequence[str]) -> FloatArray:
        """matrix: the named features as columns, NaN for any not built here."""
        if not len(names):
            return np.empty((len(self.times), 0))
        return np.column_stack([self.column(n) for n in names])

    def fresh_of(self, vital: str) -> BoolArray:
        """fresh_of: where ``vital`` was measured (all false if it is not one of ours)."""
        if vital in self.vitals:
            return self.fresh[:, self.vitals.index(vital)]
        return np.zeros(len(self.times), dtype=bool)

    def rows(self, start: int, stop: int | None = None) -> Features:
        """rows: the instants ``start:stop``, as Features."""
        return Features(
            self.vitals,
            self.columns,
            self.times[start:stop],
            self.values[start:stop],
            self.fresh[start:stop],
        )

    def upto(self, index: int, lookback: timedelta) -> Features:
        """upto: instant ``index`` and those within ``lookback`` before it — what a detector
        reads to judge that instant."""
        end = self.times[index]
        first = int(np.searchsorted(self.times, end - lookback.total_seconds(), side="left"))
        return self.rows(first, index + 1)

    def time(self, index: int) -> datetime:
        """time: instant ``index`` as an aware UTC datetime."""
        return datetime.fromtimestamp(float(self.times[index]), tz=UTC)

    @staticmethod
    def stack(parts: Sequence[Features]) -> Features:
        """stack: the rows of several patients' features, for fitting a cohort model.

        The result is for fitting only (its times are not one patient's timeline); parts are
        aligned by column name, so patients of one program with different vitals can be
        pooled.
        """
        vitals = tuple(dict.fromkeys(v for part in parts for v in part.vitals))
        columns = columns_for(vitals)
        return Features(
            vitals,
            columns,
            np.concatenate([p.times for p in parts]) if parts else np.empty(0),
            np.vstack([p.matrix(columns) for p in parts]) if parts else np.empty((0, 0)),
            np.vstack([np.column_stack([p.fresh_of(v) for v in vitals]) for p in parts])
            if parts and vitals
            else np.empty((0, len(vitals)), dtype=bool),
        )


def build_features(
    readings: Iterable[Reading],
    vitals: Sequence[str],
    config: FeatureConfig | None = None,
    since: datetime | None = None,
) -> Features:
    """build_features: the feature rows of every instant at or after ``since``.

    Readings before ``since`` still feed the windows of later instants, so a caller judging
    one new instant passes the readings of ``config.history`` (plus the detector's lookback)
    before it and gets the same numbers as a full replay would.
    """
    config = config or FeatureConfig()
    chosen = set(vitals)
    series: dict[str, list[tuple[float, float]]] = {v: [] for v in vitals}
    for reading in readings:
        if reading.type in chosen and math.isfinite(reading.value):
            series[reading.type].append((reading.time.timestamp(), float(reading.value)))
    arrays: dict[str, tuple[FloatArray, FloatArray]] = {}
    for vital, points in series.items():
        points.sort()
        arrays[vital] = (
            np.array([p[0] for p in points], dtype=np.float64),
            np.array([p[1] for p in points], dtype=np.float64),
        )
    stamps = np.concatenate([a[0] for a in arrays.values()]) if arrays else np.empty(0)
    times = np.unique(stamps)
    if since is not None:
        times = times[times >= since.timestamp()]
    columns = columns_for(vitals)
    out = np.full((len(times), len(columns)), np.nan)
    fresh = np.zeros((len(times), len(vitals)), dtype=bool)
    window = config.window.total_seconds()
    for j, vital in enumerate(vitals):
        at, values = arrays[vital]
        if not len(at):
            continue
        sums = _exact_sums(values)
        upto = np.searchsorted(at, times, side="right")
        has = upto > 0
        last_at = np.where(has, at[np.maximum(upto - 1, 0)], -np.inf)
        fresh[:, j] = last_at == times
        recent = has & (times - last_at <= config.stale_after.total_seconds())
        base = 3 * j
        out[:, base] = np.where(recent, values[np.maximum(upto - 1, 0)], np.nan)
        out[:, base + 1] = _window_mean(at, sums, times - window, times)
        base_end = times - config.base_until.total_seconds()
        out[:, base + 2] = _window_mean(
            at, sums, base_end - config.base_span.total_seconds(), base_end
        )
        if vital == "body_weight":
            before = times - config.weight_change_over.total_seconds()
            then = _window_mean(at, sums, before - window, before)
            out[:, columns.index(WEIGHT_CHANGE)] = out[:, base + 1] - then
    angle = 2 * np.pi * np.mod(times, _DAY_S) / _DAY_S
    out[:, -2] = np.sin(angle)
    out[:, -1] = np.cos(angle)
    return Features(tuple(vitals), columns, times, out, fresh)


def _exact_sums(values: FloatArray) -> IntArray:
    """_exact_sums: prefix sums in millionths of the canonical unit, as integers.

    Why integers: a float prefix sum makes a window's mean depend on every reading before the
    window (rounding accumulates), so live evaluation over a recent slice and a replay over the
    whole history could differ in the last bits. Integer sums are exact; a millionth is far
    below any device's resolution.
    """
    scaled = np.round(values * _SCALE).astype(np.int64)
    return np.concatenate((np.zeros(1, dtype=np.int64), np.cumsum(scaled)))


def _window_mean(at: FloatArray, sums: IntArray, start: FloatArray, end: FloatArray) -> FloatArray:
    """_window_mean: the mean of the values in (start, end] per query; NaN where there are none."""
    hi = np.searchsorted(at, end, side="right")
    lo = np.searchsorted(at, start, side="right")
    count = hi - lo
    total = (sums[hi] - sums[lo]).astype(np.float64) / _SCALE
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / np.maximum(count, 1), np.nan)
