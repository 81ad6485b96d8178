"""Open-loop fixed-rate HTTP/1.1 load generator (asyncio, raw keep-alive connections), run as its own process.

``python -m bench.rategen --port P --paths-file F --rate R --duration D`` prints one JSON object.
Requests are scheduled at ``start + i / rate``; latency is measured from that scheduled time (not
from when a connection was free), so a slow server cannot hide its queueing (no coordinated
omission). ``--closed`` instead keeps every connection busy back to back (max throughput, the
fallback when wrk is missing); ``--once`` sends each path at most once, in order (first opens).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

_CRLF2 = b"\r\n\r\n"
TICK_S = 0.001


def percentile(values: Sequence[float], p: float) -> float | None:
    """Nearest-rank percentile of ``values`` (None when empty)."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(p / 100 * len(ordered)) - 1))]


@dataclass
class _Item:
    scheduled: float
    request: bytes
    measured: bool
    sent: float = 0.0


@dataclass
class _Stats:
    latencies: list[float] = field(default_factory=list)
    service: list[float] = field(default_factory=list)
    lags: list[float] = field(default_factory=list)
    statuses: collections.Counter[int] = field(default_factory=collections.Counter)
    errors: int = 0
    completed: int = 0
    first_done: float | None = None
    last_done: float = 0.0


class _Conn(asyncio.Protocol):
    """One keep-alive connection with at most one request in flight."""

    def __init__(self, gen: _Generator) -> None:
        self.gen = gen
        self.transport: Any = None  # uvloop's transports are not asyncio.Transport subclasses
        self.buffer = bytearray()
        self.item: _Item | None = None
        self.closed = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def send(self, item: _Item) -> None:
        assert self.transport is not None
        self.item = item
        item.sent = time.perf_counter()
        self.transport.write(item.request)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while self.item is not None:
            end = self.buffer.find(_CRLF2)
            if end < 0:
                return
            head = bytes(self.buffer[:end]).lower()
            length = 0
            for line in head.split(b"\r\n")[1:]:
                if line.startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
            total = end + 4 + length
            if len(self.buffer) < total:
                return
            status = int(head.split(b" ", 2)[1])
            del self.buffer[:total]
            item, self.item = self.item, None
            self.gen.done(self, item, status)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed.done():
            self.closed.set_result(None)
        self.gen.lost(self)


