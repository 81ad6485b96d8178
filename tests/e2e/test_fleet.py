"""A fleet of real hosts on one database: one walk, warm on write, free redeploys, walker takeover, one LML rate.

Issue 11 (and the warm-on-write part of issue 9), on real ``sanic server:app --workers 2`` hosts
sharing one PostgreSQL database and one LML fake, with the small catalog.
"""

from __future__ import annotations

import signal
import threading
import time
from collections import Counter

import asyncpg
import pytest

from devtools.demo_catalog import DemoCatalog
from devtools.lml_fake import LmlFake
from devtools.processes import WARM, ServerProcess
from tests.e2e.conftest import Host, wait_every_worker_holds_every_answer
from tests.helpers import active_ids, expected_tracks, tier3_keys, transient_ids, warm_misses

pytestmark = [pytest.mark.pg, pytest.mark.e2e]


def key_counts(fake: LmlFake) -> Counter[tuple[str, str]]:
    return Counter((key[0], key[1]) for key in fake.stats()["lookup_keys"])


def walker_of(fleet: list[ServerProcess], timeout: float = 60.0) -> ServerProcess:
    """The host whose main process won the walker lease."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        elected = [h for h in fleet if h.lines(WARM + r"walker_elected: worker=main ")]
        if elected:
            assert len(elected) == 1, "two hosts walk at once"
            return elected[0]
        time.sleep(0.05)
    raise TimeoutError("no host was elected walker")


def assert_every_worker_warm(fleet: list[ServerProcess], catalog: DemoCatalog, fake: LmlFake) -> None:
    """Every worker of every host holds every stored answer and answers every (non-transient) active row as
    designed, without LML."""
    for host in fleet:
        wait_every_worker_holds_every_answer(host)
    fake.reset()
    rows = [rid for rid in active_ids(catalog) if rid not in transient_ids(catalog)]
    for host in fleet:
        for rid in rows:
            answers = host.per_worker(f"/library/rotation/{rid}/tracks")
            assert len(answers) == host.workers, (host.name, rid)
            for worker, response in answers.items():
                assert (response.status, response.json()) == (200, expected_tracks(catalog, rid)), (
                    host.name,
                    worker,
                    rid,
                )
    assert warm_misses(fake.stats(), catalog) == ([], [])


async def stored_answers(url: str) -> int:
    conn = await asyncpg.connect(url)
    try:
        count: int = await conn.fetchval("SELECT count(*) FROM rotation_picker.row_answer WHERE outcome <> 'lml_error'")
        return count
    finally:
        await conn.close()


class TestOneWalkPerFleet:
    async def test_three_hosts_walk_once_warm_on_write_and_redeploy_for_free(
        self, hosts: Host, fake: LmlFake, small_catalog: DemoCatalog, station_url: str
    ) -> None:
        """Three hosts, production rate: each key is looked up once fleet-wide, every worker is warm,
        a row inserted by SQL is warm everywhere within 10 s, and restarting all three costs no LML call."""
        fleet = [hosts(2, LML_CLIENT_RATE_PER_MIN="50") for _ in range(3)]
        walker = walker_of(fleet)
        walker.wait_for_log(WARM + r"done: worker=main ", timeout=120)
        counts = key_counts(fake)
        assert set(counts) == tier3_keys(small_catalog)
        once = tier3_keys(small_catalog, transient=False)
        assert {key: counts[key] for key in once} == dict.fromkeys(once, 1), "a key was looked up twice"
        assert_every_worker_warm(fleet, small_catalog, fake)

        # Warm on write: a new album in rotation (tier 3), inserted by plain SQL, nobody opens it.
        donor_id = next(
            i + 1
            for i, r in enumerate(small_catalog.rotation)
            if not r.is_active(small_catalog.today) and r.expected == "lml_inline" and r.album_index is None
        )
        donor = small_catalog.rotation[donor_id - 1]
        fake.reset()
        mark = walker.mark()
        conn = await asyncpg.connect(station_url)
        try:
            inserted_at = time.monotonic()
            new_id = await conn.fetchval(
                "INSERT INTO wxyc_schema.rotation (rotation_bin, artist_name, album_title)"
                " VALUES ('H', $1, $2) RETURNING id",
                donor.artist_name,
                donor.album_title,
            )
        finally:
            await conn.close()
        walker.wait_for_log(WARM + rf"rewarm: worker=main rotation_ids=\S*\b{new_id}\b", since=mark, timeout=10)
        for host in fleet:  # every worker of every host holds it, nobody having opened it
            wait_every_worker_holds_every_answer(host, timeout=max(0.0, 10.0 - (time.monotonic() - inserted_at)))
        assert time.monotonic() - inserted_at <= 10.0
        # (The walker keeps retrying the designed-transient rows on its own schedule: those lookups are not counted.)
        lookups, releases = warm_misses(fake.stats(), small_catalog)
        assert (len(lookups), releases) == (1, []), "the new row is looked up once for the whole fleet"
        fake.reset()
        for host in fleet:
            for worker, response in host.per_worker(f"/library/rotation/{new_id}/tracks").items():
                assert (response.status, response.json()) == (200, expected_tracks(small_catalog, donor_id)), worker
        assert warm_misses(fake.stats(), small_catalog) == ([], [])

        # Redeploy: stop every host, start them again. Only rows LML is still failing are retried.
        for host in fleet:
            assert host.stop() == 0
        fake.reset()
        fleet = [hosts(2, LML_CLIENT_RATE_PER_MIN="50") for _ in range(3)]
        for host in fleet:
            host.wait_for_log(WARM + r"worker_warm: worker=Sanic-Server-\S+ rows=[1-9]\d* .* beforeServing=true", 2)
        walker = walker_of(fleet)
        walker.wait_for_log(WARM + r"done: worker=main ", timeout=60)
        assert set(key_counts(fake)) <= tier3_keys(small_catalog, transient=True)
        assert fake.stats()["counts"]["release"] == 0
        assert_every_worker_warm(fleet, small_catalog, fake)


class TestTakeover:
    async def test_the_walker_killed_mid_walk_is_replaced_within_10s(
        self, hosts: Host, fake: LmlFake, small_catalog: DemoCatalog, station_url: str
    ) -> None:
        """SIGKILL of the walker's whole host mid-walk: another host takes the lease within 10 s and finishes
        the walk from what is stored; only the key in flight at the kill can be fetched twice."""
        fake.set_latency(150.0, 0.0)
        fleet = [hosts(2) for _ in range(3)]
        walker = walker_of(fleet)
        deadline = time.monotonic() + 60
        while await stored_answers(station_url) < 8:
            assert time.monotonic() < deadline, "the walk made no progress"
            time.sleep(0.05)
        killed_at = time.monotonic()
        walker.signal(signal.SIGKILL, group=True)
        walker.wait(10)
        survivors = [h for h in fleet if h is not walker]
        successor = walker_of(survivors, timeout=15)
        successor.wait_for_log(WARM + r"walker_elected: worker=main ")
        assert time.monotonic() - killed_at <= 10.0 + 0.5, "takeover took longer than 10 s"
        successor.wait_for_log(WARM + r"done: worker=main ", timeout=120)
        counts = key_counts(fake)
        twice = {k for k, n in counts.items() if n > 1 and k in tier3_keys(small_catalog, transient=False)}
        assert len(twice) <= 1, f"fetched twice: {twice}"
        assert set(counts) >= tier3_keys(small_catalog, transient=False)
        fake.set_latency(5.0, 0.0)
        assert_every_worker_warm(survivors, small_catalog, fake)


class TestFleetRate:
    async def test_three_hosts_together_stay_within_the_configured_rate(
        self, hosts: Host, fake: LmlFake, small_catalog: DemoCatalog
    ) -> None:
        """Live opens on all three hosts at once never exceed the fleet's token bucket, measured at LML."""
        rate = 60
        fleet = [hosts(2, LML_CLIENT_RATE_PER_MIN=str(rate), LML_LIMITER_MAX_QUEUE_WAIT_MS="1000") for _ in range(3)]
        walker_of(fleet).wait_for_log(WARM + r"done: worker=main ", timeout=60)
        # Rows LML answers transiently are never cached: every open asks LML again.
        paths = [f"/library/rotation/{rid}/tracks" for rid in sorted(transient_ids(small_catalog))]
        assert paths
        stop = threading.Event()
        statuses: Counter[int] = Counter()

        def hammer(host: ServerProcess) -> None:
            i = 0
            while not stop.is_set():
                statuses[host.get_fresh(paths[i % len(paths)]).status] += 1
                i += 1

        def lookups_since(moment: float) -> list[float]:
            return [t for t, endpoint in fake.stats()["call_times"] if endpoint == "lookup" and t >= moment]

        started = time.time()
        threads = [threading.Thread(target=hammer, args=(h,)) for h in fleet for _ in range(3)]
        for thread in threads:
            thread.start()
        # Load until LML sees calls 8 s into the load: by then the refill, not the bucket's content, limits.
        deadline = time.monotonic() + 30
        while not any(t >= started + 8 for t in lookups_since(started)) and time.monotonic() < deadline:
            time.sleep(0.05)
        stop.set()
        for thread in threads:
            thread.join(30)
        window = time.time() - started
        calls = lookups_since(started)
        assert any(t >= started + 8 for t in calls), "no call got through 8 s into the load"
        assert len(calls) <= rate + rate * window / 60 + 1, (len(calls), window)
        assert set(statuses) <= {200}, statuses  # sheds degrade to 200 [] for lookups
        assert sum(statuses.values()) > len(calls), "the hosts were not limited: the load was too light"
