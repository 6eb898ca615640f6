"""Plot: episodes caught ≥ 24 h ahead against false clinical alerts as the anomaly threshold
moves, one curve per rule set and set of cohorts, the chosen operating point marked.

matplotlib is an optional dependency (the ``test`` extra): ``homecare evaluate`` imports this
module only when asked for a plot, and says so if matplotlib is missing.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from homecare.rules.harness import Group

__all__ = ["plot_operating_points"]


def plot_operating_points(
    curves: Mapping[str, Mapping[str, Mapping[float, Group]]],
    fixed: Mapping[str, Mapping[str, Group]],
    chosen: float,
    path: Path,
) -> Path:
    """plot_operating_points writes the PNG: ``curves`` is set of cohorts -> rule set ->
    threshold multiplier -> figures; ``fixed`` is set -> rule set -> figures of a rule set the
    threshold does not move (rules only), drawn as one point."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(8, 5.5), dpi=120)
    styles = ["-", "--", ":", "-."]
    markers = ["o", "s", "^", "D"]
    for s, (name, by_set) in enumerate(curves.items()):
        for r, (label, points) in enumerate(by_set.items()):
            scales = sorted(points)
            x = [points[k].false_per_patient_month or 0.0 for k in scales]
            y = [100 * (points[k].caught_share or 0.0) for k in scales]
            (line,) = axes.plot(
                x, y, styles[s % 4], marker=markers[r % 4], ms=3, label=f"{label} ({name})"
            )
            if chosen in points:
                at = points[chosen]
                axes.plot(
                    at.false_per_patient_month or 0.0, 100 * (at.caught_share or 0.0), "*",
                    ms=14, color=line.get_color(), markeredgecolor="black",
                )  # fmt: skip
        for label, group in fixed.get(name, {}).items():
            axes.plot(
                group.false_per_patient_month or 0.0, 100 * (group.caught_share or 0.0),
                "X", ms=10, label=f"{label} ({name})",
            )  # fmt: skip
    axes.set_xlabel("false clinical alerts per patient-month")
    axes.set_ylabel("episodes alerted ≥ 24 h before the ER visit (%)")
    axes.set_title(f"Anomaly threshold sweep (★ chosen: × {chosen:g} of the packs' thresholds)")
    axes.grid(alpha=0.3)
    axes.legend(fontsize=7, loc="lower right")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)
    plt.close(figure)
    return path
