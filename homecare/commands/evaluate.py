"""Evaluate: the ``homecare evaluate`` command — detection figures on labelled simulated cohorts."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from homecare import store
from homecare.arguments import (
    instant,
)
from homecare.devices.sim.variants import VARIANTS
from homecare.evaluation.sets import EVALUATION_SETS
from homecare.settings import Settings

if TYPE_CHECKING:
    from homecare.evaluation.anomaly import CohortPool
    from homecare.evaluation.cohorts import EvaluationResult, StoredCohort
    from homecare.rules.harness import Group

log = logging.getLogger("homecare")


def add_commands(commands: Any) -> None:
    """add_commands adds this module's subcommands to the ``homecare`` parser."""
    evaluate = commands.add_parser(
        "evaluate", help="score the rules on a labelled simulated cohort, with baselines"
    )
    evaluate.add_argument(
        "--patients", type=int, default=200, help="simulated patients in each cohort"
    )
    evaluate.add_argument("--days", type=float, default=90, help="days each cohort covers")
    evaluate.add_argument(
        "--seed",
        type=int,
        nargs="+",
        default=None,
        help="one or more cohorts (default 1); with several, print a summary line per seed and"
        " rule set and totals over them",
    )
    evaluate.add_argument(
        "--variant",
        choices=sorted(VARIANTS),
        default=None,
        help="simulator variant of the --seed cohorts (default: default)",
    )
    evaluate.add_argument(
        "--set",
        choices=(*EVALUATION_SETS, "both"),
        default=None,
        dest="cohort_set",
        help="score a declared set of cohorts instead of --seed: tuning ("
        + EVALUATION_SETS["tuning"].describe()
        + "), held-out ("
        + EVALUATION_SETS["held-out"].describe()
        + "), or both side by side; declared in evaluation/sets.py. Tune on tuning only: the"
        " held-out set is read to judge a change, never to choose one",
    )
    evaluate.add_argument(
        "--packs",
        type=Path,
        action="append",
        default=[],
        metavar="DIR",
        help="also score the packs in DIR (a candidate change) in the same run; repeatable",
    )
    evaluate.add_argument(
        "--cache",
        type=Path,
        default=None,
        metavar="DIR",
        help="keep each stored cohort in DIR and reuse it (a local developer cache)",
    )
    evaluate.add_argument(
        "--end",
        type=instant,
        default=None,
        help="end of the simulated window (default: a fixed date, so reruns compare)",
    )
    evaluate.add_argument(
        "--plot",
        type=Path,
        default=None,
        metavar="PNG",
        help="with --set: write the anomaly threshold sweep (episodes caught >= 24 h ahead"
        " against false clinical alerts per patient-month, rules only / anomaly only /"
        " rules + anomaly) to PNG (needs matplotlib)",
    )
    evaluate.set_defaults(run=_evaluate)


