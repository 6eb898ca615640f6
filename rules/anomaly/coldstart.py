"""Cold start: a cohort model judges a patient until their own history can support a model.

A new patient has no usual state yet, so the detector of their program is fitted once over
many patients' pooled features (``fit_cohort``); once the patient has ``min_days`` of history
with ``min_instants`` instants, their personal model takes over (``fit_personal``). Every
judgement names the model that made it (scope, kind, version, id), so a nurse and an auditor
can tell a cohort's opinion from the patient's own.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple, TypeVar

from homecare.rules.anomaly._errors import NotEnoughHistory
from homecare.rules.anomaly.contract import Contribution, Detector, ModelInfo
from homecare.rules.anomaly.features import Features

__all__ = ["HistoryPolicy", "Judgement", "fit_cohort", "fit_personal", "judge"]

D = TypeVar("D", bound=Detector)


@dataclass(frozen=True)
class HistoryPolicy:
    """HistoryPolicy: how much of a patient's own history a personal model needs."""

    min_days: float = 14.0
    min_instants: int = 20

    def enough(self, history: Features) -> bool:
        """enough: whether ``history`` spans ``min_days`` with ``min_instants`` instants."""
        if len(history) < self.min_instants:
            return False
        return float(history.times[-1] - history.times[0]) >= self.min_days * 86400


class Judgement(NamedTuple):
    """Judgement: an instant's score, the model that gave it, and why."""

    score: float
    model: ModelInfo
    contributions: tuple[Contribution, ...]


def fit_cohort(detector: D, patients: Sequence[Features]) -> D:
    """fit_cohort: ``detector`` fitted on the pooled instants of many patients of a program."""
    if not patients:
        raise NotEnoughHistory("a cohort model needs at least one patient")
    return detector.fit(Features.stack(patients), scope="cohort")


def fit_personal(detector: D, history: Features, policy: HistoryPolicy | None = None) -> D | None:
    """fit_personal: the patient's own model, or None while their history is too short."""
    if not (policy or HistoryPolicy()).enough(history):
        return None
    try:
        return detector.fit(history, scope="personal")
    except NotEnoughHistory:
        return None


def judge(recent: Features, personal: Detector | None, cohort: Detector) -> Judgement:
    """judge scores the last instant of ``recent`` with the personal model if there is one,
    else with the cohort's, and explains it."""
    model = personal if personal is not None else cohort
    return Judgement(model.score(recent), model.info, model.explain(recent))
