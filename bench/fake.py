"""Run the LML fake on a benchmark catalog: ``python -m bench.fake --catalog scale --rows 30000 ...``.

``devtools.processes.FakeProcess(spec.cli_args(), latency_ms).start(module="bench.fake")`` runs it.
"""

from __future__ import annotations

import argparse
import datetime
import signal
import threading
from collections.abc import Sequence
from types import FrameType

from bench.catalogs import KINDS, CatalogSpec
from devtools.lml_fake import LmlFake


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.fake", description=__doc__)
    parser.add_argument("--catalog", choices=KINDS, default="demo")
    parser.add_argument("--today", type=datetime.date.fromisoformat, default=datetime.date.today())
    parser.add_argument("--rows", type=int, default=310)
    parser.add_argument("--killed-copies", type=int, default=1)
    parser.add_argument("--stable", action="store_true", help="leave out the designed-transient rows")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--latency-ms", type=float, default=150.0)
    parser.add_argument("--jitter-ms", type=float, default=0.0)
    args = parser.parse_args(argv)

    spec = CatalogSpec(args.catalog, args.today, args.rows, args.killed_copies, args.stable)
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, on_signal)
    fake = LmlFake(
        spec.build(), host=args.host, port=args.port, latency_ms=args.latency_ms, jitter_ms=args.jitter_ms
    ).start()
    try:
        print(f"lml-fake listening on {fake.url}", flush=True)
        while not stop.wait(0.5):
            pass
    finally:
        fake.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
