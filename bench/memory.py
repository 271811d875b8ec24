"""Memory of `mailpulse serve` with a large queue, deferred while the receiver is down, then sent.

    .venv/bin/python bench/memory.py                              # 1,000,000 deliveries
    .venv/bin/python bench/memory.py --deliveries 200000 --concurrency 8

Issue 13's target: with 1,000,000 deliveries queued, the peak memory of all server processes,
counted without double-counting the pages they share, at most 300 MB. "Without double-counting"
is PSS (proportional set size: a page shared by N processes counts 1/N in each), read from
``/proc/PID/smaps_rollup`` of the supervisor and every child, summed, every ``--interval``
seconds (0.5). RSS, which counts shared pages once per process, is sampled alongside for
comparison.

The run, on a fresh SQLite file with default settings (one process per core, durable commits):

1. the relay (``MAILPULSE_RELAY``) points at a loopback port nobody listens on: every attempt
   is refused, so every delivery is deferred;
2. the queue is filled *through the API*: ``deliveries / per-send`` sends of ``per-send`` (100)
   recipients each, from ``--concurrency`` keep-alive connections (``delivery.py``'s light
   client); accepted/s and the accept latency are reported;
3. the worker chews through the deferrals until every delivery has been tried at least once
   (the "deferral pass"), and ``--down`` seconds more;
4. Postfix's ``smtp-sink`` starts on that port (the receiver comes back). With ``--flush`` (the
   default) the bench sets every unleased queue row due now, as an operator's flush would, and
   again whenever the queue stops shrinking (rows that were in flight at the first flush), so
   that the drain is not spent waiting for the 1–4 minute retry backoff; ``--no-flush`` waits;
5. the drain: until the queue table is empty; then ``--rest`` seconds at rest.

Printed: peak PSS (total and per process), peak RSS (total), PSS at rest, accepted/s and accept
latency, the deferral pass and drain times, and the deliveries' final statuses. Nothing is
asserted. Needs ``smtp-sink`` (installed with Debian's postfix package when missing).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sqlite3
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from _server import free_port, serve  # type: ignore[import-not-found]
from delivery import (  # type: ignore[import-not-found]
    LOOPBACK,
    Sink,
    ensure_postfix,
    http_exchange,
    http_requests,
    process_tree,
    quantile_ms,
)


# -- memory ----------------------------------------------------------------------------------------
def memory_kb(pid: int) -> tuple[int, int]:
    """(PSS, RSS) of one process in kB, from /proc/PID/smaps_rollup; (0, 0) when it is gone."""
    pss = rss = 0
    try:
        text = Path(f"/proc/{pid}/smaps_rollup").read_text()
    except OSError:
        return 0, 0
    for line in text.splitlines():
        if line.startswith("Pss:"):
            pss = int(line.split()[1])
        elif line.startswith("Rss:"):
            rss = int(line.split()[1])
    return pss, rss


def role(pid: int, root: int) -> str:
    """What a process of the server's tree is, for the report."""
    if pid == root:
        return "supervisor"
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return "gone"
    return "resource tracker" if b"resource_tracker" in cmdline else "server process"


def tree_memory(root: int) -> dict[int, tuple[int, int]]:
    """(PSS, RSS) in kB of ``root`` and each of its descendants, by pid."""
    return {pid: memory_kb(pid) for pid in process_tree(root)}


@dataclass
class MemoryPeaks:
    """Peaks of a process tree's memory over a run; fed one sample (pid → (PSS, RSS)) at a time."""

    total_pss: int = 0
    total_rss: int = 0
    per_process_pss: dict[int, int] = field(default_factory=dict)
    samples: int = 0
    last_total_pss: int = 0

    def add(self, sample: dict[int, tuple[int, int]]) -> None:
        pss = sum(p for p, _ in sample.values())
        rss = sum(r for _, r in sample.values())
        self.samples += 1
        self.last_total_pss = pss
        self.total_pss = max(self.total_pss, pss)
        self.total_rss = max(self.total_rss, rss)
        for pid, (p, _) in sample.items():
            self.per_process_pss[pid] = max(self.per_process_pss.get(pid, 0), p)


class Sampler:
    """Samples a process tree's memory every ``interval`` seconds on a thread."""

    def __init__(self, root: int, interval: float) -> None:
        self.root = root
        self.interval = interval
        self.peaks = MemoryPeaks()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="pss-sampler", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            sample = tree_memory(self.root)
            with self._lock:
                self.peaks.add(sample)

    def reset(self) -> MemoryPeaks:
        """The peaks so far; then start counting afresh (for a phase of its own)."""
        with self._lock:
            peaks, self.peaks = self.peaks, MemoryPeaks()
        return peaks

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


