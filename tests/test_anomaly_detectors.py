"""The detector contract, checked the same way on every detector in ``rules.anomaly.DETECTORS``.

Adding a detector is one module and one entry there; these tests then hold it to: fitting and
scoring are deterministic, a model survives its storage byte for byte, a damaged or foreign
blob is refused with a typed error, a constant signal does not break it, the explanation
names the vital that moved, a gradual deterioration scores above the patient's ordinary days,
and a new patient is judged by the cohort model until their own history suffices.
"""

from __future__ import annotations

import json
import pickle
import uuid
from datetime import timedelta

import numpy as np
import pytest

from homecare.rules.anomaly import (
    DETECTORS,
    CorruptModel,
    Detector,
    Features,
    HistoryPolicy,
    IncompatibleModel,
    ModelBlobError,
    NotEnoughHistory,
    build_features,
    fit_cohort,
    fit_personal,
    judge,
)
from homecare.rules.anomaly.blob import canonical
from tests.anomaly_support import USUAL, synthetic_patient

VITALS = tuple(USUAL)
TRAIN_DAYS = 40


def scores(model: Detector, features: Features, start: int = 0) -> list[float]:
    return [model.score(features.upto(i, model.lookback)) for i in range(start, len(features))]


def history(days: int = TRAIN_DAYS, seed: int = 1) -> Features:
    return build_features(synthetic_patient(days, seed=seed), VITALS)


@pytest.fixture(params=DETECTORS, ids=lambda d: d.kind)
def detector(request: pytest.FixtureRequest) -> Detector:
    kind: type[Detector] = request.param
    return kind()


def test_fitting_and_scoring_are_deterministic(detector: Detector) -> None:
    features = history()
    first, second = detector.fit(features), detector.fit(features)
    assert first.to_bytes() == second.to_bytes()
    assert first.info.model_id == second.info.model_id
    assert scores(first, features) == scores(second, features)
    other = detector.fit(history(seed=2))
    assert other.info.model_id != first.info.model_id


def test_fit_leaves_the_detector_unfitted_and_returns_a_fitted_copy(detector: Detector) -> None:
    fitted = detector.fit(history())
    assert fitted is not detector
    with pytest.raises(NotEnoughHistory):
        detector.score(history())
    assert fitted.info.kind == type(detector).kind
    assert fitted.info.scope == "personal"
    assert fitted.info.instants == len(history())


def test_a_round_trip_through_bytes_gives_identical_scores(detector: Detector) -> None:
    fitted = detector.fit(history())
    later = build_features(synthetic_patient(60, seed=1, moves={"spo2": -4}), VITALS)
    restored = type(detector).from_bytes(fitted.to_bytes())
    assert restored.info == fitted.info
    assert restored.to_bytes() == fitted.to_bytes()
    assert scores(restored, later) == scores(fitted, later)
    last = later.upto(len(later) - 1, fitted.lookback)
    assert restored.explain(last) == fitted.explain(last)


def _altered(blob: bytes) -> bytes:
    document = json.loads(blob)
    body = document["model"]["body"]
    key = next(k for k, v in sorted(body.items()) if isinstance(v, float | int) and v)
    body[key] = body[key] * 1.5
    return canonical(document)


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda b: b[: len(b) // 2], id="truncated"),
        pytest.param(lambda b: b"\xff\xfe" + b, id="not-utf8"),
        pytest.param(lambda b: b"[]", id="not-a-model"),
        pytest.param(_altered, id="number-altered"),
        pytest.param(lambda b: pickle.dumps(json.loads(b)), id="pickle"),
        pytest.param(lambda b: b.replace(b'"digest":"', b'"digest":"0'), id="digest"),
    ],
)
def test_a_damaged_blob_is_refused(detector: Detector, damage: object) -> None:
    blob = detector.fit(history()).to_bytes()
    assert callable(damage)
    with pytest.raises(CorruptModel):
        type(detector).from_bytes(damage(blob))


def test_a_foreign_or_newer_blob_is_refused(detector: Detector) -> None:
    features = history()
    for other in DETECTORS:
        if other.kind != type(detector).kind:
            with pytest.raises(IncompatibleModel, match=other.kind):
                type(detector).from_bytes(other().fit(features).to_bytes())
    document = json.loads(detector.fit(features).to_bytes())
    document["model"]["version"] += 1
    document["digest"] = __import__("hashlib").sha256(canonical(document["model"])).hexdigest()
    with pytest.raises(IncompatibleModel, match="version"):
        type(detector).from_bytes(canonical(document))
    assert issubclass(IncompatibleModel, ModelBlobError)


def test_too_short_a_history_is_refused(detector: Detector) -> None:
    with pytest.raises(NotEnoughHistory):
        detector.fit(history(days=2))


def test_a_constant_signal_fits_and_a_later_change_stands_out(detector: Detector) -> None:
    flat = build_features(synthetic_patient(TRAIN_DAYS, constant=True), VITALS)
    fitted = detector.fit(flat)
    assert all(np.isfinite(scores(fitted, flat)))
    assert max(scores(fitted, flat)) < 1
    moved = build_features(
        synthetic_patient(TRAIN_DAYS + 4, constant=True, moves={"heart_rate": 12}, over_days=3),
        VITALS,
    )
    assert scores(fitted, moved)[-1] > 3


