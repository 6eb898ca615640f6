"""Residual detector: each vital predicted from the patient's other vitals, own recent past and
time of day; evidence accumulated with a two-sided CUSUM of the standardised residuals.

Why: a vital is unusual relative to what the rest of the patient's state and the hour say it
should be (a heart rate of 95 is ordinary after an afternoon walk, not at 7 am), so each vital
gets a ridge regression on the patient's history (LINK-HF's similarity-based modelling in
spirit). A single reading's residual is noisy; a slow deterioration moves the residuals a
little, every reading, the same way. A CUSUM over the residuals of the last ``lookback_days``
(Page 1954: S = max(0, S + z − k)) adds those small steps up, so a persistent half-spread
change shows within days, while one odd reading (clipped at ``clip`` spreads) fades. The score
is the root sum of squares of the vitals' CUSUMs at the judged instant; the CUSUM's last reset
is when a vital began to move.

Fitting trims the readings whose residual exceeds ``trim`` spreads and fits again, so a
deterioration inside the history does not become the patient's usual.

>>> import numpy as np
>>> from homecare.rules.anomaly.features import Features, columns_for
>>> rng = np.random.default_rng(1)
>>> n = 120
>>> times = np.arange(n) * 43200.0
>>> hr = 70 + rng.normal(0, 3, n)
>>> columns = columns_for(("heart_rate",))
>>> values = np.full((n, len(columns)), np.nan)
>>> values[:, 0] = values[:, 1] = hr
>>> values[:, -2], values[:, -1] = np.sin(times), np.cos(times)
>>> history = Features(("heart_rate",), columns, times, values, np.ones((n, 1), bool))
>>> model = ResidualDetector().fit(history)
>>> model.score(history.rows(0, 6)) < 3
True
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, ClassVar, NamedTuple, Self

import numpy as np
from sklearn.linear_model import Ridge

from homecare.rules.anomaly import blob
from homecare.rules.anomaly._errors import CorruptModel, NotEnoughHistory
from homecare.rules.anomaly._fitted import FittedAccess
from homecare.rules.anomaly._scale import FloatArray, floor_of, robust_center_scale
from homecare.rules.anomaly.contract import Contribution, ModelInfo, Scope
from homecare.rules.anomaly.features import HOUR_COLUMNS, Features

__all__ = ["ResidualDetector"]


class _VitalModel(NamedTuple):
    vital: str
    predictors: tuple[str, ...]
    center: FloatArray
    scale: FloatArray
    coef: FloatArray
    intercept: float
    sigma: float

    def predict(self, features: Features) -> FloatArray:
        z = (features.matrix(self.predictors) - self.center) / self.scale
        z = np.where(np.isfinite(z), z, 0.0)
        return np.asarray(z @ self.coef + self.intercept, dtype=np.float64)

    def as_body(self) -> dict[str, Any]:
        return {
            "vital": self.vital,
            "predictors": list(self.predictors),
            "center": [float(x) for x in self.center],
            "scale": [float(x) for x in self.scale],
            "coef": [float(x) for x in self.coef],
            "intercept": float(self.intercept),
            "sigma": float(self.sigma),
        }


class _Fit(NamedTuple):
    info: ModelInfo
    models: tuple[_VitalModel, ...]


class _Track(NamedTuple):
    """_Track: one vital's CUSUM over the window: its statistic, direction and start."""

    vital: str
    stat: float
    side: int
    since: float | None
    value: float
    usual: float
    z: float


