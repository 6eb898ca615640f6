"""Anomaly detection: each patient's usual multivariate state, and departures from it.

Pure and database-free, like the rest of the rules stage: readings become feature rows
(``build_features``), a detector is fitted on a history (``fit``), judges an instant
(``score``, ``explain``) and serialises to a self-checking JSON blob (``to_bytes``,
``from_bytes``). Until a patient has enough history, a cohort model of their program judges
them (``fit_cohort``, ``fit_personal``, ``judge``).

Detectors, one module each: ``residual`` (each vital against its prediction from the others,
its own past and the hour, accumulated by CUSUM) and ``covariance`` (robust Mahalanobis
distance of the short-window state) and ``directed`` (worsening moves from the recent past, in
the patient's own spreads: what the ``anomaly`` rule kind uses).
"""

from homecare.rules.anomaly._errors import (
    AnomalyError,
    CorruptModel,
    IncompatibleModel,
    ModelBlobError,
    NotEnoughHistory,
)
from homecare.rules.anomaly.coldstart import (
    HistoryPolicy,
    Judgement,
    fit_cohort,
    fit_personal,
    judge,
)
from homecare.rules.anomaly.contract import Contribution, Detector, ModelInfo, Scope
from homecare.rules.anomaly.covariance import CovarianceDetector
from homecare.rules.anomaly.directed import DirectedDetector
from homecare.rules.anomaly.features import (
    PROGRAM_VITALS,
    FeatureConfig,
    Features,
    build_features,
    vitals_for,
)
from homecare.rules.anomaly.residual import ResidualDetector

DETECTORS: tuple[type[Detector], ...] = (ResidualDetector, CovarianceDetector, DirectedDetector)

__all__ = [
    "DETECTORS",
    "PROGRAM_VITALS",
    "AnomalyError",
    "Contribution",
    "CorruptModel",
    "CovarianceDetector",
    "Detector",
    "DirectedDetector",
    "FeatureConfig",
    "Features",
    "HistoryPolicy",
    "IncompatibleModel",
    "Judgement",
    "ModelBlobError",
    "ModelInfo",
    "NotEnoughHistory",
    "ResidualDetector",
    "Scope",
    "build_features",
    "fit_cohort",
    "fit_personal",
    "judge",
    "vitals_for",
]
