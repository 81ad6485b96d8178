"""Station roles and the permissions each holds (upstream's access-control table, the part we enforce)."""

from __future__ import annotations

from collections.abc import Mapping

CATALOG_READ = "catalog:read"

# Organisation member role -> permissions. Add a permission here and check it with
# ``Authenticator.authenticate(header, permission=...)``.
ROLE_PERMISSIONS: Mapping[str, frozenset[str]] = {
    "member": frozenset({CATALOG_READ}),
    "dj": frozenset({CATALOG_READ}),
    "musicDirector": frozenset({CATALOG_READ}),
    "stationManager": frozenset({CATALOG_READ}),
}

# better-auth's organisation roles that upstream treats as another role.
ROLE_ALIASES: Mapping[str, str] = {"admin": "stationManager", "owner": "stationManager"}


def resolve_role(role: str) -> str | None:
    """Return the effective role for ``role`` (aliases applied), or None when it is not a station role."""
    role = ROLE_ALIASES.get(role, role)
    return role if role in ROLE_PERMISSIONS else None


def has_permission(role: str, permission: str) -> bool:
    """Whether the effective ``role`` holds ``permission`` (unknown roles hold nothing)."""
    return permission in ROLE_PERMISSIONS.get(role, frozenset())
