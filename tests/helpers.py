"""Small helpers shared by the integration and end-to-end tests."""

from __future__ import annotations

from devtools.demo_catalog import DemoCatalog


def row_id(catalog: DemoCatalog, outcome: str, n: int = 0, *, active: bool = True) -> int:
    """The rotation id of the n-th catalog row designed for ``outcome``."""
    rows = [
        i + 1 for i, r in enumerate(catalog.rotation) if r.expected == outcome and r.is_active(catalog.today) == active
    ]
    return rows[n]
