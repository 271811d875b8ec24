"""The measuring helpers of bench/memory.py and bench/openloop.py count what they claim to.

The bench scripts themselves are run by hand (they take minutes); these check their bookkeeping:
PSS read from /proc and summed over a process tree, the open-loop schedule, and latencies taken
from each request's due time (so a late answer to an early request is not hidden).
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

import memory  # type: ignore[import-not-found]
import openloop  # type: ignore[import-not-found]

linux_proc = pytest.mark.skipif(
    not Path("/proc/self/smaps_rollup").exists(), reason="needs /proc/PID/smaps_rollup"
)


@linux_proc
def test_memory_of_this_process_has_pss_no_larger_than_rss() -> None:
    pss, rss = memory.memory_kb(os.getpid())
    assert 0 < pss <= rss


def test_memory_of_a_process_that_is_gone_is_zero() -> None:
    assert memory.memory_kb(2**22 + 7) == (0, 0)


@linux_proc
def test_tree_memory_includes_the_root_process() -> None:
    tree = memory.tree_memory(os.getpid())
    assert os.getpid() in tree
    assert tree[os.getpid()][0] > 0


def test_peaks_sum_processes_per_sample_and_keep_the_largest() -> None:
    peaks = memory.MemoryPeaks()
    peaks.add({1: (100, 150), 2: (50, 120)})
    peaks.add({1: (90, 140), 2: (80, 130)})
    peaks.add({1: (10, 20)})
    assert peaks.total_pss == 170  # 90 + 80: the largest sum, not the sum of the largest
    assert peaks.total_rss == 270
    assert peaks.per_process_pss == {1: 100, 2: 80}
    assert peaks.last_total_pss == 10
    merged = memory.merge(peaks, memory.MemoryPeaks(total_pss=200, per_process_pss={3: 200}))
    assert merged.total_pss == 200
    assert merged.per_process_pss == {1: 100, 2: 80, 3: 200}


def test_schedule_spaces_requests_by_the_rate() -> None:
    schedule = openloop.Schedule(rate=800.0, start=10.0)
    assert schedule.due(0) == 10.0
    assert schedule.due(800) == pytest.approx(11.0)
    assert schedule.due(1) == pytest.approx(10.00125)


def test_latency_counts_from_the_due_time_not_the_send_time() -> None:
    book = openloop.LatencyBook(counted_from=1.0)
    book.record(due=0.5, sent=0.5, done=0.6, ok=True)  # warm-up: not counted
    book.record(due=1.0, sent=1.0, done=1.005, ok=True)
    # the client could only send this one 40 ms late (no free connection): that wait counts
    book.record(due=1.01, sent=1.05, done=1.06, ok=True)
    book.record(due=1.02, sent=1.02, done=1.03, ok=False)
    assert book.latencies == pytest.approx([0.005, 0.05])
    assert book.lateness == pytest.approx([0.0, 0.04, 0.0])
    assert book.errors == 1
    assert book.quantile_ms(0.5) == pytest.approx(5.0)
    assert book.quantile_ms(1.0) == pytest.approx(50.0)
    assert book.achieved_rate() == pytest.approx(3 / 0.06)


def test_quantile_is_nearest_rank() -> None:
    values = [n / 1000 for n in range(1, 101)]  # 1 … 100 ms
    assert openloop.quantile_ms(values, 0.99) == pytest.approx(99.0)
    assert openloop.quantile_ms(values, 0.5) == pytest.approx(50.0)
    assert openloop.quantile_ms([], 0.5) != openloop.quantile_ms([], 0.5)  # nan


async def test_open_loop_sends_every_request_on_a_keep_alive_pool() -> None:
    """Against a tiny HTTP server on loopback: every request is answered and booked."""
    served = 0

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal served
        try:
            while await reader.readuntil(b"\r\n\r\n"):
                served += 1
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    request = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
    try:
        book = await openloop.open_loop(port, [request] * 20, 1000.0, 3, warmup=0.0)
    finally:
        server.close()
    assert served == 20
    assert len(book.latencies) == 20
    assert book.errors == 0
