"""The host walk's result log: encoding, writer/reader, compaction, replay into worker caches."""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from typing import Any

import pytest

from backend.clients.lml import Release
from backend.models import RotationTrack
from backend.services.caches import ExpiringCache
from backend.services.release_tracklists import ReleaseFetch, ReleaseOutcome, ReleaseTracklistService
from backend.services.rotation_resolver import CachedAnswer, Outcome, PickerSource, Resolution
from backend.services.warm_follower import WarmFollower
from backend.services.warm_store import (
    WarmLogReader,
    WarmLogWriter,
    WarmShared,
    WorkerCaches,
    apply_entries,
    compact_entries,
    decode_tracks,
    encode_tracks,
    row_entries,
)

TRACKS = (RotationTrack("A1", "Song", "3:00", ("Artist",)), RotationTrack("A2", "Other", None, ()))


@dataclass
class Counter:
    value: int = 0


@dataclass
class Bytes:
    """Stands in for multiprocessing.Array("c") (its .value is bytes)."""

    value: bytes


def make_shared() -> WarmShared:
    """Same interfaces as the Manager list/dict and mp.Value, in one process."""
    return WarmShared(log=[], status={}, lock=threading.Lock(), epoch=Counter(), published=Counter(), walks=Counter())


class NoReleases:
    async def get_release(self, release_id: int, *, priority: str = "live") -> Release:
        raise AssertionError("the worker must not call LML for loaded entries")


def make_worker_caches(now: list[float]) -> tuple[WorkerCaches, ReleaseTracklistService]:
    """Tiny (2-entry) worker caches, and a release service over them that must not call LML."""
    clock = lambda: now[0]  # noqa: E731
    caches = WorkerCaches(
        ExpiringCache(2, 86_400, clock=clock), ExpiringCache(2, 86_400, clock=clock), ExpiringCache(2, 600, clock=clock)
    )
    releases = ReleaseTracklistService(NoReleases(), positive=caches.release_positive, negative=caches.release_negative)
    return caches, releases


class TestEncoding:
    def test_tracks_round_trip_as_plain_tuples(self) -> None:
        """Tracks cross processes as plain tuples and come back equal."""
        wire = encode_tracks(TRACKS)
        assert wire is not None and all(type(t) is tuple for t in wire)
        assert decode_tracks(wire) == TRACKS
        assert encode_tracks(None) is None and decode_tracks(None) is None

    def test_transient_rows_publish_nothing(self) -> None:
        """An LML error is not a result: nothing goes in the log."""
        entries = row_entries(
            1, Resolution(Outcome.LML_ERROR, None, "x"), None, row_expires_at=10.0, release_expires_at=None
        )
        assert entries == []

    def test_row_and_release_entries(self) -> None:
        """A resolved row and its fetched release become two entries; a 404 release is a negative."""
        resolution = Resolution(Outcome.LML_POSITIVE, PickerSource(4080, None))
        fetched = ReleaseFetch(ReleaseOutcome.FETCHED, TRACKS)
        entries = row_entries(7, resolution, fetched, row_expires_at=100.0, release_expires_at=90.0)
        assert entries == [("row", 7, "lml_positive", 4080, None, 100.0), ("rel", 4080, encode_tracks(TRACKS), 90.0)]
        missing = row_entries(
            7, resolution, ReleaseFetch(ReleaseOutcome.NOT_FOUND, None), row_expires_at=100.0, release_expires_at=5.0
        )
        assert missing[1] == ("rel", 4080, None, 5.0)


class TestWriterReader:
    def test_reader_sees_each_entry_once_in_order(self) -> None:
        """Appends are read incrementally; has_new is a cheap check."""
        shared = make_shared()
        writer, reader = WarmLogWriter(shared), WarmLogReader(shared)
        writer.publish([("inv", 1)])
        assert reader.has_new()
        assert reader.read_new() == (True, [("inv", 1)])
        assert not reader.has_new()
        writer.publish([("inv", 2), ("inv", 3)])
        assert reader.read_new() == (False, [("inv", 2), ("inv", 3)])

    def test_compaction_keeps_latest_live_entries_and_restarts_readers(self) -> None:
        """After compaction a reader replays from the start and ends in the same state."""
        shared = make_shared()
        writer, reader = WarmLogWriter(shared), WarmLogReader(shared)
        writer.publish([("row", 1, "tier1", 5, None, 100.0), ("row", 2, "tier1", 6, None, 100.0)])
        reader.read_new()
        writer.invalidate([1])
        writer.publish([("row", 3, "tier1", 7, None, 1.0), ("rel", 5, None, 100.0)])
        assert writer.compact(now=50.0) == 2  # row 1 invalidated, row 3 expired
        restart, entries = reader.read_new()
        assert restart and sorted(entries) == sorted([("rel", 5, None, 100.0), ("row", 2, "tier1", 6, None, 100.0)])

    def test_snapshot_file_lets_a_new_reader_start_without_the_manager(self, tmp_path: Any) -> None:
        """After compaction a starting worker loads the file and is then caught up (nothing new)."""
        shared = make_shared()
        shared.snapshot_path = Bytes(str(tmp_path / "snap.pickle").encode())
        writer = WarmLogWriter(shared)
        writer.publish([("row", 1, "tier1", 5, None, 100.0), ("inv", 1), ("row", 2, "tier1", 6, None, 100.0)])
        writer.compact(now=0.0)
        reader = WarmLogReader(shared)
        assert reader.read_snapshot() == [("row", 2, "tier1", 6, None, 100.0)]
        assert not reader.has_new()
        writer.publish([("inv", 2)])
        assert reader.read_new() == (False, [("inv", 2)])

    def test_no_snapshot_before_the_first_compaction(self, tmp_path: Any) -> None:
        """Without a file the reader falls back to the log."""
        shared = make_shared()
        shared.snapshot_path = Bytes(str(tmp_path / "missing.pickle").encode())
        assert WarmLogReader(shared).read_snapshot() is None

    def test_versions_detect_a_change_during_a_walk(self) -> None:
        """An invalidation (or invalidate_all) bumps the version a publisher compares against."""
        writer = WarmLogWriter(make_shared())
        before = writer.version(7)
        writer.invalidate([7])
        assert writer.version(7) != before
        other = writer.version(8)
        writer.invalidate_all()
        assert writer.version(8) != other

    def test_compact_entries_replays_invalidate_all(self) -> None:
        """inv_all drops earlier rows but not releases or later rows."""
        entries = [
            ("row", 1, "tier1", 5, None, 9.0),
            ("rel", 5, None, 9.0),
            ("inv_all",),
            ("row", 2, "tier1", 6, None, 9.0),
        ]
        assert compact_entries(entries, now=0.0) == [("rel", 5, None, 9.0), ("row", 2, "tier1", 6, None, 9.0)]


