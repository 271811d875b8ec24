"""Readiness (runtime.Readiness): fails while the store does not answer, while the writer is
in an outage it cannot end, and while the process's delivery worker has stopped or made no
progress for WORKER_STALL_SECONDS; the store check is reused within READY_CACHE_SECONDS."""

from __future__ import annotations

import asyncio
import logging
from types import SimpleNamespace
from typing import Any

from mailpulse.core.errors import StoreUnavailable
from mailpulse.core.outage import Outage
from mailpulse.runtime import READY_CACHE_SECONDS, WORKER_STALL_SECONDS, Readiness


class FakeDb:
    def __init__(self) -> None:
        self.outage = Outage("writer", logging.getLogger("test.ready"), now=lambda: 0.0)
        self.pings = 0
        self.reachable = True

    async def ping(self) -> None:
        self.pings += 1
        if not self.reachable:
            raise StoreUnavailable("connection refused")

    async def write(self, fn: Any) -> None:
        if not self.reachable:
            raise StoreUnavailable("database is locked")
        self.outage.succeeded()


def readiness(worker: Any = None, task: Any = None) -> tuple[Readiness, FakeDb, list[float]]:
    db = FakeDb()
    clock = [100.0]
    runtime = SimpleNamespace(db=db, worker=worker, worker_task=task)
    return Readiness(runtime, now=lambda: clock[0]), db, clock  # type: ignore[arg-type]


async def test_not_ready_while_the_store_does_not_answer_and_ready_when_it_does() -> None:
    ready, db, clock = readiness()
    assert await ready.problem() is None
    db.reachable = False
    assert await ready.problem() is None  # the answer of a moment ago is reused
    assert db.pings == 1
    clock[0] += READY_CACHE_SECONDS
    assert await ready.problem() == "store unavailable: connection refused"
    db.reachable = True
    clock[0] += READY_CACHE_SECONDS
    assert await ready.problem() is None


async def test_a_writer_outage_is_ended_by_an_empty_commit_or_reported() -> None:
    ready, db, clock = readiness()
    db.outage.failed("database is locked")
    db.reachable = False
    assert await ready.problem() == "store unavailable: database is locked"
    db.reachable = True
    clock[0] += READY_CACHE_SECONDS
    assert await ready.problem() is None
    assert not db.outage.down


async def test_not_ready_when_the_worker_stopped_or_stalled() -> None:
    stalled = [0.0]
    worker = SimpleNamespace(stalled_for=lambda: stalled[0])
    done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    ready, _, _ = readiness(worker, done)
    assert await ready.problem() is None
    stalled[0] = WORKER_STALL_SECONDS + 1
    assert await ready.problem() == "the delivery worker has made no progress for 61 s"
    done.set_result(None)
    assert await ready.problem() == "the delivery worker has stopped"
