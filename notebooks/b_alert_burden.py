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
# # (b) What do the alerts cost the care team, and how does the team respond?
#
# **Question.** How many alerts does each program produce per patient-month, how long do
# they wait for a nurse, how are they closed, and which ones escalate?
#
# Definitions (`analytics/alerts.py`): *time to acknowledge* runs from the alert's opening to
# its first acknowledgement; *escalations* are steps along the chain (primary nurse → nurse on
# duty → physician on call) when nobody acknowledged in time; *paged* alerts are those that
# notified someone — inhibited, silenced, late and flapping ones wait in the queue without a
# page. Hours of day are shown in the care team's time zone below.

# %%
import matplotlib.pyplot as plt
import pandas as pd
from IPython.display import display

from homecare import analytics
from homecare.figures import enough, human, style
from homecare.notebooks import open_configured

style()

CARE_TEAM_TZ = "America/Toronto"
SEVERITIES = ["low", "medium", "high", "critical"]

source = open_configured()
alerts = analytics.alerts(source)
burden = analytics.alert_burden(source)
print(f"{len(alerts)} alerts, {int(alerts['paged'].sum())} of them paged")
burden.round(2)

# %% [markdown]
# ## Alerts per patient-month, by program

# %%
if enough(len(alerts), 1, "alerts"):
    rows = burden[burden["program"] != "all"].set_index("program")
    fig, ax = plt.subplots(figsize=(9, 3.8))
    rows[["paged_per_patient_month", "alerts_per_patient_month"]].rename(
        columns={"paged_per_patient_month": "paged", "alerts_per_patient_month": "all alerts"}
    ).plot.barh(ax=ax, color=["#c44e52", "#8c8c8c"])
    overall = burden.set_index("program").loc["all", "alerts_per_patient_month"]
    ax.axvline(overall, color="black", linestyle=":", label=f"all programs: {overall:.1f}")
    ax.set_xlabel("alerts per patient-month (30 monitored days)")
    ax.set_title("How many alerts does a patient bring each month, by program?")
    ax.legend()
    fig.tight_layout()
    plt.show()

# %% [markdown]
# ## Time to acknowledge
#
# Medians by severity, and by the hour (care team's time) the alert opened: alerts opened at
# night wait for the morning unless they are urgent enough to page the on-call nurse.

# %%
acked = alerts.dropna(subset=["minutes_to_ack"])
acked = acked.assign(hour=acked["opened_at"].dt.tz_convert(CARE_TEAM_TZ).dt.hour)
if enough(len(acked), 1, "acknowledged alerts"):
    table = acked.groupby("severity")["minutes_to_ack"].describe(percentiles=[0.5, 0.9])
    table = table.reindex([s for s in SEVERITIES if s in table.index])[["count", "50%", "90%"]]
    print("minutes to acknowledge (median, 90th percentile):")
    table.round(0)

# %%
if enough(len(acked), 1, "acknowledged alerts"):
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4))
    present = [s for s in SEVERITIES if s in set(acked["severity"])]
    left.boxplot([acked.loc[acked["severity"] == s, "minutes_to_ack"] for s in present])
    left.set_xticks(
        range(1, len(present) + 1),
        [f"{s}\n(n={int((acked['severity'] == s).sum())})" for s in present],
    )
    left.set_yscale("log")
    left.set_ylabel("minutes to acknowledge (log scale)")
    left.set_title("How long until a nurse acknowledges, by severity?")
    left.set_xlabel("severity (n: acknowledged alerts)")
    by_hour = acked.groupby("hour")["minutes_to_ack"].median().reindex(range(24))
    right.bar(by_hour.index, by_hour.values, color="#4c72b0")
    right.set_xlabel(f"hour the alert opened ({CARE_TEAM_TZ})")
    right.set_ylabel("median minutes to acknowledge")
    right.set_title("…and by the hour the alert opened")
    fig.tight_layout()
    plt.show()

# %% [markdown]
# ## How alerts are closed
#
# Outcomes chosen by nurses, and those of the system (*auto_resolved*: the condition stayed
# clear for the hold time and the rule allows it; *retracted*: late data withdrew the
# evidence). An outcome mix heavy in false alarms points at a rule to tune.

# %%
if enough(int(alerts["outcome"].notna().sum()), 1, "resolved alerts with an outcome"):
    outcomes = (
        alerts.dropna(subset=["outcome"])
        .groupby(["severity", "outcome"])
        .size()
        .unstack(fill_value=0)
        .reindex([s for s in SEVERITIES if s in set(alerts["severity"])])
    )
    shares = outcomes.div(outcomes.sum(axis=1), axis=0)
    fig, ax = plt.subplots(figsize=(10, 3.8))
    shares.rename(columns=human).plot.barh(stacked=True, ax=ax, colormap="tab20")
    ax.set_yticks(
        range(len(shares)), [f"{s} (n={int(outcomes.loc[s].sum())})" for s in shares.index]
    )
    ax.set_ylabel("severity (n: resolved alerts)")
    ax.set_xlabel("share of resolved alerts")
    ax.set_title("How were alerts closed, by severity?")
    ax.legend(ncol=3, loc="upper center", bbox_to_anchor=(0.5, -0.2))
    fig.tight_layout()
    plt.show()
    display(outcomes)

# %% [markdown]
# ## Escalations
#
# Share of paged alerts that escalated at least one step, by severity and by whether they
# opened during the day shift (08:00–20:00) or at night, and who was reached last.

# %%
paged = alerts[alerts["paged"].astype(bool)]
paged = paged.assign(
    shift=paged["opened_at"]
    .dt.tz_convert(CARE_TEAM_TZ)
    .dt.hour.map(lambda h: "day" if 8 <= h < 20 else "night"),
    escalated=paged["escalations"] > 0,
)
if enough(len(paged), 1, "paged alerts"):
    escalated = paged.pivot_table(
        index="severity", columns="shift", values="escalated", aggfunc="mean"
    ).reindex([s for s in SEVERITIES if s in set(paged["severity"])])
    fig, ax = plt.subplots(figsize=(8, 3.5))
    escalated.plot.bar(ax=ax, color={"day": "#dd8452", "night": "#4c72b0"})
    ax.set_ylim(0, 1)
    ax.set_ylabel("share of paged alerts escalated")
    ax.set_xlabel("severity")
    ax.set_title("How often does a paged alert escalate, day shift vs night?")
    fig.tight_layout()
    plt.show()
    pd.crosstab(paged["severity"], paged["escalated_to"].fillna("not escalated"))

# %%
source.close()