class TestApply:
    async def test_replay_fills_caches_with_their_expiry_and_grows_them(self) -> None:
        """Rows and releases load with the walk's expiry; 2-entry caches grow instead of evicting."""
        now = [0.0]
        caches, releases = make_worker_caches(now)
        rotation = caches.rotation
        entries = [
            ("row", 1, "lml_positive", None, encode_tracks(TRACKS), 50.0),
            ("row", 2, "tier1", 4080, None, 50.0),
            ("row", 3, "lml_negative", None, None, 50.0),
            ("rel", 4080, encode_tracks(TRACKS), 40.0),
            ("rel", 999, None, 40.0),
        ]
        result = apply_entries(entries, caches)
        assert (result.rows, result.releases) == (3, 2)
        assert rotation.get(1) == CachedAnswer(Outcome.LML_POSITIVE, PickerSource(None, TRACKS))
        assert rotation.get(3) == CachedAnswer(Outcome.LML_NEGATIVE, None)
        assert rotation.evictions == 0 and len(rotation) == 3
        assert (await releases.fetch(4080)).tracks == TRACKS
        assert (await releases.fetch(999)).outcome is ReleaseOutcome.NEGATIVE_HIT
        now[0] = 45.0
        assert 4080 not in releases.positive and rotation.get(2) is not None

    def test_replaying_the_compacted_log_does_not_inflate_the_bound(self) -> None:
        """Re-applying the same 3 rows after a compaction sizes for 3 rows again, not for 6."""
        caches, _ = make_worker_caches([0.0])
        rows = [("row", i, "tier1", 5, None, 50.0) for i in range(3)]
        apply_entries(rows, caches)
        apply_entries(rows, caches, replay=True)
        assert caches.rotation.maxsize == 4 and len(caches.rotation) == 3  # 2 doubled once; 6 would give 8

    def test_invalidation_entries_drop_rows(self) -> None:
        """inv drops one row; inv_all drops every row."""
        caches, _ = make_worker_caches([0.0])
        apply_entries([("row", 1, "tier1", 5, None, 50.0), ("row", 2, "tier1", 6, None, 50.0)], caches)
        apply_entries([("inv", 1)], caches)
        assert caches.rotation.get(1) is None and caches.rotation.get(2) is not None
        apply_entries([("inv_all",)], caches)
        assert len(caches.rotation) == 0


class TestFollower:
    async def test_loads_before_serving_and_logs_once_per_walk(self, caplog: pytest.LogCaptureFixture) -> None:
        """A worker catching up after a walk logs one worker_warm line with what it loaded."""
        shared = make_shared()
        writer = WarmLogWriter(shared)
        writer.publish([("row", 1, "tier1", 5, None, 10**9), ("rel", 5, encode_tracks(TRACKS), 10**9)])
        shared.walks.value = 1
        caches, _ = make_worker_caches([0.0])
        follower = WarmFollower(shared, caches, worker="w1", started_at=0.0, clock=lambda: 0.012)
        with caplog.at_level("INFO", logger="backend"):
            assert await follower.catch_up(before_serving=True) == 2
            assert await follower.catch_up() == 0
        lines = [r.getMessage() for r in caplog.records if "worker_warm" in r.getMessage()]
        assert len(lines) == 1
        assert re.fullmatch(
            r"\[rotation-tracks-cache-warm\] worker_warm: worker=w1 walk=1 entries=2 rows=1 releases=1"
            r" sinceStartMs=12 loadMs=0\.0 loadCpuMs=[0-9.]+ beforeServing=true",
            lines[0],
        )
        assert follower.status()["warm_after_ms"] == 12 and caches.rotation.get(1) is not None

    def test_host_status_survives_a_dead_manager(self) -> None:
        """Reading the status after the main process went away answers 'unknown' instead of raising."""

        class Dead:
            """A Manager dict proxy whose server process is gone."""

            def keys(self) -> Any:
                raise EOFError

            def __getitem__(self, key: str) -> Any:
                raise EOFError

        shared = make_shared()
        shared.status = Dead()
        caches, _ = make_worker_caches([0.0])
        follower = WarmFollower(shared, caches, worker="w", started_at=0.0)
        assert follower.host_status() == {"status": "unknown"}
