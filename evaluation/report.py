"""Evaluate report: the harness figures of ``homecare evaluate`` as plain-text tables.

Kept apart from ``evaluation.cohorts``, whose source is part of the cohort cache's key
(``evaluation.cohort_cache``): changing how the figures are printed must not make every cached
cohort stale.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from homecare.evaluation.cohorts import CANDIDATE, ORACLE, VISIBLE, EvaluationResult
from homecare.rules.harness import Group

__all__ = ["format_report", "format_sets", "format_summary"]


def format_report(result: EvaluationResult) -> str:
    """format_report renders the harness tables as plain text."""
    variant = result.labels.variant
    lines = [
        f"cohort{'' if variant == 'default' else f' (simulator variant {variant})'}:"
        f" {len(result.labels.programs)} patients,"
        f" {result.labels.patient_days:,.0f} patient-days, {result.readings:,} readings stored,"
        f" {len(result.labels.episodes)} episodes, {len(result.labels.lookalikes)} look-alikes",
        "",
    ]
    for label, (overall, programs, rules) in result.results.items():
        lines += [f"== {label}", _HEADER, _row("all programs", overall)]
        lines += [_row(f"  {name}", group) for name, group in sorted(programs.items())]
        if label in ("shipped packs", ORACLE, VISIBLE) or label.startswith(CANDIDATE):
            lines.append("  by episode kind (caught in time / episodes, median lead):")
            for kind, group in sorted(result.kinds[label].items()):
                lead = group.median_lead_days
                lines.append(
                    f"    {kind:<30} {group.caught:>4} / {group.episodes:<4}"
                    f" {'-' if lead is None else format(lead, '.1f'):>6} d"
                )
        if label == "shipped packs" or label.startswith(CANDIDATE):
            lines += _rule_lines(rules)
        lines.append("")
    return "\n".join(lines)


_HEADER = (
    f"{'':<34} {'episodes':>8} {'≥24h':>6} {'lead d':>6} {'false/pm':>8}"
    f" {'lookalike/pm':>12} {'per nurse-day':>13}"
)


def _rule_lines(rules: Mapping[str, Group]) -> list[str]:
    """_rule_lines: a line per rule; "only" counts the episodes no other rule caught in time,
    which is what dropping the rule would lose."""
    lines = ["  by rule (episodes caught in time, by it alone / false alerts):"]
    for rule_id, group in sorted(rules.items()):
        lines.append(
            f"    {rule_id:<30} caught {group.caught:>4}   only {group.caught_only:>3}"
            f"   false {group.false_alerts:>5}   look-alike {group.lookalike_alerts:>4}"
            f"   alerts {group.alerts:>5}"
        )
    return lines


def _row(name: str, group: Group) -> str:
    def fmt(value: float | None, spec: str) -> str:
        return "-" if value is None else format(value, spec)

    look = group.lookalike_alerts / group.patient_days * 30 if group.patient_days else None
    return (
        f"{name:<34} {group.episodes:>8} {fmt(group.caught_share, '.0%'):>6}"
        f" {fmt(group.median_lead_days, '.1f'):>6} {fmt(group.false_per_patient_month, '.2f'):>8}"
        f" {fmt(look, '.2f'):>12} {fmt(group.burden_per_nurse_day, '.1f'):>13}"
    )


def format_summary(results: Mapping[int, EvaluationResult]) -> str:
    """format_summary: one line per seed and rule set, then each rule set over all seeds.

    Tuning on one seed fits its noise; the totals over several seeds (episodes caught in time
    over all their episodes, false alerts over all their patient-months) are what to compare.
    """
    header = (
        f"{'seed':>5}  {'rule set':<52} {'caught ≥24h':>14} {'false/pm':>8} {'lookalike/pm':>12}"
    )
    lines = [header]
    totals: dict[str, Group] = {}
    for seed, result in sorted(results.items()):
        for label, (overall, _, _) in result.results.items():
            lines.append(_summary_row(str(seed), label, overall))
            totals.setdefault(label, Group()).add(overall)
    if len(results) > 1:
        lines += [_summary_row("all", label, total) for label, total in totals.items()]
        for label in totals:
            if label == "shipped packs" or label.startswith(CANDIDATE):
                lines += ["", f"== {label}, all seeds", _HEADER]
                lines += _program_lines(results, label)
                lines += _rule_lines(_rules_over(results, label))
        lines += ["", *_kind_lines(results)]
    return "\n".join(lines)


def _kind_lines(results: Mapping[int, EvaluationResult]) -> list[str]:
    """_kind_lines: episodes caught in time per episode kind over all seeds, a column per rule
    set. Kinds differ in how much warning they give, and a total hides which ones a change
    moved."""
    labels = list(next(iter(results.values())).kinds)
    totals: dict[str, dict[str, list[int]]] = {}
    for result in results.values():
        for label in labels:
            for kind, group in result.kinds[label].items():
                counts = totals.setdefault(kind, {}).setdefault(label, [0, 0])
                counts[0] += group.caught
                counts[1] += group.episodes
    lines = ["== by episode kind, all seeds (caught in time / episodes)"]
    lines += [f"  [{n}] {label}" for n, label in enumerate(labels, 1)]
    lines.append(f"  {'':<22}" + "".join(f"{f'[{n}]':>14}" for n in range(1, len(labels) + 1)))
    for kind, by_label in sorted(totals.items()):
        cells = []
        for label in labels:
            caught, episodes = by_label.get(label, [0, 0])
            share = f"{caught / episodes:.0%}" if episodes else "-"
            cells.append(f"{f'{caught}/{episodes} {share}':>14}")
        lines.append(f"  {kind:<22}" + "".join(cells))
    return lines


def _program_lines(results: Mapping[int, EvaluationResult], label: str) -> list[str]:
    """_program_lines: one rule set's figures per program over all seeds (a nurse's caseload is
    often one program, and the overall rate can hide a program above it)."""
    programs: dict[str, Group] = {}
    for result in results.values():
        for name, group in result.results[label][1].items():
            programs.setdefault(name, Group()).add(group)
    return [_row(f"  {name}", group) for name, group in sorted(programs.items())]


def _rules_over(results: Mapping[int, EvaluationResult], label: str) -> dict[str, Group]:
    """_rules_over adds up one rule set's per-rule figures over several seeds' results."""
    rules: dict[str, Group] = {}
    for result in results.values():
        for rule_id, group in result.results[label][2].items():
            rules.setdefault(rule_id, Group()).add(group)
    return rules


def _summary_row(seed: str, label: str, group: Group) -> str:
    share = "-" if group.caught_share is None else format(group.caught_share, ".0%")
    look = group.lookalike_alerts / group.patient_days * 30 if group.patient_days else 0.0
    return (
        f"{seed:>5}  {label[:52]:<52} {f'{group.caught}/{group.episodes} {share}':>14}"
        f" {group.false_per_patient_month or 0.0:>8.2f} {look:>12.2f}"
    )


Cohorts = Mapping[tuple[str, int], EvaluationResult]  # (variant, seed) -> its figures


def format_sets(sets: Mapping[str, Cohorts], describe: Mapping[str, str]) -> str:
    """format_sets: every rule set's figures on each set of cohorts, side by side.

    One column per set (tuning, held-out), summed over its cohorts; a row per figure, then per
    episode kind, then per simulator variant. Rule sets are whatever the results hold (the
    shipped packs, candidates, baselines, the oracles, and any other source of alerts), so a
    new rule set is a new block, not a new layout.
    """
    names = list(sets)
    lines = []
    for name in names:
        cohorts = sets[name]
        first = next(iter(cohorts.values()))
        patients = sum(len(r.labels.programs) for r in cohorts.values())
        episodes = sum(len(r.labels.episodes) for r in cohorts.values())
        days = (first.labels.end - first.labels.start).total_seconds() / 86400
        lines.append(
            f"{name}: {describe.get(name, '')} — {len(cohorts)} cohorts of"
            f" {len(first.labels.programs)} patients x {days:g} days ({patients:,} patients,"
            f" {episodes:,} episodes)"
        )
    labels = list(next(iter(next(iter(sets.values())).values())).results)
    header = f"  {'':<46}" + "".join(f"{name:>18}" for name in names)
    for label in labels:
        totals = {name: _total(sets[name], label) for name in names}
        lines += ["", f"== {label}", header]
        rows: list[tuple[str, Callable[[Group], str]]] = [
            ("episodes caught ≥ 24 h ahead", _share(lambda g: g.caught)),
            ("caught before the ER at all", _share(lambda g: g.caught_before_er)),
            ("median lead, days", lambda g: _fmt(g.median_lead_days, ".1f")),
            ("false clinical alerts / patient-month", lambda g: _fmt(g.false_per_patient_month)),
            ("look-alike alerts / patient-month", lambda g: _fmt(_lookalike_rate(g))),
            ("missing-data/adherence notes / patient-month", _notes_rate),
        ]
        for title, cell in rows:
            lines.append(f"  {title:<46}" + "".join(f"{cell(totals[n]):>18}" for n in names))
        kinds = {name: _kinds(sets[name], label) for name in names}
        for title, count in (
            ("≥ 24 h ahead, by episode kind:", _share(lambda g: g.caught)),
            ("before the ER at all, by episode kind:", _share(lambda g: g.caught_before_er)),
        ):
            lines.append(f"  {title}")
            for kind in sorted({k for by_kind in kinds.values() for k in by_kind}):
                cells = "".join(f"{count(kinds[n].get(kind, Group())):>18}" for n in names)
                lines.append(f"    {kind:<44}" + cells)
        lines.append("  by variant (≥ 24 h ahead, before the ER, false / pm, notes / pm):")
        for name in names:
            for variant in dict.fromkeys(v for v, _ in sets[name]):
                group = Group()
                for (v, _), result in sets[name].items():
                    if v == variant:
                        group.add(result.results[label][0])
                lines.append(
                    f"    {f'{variant} ({name})':<44}"
                    f"{_share(lambda g: g.caught)(group):>18}"
                    f"{_share(lambda g: g.caught_before_er)(group):>18}"
                    f"{_fmt(group.false_per_patient_month):>10}{_notes_rate(group):>10}"
                )
    return "\n".join(lines)


_COMPARED = ("rules only", "anomaly only", "rules + anomaly")


def format_comparison(sets: Mapping[str, Cohorts]) -> str:
    """format_comparison: rules only, anomaly only and rules + anomaly on each set of cohorts
    (a column each), the four figures detection is judged by."""
    names = list(sets)
    labels = [label for label in _COMPARED if label in _labels(sets)]
    header = f"  {'':<24}" + "".join(f"{name:>48}" for name in names)
    sub = f"  {'':<24}" + f"{'≥ 24 h      before ER  lead d  false/pm':>48}" * len(names)
    lines = ["== rules only, anomaly only, rules + anomaly", header, sub]
    for label in labels:
        cells = []
        for name in names:
            g = _total(sets[name], label)
            cells.append(
                f"{_pct(g.caught, g.episodes):>14} {_pct(g.caught_before_er, g.episodes):>14}"
                f" {_fmt(g.median_lead_days, '.1f'):>7} {_fmt(g.false_per_patient_month):>9}"
            )
        lines.append(f"  {label:<24}" + "".join(f"{c:>48}" for c in cells))
    lines.append("  by variant (≥ 24 h ahead / false per patient-month):")
    for name in names:
        for variant in dict.fromkeys(v for v, _ in sets[name]):
            cells = []
            for label in labels:
                group = Group()
                for (v, _), result in sets[name].items():
                    if v == variant:
                        group.add(result.results[label][0])
                cells.append(
                    f"{_pct(group.caught, group.episodes)} / {_fmt(group.false_per_patient_month)}"
                )
            lines.append(f"    {f'{variant} ({name})':<30}" + "".join(f"{c:>22}" for c in cells))
    lines.append(f"    {'':<30}" + "".join(f"{label:>22}" for label in labels))
    return "\n".join(lines)


def sweep_totals(
    sweeps: Sequence[Mapping[str, Mapping[float, Group]]],
) -> dict[str, dict[float, Group]]:
    """sweep_totals: the threshold sweeps of several cohorts, summed per rule set and point."""
    out: dict[str, dict[float, Group]] = {}
    for sweep in sweeps:
        for label, points in sweep.items():
            for scale, group in points.items():
                out.setdefault(label, {}).setdefault(scale, Group()).add(group)
    return out


def format_sweep(curves: Mapping[str, Mapping[str, Mapping[float, Group]]]) -> str:
    """format_sweep: per set of cohorts and rule set, the figures at each threshold multiplier."""
    lines = ["== anomaly threshold sweep (multiplier of the packs' thresholds)"]
    for name, by_label in curves.items():
        for label, points in by_label.items():
            lines.append(f"  {label} ({name}):")
            for scale in sorted(points):
                g = points[scale]
                lines.append(
                    f"    x{scale:<5g} ≥ 24 h {_pct(g.caught, g.episodes):>12}"
                    f"  before ER {_pct(g.caught_before_er, g.episodes):>12}"
                    f"  lead {_fmt(g.median_lead_days, '.1f'):>4} d"
                    f"  false/pm {_fmt(g.false_per_patient_month)}"
                )
    return "\n".join(lines)


def total(cohorts: Cohorts, label: str) -> Group:
    """total: one rule set's overall figures summed over cohorts."""
    return _total(cohorts, label)