def test_missing_vitals_are_tolerated(detector: Detector) -> None:
    readings = [r for r in synthetic_patient(TRAIN_DAYS) if r.type != "respiratory_rate"]
    fitted = detector.fit(build_features(readings, VITALS))
    later = build_features(
        [r for r in synthetic_patient(50, seed=3) if r.type not in ("spo2", "body_weight")], VITALS
    )
    assert all(np.isfinite(scores(fitted, later)))


@pytest.mark.parametrize(
    ("vital", "move"), [("spo2", -4.0), ("body_weight", 2.5), ("heart_rate", 20.0)]
)
def test_explain_names_the_vital_that_moved(detector: Detector, vital: str, move: float) -> None:
    fitted = detector.fit(history())
    features = build_features(
        synthetic_patient(TRAIN_DAYS + 10, seed=1, moves={vital: move}, over_days=4), VITALS
    )
    last = features.upto(len(features) - 1, fitted.lookback)
    top = fitted.explain(last)[0]
    assert top.vital == vital
    assert (top.deviation > 0) == (move > 0)
    assert (top.value > top.usual) == (move > 0)
    assert top.since is not None
    onset = features.time(len(features) - 1) - timedelta(days=4)
    assert onset - timedelta(days=1) <= top.since <= features.time(len(features) - 1)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_gradual_deterioration_scores_above_ordinary_days(detector: Detector, seed: int) -> None:
    fitted = detector.fit(history(seed=seed))
    days = TRAIN_DAYS + 20
    ordinary = build_features(synthetic_patient(days, seed=seed + 10), VITALS)
    failing = build_features(
        synthetic_patient(
            days, seed=seed + 10, moves={"body_weight": 2.0, "heart_rate": 8, "spo2": -2},
            over_days=6,
        ),
        VITALS,
    )  # fmt: skip
    after = int(np.searchsorted(ordinary.times, ordinary.times[-1] - 20 * 86400))
    usual = scores(fitted, ordinary, after)
    last_day = int(np.searchsorted(failing.times, failing.times[-1] - 86400))
    assert min(scores(fitted, failing, last_day)) > np.quantile(usual, 0.95)


def test_replay_equals_live(detector: Detector) -> None:
    """Features of the recent readings only (what a live pass loads) score the last instant
    exactly as a replay over the whole history does."""
    fitted = detector.fit(history())
    readings = synthetic_patient(TRAIN_DAYS + 12, seed=4, moves={"spo2": -3})
    full = build_features(readings, VITALS)
    end = full.time(len(full) - 1)
    need = fitted.lookback + timedelta(days=10)
    recent = build_features([r for r in readings if r.time >= end - need], VITALS)
    assert np.array_equal(recent.values[-1], full.values[-1], equal_nan=True)
    live = fitted.score(recent.upto(len(recent) - 1, fitted.lookback))
    assert live == fitted.score(full.upto(len(full) - 1, fitted.lookback))


def test_a_new_patient_is_judged_by_the_cohort_until_their_history_suffices(
    detector: Detector,
) -> None:
    cohort = fit_cohort(
        detector,
        [
            build_features(
                synthetic_patient(30, seed=s, patient=uuid.UUID(int=s), usual={"heart_rate": hr}),
                VITALS,
            )
            for s, hr in ((11, 64.0), (12, 72.0), (13, 80.0))
        ],
    )
    assert cohort.info.scope == "cohort"
    newcomer = synthetic_patient(40, seed=20)
    policy = HistoryPolicy(min_days=14)
    early = build_features(
        [r for r in newcomer if r.time < newcomer[0].time + timedelta(days=5)], VITALS
    )
    assert fit_personal(detector, early, policy) is None
    first = judge(early.upto(len(early) - 1, cohort.lookback), None, cohort)
    assert first.model == cohort.info
    assert np.isfinite(first.score)

    enough = build_features(newcomer, VITALS)
    personal = fit_personal(detector, enough, policy)
    assert personal is not None
    later = judge(enough.upto(len(enough) - 1, personal.lookback), personal, cohort)
    assert later.model.scope == "personal"
    assert later.model.model_id == personal.info.model_id != cohort.info.model_id


def test_a_consistent_blob_with_malformed_numbers_is_refused(detector: Detector) -> None:
    """Digest and id recomputed over a body whose arrays lost a value: still refused."""
    import hashlib

    from homecare.rules.anomaly.blob import model_id

    document = json.loads(detector.fit(history()).to_bytes())
    model = document["model"]

    def shorten(node: object) -> bool:
        if isinstance(node, dict):
            return any(shorten(v) for k, v in sorted(node.items()) if k != "predictors")
        if isinstance(node, list) and node and all(isinstance(v, float) for v in node):
            node.pop()
            return True
        if isinstance(node, list):
            return any(shorten(v) for v in node)
        return False

    assert shorten(model["body"])
    model["info"]["model_id"] = model_id(model["kind"], model["version"], model["body"])
    document["digest"] = hashlib.sha256(canonical(model)).hexdigest()
    with pytest.raises(CorruptModel, match="shape"):
        type(detector).from_bytes(canonical(document))
