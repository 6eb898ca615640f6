"""API stage: the REST API (``/api/v1``, docs/contracts.md), access control and the live stream.

Public surface: ``create_app`` (what ``homecare api`` serves), its ``ApiConfig``, the
``Principal`` every route acts for and the dependencies that make one (``require_principal``,
``require_role``, ``SESSION_COOKIE`` for the dashboard), the accounts operations the command
line uses (``create_user``, ``issue_token``, …) and the audit writer.
"""

from homecare.api.accounts import (
    ROLES,
    IssuedToken,
    Principal,
    Role,
    add_member,
    create_care_team,
    create_user,
    find_user,
    issue_token,
)
from homecare.api.app import API_PREFIX, create_app
from homecare.api.audit import record as audit_record
from homecare.api.auth import SESSION_COOKIE, CurrentPrincipal, require_principal, require_role
from homecare.api.config import ApiConfig

__all__ = [
    "API_PREFIX",
    "ROLES",
    "SESSION_COOKIE",
    "ApiConfig",
    "CurrentPrincipal",
    "IssuedToken",
    "Principal",
    "Role",
    "add_member",
    "audit_record",
    "create_app",
    "create_care_team",
    "create_user",
    "find_user",
    "issue_token",
    "require_principal",
    "require_role",
]
