"""What every detector does the same way once fitted: its model info, its lookback, its fit.

Each detector is a frozen dataclass whose ``fitted`` holds its own fitted numbers (a NamedTuple
carrying the ModelInfo); the three accessors below are the same for all of them.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Generic, Protocol, TypeVar

from homecare.rules.anomaly._errors import NotEnoughHistory
from homecare.rules.anomaly.contract import ModelInfo

__all__ = ["FittedAccess"]


class _HasInfo(Protocol):
    @property
    def info(self) -> ModelInfo: ...


F = TypeVar("F", bound=_HasInfo)


class FittedAccess(Generic[F]):
    """FittedAccess: ``info``, ``lookback`` and ``_fit`` for a detector dataclass that declares
    ``lookback_days`` and ``fitted``."""

    lookback_days: float
    fitted: F | None

    @property
    def info(self) -> ModelInfo:
        return self._fit.info

    @property
    def lookback(self) -> timedelta:
        return timedelta(days=self.lookback_days)

    @property
    def _fit(self) -> F:
        if self.fitted is None:
            raise NotEnoughHistory("the detector is not fitted")
        return self.fitted
