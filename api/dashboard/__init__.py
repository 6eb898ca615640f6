"""Dashboard: the nurse dashboard, served by the API — server-rendered pages.

Sign-in; the worklist (one row per patient who needs attention, most urgent first, updated
live from the API's alert stream) and the alert view (one row per alert); a patient page
(vitals over 7/30/90 days with the patient's thresholds, NEWS2, alerts and notes); and
acknowledge / resolve / silence from the page; in French (fr-CA, the default) and English, with
times in the care team's time zone. It uses the API's sign-in, scoping, audit and queries, and
the alerts stage's service for every change, so it can see and do exactly what the API lets the
same user see and do.

Public surface: ``router`` (included by ``api.app.create_app``).
"""

from fastapi import APIRouter

from homecare.api.dashboard import account, actions, pages, static

__all__ = ["router"]

router = APIRouter(include_in_schema=False)
router.include_router(static.router)
router.include_router(account.router)
router.include_router(pages.router)
router.include_router(actions.router)
