"""The anomaly model registry on a real PostgreSQL: versions and when they are in force, the
hand-over from the cohort model to a personal one, flagged periods left out of training, refused
blobs, models of an earlier release, and the same model for every instant live and in replay."""

from __future__ import annotations

import json
import logging
import random
import threading
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest

from homecare import store
from homecare.rules import RulesConfig, RulesWorker, registry, replay
from homecare.rules.anomaly import (
    DETECTORS,
    PROGRAM_VITALS,
    ResidualDetector,
    build_features,
    fit_cohort,
)
from homecare.rules.anomaly import blob as model_blob
from homecare.rules.kinds.base import PatientContext
from homecare.rules.models import ModelLoader
from homecare.rules.repository import load_context
from homecare.rules.training import TrainingConfig, data_digest, train, without_periods
from homecare.rules.worker import wait_idle
from tests.anomaly_support import T0, synthetic_patient
from tests.conftest import enrol, url_with_database
from tests.registry_support import as_patient, probe_packs, store_readings

HF = ("heart_failure",)
RESIDUAL = ResidualDetector.kind
FIXTURES = Path(__file__).parent / "fixtures"
CONFIG = TrainingConfig(trained_by="test")


def hf_patient(conn: psycopg.Connection[Any], name: str) -> uuid.UUID:
    return enrol(conn, name, since=T0 - timedelta(days=1), programs=HF)


def set_progress(conn: psycopg.Connection[Any], patient: uuid.UUID, until: Any) -> None:
    conn.execute(
        "INSERT INTO rule_progress (patient_id, evaluated_until) VALUES (%s, %s)"
        " ON CONFLICT (patient_id) DO UPDATE SET evaluated_until = EXCLUDED.evaluated_until",
        (patient, until),
    )


def context(conn: psycopg.Connection[Any], patient: uuid.UUID) -> PatientContext:
    base = load_context(conn, patient)
    assert base is not None
    return ModelLoader().context(conn, base)


def test_each_training_is_a_new_version_in_force_after_everything_judged_live(
    db: psycopg.Connection[Any],
) -> None:
    patient = hf_patient(db, "scale-v")
    readings = synthetic_patient(40, patient=patient)
    store_readings(db, [r for r in readings if r.time < T0 + timedelta(days=30)])
    # Live passes judged up to day 32 (clock + skew beyond the newest reading).
    set_progress(db, patient, T0 + timedelta(days=32))
    first = train(db, T0 + timedelta(days=30), CONFIG)
    personal = [r for r in first.registered if r.scope == "personal"]
    cohort = [r for r in first.registered if r.scope == "cohort"]
    assert {r.kind for r in personal} == {d.kind for d in DETECTORS} == {r.kind for r in cohort}
    for row in first.registered:
        assert row.version == 1
        assert row.in_force_from == T0 + timedelta(days=32, microseconds=1)
        assert row.trained_until < row.in_force_from
        assert row.trained_by == "test" and row.metrics["instants"] == row.instants
    # The same rows again: nothing new.
    again = train(db, T0 + timedelta(days=30), CONFIG)
    assert again.registered == [] and again.unchanged == len(first.registered)

    store_readings(db, [r for r in readings if r.time >= T0 + timedelta(days=30)])
    newest = max(r.time for r in readings)
    second = train(db, T0 + timedelta(days=40), CONFIG, programs=["heart_failure"])
    assert {r.version for r in second.registered} == {2}
    assert {r.in_force_from for r in second.registered} == {newest + timedelta(microseconds=1)}

    ctx = context(db, patient)
    v1 = next(r for r in personal if r.kind == RESIDUAL)
    v2 = next(r for r in second.registered if r.kind == RESIDUAL and r.scope == "personal")
    # An instant judged before the retraining keeps its model; later ones get the new one.
    picked = ctx.model(RESIDUAL, T0 + timedelta(days=35))
    assert picked is not None and picked.info.model_id == v1.model_id
    picked = ctx.model(RESIDUAL, v2.in_force_from)
    assert picked is not None and picked.info.model_id == v2.model_id
    assert ctx.model(RESIDUAL, v1.in_force_from - timedelta(microseconds=1)) is None
    listed = registry.list_models(db, patient_id=patient)
    assert [(r.kind, r.version) for r in listed if r.kind == RESIDUAL] == [
        (RESIDUAL, 1),
        (RESIDUAL, 2),
    ]