def merge(*phases: MemoryPeaks) -> MemoryPeaks:
    out = MemoryPeaks()
    for phase in phases:
        out.total_pss = max(out.total_pss, phase.total_pss)
        out.total_rss = max(out.total_rss, phase.total_rss)
        out.samples += phase.samples
        for pid, pss in phase.per_process_pss.items():
            out.per_process_pss[pid] = max(out.per_process_pss.get(pid, 0), pss)
    return out


# -- the load --------------------------------------------------------------------------------------
def send_requests(port: int, token: str, sender: str, sends: int, per_send: int) -> list[bytes]:
    """``sends`` requests of ``per_send`` recipients each (distinct addresses), pre-encoded."""
    return http_requests(
        port,
        token,
        sender,
        sends,
        1000,
        to=lambda n: [{"email": f"r{n}-{i}@bench.example"} for i in range(per_send)],
        subject="Memory bench",
    )


async def fill(
    port: int, requests: list[bytes], concurrency: int
) -> tuple[int, list[float], list[str], float]:
    """Send every request from ``concurrency`` keep-alive connections; a refused request or a
    dropped connection is counted (and the first few printed), not fatal: (accepted,
    latencies, failures, seconds)."""
    latencies: list[float] = []
    failures: list[str] = []
    turns = iter(range(len(requests)))

    async def connection() -> int:
        done = 0
        reader, writer = await asyncio.open_connection(LOOPBACK, port)
        for n in turns:
            started = time.perf_counter()
            try:
                head, body = await http_exchange(reader, writer, requests[n])
            except (OSError, asyncio.IncompleteReadError) as exc:
                failures.append(f"send {n}: {exc!r}")
                writer.close()
                reader, writer = await asyncio.open_connection(LOOPBACK, port)
                continue
            latencies.append(time.perf_counter() - started)
            if head[9:12] != b"200":
                failures.append(f"send {n}: {head[:12]!r} {body[:200]!r}")
                if b"connection: close" in head.lower():
                    writer.close()
                    reader, writer = await asyncio.open_connection(LOOPBACK, port)
                continue
            done += 1
        writer.close()
        return done

    started = time.perf_counter()
    counts = await asyncio.gather(*(connection() for _ in range(concurrency)))
    return sum(counts), latencies, failures, time.perf_counter() - started


def query(db: Path, sql: str) -> list[tuple[object, ...]]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=60)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def wait_for(
    check: str,
    db: Path,
    until_zero: bool,
    timeout: float,
    every: float,
    stalled: Callable[[], object] | None = None,
) -> float:
    """Seconds until ``check`` (a count query) answers 0; raises after ``timeout``. When the
    count has not fallen since the last look, ``stalled`` is called."""
    started = time.monotonic()
    last_print = started
    last_count = -1
    while True:
        count = int(query(db, check)[0][0])  # type: ignore[call-overload]
        if stalled is not None and count == last_count:
            stalled()
        last_count = count
        now = time.monotonic()
        if count == 0 and until_zero:
            return now - started
        if now - started > timeout:
            raise RuntimeError(f"still {count:,} after {timeout:.0f} s: {check}")
        if now - last_print > 30:
            print(f"    … {count:,} left after {now - started:.0f} s", flush=True)
            last_print = now
        time.sleep(every)


def flush_queue(db: Path) -> int:
    """Make every unleased queued delivery due now (an operator's flush after an outage)."""
    conn = sqlite3.connect(str(db), timeout=60)
    try:
        now = datetime.now(UTC).replace(tzinfo=None).isoformat(sep=" ")
        with conn:
            cursor = conn.execute(
                "UPDATE delivery_queue SET next_attempt_at = ? WHERE lease_owner IS NULL", (now,)
            )
        return cursor.rowcount
    finally:
        conn.close()


