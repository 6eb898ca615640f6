"""Robust scaling shared by the detectors: median and MAD, with a floor per vital.

Why a floor: a patient whose scale shows the same weight every day (or a test's constant
signal) has a spread of zero, and dividing by it would turn the first 0.1 kg into an infinite
score. The floor is the smallest change worth a nurse's attention per unit of spread, a
judgement at about half a device's typical error.
"""

from __future__ import annotations

import warnings

import numpy as np
import numpy.typing as npt

__all__ = ["FLOORS", "floor_of", "robust_center_scale"]

FloatArray = npt.NDArray[np.float64]

FLOORS: dict[str, float] = {
    "heart_rate": 2.0,
    "systolic_bp": 3.0,
    "diastolic_bp": 2.0,
    "spo2": 0.7,
    "respiratory_rate": 1.0,
    "body_temperature": 0.1,
    "body_weight": 0.2,
    "blood_glucose": 0.3,
    "pain_score": 0.5,
    "wound_area": 0.5,
    "range_of_motion": 2.0,
    "hour": 1.0,
}
_SURVEY_FLOOR = 0.5  # ESAS items: whole points on 0-10


def floor_of(feature: str) -> float:
    """floor_of: the floor of a feature, by its vital (the part before the dot)."""
    vital = feature.split(".", 1)[0]
    return FLOORS.get(vital, _SURVEY_FLOOR if vital.startswith("esas_") else 0.1)


def robust_center_scale(
    values: FloatArray, features: tuple[str, ...]
) -> tuple[FloatArray, FloatArray]:
    """robust_center_scale: per column, the median and max(1.4826 × MAD, floor), NaN ignored.

    A column with no value at all gets centre 0 and its floor: missing values are imputed at
    the centre, so such a column contributes nothing until the patient measures it.
    """
    with warnings.catch_warnings():
        # An all-NaN column is expected (a vital the patient never measured); its NaN is
        # replaced just below.
        warnings.simplefilter("ignore", RuntimeWarning)
        center = np.nanmedian(values, axis=0) if len(values) else np.full(len(features), np.nan)
        mad = np.nanmedian(np.abs(values - center), axis=0) if len(values) else center
    floors = np.array([floor_of(f) for f in features])
    center = np.where(np.isfinite(center), center, 0.0)
    scale = np.maximum(np.where(np.isfinite(mad), 1.4826 * mad, 0.0), floors)
    return center, scale