def test_the_registry_is_append_only(db: psycopg.Connection[Any]) -> None:
    patient = hf_patient(db, "scale-ao")
    store_readings(db, synthetic_patient(20, patient=patient))
    train(db, T0 + timedelta(days=20), CONFIG)
    with pytest.raises(psycopg.errors.IntegrityConstraintViolation):
        db.execute("UPDATE anomaly_models SET in_force_from = in_force_from - interval '1 day'")
    with pytest.raises(psycopg.errors.IntegrityConstraintViolation):
        db.execute("DELETE FROM anomaly_models")


def test_a_new_patient_is_judged_by_the_cohort_model_then_by_their_own(
    db: psycopg.Connection[Any],
) -> None:
    veteran, newcomer = hf_patient(db, "scale-old"), hf_patient(db, "scale-new")
    late = T0 + timedelta(days=20)
    joined = T0 + timedelta(days=10)
    mine = as_patient(synthetic_patient(30, seed=1), veteran, "scale-old")
    theirs = as_patient(synthetic_patient(20, seed=2, start=joined), newcomer, "scale-new")
    store_readings(db, [r for r in mine if r.time < late])
    store_readings(db, [r for r in theirs if r.time < late])
    first = train(db, late, CONFIG)
    assert not [r for r in first.registered if r.patient_id == newcomer]  # 10 days: too few
    cohort = next(r for r in first.registered if r.scope == "cohort" and r.kind == RESIDUAL)
    picked = context(db, newcomer).model(RESIDUAL, cohort.in_force_from + timedelta(hours=1))
    assert picked is not None and picked.info.scope == "cohort"
    assert picked.info.model_id == cohort.model_id

    store_readings(db, [r for r in mine if r.time >= late])
    store_readings(db, [r for r in theirs if r.time >= late])
    second = train(db, T0 + timedelta(days=30), CONFIG)
    own = next(r for r in second.registered if r.patient_id == newcomer and r.kind == RESIDUAL)
    ctx = context(db, newcomer)
    before = ctx.model(RESIDUAL, own.in_force_from - timedelta(microseconds=1))
    after = ctx.model(RESIDUAL, own.in_force_from)
    assert before is not None and before.info.scope == "cohort"
    assert after is not None and after.info.scope == "personal"
    assert after.info.model_id == own.model_id


def test_a_flagged_period_does_not_enter_training(db: psycopg.Connection[Any]) -> None:
    patient = hf_patient(db, "scale-ill")
    readings = synthetic_patient(30, patient=patient)
    onset, cleared = T0 + timedelta(days=12), T0 + timedelta(days=15)
    # A decompensation: wildly unusual weights and pulses while the finding held.
    ill = [r._replace(value=r.value * 1.3) if onset <= r.time <= cleared else r for r in readings]
    store_readings(db, ill)
    db.execute(
        "INSERT INTO findings (patient_id, rule_id, state, severity, evidence_time, received_at,"
        " late, summary, evidence, pack, pack_version) VALUES"
        " (%s, 'hf.weight_gain', 'active', 'high', %s, %s, false, 's', '{}', 'heart_failure', 1),"
        " (%s, 'hf.weight_gain', 'cleared', 'high', %s, %s, false, 's', '{}', 'heart_failure', 1),"
        " (%s, 'hf.gone', 'active', 'low', %s, %s, false, 's', '{}', 'heart_failure', 1)",
        (patient, onset, onset, patient, cleared, cleared, patient, T0, T0),
    )
    # A finding that was retracted never held: it leaves nothing out.
    db.execute("UPDATE findings SET retracted_at = now() WHERE rule_id = 'hf.gone'")
    report = train(db, T0 + timedelta(days=30), CONFIG)
    period = [(onset - timedelta(days=1), cleared + timedelta(days=2))]
    kept = without_periods(ill, period)
    assert report.readings_left_out == len(ill) - len(kept) > 0
    assert all(not (period[0][0] <= r.time <= period[0][1]) for r in kept)
    expected = build_features(kept, PROGRAM_VITALS["heart_failure"])
    row = next(r for r in report.registered if r.scope == "personal" and r.kind == RESIDUAL)
    assert row.data_digest == data_digest(expected)
    assert row.model_id == ResidualDetector().fit(expected).info.model_id
    with_illness = build_features(ill, PROGRAM_VITALS["heart_failure"])
    assert row.model_id != ResidualDetector().fit(with_illness).info.model_id


