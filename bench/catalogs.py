"""Benchmark catalogs built deterministically from the demo one, so the seed and the LML fake agree."""

from __future__ import annotations

import dataclasses
import datetime
import math
from dataclasses import dataclass

from backend.services.lookup_coordinator import LookupKey
from devtools import demo_catalog as dc
from devtools.demo_catalog import (
    DemoCatalog,
    LibraryAlbum,
    LookupFixture,
    ReleaseFixture,
    RotationRow,
    build_demo_catalog,
)

KINDS = ("demo", "scale", "tier1")
RELEASE_BASE = 100_000_000  # synthetic release ids start above every demo id (all fit in int4)
RELEASE_BLOCK = 1_000  # ids per copy: more than the distinct ids the demo references
TRANSIENT = (dc.LML_TIMEOUT, dc.LML_DEGRADED)  # by design never cached: every open asks LML
TIER3 = (dc.LML_INLINE, dc.LML_RELEASE)
# Rows answered by LML (tier 3) whose designed answer has tracks: an empty answer for one is a failure.
TIER3_WITH_TRACKS = (dc.LML_INLINE, dc.LML_RELEASE, dc.MB_RESCUE, dc.VARIOUS_ARTISTS, dc.TIER2_NULL_IDENTITY)


@dataclass(frozen=True)
class CatalogSpec:
    """Which catalog to build: ``demo``, ``scale`` (``rows`` active rows) or ``tier1`` (one shared release).

    Attributes:
        kind: one of ``KINDS``.
        today: the date the demo catalog is built for (fixes every name and date).
        rows: active rows (``scale`` and ``tier1``; ignored for ``demo``).
        killed_copies: copies of the demo's killed rows (``scale`` only).
        stable: leave out the rows designed to be transient (LML answers timeout/degraded): they are
            never stored, so every walk and every restart asks LML for them again.
    """

    kind: str
    today: datetime.date
    rows: int = 310
    killed_copies: int = 1
    stable: bool = False

    def build(self) -> DemoCatalog:
        base = build_demo_catalog(self.today)
        if self.stable:
            base = without_transient(base)
        if self.kind == "demo":
            return base
        if self.kind == "scale":
            return scaled_catalog(base, self.rows, self.killed_copies)
        if self.kind == "tier1":
            return tier1_catalog(base, self.rows)
        raise ValueError(f"unknown catalog kind {self.kind!r}")

    def cli_args(self) -> list[str]:
        """Arguments for ``python -m bench.fake`` that rebuild this exact catalog."""
        return [
            f"--catalog={self.kind}",
            f"--today={self.today.isoformat()}",
            f"--rows={self.rows}",
            f"--killed-copies={self.killed_copies}",
            *(["--stable"] if self.stable else []),
        ]


def active_ids(catalog: DemoCatalog) -> list[int]:
    """Rotation ids (catalog order from 1, as seeded into a fresh database) of the active rows."""
    return [i + 1 for i, r in enumerate(catalog.rotation) if r.is_active(catalog.today)]


def ids_where(catalog: DemoCatalog, *, active: bool, kinds: tuple[str, ...]) -> list[int]:
    """Rotation ids of rows with the given activity whose expected outcome is in ``kinds``."""
    return [
        i + 1 for i, r in enumerate(catalog.rotation) if r.is_active(catalog.today) == active and r.expected in kinds
    ]


def cacheable_active_ids(catalog: DemoCatalog) -> list[int]:
    """Active rows whose answer a warm worker holds (all but the by-design transient ones)."""
    return [i + 1 for i, r in enumerate(catalog.rotation) if r.is_active(catalog.today) and r.expected not in TRANSIENT]


