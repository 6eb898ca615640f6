"""De-identification: what an analyst sees of a patient unless they opt in to more.

By default every frame the analytics layer returns names a patient by a **pseudonym** only —
``P-`` and 12 hex digits of HMAC-SHA256 over the patient's id, keyed with a secret
(``HOMECARE_PSEUDONYM_KEY``). The same key gives the same pseudonym in every call, notebook and
process, so analyses can be joined and re-run; without the key the pseudonym cannot be turned
back into the patient, nor recomputed from a guessed id (a plain hash of a UUID could be).
Changing the key unlinks every earlier output. No name and no birth date leave this layer;
ages leave it in bands, top-coded at 90+ (HIPAA Safe Harbor, 45 CFR 164.514(b)(2)(i)(C):
ages over 89 are aggregated into one category).

This is **pseudonymisation** for analysts working inside the care organisation, not
de-identification for release: event times are kept (adherence, response times and trajectories
are about time), and Safe Harbor would also remove every date element but the year. Outputs
meant to leave the organisation need that, and small-cell suppression, on top.

Identified columns (``patient_id``, ``display_name``, ``birth_date``, staff ids) come only with
an explicit opt-in (``analytics.connect(identified_by=…)``), which is written to ``audit_log``.
"""

from __future__ import annotations

import hashlib
import hmac
import uuid
from dataclasses import dataclass
from datetime import date

__all__ = ["AGE_BANDS", "DEVELOPMENT_KEY", "Pseudonymizer", "age_band", "age_on"]

# Used only when HOMECARE_ENV=development and no key is configured: pseudonyms are then stable
# but not secret (anyone can recompute them), which is fine for simulated data only.
DEVELOPMENT_KEY = "homecare-development-pseudonym-key"
_MIN_KEY_LENGTH = 16
_DOMAIN = b"homecare/patient/v1:"
# Lower bounds of the bands; the last one is open (90+).
AGE_BANDS: tuple[tuple[int, str], ...] = (
    (0, "<30"),
    (30, "30-39"),
    (40, "40-49"),
    (50, "50-59"),
    (60, "60-69"),
    (70, "70-79"),
    (80, "80-89"),
    (90, "90+"),
)


@dataclass(frozen=True)
class Pseudonymizer:
    """Pseudonymizer turns patient ids into stable, keyed pseudonyms.

    >>> p = Pseudonymizer("a secret of sixteen+ chars")
    >>> pid = uuid.UUID("00000000-0000-0000-0000-000000000001")
    >>> p.pseudonym(pid) == p.pseudonym(pid)
    True
    >>> p.pseudonym(pid) != Pseudonymizer("another secret, 16+ chars").pseudonym(pid)
    True
    >>> len(p.pseudonym(pid))
    14
    """

    key: str

    def __post_init__(self) -> None:
        if len(self.key) < _MIN_KEY_LENGTH:
            raise ValueError(f"the pseudonym key needs at least {_MIN_KEY_LENGTH} characters")

    def __repr__(self) -> str:  # never print the key
        return "Pseudonymizer(key=***)"

    def pseudonym(self, patient_id: uuid.UUID) -> str:
        """pseudonym is ``P-`` and 12 hex digits (48 bits: among 100,000 patients the chance
        that any two share one is about 2 in 100,000)."""
        digest = hmac.new(self.key.encode(), _DOMAIN + patient_id.bytes, hashlib.sha256)
        return "P-" + digest.hexdigest()[:12]


def age_on(birth_date: date, on: date) -> int:
    """age_on is the age in whole years on a date.

    >>> age_on(date(1950, 6, 15), date(2026, 6, 14)), age_on(date(1950, 6, 15), date(2026, 6, 15))
    (75, 76)
    """
    before_birthday = (on.month, on.day) < (birth_date.month, birth_date.day)
    return on.year - birth_date.year - int(before_birthday)


def age_band(age: int | None) -> str | None:
    """age_band is the band an age falls in (None stays None: birth date unknown).

    >>> [age_band(a) for a in (29, 30, 79, 89, 90, 104, None)]
    ['<30', '30-39', '70-79', '80-89', '90+', '90+', None]
    """
    if age is None:
        return None
    label = AGE_BANDS[0][1]
    for lower, name in AGE_BANDS:
        if age >= lower:
            label = name
    return label