def _insert_copy(
    conn: psycopg.Connection[Any],
    row: registry.ModelRow,
    blob: bytes,
    model_id: str,
    **changes: Any,
) -> None:
    values = row._asdict() | {"model_id": model_id, "blob": blob} | changes
    conn.execute(
        "INSERT INTO anomaly_models (model_id, kind, detector_version, scope, patient_id, program,"
        " version, trained_from, trained_until, instants, data_digest, metrics, blob,"
        " in_force_from, trained_by) VALUES (%(model_id)s, %(kind)s, %(detector_version)s,"
        " %(scope)s, %(patient_id)s, %(program)s, %(version)s, %(trained_from)s,"
        " %(trained_until)s, %(instants)s, %(data_digest)s, '{}', %(blob)s, %(in_force_from)s,"
        " %(trained_by)s)",
        values,
    )


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        (lambda b: b.replace(b'"sigma":', b'"sigma":1', 1), "CorruptModel"),
        (lambda b: b[: len(b) // 2], "CorruptModel"),
        (
            lambda b: b.replace(b"homecare-anomaly-model/1", b"homecare-anomaly-model/9"),
            "CorruptModel",
        ),
    ],
)
def test_a_refused_personal_model_hands_over_to_the_cohort_model(
    db: psycopg.Connection[Any], caplog: pytest.LogCaptureFixture, damage: Any, reason: str
) -> None:
    patient = hf_patient(db, "scale-bad")
    store_readings(db, synthetic_patient(30, patient=patient))
    first = train(db, T0 + timedelta(days=30), CONFIG)
    v1 = next(r for r in first.registered if r.scope == "personal" and r.kind == RESIDUAL)
    blob = registry.blobs(db, [("personal", v1.model_id)])[("personal", v1.model_id)][1]
    later = v1.in_force_from + timedelta(days=5)
    _insert_copy(db, v1, damage(blob), "f" * 16, version=2, in_force_from=later)
    loader = ModelLoader()
    base = load_context(db, patient)
    assert base is not None
    with caplog.at_level(logging.ERROR, logger="homecare.rules.models"):
        ctx = loader.context(db, base)
    assert loader.stats.refused == {reason: 1}
    refusal = [r for r in caplog.records if getattr(r, "model_id", None) == "f" * 16]
    assert len(refusal) == 1 and refusal[0].levelno == logging.ERROR
    before = ctx.model(RESIDUAL, later - timedelta(microseconds=1))
    after = ctx.model(RESIDUAL, later)
    assert before is not None and before.info.model_id == v1.model_id
    # Not the older personal model: the cohort's.
    assert after is not None and after.info.scope == "cohort"
    # Refused once per process, not on every pass.
    loader.context(db, base)
    assert loader.stats.refused == {reason: 1}


def test_a_model_of_an_unknown_kind_or_detector_version_is_refused(
    db: psycopg.Connection[Any],
) -> None:
    patient = hf_patient(db, "scale-odd")
    store_readings(db, synthetic_patient(30, patient=patient))
    first = train(db, T0 + timedelta(days=30), CONFIG)
    v1 = next(r for r in first.registered if r.scope == "personal" and r.kind == RESIDUAL)
    blob = registry.blobs(db, [("personal", v1.model_id)])[("personal", v1.model_id)][1]
    _insert_copy(db, v1, blob, "e" * 16, kind="retired_detector", version=1)
    # An intact model of a detector version this release does not read.
    info, body = model_blob.decode(blob, RESIDUAL, 1)
    newer = model_blob.model_id(RESIDUAL, 2, body)
    newer_blob = model_blob.encode(info._replace(version=2, model_id=newer), body)
    later = v1.in_force_from + timedelta(days=1)
    _insert_copy(db, v1, newer_blob, newer, detector_version=2, version=2, in_force_from=later)
    loader = ModelLoader()
    base = load_context(db, patient)
    assert base is not None
    ctx = loader.context(db, base)
    assert loader.stats.refused == {"IncompatibleModel": 2}
    after = ctx.model(RESIDUAL, later)
    assert after is not None and after.info.scope == "cohort"


