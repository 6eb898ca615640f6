"""Vary: a variant applied to a run — its fault rates, each patient, each episode kind.

Why apart from ``population`` and ``episodes``: the default simulator must not draw a single
extra random number (its cohorts are cached and its figures published), so a variant's draws
come from a stream of their own, keyed by (seed, variant, patient), and nothing here runs for
the default. A neutral variant returns what it was given, unchanged.
"""

from __future__ import annotations

import dataclasses
import random
from types import MappingProxyType

from homecare.devices.sim.config import SimConfig
from homecare.devices.sim.episodes import EPISODE_KINDS, EpisodeKind, EpisodeVariation
from homecare.devices.sim.population import PatientProfile, PlannedSession, stream
from homecare.devices.sim.variants import VARIANTS, Course, Range, Variant

__all__ = [
    "episode_variation",
    "variant_config",
    "variant_kind",
    "variant_patient",
    "variant_stream",
]

# Where a moved baseline must stay (a physiological patient at home, canonical units).
_BASELINE_LIMITS = MappingProxyType(
    {
        "heart_rate": (45.0, 120.0),
        "systolic_bp": (85.0, 190.0),
        "spo2": (85.0, 99.0),
        "respiratory_rate": (10.0, 28.0),
        "body_temperature": (36.0, 37.3),
    }
)


def variant_stream(config: SimConfig, purpose: str, index: int) -> random.Random:
    """variant_stream: the variant's own random stream for one patient and purpose."""
    return stream(config.seed, f"variant/{config.variant}/{purpose}", index)


def variant_config(config: SimConfig) -> SimConfig:
    """variant_config: the config with the variant's fault-rate multipliers applied."""
    variant = VARIANTS[config.variant]
    if not variant.fault_scale:
        return config
    rates = {
        name: min(1.0, getattr(config.faults, name) * scale)
        for name, scale in sorted(variant.fault_scale.items())
    }
    return dataclasses.replace(config, faults=dataclasses.replace(config.faults, **rates))


def variant_patient(profile: PatientProfile, config: SimConfig) -> PatientProfile:
    """variant_patient: the drawn patient moved by the variant (physiology, schedule, adherence)."""
    variant = VARIANTS[config.variant]
    if variant.neutral:
        return profile
    rng = variant_stream(config, "patient", profile.index)
    baseline = dict(profile.baseline)
    for name, span in sorted(variant.baseline_shift.items()):
        if name in baseline:
            low, high = _BASELINE_LIMITS.get(name, (-1e9, 1e9))
            baseline[name] = min(high, max(low, baseline[name] + _draw(rng, span)))
    if "diastolic_bp" in baseline:
        baseline["diastolic_bp"] = min(baseline["diastolic_bp"], baseline["systolic_bp"] - 30)
    initial = min(0.99, max(0.2, profile.adherence_initial + variant.adherence_shift))
    floor = profile.adherence_floor * initial / profile.adherence_initial
    half_life = profile.adherence_half_life_days
    if variant.adherence_half_life is not None:
        half_life = _draw(rng, variant.adherence_half_life)
    return dataclasses.replace(
        profile,
        baseline=MappingProxyType(baseline),
        adherence_initial=initial,
        adherence_floor=floor,
        adherence_half_life_days=half_life,
        variability=_draw(rng, variant.variability),
        noise=_draw(rng, variant.noise),
        circadian=_draw(rng, variant.circadian),
        circadian_shift_h=_draw(rng, variant.circadian_shift_h),
        sessions=_sessions(profile.sessions, variant, _draw(rng, variant.session_shift_h)),
    )


def variant_kind(kind: EpisodeKind, variant: Variant) -> EpisodeKind:
    """variant_kind: an episode kind as the variant runs it (course, rate, early vitals)."""
    course = variant.courses.get(kind.name)
    if course is None:
        return kind
    return dataclasses.replace(
        kind,
        rate_per_90_days=kind.rate_per_90_days * course.rate_scale,
        days_to_er=course.days_to_er or kind.days_to_er,
        early=kind.early if course.early is None else course.early,
    )


def episode_variation(config: SimConfig, index: int) -> EpisodeVariation | None:
    """episode_variation: the variant's episode kinds and per-episode draws for one patient
    (``None`` for a variant that leaves episodes as they are)."""
    variant = VARIANTS[config.variant]
    if not (variant.courses or variant.more_episodes or variant.delta_scale != (1.0, 1.0)):
        return None
    rng = variant_stream(config, "episodes", index)
    kinds = {name: variant_kind(kind, variant) for name, kind in EPISODE_KINDS.items()}

    def draw(kind: EpisodeKind) -> tuple[float, float]:
        course: Course | None = variant.courses.get(kind.name)
        shape = kind.shape if course is None or course.shape is None else _draw(rng, course.shape)
        return shape, _draw(rng, variant.delta_scale)

    return EpisodeVariation(MappingProxyType(kinds), variant.more_episodes, draw)


def _sessions(
    sessions: tuple[PlannedSession, ...], variant: Variant, shift_h: float
) -> tuple[PlannedSession, ...]:
    kept = [p for p in sessions if p.session.slot not in variant.drop_slots]
    taken = {(p.session.kind, p.session.slot) for p in kept}
    for added in variant.more_sessions:
        if (added.kind, added.slot) not in taken:
            kept.append(PlannedSession(added, None))
    return tuple(
        PlannedSession(
            dataclasses.replace(
                p.session,
                hour=min(23.5, max(0.0, p.session.hour + shift_h)),
                sd_minutes=p.session.sd_minutes * variant.session_sd,
            ),
            p.weekday,
        )
        for p in kept
    )


def _draw(rng: random.Random, span: Range) -> float:
    low, high = span
    return low if low == high else rng.uniform(low, high)
