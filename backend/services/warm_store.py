"""The host walk's results: an append-only log the main process writes and every worker replays.

Entries are plain tuples (picklable across processes, immutable):

    ("row", rotation_id, outcome, release_id | None, tracks | None, expires_at)
    ("rel", release_id, tracks | None, expires_at)         # tracks None: LML 404
    ("inv", rotation_id)                                    # the row changed: forget it
    ("inv_all",)                                            # notifications were missed: forget all rows

``tracks`` is a tuple of ``(position, title, duration, artists)``; ``expires_at`` is
``time.monotonic()`` seconds, which on Linux is one clock for every process on the host. A worker
replays the log in order, so an invalidation published after a result always wins over it.
"""

from __future__ import annotations

import logging
import os
import pickle
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from backend.models import RotationTrack, Tracklist
from backend.services.caches import ExpiringCache
from backend.services.release_tracklists import ReleaseFetch
from backend.services.rotation_resolver import CACHEABLE, CachedAnswer, Outcome, PickerSource, Resolution

logger = logging.getLogger(__name__)

Entry = tuple[Any, ...]
WireTracks = tuple[tuple[str, str, "str | None", tuple[str, ...]], ...]


class _Lock(Protocol):
    def __enter__(self) -> Any: ...

    def __exit__(self, *args: Any) -> Any: ...


class _Counter(Protocol):
    value: int


@dataclass
class WarmShared:
    """The multiprocessing objects that carry the log between processes.

    Attributes:
        log: a ``Manager().list()`` of entries.
        status: a ``Manager().dict()`` with the host walk's state for status endpoints.
        lock: guards ``log`` together with ``epoch`` and ``published``.
        epoch: bumped when the log is compacted (readers start over).
        published: entries appended so far in this epoch (readers poll it without IPC).
        walks: completed walks (workers log "warm" once per walk).
        snapshot_path: bytes of a file path (a ``multiprocessing.Array("c")``); after each
            compaction the log is also written there, so a starting worker loads it without a
            round trip to the Manager process (which is slow while workers respawn). Empty: none.
    """

    log: Any
    status: Any
    lock: _Lock
    epoch: _Counter
    published: _Counter
    walks: _Counter
    snapshot_path: Any = None

    FIELDS = ("log", "status", "lock", "epoch", "published", "walks", "snapshot_path")

    def snapshot_file(self) -> str | None:
        if self.snapshot_path is None:
            return None
        path = bytes(self.snapshot_path.value).decode()
        return path or None

    def to_shared_ctx(self, shared_ctx: Any, prefix: str = "warm") -> None:
        for name in self.FIELDS:
            setattr(shared_ctx, f"{prefix}_{name}", getattr(self, name))

    @classmethod
    def from_shared_ctx(cls, shared_ctx: Any, prefix: str = "warm") -> WarmShared | None:
        """The objects the main process published, or None without a main process."""
        try:
            return cls(**{name: getattr(shared_ctx, f"{prefix}_{name}") for name in cls.FIELDS})
        except AttributeError:
            return None


def encode_tracks(tracks: Tracklist | None) -> WireTracks | None:
    """Plain tuples for the wire (a RotationTrack is a NamedTuple: ``tuple(t)`` is its fields)."""
    if tracks is None:
        return None
    return tuple(tuple(t) for t in tracks)  # type: ignore[misc]


def decode_tracks(wire: WireTracks | None) -> Tracklist | None:
    if wire is None:
        return None
    make = RotationTrack._make
    return tuple(make(t) for t in wire)


def row_entries(
    rotation_id: int,
    resolution: Resolution,
    fetched: ReleaseFetch | None,
    *,
    row_expires_at: float | None,
    release_expires_at: float | None,
) -> list[Entry]:
    """What one walked row contributes to the log (nothing for transient LML errors)."""
    entries: list[Entry] = []
    source = resolution.source
    if resolution.outcome in CACHEABLE and row_expires_at is not None:
        entries.append(
            (
                "row",
                rotation_id,
                resolution.outcome.value,
                source.release_id if source else None,
                encode_tracks(source.inline_tracklist) if source else None,
                row_expires_at,
            )
        )
    release_id = source.release_id if source else None
    if fetched is not None and release_expires_at is not None and release_id is not None:
        wire = None if fetched.tracks is None else encode_tracks(fetched.tracks)
        entries.append(("rel", release_id, wire, release_expires_at))
    return entries


class WarmLogWriter:
    """The main process's side: append results and invalidations, compact between walks."""

    def __init__(self, shared: WarmShared) -> None:
        self._shared = shared
        self._versions: dict[int, int] = {}
        self._generation = 0  # bumped by invalidate_all

    def version(self, rotation_id: int) -> tuple[int, int]:
        """A row's invalidation version; a result resolved under an older version is stale."""
        return self._generation, self._versions.get(rotation_id, 0)

    def publish(self, entries: Sequence[Entry]) -> None:
        if not entries:
            return
        s = self._shared
        with s.lock:
            s.log.extend(entries)
            s.published.value += len(entries)

    def invalidate(self, rotation_ids: Sequence[int]) -> None:
        for rid in rotation_ids:
            self._versions[rid] = self._versions.get(rid, 0) + 1
        self.publish([("inv", rid) for rid in rotation_ids])

    def invalidate_all(self) -> None:
        self._generation += 1
        self.publish([("inv_all",)])

    def compact(self, now: float) -> int:
        """Rewrite the log as the latest live entry per key; readers start over. Returns its length.

        The compacted log is also written to the snapshot file (atomically replaced).
        """
        s = self._shared
        with s.lock:
            entries = list(s.log)
            compacted = compact_entries(entries, now)
            s.log[:] = compacted
            s.epoch.value += 1
            s.published.value = len(compacted)
            epoch = s.epoch.value
        path = s.snapshot_file()
        if path is not None:
            _write_snapshot(path, (epoch, len(compacted), compacted))
        return len(compacted)


