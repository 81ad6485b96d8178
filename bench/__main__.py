"""``python -m bench``: run the scenarios and write bench/results/latest.{md,json}."""

from __future__ import annotations

import argparse
import datetime
import logging
import shutil
import sys
import tempfile
import time
import traceback
from collections.abc import Sequence
from pathlib import Path

from bench import hosts, machine, results
from bench.context import BenchContext
from bench.load import ensure_wrk
from bench.pg import Postgres
from bench.results import ScenarioResult
from bench.scenarios import SCENARIOS
from devtools.auth_issuer import AuthIssuer

logger = logging.getLogger("bench")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="scripts/bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smoke run: fewer runs, shorter loads, smaller scales")
    parser.add_argument(
        "--scenario", type=int, action="append", choices=sorted(SCENARIOS), help="run only this one (repeatable)"
    )
    parser.add_argument("--runs", type=int, default=None, help="repetitions per measurement (default 3, quick 1)")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s bench: %(message)s", datefmt="%H:%M:%S")
    logger.setLevel(logging.INFO)
    runs = args.runs if args.runs is not None else (1 if args.quick else 3)
    chosen = sorted(set(args.scenario or SCENARIOS))
    ensure_wrk()
    pg = Postgres()
    issuer = AuthIssuer()
    tmp = Path(tempfile.mkdtemp(prefix="rp-bench-"))
    failed = 0
    try:
        pg.start()
        issuer.start()
        ctx = BenchContext(pg=pg, issuer=issuer, quick=args.quick, runs=runs, today=datetime.date.today(), tmp=tmp)
        facts = machine.describe(f"{pg.version} ({'embedded' if pg.embedded else 'DATABASE_URL'})")
        data = results.load()
        for number in chosen:
            result = ScenarioResult(number, mode="quick" if args.quick else "full", runs=runs)
            result.ran_at = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
            logger.info("scenario %d: %s", number, results.TITLES[number])
            started = time.monotonic()
            try:
                SCENARIOS[number](ctx, result)
            except Exception as exc:  # record it and go on with the next scenario
                failed += 1
                result.error = f"{type(exc).__name__}: {exc}".splitlines()[0]
                logger.error("scenario %d failed:\n%s", number, traceback.format_exc())
            result.elapsed_s = round(time.monotonic() - started, 1)
            for m in result.metrics:
                verdict = "" if m.passed is None else (" pass" if m.passed else " MISS")
                logger.info("  %s = %s [%s]%s", m.name, results.fmt(m.value, m.unit), m.goal, verdict)
            results.merge(data, result, facts)
            md, _ = results.write(data)
            logger.info("scenario %d done in %.0f s; results in %s", number, result.elapsed_s, md)
    finally:
        issuer.stop()
        pg.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    left = hosts.left_behind()
    if left:  # a process that did not clean up after itself: say so, then remove what is ours
        logger.warning("left in %s by this run's processes: %s", tempfile.gettempdir(), ", ".join(map(str, left)))
        for path in left:
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
