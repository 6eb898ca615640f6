"""Evaluate sets: which simulated cohorts tune detection, and which are held out from it.

Declared once, here, before anything was tuned against them; ``tests/test_evaluate_sets.py``
pins the declaration, so changing it is a visible decision in review, never a side effect.

- **tuning**: the simulator as the rules were built on (``default``, seeds 1-8, the cohorts
  of the published figures) and ``varied``, the same world with every patient's and every
  episode's parameters drawn around the defaults. Look at these as often as you like.
- **held-out**: four variants that change the world *in kind*, each along one axis the
  tuning cohorts never leave: ``slow-burn`` (long courses that accelerate late, smaller moves,
  sepsis in every program), ``abrupt`` (step-like episodes, short courses), ``other-physiology``
  (twice the day-to-day wandering, noisier readings, a circadian rhythm 4-8 h later, moved
  baselines, more artefacts) and ``devices-and-habits`` (lb/°F/mg/dL, resends, offline backlogs,
  once-a-day schedules later in the day, poor and fading adherence), on seeds no tuning cohort
  uses. Read their figures to judge a change, never to choose one: a change chosen because it
  raised a held-out figure has made that figure a tuning figure.

A gap between the two columns of ``homecare evaluate --set both`` is the part of a tuned figure
that does not carry over to a world the tuning never saw.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from homecare.devices.sim.variants import VARIANTS

__all__ = ["EVALUATION_SETS", "HELD_OUT", "TUNING", "CohortSet"]


@dataclass(frozen=True)
class CohortSet:
    """CohortSet: every (variant, seed) pair of a set of evaluation cohorts."""

    name: str
    variants: tuple[str, ...]
    seeds: tuple[int, ...]

    def __post_init__(self) -> None:
        unknown = [v for v in self.variants if v not in VARIANTS]
        if unknown:
            raise ValueError(f"{self.name}: unknown simulator variant {unknown[0]!r}")

    def cohorts(self) -> tuple[tuple[str, int], ...]:
        """CohortSet.cohorts: the (variant, seed) pairs, variant by variant."""
        return tuple((variant, seed) for variant in self.variants for seed in self.seeds)

    def describe(self) -> str:
        """CohortSet.describe: the set in one line, e.g. for ``--help``."""
        seeds = self.seeds
        consecutive = seeds == tuple(range(seeds[0], seeds[0] + len(seeds)))
        named = f"{seeds[0]}-{seeds[-1]}" if consecutive and len(seeds) > 1 else str(seeds)
        return f"variants {', '.join(self.variants)} x seeds {named}"


TUNING = CohortSet("tuning", ("default", "varied"), (1, 2, 3, 4, 5, 6, 7, 8))
HELD_OUT = CohortSet(
    "held-out",
    ("slow-burn", "abrupt", "other-physiology", "devices-and-habits"),
    (101, 102, 103, 104),
)
EVALUATION_SETS: Mapping[str, CohortSet] = MappingProxyType(
    {cohort_set.name: cohort_set for cohort_set in (TUNING, HELD_OUT)}
)
