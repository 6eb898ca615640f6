"""Analytics: the cohort data analysts study, as pandas DataFrames, de-identified by default.

Why a top-level package: it has no home in the client's fixed top level. It is not a stage of
the pipeline (``ingest/`` → ``rules/`` → ``alerts/``: nothing flows on from it), not the API
(it serves analysts' notebooks, not the care team, and returns frames, not JSON), and it
cannot live in ``notebooks/``, which holds the analyses themselves — the point of this package
is that notebooks hold analysis, not SQL plumbing, and that every notebook reads the store
through the same tested definitions (what a day with readings is, what time to acknowledge
is) and the same de-identification. Like ``store/`` and ``catalogue/`` it is shared ground:
it reads the store (from the continuous aggregates where they serve: ``readings_daily``) and
scores with the rules' evaluation harness (``rules.harness``), and imports no later stage.

Modules, one job each: ``deid`` (pseudonyms, age bands), ``source`` (the read-only connection,
the de-identification policy, the cohort), ``adherence`` (days with readings, drop-off),
``alerts`` (alert burden and nurse response), ``trajectories`` (vitals around alerts),
``detection`` (the harness's figures on a labelled simulated cohort).

>>> from homecare import analytics
>>> sorted(analytics.__all__) == analytics.__all__
True
"""

from homecare.analytics.adherence import adherence, dropoff, weekly_activity
from homecare.analytics.alerts import alert_burden, alerts
from homecare.analytics.deid import AGE_BANDS, DEVELOPMENT_KEY, Pseudonymizer, age_band, age_on
from homecare.analytics.detection import Detection, detection, load_labels
from homecare.analytics.source import (
    IdentifiedAccessError,
    Source,
    connect,
    patients,
)
from homecare.analytics.trajectories import vitals_around_alerts

__all__ = [
    "AGE_BANDS",
    "DEVELOPMENT_KEY",
    "Detection",
    "IdentifiedAccessError",
    "Pseudonymizer",
    "Source",
    "adherence",
    "age_band",
    "age_on",
    "alert_burden",
    "alerts",
    "connect",
    "detection",
    "dropoff",
    "load_labels",
    "patients",
    "vitals_around_alerts",
    "weekly_activity",
]