def _write_snapshot(path: str, snapshot: tuple[int, int, list[Entry]]) -> None:
    tmp = f"{path}.tmp"
    try:
        with open(tmp, "wb") as f:
            pickle.dump(snapshot, f, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(tmp, path)
    except OSError as exc:  # the snapshot is an optimisation: the log is the truth
        logger.warning("warm snapshot not written path=%s error=%r", path, exc)


def compact_entries(entries: Sequence[Entry], now: float) -> list[Entry]:
    """Replay ``entries`` and keep only what a fresh reader would end up with."""
    rows: dict[int, Entry] = {}
    releases: dict[int, Entry] = {}
    for entry in entries:
        kind = entry[0]
        if kind == "row":
            rows[entry[1]] = entry
        elif kind == "rel":
            releases[entry[1]] = entry
        elif kind == "inv":
            rows.pop(entry[1], None)
        elif kind == "inv_all":
            rows.clear()
    live_rows = [e for e in rows.values() if e[5] > now]
    live_releases = [e for e in releases.values() if e[3] > now]
    return live_releases + live_rows


class WarmLogReader:
    """A worker's side: read what was appended since the last read (blocking IPC; call off-loop)."""

    def __init__(self, shared: WarmShared) -> None:
        self._shared = shared
        self._epoch = -1
        self._offset = 0

    def read_snapshot(self) -> list[Entry] | None:
        """Load the latest compacted log from the snapshot file, without IPC; None if there is none.

        The reader then continues from the snapshot's position; anything published after it (or a
        newer compaction) shows up in :meth:`has_new` as usual.
        """
        path = self._shared.snapshot_file()
        if path is None:
            return None
        try:
            with open(path, "rb") as f:
                epoch, published, entries = pickle.load(f)
        except (OSError, EOFError, pickle.UnpicklingError, ValueError):
            return None
        self._epoch, self._offset = epoch, published
        return list(entries)

    def has_new(self) -> bool:
        """Cheap check (shared memory, no IPC): anything published since the last read?"""
        s = self._shared
        return s.epoch.value != self._epoch or s.published.value != self._offset

    def read_new(self) -> tuple[bool, list[Entry]]:
        """Return ``(restart, entries)``; ``restart`` means the log was compacted: replay from scratch."""
        s = self._shared
        with s.lock:
            restart = s.epoch.value != self._epoch
            if restart:
                self._epoch = s.epoch.value
                self._offset = 0
            entries = list(s.log[self._offset :])
            self._offset += len(entries)
        return restart, entries


@dataclass
class ApplyResult:
    rows: int = 0
    releases: int = 0
    invalidated: int = 0


@dataclass
class WorkerCaches:
    """A process's caches: filled by live traffic and by replaying the log.

    Built once in the app factory, so they outlive one server start under test clients.
    """

    rotation: ExpiringCache[int, CachedAnswer]
    release_positive: ExpiringCache[int, Tracklist]
    release_negative: ExpiringCache[int, bool]


def _grow(cache: ExpiringCache[Any, Any], incoming: int, replay: bool) -> None:
    # A replay of the compacted log re-sends keys the cache already holds: size for the larger
    # of the two, not their sum, or every compaction would inflate the bound.
    cache.grow_to_hold(max(len(cache), incoming) if replay else len(cache) + incoming)


def apply_entries(
    entries: Sequence[Entry],
    caches: WorkerCaches,
    on_invalidate_all: Callable[[], None] | None = None,
    *,
    replay: bool = False,
) -> ApplyResult:
    """Replay ``entries`` into a worker's caches, growing them to fit first.

    ``replay`` says the entries are the whole (compacted) log again rather than new ones.
    """
    result = ApplyResult()
    rotation_cache = caches.rotation
    row_count = sum(1 for e in entries if e[0] == "row")
    release_count = sum(1 for e in entries if e[0] == "rel")
    _grow(rotation_cache, row_count, replay)
    _grow(caches.release_positive, release_count, replay)
    _grow(caches.release_negative, release_count, replay)
    for entry in entries:
        kind = entry[0]
        if kind == "row":
            _, rid, outcome, release_id, wire, expires_at = entry
            inline = decode_tracks(wire)
            source = PickerSource(release_id, inline) if (release_id is not None or inline is not None) else None
            rotation_cache.set_until(rid, CachedAnswer(Outcome(outcome), source), expires_at)
            result.rows += 1
        elif kind == "rel":
            _, release_id, wire, expires_at = entry
            if wire is None:
                caches.release_negative.set_until(release_id, True, expires_at)
            else:
                caches.release_positive.set_until(release_id, decode_tracks(wire) or (), expires_at)
            result.releases += 1
        elif kind == "inv":
            rotation_cache.delete(entry[1])
            result.invalidated += 1
        elif kind == "inv_all":
            rotation_cache.clear()
            if on_invalidate_all is not None:
                on_invalidate_all()
            result.invalidated += 1
    return result