def _evaluate(settings: Settings, args: argparse.Namespace) -> int:
    from concurrent.futures import ProcessPoolExecutor
    from urllib.parse import urlsplit, urlunsplit

    from homecare.evaluation.anomaly import CHOSEN, RULES_ONLY, CohortPool
    from homecare.evaluation.report import (
        format_comparison,
        format_report,
        format_sets,
        format_summary,
        format_sweep,
        sweep_totals,
        total,
    )
    from homecare.rules import PackError, load_packs

    # A broken candidate fails before any cohort is built, with its file and rule named.
    for directory in args.packs:
        try:
            if not load_packs(directory).packs:
                raise PackError("no *.yaml pack there")
        except PackError as exc:
            print(f"homecare evaluate: {directory}: {exc}", file=sys.stderr)
            return 2
    if args.cohort_set is not None and (args.seed is not None or args.variant is not None):
        print("homecare evaluate: --set chooses its own seeds and variants", file=sys.stderr)
        return 2
    end = args.end or datetime(2026, 11, 1, tzinfo=UTC)
    admin = urlunsplit(urlsplit(settings.database_url)._replace(path="/postgres"))
    store.wait_for_database(admin, settings.connect_timeout_s, "homecare-evaluate")
    if args.cohort_set is not None:
        chosen = [args.cohort_set] if args.cohort_set != "both" else list(EVALUATION_SETS)
        cohorts = list(dict.fromkeys(c for name in chosen for c in EVALUATION_SETS[name].cohorts()))
    else:
        cohorts = [(args.variant or "default", seed) for seed in args.seed or [1]]
    workers = os.cpu_count() or 1
    # The anomaly rules' cold-start models are fitted on tuning cohorts only, whichever cohorts
    # are scored: a held-out cohort never shapes a model that judges it. A --set run pools the
    # whole tuning set; a --seed run (a quick look) the tuning cohorts among those it scores,
    # or else the first tuning cohort.
    tuning = EVALUATION_SETS["tuning"].cohorts()
    if args.cohort_set is None:
        tuning = tuple(c for c in cohorts if c in tuning) or tuning[:1]
    pool_jobs = [
        (admin, args.patients, args.days, seed, end, args.cache, variant)
        for variant, seed in tuning
    ]
    with ProcessPoolExecutor(max_workers=min(len(pool_jobs), workers)) as executor:
        cohort_pool = CohortPool.merge(executor.map(_pool_part, *zip(*pool_jobs, strict=True)))
    jobs = [
        (admin, args.patients, args.days, seed, end, args.packs, args.cache, variant, cohort_pool)
        for variant, seed in cohorts
    ]
    if len(jobs) == 1:
        print(format_report(_evaluate_seed(*jobs[0])[0]))
        return 0
    # Cohorts are independent: one process each, as many at once as there are cores.
    with ProcessPoolExecutor(max_workers=min(len(jobs), workers)) as executor:
        done = dict(
            zip(cohorts, executor.map(_evaluate_seed, *zip(*jobs, strict=True)), strict=True)
        )
    scored = {c: result for c, (result, _) in done.items()}
    if args.cohort_set is None:
        print(format_summary({seed: result for (_, seed), result in scored.items()}))
        return 0
    sets = {name: {c: scored[c] for c in EVALUATION_SETS[name].cohorts()} for name in chosen}
    print(format_sets(sets, {name: EVALUATION_SETS[name].describe() for name in chosen}))
    print()
    print(format_comparison(sets))
    curves = {
        name: sweep_totals([done[c][1] for c in EVALUATION_SETS[name].cohorts()]) for name in chosen
    }
    print()
    print(format_sweep(curves))
    if args.plot is not None:
        try:
            from homecare.evaluation.plot import plot_operating_points
        except ImportError:  # pragma: no cover - the test extra installs matplotlib
            print("homecare evaluate: --plot needs matplotlib", file=sys.stderr)
            return 2
        fixed = {name: {RULES_ONLY: total(sets[name], RULES_ONLY)} for name in chosen}
        plot_operating_points(curves, fixed, CHOSEN, args.plot)
        print(f"operating points: {args.plot}")
    return 0


def _pool_part(
    admin: str,
    patients: int,
    days: float,
    seed: int,
    end: datetime,
    cache: Path | None,
    variant: str,
) -> CohortPool:
    """_pool_part: one tuning cohort's share of the cold-start models' training pool."""
    from homecare.evaluation.anomaly import CohortPool

    cohort = _cohort(admin, patients, days, seed, end, cache, variant)
    return CohortPool.build((p.context.programs, p.readings) for p in cohort.patients)


def _cohort(
    admin: str,
    patients: int,
    days: float,
    seed: int,
    end: datetime,
    cache: Path | None,
    variant: str,
) -> StoredCohort:
    from homecare.evaluation.cohort_cache import cached_cohort
    from homecare.evaluation.cohorts import store_cohort

    def build() -> StoredCohort:
        return store_cohort(admin, patients, days, seed, end, variant)

    if cache is None:
        return build()
    return cached_cohort(cache, patients, days, seed, end, build, variant)


def _evaluate_seed(
    admin: str,
    patients: int,
    days: float,
    seed: int,
    end: datetime,
    candidates: list[Path],
    cache: Path | None,
    variant: str = "default",
    cohort_pool: CohortPool | None = None,
) -> tuple[EvaluationResult, dict[str, dict[float, Group]]]:
    """_evaluate_seed scores one cohort: the packs as rules only, anomaly only and both (with
    the training schedule's models), the candidates, the baselines; and the threshold sweep."""
    from homecare.evaluation.anomaly import (
        ANOMALY_ONLY,
        BOTH,
        RULES_ONLY,
        AnomalyEvaluation,
        CohortPool,
    )
    from homecare.evaluation.cohorts import AlertSource, score_cohort
    from homecare.rules import PackSet, load_packs

    cohort = _cohort(admin, patients, days, seed, end, cache, variant)
    anomaly = AnomalyEvaluation(load_packs(), cohort_pool or CohortPool({}))
    sets: dict[str, PackSet | AlertSource] = {
        label: anomaly.source(label) for label in (RULES_ONLY, ANOMALY_ONLY, BOTH)
    }
    sets.update(
        {f"candidate packs ({directory})": load_packs(directory) for directory in candidates}
    )
    result = score_cohort(cohort, sets)
    return result, anomaly.sweep(cohort.patients, cohort.labels)
