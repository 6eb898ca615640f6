"""Directed detector: how far each vital moved, the way it worsens, from the patient's own
recent past — in the patient's own spreads of such moves.

For each vital the state at an instant is two moves from the patient's recent past (the mean
of days 10 to 3 before, ``<vital>.base``): the latest reading's and the last 24 hours' mean's.
The model learns, from a history, where those moves usually sit and how far they usually
wander (median, 1.4826 × MAD with a floor per vital), so a patient whose heart rate swings by
ten beats a day is not judged like one whose rate never moves. An instant's part for a vital
is the mean of its two moves in those spreads, counted only in the vital's clinically
worsening direction (SpO2 and glucose down; heart rate, breathing rate, temperature, weight,
blood pressure, pain and symptom scores up) and capped, so one wild reading cannot make a
score alone; the score is the sum over vitals.

Why directed: an undirected distance scores a patient's good days (SpO2 up, weight down after
a diuretic) as unusual as their bad ones, and its ordinary-day tail then sets the threshold.
Why moves from the recent past rather than levels: a cohort model (cold start) cannot know a
new patient's usual weight, but it can know how much weights move in three days.

>>> import numpy as np
>>> from homecare.rules.anomaly.features import Features, columns_for
>>> rng = np.random.default_rng(2)
>>> n = 120
>>> columns = columns_for(("spo2",))
>>> values = np.full((n, len(columns)), np.nan)
>>> values[:, 0] = 95 + rng.normal(0, 1.0, n)
>>> values[:, 1] = 95 + rng.normal(0, 0.5, n)
>>> values[:, 2] = 95.0
>>> history = Features(("spo2",), columns, np.arange(n) * 43200.0, values, np.ones((n, 1), bool))
>>> model = DirectedDetector().fit(history)
>>> last = history.rows(n - 1)
>>> last.values[0, :2] = 91.0  # SpO2 4 points below its recent past: worse
>>> model.score(last) > 3
True
>>> last.values[0, :2] = 99.0  # 4 points above: better, not unusual the way that matters
>>> model.score(last)
0.0
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, ClassVar, NamedTuple, Self

import numpy as np

from homecare.rules.anomaly import blob
from homecare.rules.anomaly._errors import CorruptModel, NotEnoughHistory
from homecare.rules.anomaly._fitted import FittedAccess
from homecare.rules.anomaly._scale import FloatArray, floor_of
from homecare.rules.anomaly.contract import Contribution, ModelInfo, Scope
from homecare.rules.anomaly.features import Features

__all__ = ["WORSE", "DirectedDetector", "worse_direction"]

# The direction in which each vital worsens (+1 up, -1 down) for the deteriorations the
# programs watch: heart-failure congestion (weight, heart and breathing rate up, SpO2 down),
# COPD exacerbation and infection (SpO2 down, rates and temperature up), hypertensive urgency
# (pressures up), hypoglycaemia (glucose down), wound and surgical complications (pain, area up,
# range of motion down). ESAS items are scored 0-10 with 10 the worst, appetite included.
WORSE: dict[str, int] = {
    "spo2": -1,
    "blood_glucose": -1,
    "range_of_motion": -1,
    "heart_rate": 1,
    "respiratory_rate": 1,
    "body_temperature": 1,
    "body_weight": 1,
    "systolic_bp": 1,
    "diastolic_bp": 1,
    "pain_score": 1,
    "wound_area": 1,
}
_PARTS = ("last", "mean")


def worse_direction(vital: str) -> int:
    """worse_direction: +1 if ``vital`` worsens upward, -1 if downward (ESAS items: up)."""
    return WORSE.get(vital, 1)


class _Fit(NamedTuple):
    info: ModelInfo
    vitals: tuple[str, ...]
    center: FloatArray  # (vitals, 2): usual move of the latest reading and of the 24 h mean
    scale: FloatArray  # (vitals, 2): usual spread of those moves


@dataclass(frozen=True)
class DirectedDetector(FittedAccess[_Fit]):
    """DirectedDetector: worsening moves from the recent past, in the patient's own spreads."""

    kind: ClassVar[str] = "directed"
    version: ClassVar[int] = 1

    min_instants: int = 20
    cap: float = 4.0
    lookback_days: float = 3.0
    fitted: _Fit | None = None

    def fit(self, history: Features, scope: Scope = "personal") -> Self:
        vitals = history.vitals
        moves = _moves(history, vitals)
        judged = np.isfinite(moves).any(axis=(1, 2))
        if int(judged.sum()) < self.min_instants:
            raise NotEnoughHistory(
                f"{int(judged.sum())} instants with a recent past, need {self.min_instants}"
            )
        center = np.zeros((len(vitals), 2))
        scale = np.ones((len(vitals), 2))
        for j, vital in enumerate(vitals):
            floor = floor_of(vital)
            for k in range(2):
                column = moves[:, j, k]
                column = column[np.isfinite(column)]
                if len(column):
                    center[j, k] = float(np.median(column))
                    mad = float(np.median(np.abs(column - center[j, k])))
                    scale[j, k] = max(1.4826 * mad, floor)
                else:
                    center[j, k], scale[j, k] = 0.0, floor
        fit = _Fit(
            ModelInfo(self.kind, self.version, scope, "", _when(history.times.min()),
                      _when(history.times.max()), len(history)),
            vitals, center, scale,
        )  # fmt: skip
        body = self._body(fit)
        info = fit.info._replace(model_id=blob.model_id(self.kind, self.version, body))
        return replace(self, fitted=fit._replace(info=info))

    def _parts(self, recent: Features) -> tuple[FloatArray, FloatArray]:
        """_parts: per vital of the model, its signed deviation at every row of ``recent``
        (mean of the two moves in spreads; NaN where unmeasured) and its capped worsening
        part of the score."""
        fit = self._fit
        moves = _moves(recent, fit.vitals)
        z = (moves - fit.center[None, :, :]) / fit.scale[None, :, :]
        finite = np.isfinite(z)
        count = finite.sum(axis=2)
        with np.errstate(invalid="ignore", divide="ignore"):
            signed = np.where(count > 0, np.where(finite, z, 0.0).sum(axis=2) / count, np.nan)
        worse = np.array([worse_direction(v) for v in fit.vitals], dtype=np.float64)
        parts = np.clip(np.nan_to_num(signed * worse, nan=0.0), 0.0, self.cap)
        return signed, parts

    def score(self, recent: Features) -> float:
        if not len(recent):
            return 0.0
        _, parts = self._parts(recent.rows(len(recent) - 1))
        return float(parts[0].sum())

    def score_rows(self, features: Features, rows: Sequence[int]) -> list[float]:
        """score_rows: ``score`` of each of the given rows (each judged alone, as ``score``
        judges the last row), in one pass — what a rule judging every instant of a day uses."""
        if not len(rows):
            return []
        index = np.asarray(rows, dtype=np.int64)
        picked = Features(
            features.vitals, features.columns, features.times[index], features.values[index],
            features.fresh[index],
        )  # fmt: skip
        _, parts = self._parts(picked)
        return [float(row.sum()) for row in parts]

    def explain(self, recent: Features) -> tuple[Contribution, ...]:
        if not len(recent):
            return ()
        fit = self._fit
        window = recent.upto(len(recent) - 1, self.lookback)
        signed, parts = self._parts(window)
        total = float(parts[-1].sum())
        if total <= 0:
            return ()
        found = []
        for j, vital in enumerate(fit.vitals):
            if parts[-1, j] <= 0:
                continue
            value = window.column(f"{vital}.last")[-1]
            if not np.isfinite(value):
                value = window.column(f"{vital}.mean")[-1]
            base = window.column(f"{vital}.base")[-1]
            found.append(
                Contribution(
                    vital,
                    f"{vital}.last",
                    float(value),
                    float(base + fit.center[j, 0]),
                    float(signed[-1, j]),
                    float(parts[-1, j] / total),
                    _since(window.times, parts[:, j]),
                )
            )
        return tuple(sorted(found, key=lambda c: (-c.share, c.feature)))

    def _body(self, fit: _Fit) -> dict[str, Any]:
        return {
            "min_instants": self.min_instants,
            "cap": self.cap,
            "lookback_days": self.lookback_days,
            "vitals": list(fit.vitals),
            # Flat (vital-major): a JSON array of arrays could be ragged.
            "center": [float(v) for v in fit.center.ravel()],
            "scale": [float(v) for v in fit.scale.ravel()],
        }

    def to_bytes(self) -> bytes:
        fit = self._fit
        return blob.encode(fit.info, self._body(fit))

    @classmethod
    def from_bytes(cls, data: bytes) -> Self:
        info, body = blob.decode(data, cls.kind, cls.version)
        vitals = blob.strings(body, "vitals")
        n = len(vitals)
        try:
            scale = blob.array(body, "scale", (2 * n,)).reshape(n, 2)
            if np.any(scale <= 0):
                raise ValueError("scale")
            fit = _Fit(info, vitals, blob.array(body, "center", (2 * n,)).reshape(n, 2), scale)
            return cls(
                min_instants=int(body["min_instants"]),
                cap=float(body["cap"]),
                lookback_days=float(body["lookback_days"]),
                fitted=fit,
            )
        except (KeyError, TypeError, ValueError) as error:
            raise CorruptModel(f"directed model lacks a valid {error}") from None


def _moves(features: Features, vitals: tuple[str, ...]) -> FloatArray:
    """_moves: (rows, vitals, 2) — the latest reading's and the 24 h mean's move from the
    vital's recent past; NaN where either side is missing."""
    out = np.full((len(features), len(vitals), 2), np.nan)
    for j, vital in enumerate(vitals):
        base = features.column(f"{vital}.base")
        for k, part in enumerate(_PARTS):
            out[:, j, k] = features.column(f"{vital}.{part}") - base
    return out


def _since(times: FloatArray, parts: FloatArray) -> datetime | None:
    """_since: the start of the last run of instants whose worsening part is one spread or
    more (None if the last one's is less)."""
    if not len(parts) or parts[-1] < 1:
        return None
    start = len(parts) - 1
    while start > 0 and parts[start - 1] >= 1:
        start -= 1
    return _when(float(times[start]))


def _when(seconds: float) -> datetime:
    return datetime.fromtimestamp(float(seconds), tz=UTC)
