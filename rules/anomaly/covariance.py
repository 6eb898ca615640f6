"""Covariance detector: how far the patient's short-window state lies from their usual one,
as a robust Mahalanobis distance (Minimum Covariance Determinant, Rousseeuw 1984).

The state at an instant is each vital's 24-hour mean and the 3-day weight change. (Adding each
vital's change from its own past makes the features nearly collinear over a history in which
consecutive instants share most of their window, and the distance of ordinary days then
triples.) The usual state and how the
vitals vary together come from ``MinCovDet``: the covariance of the most concentrated half
of the history, so the days of an earlier deterioration or a device fault inside it do not
widen what counts as usual. Features are robust-scaled first (median, MAD with a floor per
vital); a feature with too little spread to estimate jointly (a scale that always reads the
same, a vital never measured) is judged on its own scaled deviation instead, so a constant
signal neither breaks the fit nor hides a later change.

The squared distance splits exactly into per-feature parts d_j·(P·d)_j, which is how
``explain`` names the vitals that drove it.

>>> import numpy as np
>>> from homecare.rules.anomaly.features import Features, columns_for
>>> rng = np.random.default_rng(2)
>>> n = 120
>>> columns = columns_for(("spo2",))
>>> values = np.full((n, len(columns)), np.nan)
>>> values[:, 1] = 95 + rng.normal(0, 0.8, n)
>>> values[:, 2] = 95 + rng.normal(0, 0.3, n)
>>> history = Features(("spo2",), columns, np.arange(n) * 43200.0, values, np.ones((n, 1), bool))
>>> model = CovarianceDetector().fit(history)
>>> low = history.rows(n - 1)
>>> low.values[0, 1] = 90.0
>>> model.score(low) > model.score(history.rows(n - 2, n - 1))
True
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, ClassVar, NamedTuple, Self

import numpy as np
from sklearn import config_context
from sklearn.covariance import MinCovDet

from homecare.rules.anomaly import blob
from homecare.rules.anomaly._errors import CorruptModel, NotEnoughHistory
from homecare.rules.anomaly._fitted import FittedAccess
from homecare.rules.anomaly._scale import FloatArray, robust_center_scale
from homecare.rules.anomaly.contract import Contribution, ModelInfo, Scope
from homecare.rules.anomaly.features import WEIGHT_CHANGE, Features

__all__ = ["CovarianceDetector"]

_MIN_DISTINCT = 5
_MIN_MEASURED = 0.5  # share of instants a feature needs to be judged jointly


class _Fit(NamedTuple):
    info: ModelInfo
    features: tuple[str, ...]
    center: FloatArray
    scale: FloatArray
    joint: tuple[int, ...]  # features estimated jointly (the rest are judged one by one)
    location: FloatArray
    precision: FloatArray
    spread: FloatArray  # per feature, its usual spread in scaled units (for deviation)


@dataclass(frozen=True)
class CovarianceDetector(FittedAccess[_Fit]):
    """CovarianceDetector: robust Mahalanobis distance of the short-window state."""

    kind: ClassVar[str] = "robust_covariance"
    version: ClassVar[int] = 1

    max_rows: int = 400
    min_instants: int = 30
    lookback_days: float = 3.0
    random_state: int = 0
    fitted: _Fit | None = None

    def fit(self, history: Features, scope: Scope = "personal") -> Self:
        features = _state_features(history.vitals)
        x = _state(history, features)
        measured = np.isfinite(x).any(axis=1)
        x = x[measured]
        if len(x) < self.min_instants:
            raise NotEnoughHistory(f"{len(x)} instants with a state, need {self.min_instants}")
        if len(x) > self.max_rows:
            # Evenly spaced, so the fit is deterministic and spans the whole history.
            x = x[np.linspace(0, len(x) - 1, self.max_rows).round().astype(int)]
        center, scale = robust_center_scale(x, features)
        z = (x - center) / scale
        joint = tuple(
            j
            for j in range(len(features))
            if np.isfinite(z[:, j]).mean() >= _MIN_MEASURED
            and len(np.unique(z[np.isfinite(z[:, j]), j])) >= _MIN_DISTINCT
            and np.nanmedian(np.abs(z[:, j])) > 0
        )
        # Only instants where every jointly judged feature was measured: a missing value
        # imputed at the centre would pile instants on one point, the tightest half MCD seeks.
        complete = z[np.isfinite(z[:, list(joint)]).all(axis=1)][:, list(joint)]
        if len(complete) < self.min_instants:
            joint, complete = (), complete[:, :0]
        location = np.zeros(len(joint))
        precision = np.zeros((len(joint), len(joint)))
        spread = np.ones(len(features))
        if joint:
            estimate = _min_cov_det(complete, self.random_state)
            location = np.asarray(estimate.location_, dtype=np.float64)
            covariance = np.asarray(estimate.covariance_, dtype=np.float64)
            precision = np.asarray(np.linalg.pinv(covariance, hermitian=True), np.float64)
            spread[list(joint)] = np.sqrt(np.maximum(np.diag(covariance), 1e-12))
        fit = _Fit(
            ModelInfo(self.kind, self.version, scope, "", _when(history.times.min()),
                      _when(history.times.max()), len(history)),
            features, center, scale, joint, location, precision, spread,
        )  # fmt: skip
        body = self._body(fit)
        info = fit.info._replace(model_id=blob.model_id(self.kind, self.version, body))
        return replace(self, fitted=fit._replace(info=info))

    def _deviations(self, recent: Features) -> tuple[FloatArray, FloatArray, FloatArray]:
        """_deviations: per feature of the last row, its value, its scaled deviation from the
        usual state, and its part of the squared distance."""
        fit = self._fit
        x = _state(recent.rows(len(recent) - 1), fit.features)[0]
        d = _scaled(x[None, :], fit.center, fit.scale)[0]
        parts = d**2
        if fit.joint:
            joint = list(fit.joint)
            d[joint] = d[joint] - fit.location
            parts[joint] = d[joint] * (fit.precision @ d[joint])
        return x, d, parts

    def score(self, recent: Features) -> float:
        if not len(recent):
            return 0.0
        return float(np.sqrt(max(float(self._deviations(recent)[2].sum()), 0.0)))

    def explain(self, recent: Features) -> tuple[Contribution, ...]:
        if not len(recent):
            return ()
        fit = self._fit
        x, d, parts = self._deviations(recent)
        total = float(parts.sum())
        if total <= 0:
            return ()
        usual = fit.center.copy()
        joint = list(fit.joint)
        usual[joint] += fit.location * fit.scale[joint]
        window = recent.upto(len(recent) - 1, self.lookback)
        history = _scaled(_state(window, fit.features), fit.center, fit.scale)
        if joint:
            history[:, joint] -= fit.location
        found = []
        for j, feature in enumerate(fit.features):
            if parts[j] <= 0 or not np.isfinite(x[j]):
                continue
            found.append(
                Contribution(
                    feature.split(".", 1)[0],
                    feature,
                    float(x[j]),
                    float(usual[j]),
                    float(d[j] / fit.spread[j]),
                    float(parts[j] / total),
                    _since(window.times, history[:, j] / fit.spread[j]),
                )
            )
        return tuple(sorted(found, key=lambda c: (-c.share, c.feature)))

    def _body(self, fit: _Fit) -> dict[str, Any]:
        return {
            "max_rows": self.max_rows,
            "min_instants": self.min_instants,
            "lookback_days": self.lookback_days,
            "random_state": self.random_state,
            "features": list(fit.features),
            "center": [float(v) for v in fit.center],
            "scale": [float(v) for v in fit.scale],
            "joint": list(fit.joint),
            "location": [float(v) for v in fit.location],
            "precision": [[float(v) for v in row] for row in fit.precision],
            "spread": [float(v) for v in fit.spread],
        }

    def to_bytes(self) -> bytes:
        fit = self._fit
        return blob.encode(fit.info, self._body(fit))

    @classmethod
    def from_bytes(cls, data: bytes) -> Self:
        info, body = blob.decode(data, cls.kind, cls.version)
        features = blob.strings(body, "features")
        n = len(features)
        try:
            joint = tuple(int(j) for j in body["joint"])
            if any(not 0 <= j < n for j in joint) or len(set(joint)) != len(joint):
                raise ValueError("joint")
            m = len(joint)
            fit = _Fit(
                info, features,
                blob.array(body, "center", (n,)), blob.array(body, "scale", (n,)), joint,
                blob.array(body, "location", (m,)), blob.array(body, "precision", (m, m)),
                blob.array(body, "spread", (n,)),
            )  # fmt: skip
            return cls(
                max_rows=int(body["max_rows"]),
                min_instants=int(body["min_instants"]),
                lookback_days=float(body["lookback_days"]),
                random_state=int(body["random_state"]),
                fitted=fit,
            )
        except (KeyError, TypeError, ValueError) as error:
            raise CorruptModel(f"covariance model lacks a valid {error}") from None


def _state_features(vitals: tuple[str, ...]) -> tuple[str, ...]:
    names = [f"{v}.mean" for v in vitals]
    if "body_weight" in vitals:
        names.append(WEIGHT_CHANGE)
    return tuple(names)


def _state(features: Features, names: tuple[str, ...]) -> FloatArray:
    """_state: the named state features of every instant."""
    return features.matrix(names)


def _scaled(x: FloatArray, center: FloatArray, scale: FloatArray) -> FloatArray:
    z = (x - center) / scale
    return np.where(np.isfinite(z), z, 0.0)


def _min_cov_det(z: FloatArray, random_state: int) -> MinCovDet:
    """_min_cov_det: the MCD estimate; sklearn's warnings about a nearly singular history are
    expected for a very steady patient and handled by the pseudo-inverse.

    FastMCD runs hundreds of small covariance steps, and sklearn checking each one's input
    took half the fit; the input here is already finite and well-formed, so the checks are
    skipped (``config_context``), which keeps fitting a 1,000-patient cohort within budget.
    """
    with (
        warnings.catch_warnings(),
        config_context(assume_finite=True, skip_parameter_validation=True),
    ):
        warnings.simplefilter("ignore", RuntimeWarning)
        warnings.simplefilter("ignore", UserWarning)
        return MinCovDet(random_state=random_state).fit(z)


def _since(times: FloatArray, deviation: FloatArray) -> datetime | None:
    """_since: the start of the last run of instants at least one spread off, on the side of
    the last one (None if the last one is within a spread)."""
    if not len(deviation) or abs(deviation[-1]) < 1:
        return None
    side = np.sign(deviation[-1])
    start = len(deviation) - 1
    while start > 0 and np.sign(deviation[start - 1]) == side and abs(deviation[start - 1]) >= 1:
        start -= 1
    return _when(float(times[start]))


def _when(seconds: float) -> datetime:
    return datetime.fromtimestamp(float(seconds), tz=UTC)