def test_a_model_written_by_an_earlier_release_is_still_served(
    db: psycopg.Connection[Any],
) -> None:
    """The blobs in tests/fixtures were written by an earlier build with these detector
    versions; they must load and score exactly as they did then."""
    patient = hf_patient(db, "scale-up")
    expected = json.loads((FIXTURES / "anomaly_models_expected.json").read_text())
    readings = synthetic_patient(30, seed=11, patient=uuid.UUID(int=11))
    features = build_features(readings, PROGRAM_VITALS["heart_failure"])
    for number, detector in enumerate(DETECTORS):
        want = expected[detector.kind]
        assert detector.version == want["version"], "a new detector version needs a new fixture"
        blob = (FIXTURES / f"anomaly_{detector.kind}_v{detector.version}.json").read_bytes()
        info = detector.from_bytes(blob).info
        db.execute(
            "INSERT INTO anomaly_models (model_id, kind, detector_version, scope, patient_id,"
            " version, trained_from, trained_until, instants, data_digest, blob, in_force_from,"
            " trained_by) VALUES (%s, %s, %s, 'personal', %s, 1, %s, %s, %s, 'fixture', %s,"
            " %s, 'an earlier release')",
            (info.model_id, info.kind, info.version, patient, info.trained_from,
             info.trained_until, info.instants, blob, T0 + timedelta(days=40 + number)),
        )  # fmt: skip
    ctx = context(db, patient)
    for detector in DETECTORS:
        want = expected[detector.kind]
        version = ctx.model(detector.kind, T0 + timedelta(days=50))
        assert version is not None and version.info.model_id == want["model_id"]
        model = version.detector
        scores = [
            model.score(features.upto(i, model.lookback)) for i in range(40, len(features), 7)
        ]
        assert scores == pytest.approx(want["scores"], rel=1e-9, abs=1e-12)


def test_registering_a_cohort_model_waits_for_a_rules_pass_in_flight(
    db: psycopg.Connection[Any], database_url: str
) -> None:
    patient = hf_patient(db, "scale-race")
    store_readings(db, synthetic_patient(20, patient=patient))
    features = build_features(
        synthetic_patient(20, patient=patient), PROGRAM_VITALS["heart_failure"]
    )
    model = fit_cohort(ResidualDetector(), [features])
    done = threading.Event()
    with store.connect(database_url, autocommit=True) as pass_conn, pass_conn.transaction():
        # A pass that has read the registry (and holds the shared lock) judges up to day 25.
        registry.lock_program(pass_conn, "heart_failure")

        def register() -> None:
            with store.connect(database_url, autocommit=True) as conn:
                registry.register(conn, model, subject="heart_failure", data_digest="x",
                                  metrics={}, trained_by="test")  # fmt: skip
            done.set()

        thread = threading.Thread(target=register)
        thread.start()
        assert not done.wait(0.5), "registration did not wait for the pass"
        set_progress(pass_conn, patient, T0 + timedelta(days=25))
    thread.join(10)
    assert done.is_set()
    (row,) = registry.list_models(db, program="heart_failure")
    assert row.in_force_from == T0 + timedelta(days=25, microseconds=1)


def _picks(ctx: PatientContext, times: list[Any]) -> list[tuple[str, str | None]]:
    out = []
    for at in times:
        for detector in DETECTORS:
            version = ctx.model(detector.kind, at)
            out.append((detector.kind, version.info.model_id if version else None))
    return out


class _Recording(ModelLoader):
    def __init__(self) -> None:
        super().__init__()
        self.seen: list[PatientContext] = []

    def context(self, conn: psycopg.Connection[Any], patient: PatientContext) -> PatientContext:
        ctx = super().context(conn, patient)
        self.seen.append(ctx)
        return ctx


def _findings(conn: psycopg.Connection[Any]) -> list[tuple[Any, ...]]:
    return conn.execute(
        "SELECT rule_id, state, evidence_time, evidence FROM findings WHERE retracted_at IS NULL"
        " ORDER BY evidence_time, rule_id, state"
    ).fetchall()