def mb(kb: int) -> str:
    return f"{kb / 1024:,.0f} MB"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--deliveries", type=int, default=1_000_000)
    parser.add_argument("--per-send", type=int, default=100, help="recipients per send (≤ 100)")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--interval", type=float, default=0.5, help="seconds between samples")
    parser.add_argument("--down", type=float, default=0.0, help="seconds more with the sink down")
    parser.add_argument("--flush", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--rest", type=float, default=15.0, help="seconds at rest at the end")
    parser.add_argument("--timeout", type=float, default=7200.0)
    parser.add_argument("--set", action="append", default=[], help="KEY=VALUE server setting")
    args = parser.parse_args()
    ensure_postfix()
    sends = args.deliveries // args.per_send
    sink_port = free_port()
    settings = {"relay": f"smtp://{LOOPBACK}:{sink_port}"}
    for item in args.set:
        key, _, value = item.partition("=")
        settings[key.lower()] = value
    with tempfile.TemporaryDirectory(prefix="mailpulse-memory-") as tmp:
        workdir = Path(tmp)
        db = workdir / "bench.db"
        sink: Sink | None = None
        with serve(workdir, **settings) as server:
            sampler = Sampler(server.process.pid, args.interval)
            sampler.start()
            time.sleep(2)
            start_peaks = sampler.reset()
            roles = {pid: role(pid, server.process.pid) for pid in process_tree(server.process.pid)}
            port = int(server.url.rsplit(":", 1)[1])
            requests = send_requests(port, server.token(), server.sender, sends, args.per_send)
            print(
                f"filling: {sends:,} sends × {args.per_send} recipients through the API,"
                f" receiver down (port {sink_port} closed)",
                flush=True,
            )
            done, latencies, failures, accept_seconds = asyncio.run(
                fill(port, requests, args.concurrency)
            )
            finished = time.perf_counter()
            del requests
            for failure in failures[:5]:
                print(f"  failed: {failure}", flush=True)
            accept_peaks = sampler.reset()
            print(f"  accepted {done:,} sends in {accept_seconds:.0f} s", flush=True)
            print("deferring: until every delivery was tried once", flush=True)
            defer_rest = wait_for(
                "SELECT count(*) FROM deliveries WHERE status = 'queued'",
                db,
                True,
                args.timeout,
                5.0,
            )
            defer_seconds = time.perf_counter() - finished
            time.sleep(args.down)
            defer_peaks = sampler.reset()
            statuses_down = dict(
                query(db, "SELECT status, count(*) FROM deliveries GROUP BY status")
            )
            attempts = int(query(db, "SELECT count(*) FROM delivery_attempts")[0][0])  # type: ignore[call-overload]
            print(
                f"  deferral pass {defer_seconds:.0f} s ({defer_rest:.0f} after accept)"
                f"; {attempts:,} attempts; {statuses_down}",
                flush=True,
            )
            sink = Sink(workdir, "memory", port=sink_port)
            up = time.perf_counter()
            flushed = flush_queue(db) if args.flush else 0
            print(f"draining: sink up; {flushed:,} queue rows made due now", flush=True)
            # Rows leased at the flush may be deferred once more (tried just before the sink
            # was up): flushed again whenever the count stops falling.
            wait_for(
                "SELECT count(*) FROM delivery_queue",
                db,
                True,
                args.timeout,
                2.0,
                (lambda: flush_queue(db)) if args.flush else None,
            )
            drain_seconds = time.perf_counter() - up
            drain_peaks = sampler.reset()
            time.sleep(args.rest)
            rest = tree_memory(server.process.pid)
            sampler.stop()
            pids = process_tree(server.process.pid)
            statuses = dict(query(db, "SELECT status, count(*) FROM deliveries GROUP BY status"))
        if sink is not None:
            sink.stop()
    peaks = merge(accept_peaks, defer_peaks, drain_peaks)
    rest_pss = sum(p for p, _ in rest.values())
    print(
        f"\n== memory with {sends * args.per_send:,} deliveries queued (SQLite, default settings)"
    )
    rows = [
        ("sends accepted", f"{done:,} × {args.per_send} recipients; {len(failures)} failed"),
        (
            "accepted/s (sends)",
            f"{done / accept_seconds:,.1f}"
            f" ({done * args.per_send / accept_seconds:,.0f} recipients/s)",
        ),
        (
            "accept latency p50 / p99",
            f"{quantile_ms(latencies, 50):.0f} / {quantile_ms(latencies, 99):.0f} ms",
        ),
        ("deferral pass (last accept → all tried)", f"{defer_seconds:.0f} s"),
        (
            "drain (sink up → queue empty)",
            f"{drain_seconds:.0f} s" + ("" if args.flush else " (no flush)"),
        ),
        ("final statuses", json.dumps(statuses)),
        ("PSS before the load", mb(start_peaks.total_pss)),
        ("peak PSS, all processes", f"{mb(peaks.total_pss)}  (target ≤ 300 MB)"),
        (
            "  during accept / deferrals / drain",
            " / ".join(mb(p.total_pss) for p in (accept_peaks, defer_peaks, drain_peaks)),
        ),
        ("peak RSS, all processes (double-counts)", mb(peaks.total_rss)),
        ("PSS at rest afterwards", mb(rest_pss)),
        ("samples", f"{peaks.samples:,} every {args.interval} s"),
    ]
    for label, value in rows:
        print(f"  {label:<44} {value}")
    for pid, pss in sorted(peaks.per_process_pss.items()):
        name = roles.get(pid, "started later") + ("" if pid in pids else ", gone")
        print(f"  {f'peak PSS pid {pid} ({name})':<44} {mb(pss)}")


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())
