"""Wiring: the one place that turns Settings into the running parts and hands them around."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from mailpulse.config import Settings
from mailpulse.core.access import AccessControl
from mailpulse.core.auth import TokenSigner
from mailpulse.core.clock import Clock, SystemClock
from mailpulse.core.ids import IdFactory, new_email_id
from mailpulse.core.ratelimit import TokenThrottle
from mailpulse.core.submit import Submitter
from mailpulse.core.validate import Limits
from mailpulse.delivery.worker import DeliveryWorker
from mailpulse.store import emails
from mailpulse.store.db import Database
from mailpulse.store.gateway import SqlAccessStore, SqlSubmitStore


@dataclass
class Runtime:
    settings: Settings
    db: Database
    clock: Clock
    signer: TokenSigner
    submitter: Submitter
    access: AccessControl
    token_throttle: TokenThrottle


def build_runtime(
    settings: Settings, *, clock: Clock | None = None, new_id: IdFactory | None = None
) -> Runtime:
    clock = clock or SystemClock()
    db = Database(
        settings.database_url,
        synchronous=settings.sqlite_synchronous,
        batch_max=settings.commit_batch_max,
        warm_up=emails.warm_up,
    )
    signer = TokenSigner(settings.resolved_secret_key(), settings.token_ttl_seconds)
    access = AccessControl(SqlAccessStore(db), signer, clock, settings.auth_cache_seconds)
    throttle = TokenThrottle(
        clock,
        per_ip=settings.token_failures_per_ip,
        per_client=settings.token_failures_per_client,
        window_seconds=settings.token_failure_window_seconds,
    )
    submitter = Submitter(
        store=SqlSubmitStore(db, access),
        clock=clock,
        new_id=new_id or new_email_id,
        limits=Limits(
            max_recipients=settings.max_recipients,
            max_message_bytes=settings.max_message_bytes,
        ),
        hostname=settings.hostname or socket.getfqdn() or "mailpulse.local",
    )
    return Runtime(
        settings=settings,
        db=db,
        clock=clock,
        signer=signer,
        submitter=submitter,
        access=access,
        token_throttle=throttle,
    )


@asynccontextmanager
async def running_worker(runtime: Runtime) -> AsyncIterator[DeliveryWorker]:
    """A delivery worker on the runtime's database, woken by every accepted email."""
    worker = DeliveryWorker(runtime.db, runtime.settings, clock=runtime.clock)
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop), name="delivery-worker")
    runtime.submitter.on_queued = worker.wake
    try:
        yield worker
    finally:
        runtime.submitter.on_queued = None
        stop.set()
        await task