def test_live_with_a_model_registered_mid_stream_equals_a_shuffled_backlog_and_replay(
    db: psycopg.Connection[Any], database_url: str, template_database: str
) -> None:
    patient = hf_patient(db, "scale-live")
    readings = synthetic_patient(30, patient=patient)
    packs = probe_packs()
    clock = [T0]
    live = RulesWorker(RulesConfig(database_url=database_url, clock=lambda: clock[0]))
    live.packs = packs
    recording = _Recording()
    live.models = recording
    judged_live: list[tuple[str, str | None]] = []
    by_day = [[r for r in readings if (r.time - T0).days == d] for d in range(30)]
    for day, batch in enumerate(by_day):
        clock[0] = T0 + timedelta(days=day, hours=20)
        store_readings(db, batch)
        seen = len(recording.seen)
        wait_idle(live)
        (ctx,) = recording.seen[seen:]
        judged_live += _picks(ctx, sorted({r.time for r in batch}))
        if day == 20:
            # Trained on readings up to three days ago: the instants judged since must keep
            # the model they were judged with.
            report = train(db, clock[0] - timedelta(days=3), CONFIG)
            assert any(r.scope == "personal" for r in report.registered)
    live.close()
    stored = _findings(db)
    assert [s[1] for s in stored] == ["active"]  # the hand-over to the personal model
    assert stored[0][2] > T0 + timedelta(days=20, hours=20)

    report = replay(db, packs, T0 - timedelta(days=1), clock[0], timedelta(hours=6))
    assert report.equal and len(report.same) == len(stored)
    times = sorted({r.time for r in readings})
    assert _picks(context(db, patient), times) == judged_live

    # The same readings as a shuffled backlog into a store that already holds the registry.
    name = f"hc_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(url_with_database(database_url, "postgres"), autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name} TEMPLATE {template_database}")
    other_url = url_with_database(database_url, name)
    try:
        with store.connect(other_url, autocommit=True) as other:
            other.execute(
                "INSERT INTO patients (id, display_name, programs) VALUES (%s, 'p', %s)",
                (patient, list(HF)),
            )
            rows = db.execute(
                "SELECT model_id, kind, detector_version, scope, patient_id, program, version,"
                " trained_from, trained_until, instants, data_digest, metrics, blob,"
                " in_force_from, created_at, trained_by FROM anomaly_models"
            ).fetchall()
            with other.cursor() as cur:
                cur.executemany(
                    "INSERT INTO anomaly_models (model_id, kind, detector_version, scope,"
                    " patient_id, program, version, trained_from, trained_until, instants,"
                    " data_digest, metrics, blob, in_force_from, created_at, trained_by)"
                    f" VALUES ({', '.join(['%s'] * 16)})",
                    [(*r[:11], psycopg.types.json.Jsonb(r[11]), *r[12:]) for r in rows],
                )
            backlog = RulesWorker(RulesConfig(database_url=other_url, clock=lambda: clock[0]))
            backlog.packs = packs
            shuffled = list(readings)
            random.Random(5).shuffle(shuffled)
            for start in range(0, len(shuffled), 37):
                store_readings(other, shuffled[start : start + 37])
                wait_idle(backlog)
            backlog.close()
            assert _findings(other) == stored
            assert _picks(context(other, patient), times) == judged_live
    finally:
        with psycopg.connect(url_with_database(database_url, "postgres"), autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def test_homecare_models_train_and_list(
    db: psycopg.Connection[Any],
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from homecare.cli import main

    patient = hf_patient(db, "scale-cli")
    store_readings(db, synthetic_patient(20, patient=patient))
    monkeypatch.setenv("HOMECARE_DATABASE_URL", database_url)
    until = (T0 + timedelta(days=20)).isoformat()
    assert main(["models", "train", "--until", until, "--program", "heart_failure"]) == 0
    out = capsys.readouterr().out
    # one cohort and one personal model per detector
    assert f"{2 * len(DETECTORS)} registered, 0 unchanged" in out
    assert main(["models", "train", "--until", until, "--patient", str(patient)]) == 0
    assert f"0 registered, {len(DETECTORS)} unchanged" in capsys.readouterr().out
    assert main(["models", "train", "--program", "cardiology"]) == 2
    assert main(["models", "list", "--patient", str(patient)]) == 0
    listing = capsys.readouterr().out
    assert f"{len(DETECTORS)} model versions" in listing and "cli:" in listing


def test_the_scheduler_trains_the_models_at_start(
    db: psycopg.Connection[Any], database_url: str
) -> None:
    from homecare.scheduler import SchedulerConfig, run_scheduler

    patient = hf_patient(db, "scale-job")
    store_readings(db, synthetic_patient(20, patient=patient))
    config = SchedulerConfig(
        database_url, retrain_every_s=3600, clock=lambda: T0 + timedelta(days=20)
    )
    stop = threading.Event()
    thread = threading.Thread(target=run_scheduler, args=(config, stop))
    thread.start()
    try:
        for _ in range(200):
            if len(registry.list_models(db)) == 2 * len(DETECTORS):
                break
            stop.wait(0.1)
    finally:
        stop.set()
        thread.join(30)
    rows = registry.list_models(db)
    assert {(r.scope, r.trained_by) for r in rows} == {
        ("cohort", "scheduler"),
        ("personal", "scheduler"),
    }
    assert len(rows) == 2 * len(DETECTORS)