@dataclass(frozen=True)
class ResidualDetector(FittedAccess[_Fit]):
    """ResidualDetector: personal residuals of each vital, accumulated by CUSUM."""

    kind: ClassVar[str] = "personal_residual"
    version: ClassVar[int] = 1

    alpha: float = 10.0
    cusum_k: float = 0.5
    clip: float = 4.0
    trim: float = 3.0
    lookback_days: float = 3.0
    min_instants: int = 10
    fitted: _Fit | None = None

    def fit(self, history: Features, scope: Scope = "personal") -> Self:
        models = []
        for vital in history.vitals:
            model = self._fit_vital(history, vital)
            if model is not None:
                models.append(model)
        if not models:
            raise NotEnoughHistory(
                f"no vital has {self.min_instants} readings in {len(history)} instants"
            )
        body = self._body(models)
        info = ModelInfo(
            self.kind,
            self.version,
            scope,
            blob.model_id(self.kind, self.version, body),
            _when(float(np.min(history.times))),
            _when(float(np.max(history.times))),
            len(history),
        )
        return replace(self, fitted=_Fit(info, tuple(models)))

    def _fit_vital(self, history: Features, vital: str) -> _VitalModel | None:
        target = history.column(f"{vital}.last")
        rows = history.fresh_of(vital) & np.isfinite(target)
        if int(rows.sum()) < self.min_instants:
            return None
        predictors = (
            *HOUR_COLUMNS,
            f"{vital}.base",
            *(f"{other}.mean" for other in history.vitals if other != vital),
        )
        x = history.matrix(predictors)[rows]
        y = target[rows]
        center, scale = robust_center_scale(x, predictors)
        z = (x - center) / scale
        z = np.where(np.isfinite(z), z, 0.0)
        ridge = Ridge(alpha=self.alpha).fit(z, y)
        residual = y - ridge.predict(z)
        sigma = _spread(residual, vital)
        keep = np.abs(residual - np.median(residual)) <= self.trim * sigma
        if self.min_instants <= int(keep.sum()) < len(y):
            ridge = Ridge(alpha=self.alpha).fit(z[keep], y[keep])
            sigma = _spread((y - ridge.predict(z))[keep], vital)
        return _VitalModel(
            vital,
            predictors,
            center,
            scale,
            np.asarray(ridge.coef_, dtype=np.float64),
            float(ridge.intercept_),
            sigma,
        )

    def _body(self, models: list[_VitalModel] | tuple[_VitalModel, ...]) -> dict[str, Any]:
        return {
            "alpha": self.alpha,
            "cusum_k": self.cusum_k,
            "clip": self.clip,
            "trim": self.trim,
            "lookback_days": self.lookback_days,
            "min_instants": self.min_instants,
            "vitals": [m.as_body() for m in models],
        }

    def _tracks(self, recent: Features) -> list[_Track]:
        if not len(recent):
            return []
        window = recent.upto(len(recent) - 1, self.lookback)
        tracks = []
        for model in self._fit.models:
            rows = np.flatnonzero(window.fresh_of(model.vital))
            if not len(rows):
                continue
            value = window.column(f"{model.vital}.last")[rows]
            usual = model.predict(window.rows(int(rows[0])))[rows - rows[0]]
            z = (value - usual) / model.sigma
            tracks.append(self._cusum(model.vital, window.times[rows], value, usual, z))
        return tracks

    def _cusum(
        self, vital: str, times: FloatArray, value: FloatArray, usual: FloatArray, z: FloatArray
    ) -> _Track:
        k, clip = self.cusum_k, self.clip
        up = down = 0.0
        up_since: float | None = None
        down_since: float | None = None
        for t, step in zip(times.tolist(), np.clip(z, -clip, clip).tolist(), strict=True):
            up = max(0.0, up + step - k)
            down = max(0.0, down - step - k)
            up_since = (up_since or t) if up > 0 else None
            down_since = (down_since or t) if down > 0 else None
        side, stat, since = (1, up, up_since) if up >= down else (-1, down, down_since)
        return _Track(vital, stat, side, since, float(value[-1]), float(usual[-1]), float(z[-1]))

    def score(self, recent: Features) -> float:
        return float(np.sqrt(sum(t.stat**2 for t in self._tracks(recent))))

    def explain(self, recent: Features) -> tuple[Contribution, ...]:
        tracks = self._tracks(recent)
        total = sum(t.stat**2 for t in tracks)
        found = [
            Contribution(
                track.vital,
                f"{track.vital}.last",
                track.value,
                track.usual,
                track.side * track.stat,
                track.stat**2 / total,
                _when(track.since) if track.since is not None else None,
            )
            for track in tracks
            if track.stat > 0
        ]
        return tuple(sorted(found, key=lambda c: (-c.share, c.vital)))

    def to_bytes(self) -> bytes:
        fit = self._fit
        return blob.encode(fit.info, self._body(fit.models))

    @classmethod
    def from_bytes(cls, data: bytes) -> Self:
        info, body = blob.decode(data, cls.kind, cls.version)
        try:
            params = {
                name: float(body[name])
                for name in ("alpha", "cusum_k", "clip", "trim", "lookback_days")
            }
            minimum = int(body["min_instants"])
            models = tuple(_vital_from(raw) for raw in body["vitals"])
        except (KeyError, TypeError, ValueError) as error:
            raise CorruptModel(f"residual model lacks a valid {error}") from None
        return cls(**params, min_instants=minimum, fitted=_Fit(info, models))


def _vital_from(raw: Any) -> _VitalModel:
    if not isinstance(raw, dict) or not isinstance(raw.get("vital"), str):
        raise CorruptModel("residual model has a malformed vital entry")
    predictors = blob.strings(raw, "predictors")
    n = len(predictors)
    return _VitalModel(
        raw["vital"],
        predictors,
        blob.array(raw, "center", (n,)),
        blob.array(raw, "scale", (n,)),
        blob.array(raw, "coef", (n,)),
        float(raw["intercept"]),
        float(raw["sigma"]),
    )


def _spread(residual: FloatArray, vital: str) -> float:
    mad = float(np.median(np.abs(residual - np.median(residual))))
    return max(1.4826 * mad, floor_of(vital))


def _when(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, tz=UTC)
