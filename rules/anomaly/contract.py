"""Contract: what every anomaly detector does, and the values it returns.

A detector is fitted on a history of feature rows (a patient's own, or a cohort's pooled),
then judges one instant at a time: ``score`` (higher is more unusual for this patient) and
``explain`` (which vitals drove it, how far from their usual, since when). It judges the last
row of the Features it is given and may read the rows of its ``lookback`` before it, so a
small change that persists can accumulate evidence; nothing else, so replay equals live.

A fitted detector serialises to bytes (canonical JSON with a digest: never pickle, so a model
kept in the database is data that cannot execute) and back with identical scores.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import ClassVar, Literal, NamedTuple, Protocol, Self

from homecare.rules.anomaly.features import Features

__all__ = ["Contribution", "Detector", "ModelInfo", "Scope"]

Scope = Literal["personal", "cohort"]


class ModelInfo(NamedTuple):
    """ModelInfo names a fitted model: which detector, whose history, which content.

    ``model_id`` is a digest of the fitted parameters, so the same history always gives the
    same id and a finding can say exactly which model judged it.
    """

    kind: str
    version: int
    scope: Scope
    model_id: str
    trained_from: datetime
    trained_until: datetime
    instants: int


class Contribution(NamedTuple):
    """Contribution: one vital's part in a score, as a nurse would read it.

    ``value`` is what the feature is now and ``usual`` what the model expected (canonical
    units); ``deviation`` is the difference in the patient's usual spreads (signed);
    ``share`` the part of the score it accounts for; ``since`` when it began to move (None if
    it is not moving).
    """

    vital: str
    feature: str
    value: float
    usual: float
    deviation: float
    share: float
    since: datetime | None


class Detector(Protocol):
    """Detector: fit on history, score and explain an instant, round-trip through bytes."""

    kind: ClassVar[str]
    version: ClassVar[int]

    @property
    def info(self) -> ModelInfo:
        """info: the fitted model's identity (raises if not fitted)."""
        ...

    @property
    def lookback(self) -> timedelta:
        """lookback: how far before the judged instant ``score`` and ``explain`` read rows."""
        ...

    def fit(self, history: Features, scope: Scope = "personal") -> Self:
        """fit returns a new fitted detector; raises NotEnoughHistory if it cannot."""
        ...

    def score(self, recent: Features) -> float:
        """score judges the last row of ``recent`` (0 is usual; higher, more unusual)."""
        ...

    def explain(self, recent: Features) -> tuple[Contribution, ...]:
        """explain: the vitals behind the score of the last row, largest share first."""
        ...

    def to_bytes(self) -> bytes:
        """to_bytes: the fitted model as a self-checking JSON document."""
        ...

    @classmethod
    def from_bytes(cls, blob: bytes) -> Self:
        """from_bytes: the model back; raises ModelBlobError on a corrupt or foreign blob."""
        ...