def _labels(sets: Mapping[str, Cohorts]) -> list[str]:
    return list(next(iter(next(iter(sets.values())).values())).results)


def _pct(count: int, of: int) -> str:
    return f"{count}/{of} {count / of:.0%}" if of else "-"


def _total(cohorts: Cohorts, label: str) -> Group:
    total = Group()
    for result in cohorts.values():
        total.add(result.results[label][0])
    return total


def _kinds(cohorts: Cohorts, label: str) -> dict[str, Group]:
    kinds: dict[str, Group] = {}
    for result in cohorts.values():
        for kind, group in result.kinds[label].items():
            kinds.setdefault(kind, Group()).add(group)
    return kinds


def _share(count: Callable[[Group], int]) -> Callable[[Group], str]:
    def cell(group: Group) -> str:
        if not group.episodes:
            return "-"
        return f"{count(group)}/{group.episodes} {count(group) / group.episodes:.0%}"

    return cell


def _fmt(value: float | None, spec: str = ".2f") -> str:
    return "-" if value is None else format(value, spec)


def _lookalike_rate(group: Group) -> float | None:
    return group.lookalike_alerts / group.patient_days * 30 if group.patient_days else None


def _notes_rate(group: Group) -> str:
    return _fmt(group.notes_per_patient_month)