class _Copier:
    """Copy demo rows with a per-copy name suffix and per-copy release ids."""

    def __init__(self, base: DemoCatalog) -> None:
        self.base = base
        self.albums: list[LibraryAlbum] = []
        self.rows: list[RotationRow] = []
        self.lookups: dict[LookupKey, LookupFixture] = {}
        self.releases: dict[int, ReleaseFixture] = {}
        self._album_copies: dict[tuple[int, int], int] = {}
        self._release_index = {rid: i for i, rid in enumerate(sorted(_referenced_release_ids(base)))}
        if len(self._release_index) >= RELEASE_BLOCK:
            raise ValueError("the demo references more release ids than one synthetic block holds")
        self._copied_releases: set[int] = set()

    def release_id(self, rid: int | None, k: int) -> int | None:
        if rid is None or rid <= 0 or k == 0:
            return rid
        return RELEASE_BASE + k * RELEASE_BLOCK + self._release_index[rid]

    @staticmethod
    def title(title: str | None, k: int) -> str | None:
        return title if k == 0 or not title else f"{title} (Vol. {k + 1})"

    def add_releases(self, k: int) -> None:
        if k in self._copied_releases:
            return
        self._copied_releases.add(k)
        for rid, release in self.base.releases.items():
            new_id = self.release_id(rid, k)
            assert new_id is not None
            self.releases[new_id] = dataclasses.replace(release, release_id=new_id)

    def album(self, index: int, k: int) -> int:
        key = (index, k)
        if key not in self._album_copies:
            album = self.base.albums[index]
            identity = album.identity
            if identity is not None:
                identity = dataclasses.replace(
                    identity, discogs_release_id=self.release_id(identity.discogs_release_id, k)
                )
            title = self.title(album.album_title, k) or album.album_title
            self.albums.append(dataclasses.replace(album, album_title=title, identity=identity))
            self._album_copies[key] = len(self.albums) - 1
        return self._album_copies[key]

    def lookup(self, fixture: LookupFixture, k: int) -> LookupFixture:
        results = tuple(
            dataclasses.replace(
                item,
                artwork=dataclasses.replace(item.artwork, release_id=self.release_id(item.artwork.release_id, k) or 0)
                if item.artwork is not None
                else None,
            )
            for item in fixture.results
        )
        return dataclasses.replace(fixture, results=results)

    def row(self, row: RotationRow, k: int) -> None:
        self.add_releases(k)
        copy = dataclasses.replace(
            row,
            album_title=self.title(row.album_title, k),
            discogs_release_id=self.release_id(row.discogs_release_id, k),
            album_index=self.album(row.album_index, k) if row.album_index is not None else None,
        )
        old_key, new_key = row.lml_key, copy.lml_key
        if old_key is not None and new_key is not None and old_key in self.base.lookups:
            self.lookups[new_key] = self.lookup(self.base.lookups[old_key], k)
        self.rows.append(copy)

    def catalog(self) -> DemoCatalog:
        return DemoCatalog(
            today=self.base.today,
            albums=tuple(self.albums),
            rotation=tuple(self.rows),
            lookups=dict(self.lookups),
            releases=dict(self.releases),
        )


def without_transient(base: DemoCatalog) -> DemoCatalog:
    """The catalog without its designed-transient rows (their albums and fixtures stay, unused)."""
    rotation = tuple(r for r in base.rotation if r.expected not in TRANSIENT)
    return dataclasses.replace(base, rotation=rotation)


def _referenced_release_ids(base: DemoCatalog) -> set[int]:
    ids = {rid for rid in base.releases if rid > 0}
    ids.update(r.discogs_release_id for r in base.rotation if r.discogs_release_id)
    ids.update(a.identity.discogs_release_id for a in base.albums if a.identity and a.identity.discogs_release_id)
    for fixture in base.lookups.values():
        ids.update(i.artwork.release_id for i in fixture.results if i.artwork is not None and i.artwork.release_id > 0)
    return ids


def scaled_catalog(base: DemoCatalog, rows: int, killed_copies: int = 1) -> DemoCatalog:
    """``rows`` active rows copied from the demo (copy k has album "… (Vol. k+1)" and its own release ids).

    Copy 0 is the demo's own active rows in catalog order (the first ``rows`` of them when there
    are more: the demo has 314, 311 when ``stable``). The demo's killed rows follow,
    ``killed_copies`` times (cold rows nobody warms).
    """
    copier = _Copier(base)
    active = base.active_rows()
    for k in range(math.ceil(rows / len(active))):
        for row in active[: rows - k * len(active)]:
            copier.row(row, k)
    for k in range(killed_copies):
        for row in base.killed_rows():
            copier.row(row, k)
    return copier.catalog()


def tier1_catalog(base: DemoCatalog, rows: int) -> DemoCatalog:
    """``rows`` active tier-1 rows that all point at one release: one LML call, the rest cache hits."""
    release_id = min(base.releases)
    active = base.active_rows()
    rotation = tuple(
        dataclasses.replace(
            active[i % len(active)],
            album_title=_Copier.title(active[i % len(active)].album_title or "Untitled", i // len(active)),
            kill_date=None,
            expected=dc.TIER1,
            discogs_release_id=release_id,
            album_index=None,
            tracklist_lookup_attempted_at=None,
        )
        for i in range(rows)
    )
    return DemoCatalog(today=base.today, albums=(), rotation=rotation, lookups={}, releases=dict(base.releases))
