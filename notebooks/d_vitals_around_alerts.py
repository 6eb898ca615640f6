# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # (d) What do vitals do before and after an alert, by program?
#
# **Question.** Around the alerts of each program, how far had the patients' vitals moved from
# their own baseline, how long before the alert did the change start, and do they come back
# after the care team acts?
#
# From the daily aggregate (`analytics.vitals_around_alerts`): for every alert of medium
# severity or above, the patient's daily mean of each vital from 14 days before to 14 days
# after the day it opened, minus their own baseline (the mean of days −14 to −8, before any
# run-up). The lines are the median across alerts, the band the interquartile range; day 0 is
# the day the alert opened. A program's alerts include the shared rules (NEWS2) of its
# patients.

# %%
import matplotlib.pyplot as plt
import pandas as pd
from IPython.display import display

from homecare import analytics
from homecare.figures import enough, human, no_data, style
from homecare.notebooks import open_configured

style()
VITALS = {
    "body_weight": "weight (kg)",
    "heart_rate": "heart rate (/min)",
    "spo2": "SpO2 (%)",
    "systolic_bp": "systolic BP (mmHg)",
    "respiratory_rate": "respiratory rate (/min)",
    "body_temperature": "temperature (°C)",
}
MIN_ALERTS = 3

source = open_configured()
around = analytics.vitals_around_alerts(source, list(VITALS), days_before=14, days_after=14)
around = around.dropna(subset=["change"])
print(
    f"{around['alert_id'].nunique()} alerts with a baseline,"
    f" {around['patient'].nunique()} patients,"
    f" programs: {', '.join(human(p) for p in sorted(around['program'].unique())) or 'none'}"
)

# %% [markdown]
# ## Change from the patient's baseline, per program and vital
#
# Only combinations with at least 3 alerts are drawn; each panel says how many alerts (*n*)
# it summarises. The line is the median across those alerts, the shaded band the middle half
# of them (25th to 75th percentile).

# %%
bands = (
    around.groupby(["program", "type", "day"])["change"]
    .describe(percentiles=[0.25, 0.5, 0.75])
    .reset_index()
)
alerts_per = around.groupby(["program", "type"])["alert_id"].nunique()
shown = alerts_per[alerts_per >= MIN_ALERTS]
programs = sorted({p for p, _ in shown.index})
types = [t for t in VITALS if t in {t for _, t in shown.index}]
if enough(len(shown), 1, f"program-and-vital combinations with {MIN_ALERTS} or more alerts"):
    fig, axes = plt.subplots(
        len(programs),
        len(types),
        figsize=(2.9 * len(types) + 1, 2.4 * len(programs) + 1.2),
        squeeze=False,
        sharex=True,
    )
    for i, program in enumerate(programs):
        for j, vital in enumerate(types):
            ax = axes[i][j]
            rows = bands[(bands["program"] == program) & (bands["type"] == vital)]
            if (program, vital) in shown.index:
                ax.fill_between(
                    rows["day"], rows["25%"], rows["75%"], alpha=0.25, label="middle half"
                )
                ax.plot(rows["day"], rows["50%"], label="median")
                ax.text(0.03, 0.88, f"n={shown[(program, vital)]} alerts", transform=ax.transAxes)
            else:
                no_data(ax, f"fewer than {MIN_ALERTS} alerts")
            ax.axvline(0, color="black", linewidth=0.8)
            ax.axhline(0, color="grey", linewidth=0.5)
            if i == 0:
                ax.set_title(f"change in {VITALS[vital]}")
            if j == 0:
                ax.set_ylabel(human(program))
    axes[0][0].legend(loc="lower left")
    fig.supxlabel("days from the alert (0: the day it opened)")
    fig.suptitle(
        "How far from their own baseline were patients' vitals around an alert?\n"
        "(rows: program; each panel: change from the patient's baseline, in the vital's unit)"
    )
    fig.tight_layout(rect=(0, 0, 1, 0.97))
    plt.show()

# %% [markdown]
# ## How early did the change start?
#
# For each program and vital, the first day before the alert on which the median change
# reached half of its size on the alert's day: a long run-up is time the rules could use.

# %%
rows = []
at_alert = (
    bands[bands["day"] == 0].set_index(["program", "type"])["50%"] if len(bands) else pd.Series()
)
for (program, vital), size in at_alert.items():
    if (program, vital) not in shown.index or size == 0:
        continue
    run_up = bands[
        (bands["program"] == program) & (bands["type"] == vital) & (bands["day"].between(-7, 0))
    ]
    half = run_up[(run_up["50%"] / size) >= 0.5]
    rows.append(
        {
            "program": human(program),
            "vital": VITALS[vital],
            "alerts": int(shown[(program, vital)]),
            "median change at alert": round(size, 2),
            "half of it reached on day": int(half["day"].min()) if len(half) else None,
        }
    )
if enough(len(rows), 1, "program-and-vital combinations with a change on the alert's day"):
    display(pd.DataFrame(rows))

# %%
source.close()
