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
#   homecare_needs: labels
# ---

# %% [markdown]
# # (c) How well do the rules catch deterioration on a labelled simulated cohort?
#
# **Question.** Of the labelled deterioration episodes, how many did the rules flag at least
# 24 hours before the emergency-room visit, how early, and at what cost in false alerts — per
# program and per rule?
#
# Only a simulated cohort has ground truth: this notebook needs the labels written by
# `homecare seed` (the runner passes their path in `HOMECARE_SIM_LABELS`). The scoring is the
# evaluation harness's own (`rules/harness.py`, reused by `analytics.detection`), so the
# figures are defined exactly as `homecare evaluate` prints them: an episode is *caught in
# time* when an alert of medium severity or above falls between 12 h before its onset and
# 24 h before its ER visit; alerts outside every episode window are *false*, those inside a
# harmless look-alike's window are counted apart. Two views: the rules' findings (what
# `homecare evaluate` scores), and the alerts that reached the nurses (after de-duplication).

# %%
import os

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.ticker import FuncFormatter

from homecare import analytics
from homecare.figures import enough, human, no_data, style, wilson
from homecare.notebooks import open_configured

style()

labels = analytics.load_labels(os.environ["HOMECARE_SIM_LABELS"])
source = open_configured()
findings = analytics.detection(source, labels, of="findings")
alerts = analytics.detection(source, labels, of="alerts")
print(
    f"{len(labels.programs)} labelled patients, {len(labels.episodes)} episodes,"
    f" {len(labels.lookalikes)} look-alikes, {labels.patient_days:.0f} patient-days"
)
pd.concat({"findings": findings.overall, "alerts": alerts.overall}).round(2)

# %% [markdown]
# ## Per program

# %%
table = findings.by_program.set_index("program")
table.round(2)

# %%
fig, (left, right) = plt.subplots(1, 2, figsize=(13, 4.5))
shown = table[table["episodes"] > 0]
names = [human(p) for p in table.index]
if len(shown):
    low, high = zip(
        *(wilson(c, n) for c, n in zip(shown["caught"], shown["episodes"], strict=True)),
        strict=True,
    )
    errors = [
        (shown["caught_share"] - low).clip(lower=0),
        (high - shown["caught_share"]).clip(lower=0),
    ]
    labels = [human(p) for p in shown.index]
    left.barh(labels, shown["caught_share"], xerr=errors, color="#55a868", capsize=3)
    for y, (caught, episodes) in enumerate(zip(shown["caught"], shown["episodes"], strict=True)):
        left.text(0.01, y, f"{caught}/{episodes} episodes", va="center")
    left.axvline(0.85, color="black", linestyle=":", label="target 85 %")
    left.legend()
else:
    no_data(left, "no labelled episode in this cohort")
left.set_xlim(0, 1)
left.set_xlabel("share of episodes alerted ≥ 24 h before the ER visit (bar: 95 % interval)")
left.set_title("How many deteriorations were caught in time?")
left.set_ylabel("program")
right.barh(names, table["false_per_patient_month"], color="#c44e52", label="false")
right.barh(
    names,
    table["lookalike_per_patient_month"],
    left=table["false_per_patient_month"],
    color="#f2b5b5",
    label="look-alike",
)
right.axvline(2, color="black", linestyle=":", label="target ≤ 2")
right.set_xlabel("false alerts per patient-month")
right.set_ylabel("program")
right.set_title("At what cost in false alerts?")
right.legend()
fig.tight_layout()
plt.show()

# %% [markdown]
# ## Lead time and the episodes' view of each rule
#
# Lead time is from the first alert in the episode's window to the ER visit. Per rule:
# episodes it caught in time against the false and look-alike alerts it raised — a rule that
# catches nothing and raises many false alerts is the first to tune.

# %%
rules = findings.by_rule.set_index("rule_id").sort_values("false_alerts", ascending=False)
if enough(len(rules), 1, "rules that raised an alert"):
    fig, ax = plt.subplots(figsize=(10, max(3, 0.32 * len(rules) + 1)))
    ax.barh(rules.index, rules["false_alerts"], color="#c44e52", label="false alerts")
    ax.barh(rules.index, -rules["caught"], color="#55a868", label="episodes caught in time")
    ax.axvline(0, color="black", linewidth=0.8)
    # Counts on both sides of zero: the left side's ticks are counts too, not negatives.
    ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _: f"{abs(x):g}"))
    ax.set_xlabel("← episodes caught in time (count) | false alerts (count) →")
    ax.set_ylabel("rule")
    ax.set_title("Which rules catch deteriorations, and which only raise false alerts?")
    ax.legend()
    fig.tight_layout()
    plt.show()
print(f"median lead time: {findings.overall['median_lead_days'].iloc[0]:.1f} days")
rules[["caught", "false_alerts", "lookalike_alerts", "alerts"]]

# %%
source.close()