class _Generator:
    def __init__(self, args: argparse.Namespace, paths: list[str]) -> None:
        head = f"Host: {args.host}:{args.port}\r\n" + "".join(f"{h}\r\n" for h in args.header)
        self.requests = [f"GET {p} HTTP/1.1\r\n{head}\r\n".encode() for p in paths]
        self.args = args
        self.idle: collections.deque[_Conn] = collections.deque()
        self.pending: collections.deque[_Item] = collections.deque()
        self.conns: list[_Conn] = []
        self.stats = _Stats()
        self.outstanding = 0
        self.stop_at = math.inf
        self._next = 0

    async def connect(self) -> None:
        loop = asyncio.get_running_loop()
        for _ in range(self.args.connections):
            _, conn = await loop.create_connection(lambda: _Conn(self), self.args.host, self.args.port)
            self.conns.append(conn)
            self.idle.append(conn)

    def next_request(self) -> bytes:
        request = self.requests[self._next % len(self.requests)]
        self._next += 1
        return request

    def dispatch(self, item: _Item) -> None:
        self.outstanding += 1
        if self.idle:
            conn = self.idle.popleft()
            conn.send(item)
            if item.measured:
                self.stats.lags.append(item.sent - item.scheduled)
        else:
            self.pending.append(item)

    def done(self, conn: _Conn, item: _Item, status: int) -> None:
        now = time.perf_counter()
        self.outstanding -= 1
        if item.measured:
            s = self.stats
            s.completed += 1
            s.statuses[status] += 1
            s.latencies.append(now - item.scheduled)
            s.service.append(now - item.sent)
            s.first_done = now if s.first_done is None else s.first_done
            s.last_done = now
        if self.args.closed and now < self.stop_at:
            self.outstanding += 1
            conn.send(_Item(now, self.next_request(), True))
        elif self.pending:
            conn.send(self.pending.popleft())
        else:
            self.idle.append(conn)

    def lost(self, conn: _Conn) -> None:
        if conn in self.idle:
            self.idle.remove(conn)
        if conn.item is not None:
            self.outstanding -= 1
            self.stats.errors += 1
            conn.item = None

    async def run_closed(self) -> float:
        start = time.perf_counter()
        self.stop_at = start + self.args.duration
        for _ in range(len(self.idle)):
            self.dispatch(_Item(time.perf_counter(), self.next_request(), True))
        await asyncio.sleep(self.args.duration)
        return start

    async def run_open(self) -> float:
        a = self.args
        total = int((a.warmup + a.duration) * a.rate)
        if a.once:
            total = min(total, len(self.requests))
        warmup_count = int(a.warmup * a.rate)
        start = time.perf_counter() + 0.01
        i = 0
        while i < total:
            now = time.perf_counter()
            while i < total and start + i / a.rate <= now:
                self.dispatch(_Item(start + i / a.rate, self.next_request(), i >= warmup_count))
                i += 1
            if i < total:
                # Timers are millisecond-grained: shorter sleeps would spin. Late sends still count
                # from their scheduled time.
                await asyncio.sleep(max(TICK_S, start + i / a.rate - now))
        return float(start + warmup_count / a.rate)

    async def run(self) -> dict[str, Any]:
        a = self.args
        await self.connect()
        measure_from = await (self.run_closed() if a.closed else self.run_open())
        sent_until = time.perf_counter()
        deadline = time.perf_counter() + a.drain_timeout
        while self.outstanding and time.perf_counter() < deadline:
            await asyncio.sleep(0.005)
        for conn in self.conns:
            if conn.transport is not None:
                conn.transport.close()
        return self.report(measure_from, sent_until)

    def report(self, measure_from: float, sent_until: float) -> dict[str, Any]:
        s, a = self.stats, self.args
        window = max(max(s.last_done, sent_until) - measure_from, 1e-9)
        ms = [v * 1000 for v in s.latencies]
        return {
            "mode": "closed" if a.closed else "open",
            "target_rate": None if a.closed else a.rate,
            "achieved_rate": s.completed / window,
            "completed": s.completed,
            "errors": s.errors + self.outstanding,
            "non_2xx": sum(n for code, n in s.statuses.items() if not 200 <= code < 300),
            "connections": a.connections,
            "p50_ms": percentile(ms, 50),
            "p90_ms": percentile(ms, 90),
            "p99_ms": percentile(ms, 99),
            "p999_ms": percentile(ms, 99.9),
            "max_ms": max(ms) if ms else None,
            "service_p50_ms": percentile([v * 1000 for v in s.service], 50),
            "service_p99_ms": percentile([v * 1000 for v in s.service], 99),
            "send_lag_p99_ms": (percentile(s.lags, 99) or 0.0) * 1000,
        }


def _install_uvloop() -> None:
    try:
        import uvloop
    except ImportError:
        return
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.rategen", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--paths-file", required=True, help="one request path per line, used round robin")
    parser.add_argument("--rate", type=float, default=100.0, help="requests per second (open loop)")
    parser.add_argument("--duration", type=float, default=10.0, help="measured seconds")
    parser.add_argument("--warmup", type=float, default=1.0, help="seconds sent first and not measured")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--drain-timeout", type=float, default=30.0)
    parser.add_argument("--closed", action="store_true", help="closed loop: max throughput, no pacing")
    parser.add_argument("--once", action="store_true", help="send each path at most once")
    parser.add_argument("--header", action="append", default=[], help="'Name: value' on every request (repeatable)")
    args = parser.parse_args(argv)
    with open(args.paths_file, encoding="utf-8") as f:
        paths = [line.strip() for line in f if line.strip()]
    _install_uvloop()
    result = asyncio.run(_Generator(args, paths).run())
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
