"""Figures: the analysts' notebooks' shared conventions for charts people read.

Every figure states its question in the title, labels its axes with units, shows how many
patients or alerts stand behind each mark, shows uncertainty where the samples are small, and
uses words instead of column names. With too little data a notebook says so in a sentence (and
an empty panel says "no data") instead of failing or drawing an empty frame.

Needs the ``notebooks`` extra (matplotlib); imported only by the notebooks.
"""

from __future__ import annotations

import math
from typing import Any

__all__ = ["enough", "human", "no_data", "style", "wilson"]

_WORDS = {
    "heart_failure": "heart failure",
    "copd": "COPD",
    "hypertension": "hypertension",
    "diabetes": "diabetes",
    "post_surgical_rehab": "post-surgical rehab",
    "wound_care": "wound care",
    "oncology": "oncology",
    "age_band": "age band (years)",
    "auto_resolved": "resolved by itself (condition cleared)",
    "retracted": "withdrawn (late data)",
    "called_patient": "called the patient",
    "adjusted_treatment": "adjusted treatment",
    "home_visit": "home visit",
    "sent_to_er": "sent to the ER",
    "false_alarm": "false alarm",
    "device_problem": "device problem",
    "no_action_needed": "no action needed",
    "escalated_to": "reached last",
}


def human(name: object) -> str:
    """human: the words for a program, outcome or column name.

    >>> human("post_surgical_rehab"), human("auto_resolved"), human("some_thing")
    ('post-surgical rehab', 'resolved by itself (condition cleared)', 'some thing')
    """
    text = str(name)
    return _WORDS.get(text, text.replace("_", " "))


def style() -> None:
    """style: readable type (nothing under 9 pt) and light grids for every figure."""
    import matplotlib.pyplot as plt

    plt.rcParams.update(
        {
            "font.size": 10,
            "axes.titlesize": 11,
            "axes.labelsize": 10,
            "xtick.labelsize": 9,
            "ytick.labelsize": 9,
            "legend.fontsize": 9,
            "figure.titlesize": 12,
            "axes.grid": True,
            "grid.alpha": 0.3,
        }
    )


def no_data(ax: Any, reason: str) -> None:
    """no_data marks an empty panel with its reason instead of leaving a blank frame."""
    ax.set_xticks([])
    ax.set_yticks([])
    ax.grid(False)
    ax.text(0.5, 0.5, f"no data: {reason}", ha="center", va="center", transform=ax.transAxes,
            wrap=True, color="#555555")  # fmt: skip


def enough(have: int, need: int, what: str) -> bool:
    """enough prints a sentence and returns False when there is too little data to draw."""
    if have >= need:
        return True
    print(
        f"Too little data for this figure: {have} {what}, at least {need} needed."
        " Run it on a longer or larger cohort (homecare seed, or more days of live data)."
    )
    return False


def wilson(successes: int, trials: int, z: float = 1.96) -> tuple[float, float]:
    """wilson: the 95 % Wilson score interval of a proportion; honest for small samples.

    >>> [round(x, 2) for x in wilson(3, 4)]
    [0.3, 0.95]
    >>> wilson(0, 0)
    (0.0, 1.0)
    """
    if trials <= 0:
        return 0.0, 1.0
    p = successes / trials
    centre = p + z * z / (2 * trials)
    spread = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials))
    denominator = 1 + z * z / trials
    return max(0.0, (centre - spread) / denominator), min(1.0, (centre + spread) / denominator)
