"""Accept latency under an open-loop load: requests sent on a fixed schedule, not by clients.

    .venv/bin/python bench/openloop.py                        # 800 requests/s for 30 s, serve
    .venv/bin/python bench/openloop.py --rate 800 --seconds 30 --api-only
    .venv/bin/python bench/openloop.py --profile /tmp/openloop.spy
    setsid -w .venv/bin/python bench/openloop.py --api-only --autogroup-nice -10   # shared box

Issue 13's target: ``POST /smtp/emails`` at 800 requests/s, p99 ≤ 20 ms. A closed-loop bench
(N clients, each sending its next request when the last one is answered) slows its own sending
down whenever the server is slow, so the requests that would have waited are never sent and the
tail is hidden ("coordinated omission"). Here request *i* is due at ``start + i / rate`` whatever
happened before; its latency runs from that due time to the end of its response, so time spent
waiting for a free connection, or behind a late client, counts.

The server: ``mailpulse serve`` (default settings: one process per core, SQLite with durable
commits) with ``MAILPULSE_RELAY`` pointing at Postfix's ``smtp-sink`` on loopback, so the
delivery worker sends every accepted message meanwhile; ``--api-only`` runs ``mailpulse api``
instead (no delivery). The client: one asyncio loop in this process (the server runs in its
own processes) on uvloop, ``--connections`` keep-alive connections driven by protocol
callbacks (no task or stream per request), requests pre-encoded by ``delivery.py`` (one
recipient, ``--size`` bytes of HTML). Its own CPU is printed: on 2 cores, whatever it takes is
taken from the server. The first ``--warmup`` seconds are sent but not counted.

Printed: the rate asked for and the rate achieved (answered requests / seconds from the first
due time to the last answer), p50/p90/p99/max latency from the due time, how late the client
itself sent (its own lag: if that is large, the client, not the server, is the bottleneck),
errors (any status but 200), and the server's CPU. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import gc
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

import uvloop
from _server import serve  # type: ignore[import-not-found]
from delivery import (  # type: ignore[import-not-found]
    LOOPBACK,
    Sink,
    busy_share,
    ensure_postfix,
    http_requests,
    machine_busy,
    process_tree,
    start_profile,
    summarise_profile,
    tree_cpu,
)


# -- bookkeeping (pure: the clock is whatever the caller reads) -----------------------------------
@dataclass
class Schedule:
    """Request ``i`` is due at ``start + i / rate`` seconds."""

    rate: float
    start: float

    def due(self, i: int) -> float:
        return self.start + i / self.rate


@dataclass
class LatencyBook:
    """Latencies measured from each request's due time; requests due before ``counted_from``
    (the warm-up) are left out of the figures."""

    counted_from: float
    latencies: list[float] = field(default_factory=list)
    timeline: list[tuple[float, float]] = field(default_factory=list)  # (due, latency)
    lateness: list[float] = field(default_factory=list)  # due → a connection was free
    errors: int = 0
    client_lag: float = 0.0  # the longest the client's own loop was late to start a request
    first_due: float | None = None
    last_done: float | None = None

    def record(self, due: float, sent: float, done: float, ok: bool) -> None:
        if due < self.counted_from:
            return
        if self.first_due is None or due < self.first_due:
            self.first_due = due
        if self.last_done is None or done > self.last_done:
            self.last_done = done
        self.lateness.append(max(0.0, sent - due))
        if ok:
            self.latencies.append(done - due)
            self.timeline.append((due, done - due))
        else:
            self.errors += 1

    def achieved_rate(self) -> float:
        """Answered requests per second, from the first due time to the last answer."""
        if self.first_due is None or self.last_done is None or self.last_done <= self.first_due:
            return 0.0
        return (len(self.latencies) + self.errors) / (self.last_done - self.first_due)

    def quantile_ms(self, q: float) -> float:
        return quantile_ms(self.latencies, q)

    def worst_seconds(self, over: float, top: int = 5) -> list[tuple[float, int, float]]:
        """The ``top`` one-second windows (by due time, from the first) with the most requests
        slower than ``over`` seconds: (second, how many, the slowest), worst first."""
        if self.first_due is None:
            return []
        slow: dict[int, list[float]] = {}
        for due, latency in self.timeline:
            if latency > over:
                slow.setdefault(int(due - self.first_due), []).append(latency)
        ranked = sorted(slow.items(), key=lambda item: (-len(item[1]), item[0]))[:top]
        return [(float(second), len(values), max(values)) for second, values in ranked]


def quantile_ms(values: Sequence[float], q: float) -> float:
    """The q-quantile (0 < q ≤ 1) of seconds, in ms: the smallest value with ≥ q of all at or
    below it (no interpolation, so p99 of 100 values is the 99th)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, -(-int(q * len(ordered) * 1000) // 1000))  # ceil without float surprises
    return ordered[min(rank, len(ordered)) - 1] * 1000


# -- the load -------------------------------------------------------------------------------------
class _Connection(asyncio.Protocol):
    """One keep-alive connection driven by callbacks (no task, no stream per request): write a
    pre-encoded request, find the end of the answer (head up to the blank line, then
    Content-Length bytes of body), hand the connection back. About a third of the client CPU
    of asyncio streams with a task per request, so the client takes less from the server's
    two cores."""

    def __init__(self, client: _Client) -> None:
        self.client = client
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.due = 0.0
        self.sent = 0.0
        self.lost = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def send(self, request: bytes, due: float, sent: float) -> None:
        self.due, self.sent = due, sent
        assert self.transport is not None
        self.transport.write(request)

    def data_received(self, data: bytes) -> None:
        buffer = self.buffer
        buffer += data
        end = buffer.find(b"\r\n\r\n")
        if end < 0:
            return
        at = buffer.find(b"content-length:", 0, end)
        if at < 0:
            at = buffer.lower().find(b"content-length:", 0, end)
        length = int(buffer[at + 15 : buffer.index(b"\r\n", at)])
        if len(buffer) < end + 4 + length:
            return
        ok = buffer[9:12] == b"200"
        del buffer[: end + 4 + length]
        self.client.answered(self, ok)

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        self.client.closed(self)


class _Client:
    """The open-loop sender: each request goes out at its due time on a free connection, or,
    when every connection is busy, on the first one to come free (its wait counts)."""

    def __init__(self, requests: Sequence[bytes], book: LatencyBook, clock: Callable[[], float]):
        self.requests = requests
        self.book = book
        self.clock = clock
        self.free: collections.deque[_Connection] = collections.deque()
        self.waiting: collections.deque[tuple[int, float]] = collections.deque()
        self.outstanding = 0
        self.idle = asyncio.Event()

    def submit(self, i: int, due: float) -> None:
        self.outstanding += 1
        self.idle.clear()
        if self.free:
            self.free.popleft().send(self.requests[i], due, self.clock())
        else:
            self.waiting.append((i, due))

    def answered(self, conn: _Connection, ok: bool) -> None:
        now = self.clock()
        self.book.record(conn.due, conn.sent, now, ok=ok)
        self._settled()
        if self.waiting:
            i, due = self.waiting.popleft()
            conn.send(self.requests[i], due, now)
        else:
            self.free.append(conn)

    def closed(self, conn: _Connection) -> None:
        if conn.transport is not None and conn not in self.free and conn.due:
            print("a connection was closed by the server", file=sys.stderr)
            self.book.record(conn.due, conn.sent, self.clock(), ok=False)
            self._settled()
        with contextlib.suppress(ValueError):
            self.free.remove(conn)

    def _settled(self) -> None:
        self.outstanding -= 1
        if self.outstanding == 0:
            self.idle.set()


DRAIN_TIMEOUT = 60.0


async def open_loop(
    port: int,
    requests: Sequence[bytes],
    rate: float,
    connections: int,
    warmup: float,
    clock: Callable[[], float] = time.perf_counter,
) -> LatencyBook:
    """Send ``requests`` on the schedule from a pool of keep-alive connections."""
    loop = asyncio.get_running_loop()
    book = LatencyBook(counted_from=0.0)
    client = _Client(requests, book, clock)
    for _ in range(connections):
        transport, conn = await loop.create_connection(lambda: _Connection(client), LOOPBACK, port)
        conn.transport = transport  # uvloop may call connection_made after this returns
        client.free.append(conn)
    schedule = Schedule(rate, clock() + 0.2)
    book.counted_from = schedule.start + warmup
    i, count = 0, len(requests)
    while i < count:
        now = clock()
        book.client_lag = max(book.client_lag, now - schedule.due(i))
        while i < count and schedule.due(i) <= now:  # everything due by now goes out now
            client.submit(i, schedule.due(i))
            i += 1
        if i < count:
            await asyncio.sleep(max(0.0, schedule.due(i) - clock()))
    if client.outstanding:
        try:
            await asyncio.wait_for(client.idle.wait(), timeout=DRAIN_TIMEOUT)
        except TimeoutError:
            print(
                f"{client.outstanding} requests unanswered {DRAIN_TIMEOUT:.0f} s after the last"
                f" was due ({len(client.waiting)} never sent): counted as errors",
                file=sys.stderr,
            )
            book.errors += client.outstanding
    for conn in client.free:
        if conn.transport is not None:
            conn.transport.close()
    return book


def set_autogroup_nice(nice: int) -> None:
    """With the kernel's autogroup scheduling (``/proc/sys/kernel/sched_autogroup_enabled``), CPU
    time is shared between sessions first: on a machine where N other sessions run test suites,
    this bench and its server, in one session, get about 1/(N+1) of it whatever their own nice
    value. Giving the session a weight (needs root, and a session of its own: ``setsid``)
    measures the server as on a machine less shared."""
    Path("/proc/self/autogroup").write_text(str(nice))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--rate", type=float, default=800.0, help="requests per second")
    parser.add_argument("--seconds", type=float, default=30.0, help="counted seconds of load")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds sent but not counted")
    parser.add_argument("--connections", type=int, default=64, help="keep-alive connections")
    parser.add_argument("--size", type=int, default=2048, help="HTML bytes per message")
    parser.add_argument("--api-only", action="store_true", help="mailpulse api: no delivery")
    parser.add_argument("--set", action="append", default=[], help="KEY=VALUE server setting")
    parser.add_argument(
        "--autogroup-nice",
        type=int,
        help="give this bench's session (run it under `setsid`) this scheduler weight (nice)",
    )
    parser.add_argument("--profile", type=Path, help="py-spy raw profile of the server to FILE")
    parser.add_argument("--profile-seconds", type=int, default=10)
    args = parser.parse_args()
    count = int(args.rate * (args.seconds + args.warmup))
    if args.autogroup_nice is not None:
        set_autogroup_nice(args.autogroup_nice)
    settings: dict[str, str] = {}
    for item in args.set:
        key, _, value = item.partition("=")
        settings[key.lower()] = value
    with tempfile.TemporaryDirectory(prefix="mailpulse-openloop-") as tmp:
        workdir = Path(tmp)
        sink: Sink | None = None
        if not args.api_only:
            ensure_postfix()
            sink = Sink(workdir, "openloop")
            settings["relay"] = f"smtp://{LOOPBACK}:{sink.port}"
        command = "api" if args.api_only else "serve"
        profiler: subprocess.Popen[bytes] | None = None
        try:
            with serve(workdir, command, **settings) as server:
                port = int(server.url.rsplit(":", 1)[1])
                requests = http_requests(port, server.token(), server.sender, count, args.size)
                gc.collect()
                gc.freeze()  # the requests are long-lived: keep the client's collections short
                tree = process_tree(server.process.pid)
                cpu0, busy0 = tree_cpu(tree), machine_busy()
                if args.profile:
                    profiler = start_profile(
                        server.process.pid, args.profile, args.profile_seconds, True
                    )
                client0 = time.process_time()
                started_at = time.time()
                with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
                    book = runner.run(
                        open_loop(port, requests, args.rate, args.connections, args.warmup)
                    )
                client_cpu = time.process_time() - client0
                cpu1, busy1 = tree_cpu(tree), machine_busy()
                if profiler is not None:
                    profiler.communicate(timeout=args.profile_seconds + 60)
        finally:
            if sink is not None:
                sink.stop()
    mode = "serve, relaying to smtp-sink" if sink is not None else "api only"
    lateness = statistics.mean(book.lateness) * 1000 if book.lateness else float("nan")
    print(f"\n== open loop, {mode}, {args.connections} connections")
    print(f"  load from {started_at:.2f} (epoch s) to {time.time():.2f}")
    rows = [
        (
            "rate asked",
            f"{args.rate:,.0f} requests/s for {args.seconds:.0f} s (+{args.warmup:.0f} s warm-up)",
        ),
        ("rate achieved", f"{book.achieved_rate():,.0f} requests/s"),
        ("answered (counted)", f"{len(book.latencies):,}, errors {book.errors}"),
        ("latency from due time p50", f"{book.quantile_ms(0.50):.1f} ms"),
        ("p90", f"{book.quantile_ms(0.90):.1f} ms"),
        ("p99", f"{book.quantile_ms(0.99):.1f} ms  (target ≤ 20 ms)"),
        ("max", f"{book.quantile_ms(1.0):.1f} ms"),
        (
            "wait for a free connection, mean / max",
            f"{lateness:.2f} / {quantile_ms(book.lateness, 1.0):.1f} ms",
        ),
        ("client's own lag (max)", f"{book.client_lag * 1000:.1f} ms"),
        (
            "server CPU (all threads / main threads)",
            f"{cpu1[0] - cpu0[0]:.1f} / {cpu1[1] - cpu0[1]:.1f} s",
        ),
        (
            "client CPU (this process) total / per request",
            f"{client_cpu:.1f} s / {client_cpu / count * 1000:.3f} ms",
        ),
        (
            "scheduler",
            Path("/proc/self/autogroup").read_text().strip() + f", session {os.getsid(0)}"
            if args.autogroup_nice is not None
            else "shared with the caller's session",
        ),
        ("machine busy during the run", f"{busy_share(busy0, busy1) * 100:.0f} %"),
    ]
    if sink is not None:
        rows.append(("messages at the sink by the end", f"{sink.count:,}"))
    for label, value in rows:
        print(f"  {label:<42} {value}")
    worst = book.worst_seconds(0.020)
    if worst:
        print("  seconds with most answers over 20 ms (second: count, slowest):")
        print("    " + ", ".join(f"{s:.0f}: {n}, {m * 1000:.0f} ms" for s, n, m in worst))
    if args.profile:
        summarise_profile(args.profile)


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())
