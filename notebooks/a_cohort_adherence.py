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
# # (a) Who is monitored, and how well do they adhere?
#
# **Question.** How is the cohort made up (programs, ages), on what share of their monitored
# days do patients actually take readings, and how fast does that fade after enrolment?
#
# Definitions are the analytics layer's (`analytics/adherence.py`): a *day with readings* is a
# UTC day with at least one stored reading; a patient's monitored days run from the day they
# were equipped; the *drop-off curve* is, week by week since enrolment, the share of patients
# who measured on at least 3 days of that week (Tele-HF's "used it three times a week").
# Patients are pseudonyms and ages are bands; a patient in two programs counts in both.

# %%
import matplotlib.pyplot as plt
from IPython.display import display

from homecare import analytics
from homecare.figures import enough, human, style, wilson
from homecare.notebooks import open_configured

style()

source = open_configured()
cohort = analytics.patients(source)
print(
    f"{len(cohort)} monitored patients, observed until {source.observation_end():%Y-%m-%d},"
    f" {cohort['monitored_days'].sum() / 30:.0f} patient-months"
)

# %% [markdown]
# ## The cohort

# %%
if enough(len(cohort), 1, "monitored patients"):
    by_program = cohort.explode("programs")["programs"].value_counts().sort_index()
    bands = cohort["age_band"].value_counts().reindex(list(dict(analytics.AGE_BANDS).values()))
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 3.5))
    by_program.rename(index=human).plot.barh(ax=left, color="#4c72b0")
    left.set_ylabel("program")
    left.set_title("Which programs are the patients in?\n(a comorbid patient counts in each)")
    left.set_xlabel("patients")
    bands.fillna(0).plot.bar(ax=right, color="#55a868")
    right.set_title("How old are they?")
    right.set_xlabel("age band (years)")
    right.set_ylabel("patients")
    fig.tight_layout()
    plt.show()

# %% [markdown]
# ## Share of monitored days with readings, per program

# %%
days = analytics.adherence(source)
if enough(len(days), 1, "patients with monitored days"):
    summary = (
        days.groupby("program")["share"]
        .describe(percentiles=[0.25, 0.5, 0.75])[["count", "25%", "50%", "75%"]]
        .rename(columns={"count": "patients", "50%": "median"})
    )
    display(summary)

# %%
if enough(len(days), 1, "patients with monitored days"):
    order = summary.sort_values("median").index.tolist()
    fig, ax = plt.subplots(figsize=(9, 3.8))
    ax.boxplot([days.loc[days["program"] == p, "share"] for p in order], orientation="horizontal")
    ax.set_yticks(
        range(1, len(order) + 1),
        [f"{human(p)} (n={int(summary.loc[p, 'patients'])})" for p in order],
    )
    ax.set_ylabel("program (n: patients)")
    ax.set_xlim(0, 1)
    ax.set_xlabel("share of monitored days with at least one reading (one point per patient)")
    ax.set_title("On what share of their days do patients take readings, by program?")
    fig.tight_layout()
    plt.show()

# %% [markdown]
# ## Drop-off after enrolment
#
# Each line is one program: of the patients monitored for the whole of week *k*, the share who
# measured on at least 3 days of it. A patient's last, partial week is left out rather than
# counted as a lapse.

# %%
curve = analytics.dropoff(source, min_days=3)
weeks = analytics.weekly_activity(source)
weeks = weeks[weeks["monitored_days"] == 7]
mean_share = (
    weeks.assign(share=weeks["days_with_readings"] / 7).groupby(["program", "week"])["share"].mean()
)
# A curve needs at least two complete weeks; a single point says nothing about a drop-off.
drawn = [p for p, rows in curve.groupby("program") if rows["week"].nunique() >= 2]
if enough(len(drawn), 1, "programs with two or more complete weeks of monitoring"):
    fig, (left, right) = plt.subplots(1, 2, figsize=(13, 4.5), sharex=True)
    for program in drawn:
        rows = curve[curve["program"] == program]
        low, high = zip(
            *(wilson(a, n) for a, n in zip(rows["active"], rows["patients"], strict=True)),
            strict=True,
        )
        label = f"{human(program)} (n={int(rows['patients'].max())})"
        # Side by side within each week, so the programs' intervals do not hide each other.
        dodge = (drawn.index(program) - (len(drawn) - 1) / 2) * 0.08
        left.errorbar(
            rows["week"] + dodge,
            rows["share"],
            yerr=[(rows["share"] - low).clip(lower=0), (high - rows["share"]).clip(lower=0)],
            marker="o",
            capsize=2,
            linewidth=1,
            label=label,
        )
        right.plot(mean_share[program].index, mean_share[program].values, marker="o", label=label)
    left.set_ylim(0, 1.02)
    left.set_ylabel("share measuring on ≥ 3 days that week")
    left.set_title("Do patients keep measuring week after week?\n(bars: 95 % interval)")
    right.set_ylim(0, 1.02)
    right.set_ylabel("mean share of the week's days with readings")
    right.set_title("Do they measure on fewer days as weeks pass?")
    for ax in (left, right):
        ax.set_xlabel("week since enrolment")
    right.legend(ncol=2, title="program (n: patients in week 0)")
    fig.tight_layout()
    plt.show()

# %% [markdown]
# ## Who needs a nudge?
#
# Patients below half of their days: pseudonyms only — the care team re-identifies them in
# the dashboard, where access is per patient and audited.

# %%
low = days[days["share"] < 0.5].sort_values("share")
print(f"{low['patient'].nunique()} of {days['patient'].nunique()} patients below 50 % of days")
low.head(10)

# %%
source.close()
