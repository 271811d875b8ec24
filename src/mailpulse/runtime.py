"""Wiring: the one place that turns Settings into the running parts and hands them around.

Also the process's watchdog: a process whose delivery worker or database writer has ended
without being asked to (a bug: outages of the store do not end them) must not stay alive
and idle, accepting mail nobody delivers. :func:`watchdog` notices within a second, logs one
line and stops the process as SIGTERM would; the command then exits with
``FATAL_EXIT_STATUS`` so that its supervisor restarts it.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import signal
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

from sqlalchemy import Connection

from mailpulse.config import Settings
from mailpulse.core.access import AccessControl
from mailpulse.core.auth import TokenSigner
from mailpulse.core.clock import Clock, SystemClock
from mailpulse.core.errors import StoreUnavailable
from mailpulse.core.ids import IdFactory, new_email_id
from mailpulse.core.ratelimit import TokenThrottle
from mailpulse.core.resubscribe import Resubscriber
from mailpulse.core.signing import Signer
from mailpulse.core.submit import Submitter
from mailpulse.core.validate import Limits
from mailpulse.delivery.personalise import for_settings
from mailpulse.delivery.worker import DeliveryWorker
from mailpulse.inbound.addresses import Addresses
from mailpulse.inbound.server import BounceReceiver
from mailpulse.store import emails
from mailpulse.store.db import PING_SECONDS, Database
from mailpulse.store.gateway import SqlAccessStore, SqlSubmitStore
from mailpulse.store.resubscriptions import SqlResubscribeStore

log = logging.getLogger(__name__)

#: EX_SOFTWARE: a part of the process ended unexpectedly; restarting it is the cure.
FATAL_EXIT_STATUS = 70
#: On stop, how long the delivery worker may take to finish (sessions, results, claims).
WORKER_STOP_SECONDS = 8.0
#: Readiness: how long a store check is reused, and how long a worker may go without using
#: the store successfully before it counts as stuck.
READY_CACHE_SECONDS = 1.0
WORKER_STALL_SECONDS = 60.0


class Fatal:
    """Why this process must stop with :data:`FATAL_EXIT_STATUS` (None while all is well)."""

    reason: str | None = None

    @classmethod
    def stop_process(cls, reason: str) -> None:
        """Log one line and stop the process as SIGTERM does (the same graceful path)."""
        if cls.reason is not None:
            return
        cls.reason = reason
        log.error("stopping the process (exit status %d): %s", FATAL_EXIT_STATUS, reason)
        os.kill(os.getpid(), signal.SIGTERM)


@dataclass
class Runtime:
    settings: Settings
    db: Database
    clock: Clock
    signer: TokenSigner
    submitter: Submitter
    access: AccessControl
    token_throttle: TokenThrottle
    # Argon2 takes 64 MiB per check: a burst of token requests (no login needed) must not
    # multiply that by the thread pool's size.
    secret_checks: asyncio.Semaphore
    resubscriber: Resubscriber
    #: signs and checks the tokens of links and addresses in outgoing mail (core/signing.py):
    #: VERP return paths, unsubscribe and resubscribe links
    links: Signer
    worker: DeliveryWorker | None = None
    worker_task: asyncio.Task[None] | None = None


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
    secret = settings.resolved_secret_key()
    signer = TokenSigner(secret, settings.token_ttl_seconds)
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
        hostname=settings.resolved_hostname(),
    )
    signing = Signer(secret)
    resubscriber = Resubscriber(
        store=SqlResubscribeStore(db, access),
        clock=clock,
        new_id=submitter.new_id,
        signer=signing,
        base_url=settings.base_url(),
        hostname=submitter.hostname,
    )
    return Runtime(
        settings=settings,
        db=db,
        clock=clock,
        signer=signer,
        submitter=submitter,
        access=access,
        token_throttle=throttle,
        secret_checks=asyncio.Semaphore(settings.token_checks_at_once),
        resubscriber=resubscriber,
        links=signing,
    )


@asynccontextmanager
async def running_worker(runtime: Runtime) -> AsyncIterator[DeliveryWorker]:
    """A delivery worker on the runtime's database, woken by every accepted email. Stopping
    it takes at most ``WORKER_STOP_SECONDS``: past that it is cancelled (its claims run out)."""
    settings = runtime.settings
    worker = DeliveryWorker(
        runtime.db,
        settings,
        clock=runtime.clock,
        personaliser=for_settings(settings, runtime.links),
    )
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop), name="delivery-worker")
    runtime.worker, runtime.worker_task = worker, task
    runtime.submitter.on_queued = runtime.resubscriber.on_queued = worker.wake
    try:
        yield worker
    finally:
        runtime.submitter.on_queued = runtime.resubscriber.on_queued = None
        stop.set()
        try:
            await asyncio.wait_for(asyncio.shield(task), timeout=WORKER_STOP_SECONDS)
        except TimeoutError:
            log.warning(
                "the delivery worker did not stop within %.0f s; its claims will run out",
                WORKER_STOP_SECONDS,
            )
            task.cancel()
            with contextlib.suppress(BaseException):
                await task
        except Exception:
            log.exception("the delivery worker ended with an error")
        finally:
            runtime.worker = runtime.worker_task = None


def bounce_receiver(runtime: Runtime) -> BounceReceiver:
    """The bounce receiver (inbound/) on the runtime's store, where the settings say."""
    settings = runtime.settings
    return BounceReceiver(
        runtime.db,
        Addresses(runtime.links, settings.resolved_bounce_domain()),
        runtime.clock,
        settings.bounce_host,
        settings.bounce_port,
    )


@asynccontextmanager
async def running_receiver(
    runtime: Runtime, *, shared: bool = False
) -> AsyncIterator[BounceReceiver | None]:
    """The bounce receiver, listening. ``shared``: one of several server processes, which
    all try to bind the port; the first one gets it, the others (None) leave it to that one
    (when it dies, its replacement binds it). Alone, an address that cannot be had is an
    error (OSError)."""
    receiver = bounce_receiver(runtime)
    try:
        await receiver.start()
    except OSError as exc:
        if not shared or exc.errno != errno.EADDRINUSE:
            raise
        log.debug("bounce receiver: another server process listens on %s", receiver.where())
        yield None
        return
    log.info("bounce receiver: listening on %s", receiver.where())
    try:
        yield receiver
    finally:
        await receiver.stop()


async def watchdog(runtime: Runtime, interval: float = 1.0) -> None:
    """Stop the process (non-zero exit) when its writer thread or its delivery worker has
    ended unexpectedly: never alive and idle. Runs until cancelled."""
    while True:
        await asyncio.sleep(interval)
        task = runtime.worker_task
        if task is not None and task.done():
            error = None if task.cancelled() else task.exception()
            why = f"{type(error).__name__}: {error}" if error else "it returned"
            Fatal.stop_process(f"the delivery worker ended unexpectedly ({why})")
            return
        if runtime.db.writer_failed:
            Fatal.stop_process("the database writer thread ended unexpectedly")
            return


@asynccontextmanager
async def watched(runtime: Runtime) -> AsyncIterator[None]:
    task = asyncio.create_task(watchdog(runtime), name="watchdog")
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(BaseException):
            await task


def _nothing(_conn: Connection) -> None:
    return None


class Readiness:
    """Whether this process should be sent traffic: the store answers (``SELECT 1``, bounded,
    reused for ``READY_CACHE_SECONDS``; the writer is not in an outage) and its delivery worker,
    if any, is running and making progress. ``None`` when ready, else the reason."""

    def __init__(self, runtime: Runtime, now: Callable[[], float] = time.monotonic) -> None:
        self.runtime = runtime
        self.now = now
        self._checked_at = -1e9
        self._store_problem: str | None = None
        self._lock = asyncio.Lock()

    async def problem(self) -> str | None:
        store = await self._store()
        if store is not None:
            return f"store unavailable: {store}"
        task, worker = self.runtime.worker_task, self.runtime.worker
        if task is not None and task.done():
            return "the delivery worker has stopped"
        if worker is not None and worker.stalled_for() > WORKER_STALL_SECONDS:
            return f"the delivery worker has made no progress for {worker.stalled_for():.0f} s"
        return None

    async def _store(self) -> str | None:
        async with self._lock:
            if self.now() - self._checked_at < READY_CACHE_SECONDS:
                return self._store_problem
            db = self.runtime.db
            try:
                if db.outage.down:
                    # the writer's last commit failed: try one (empty) through it, bounded
                    await asyncio.wait_for(db.write(_nothing), timeout=PING_SECONDS)
                else:
                    await db.ping()
                self._store_problem = None
            except (StoreUnavailable, TimeoutError) as exc:
                self._store_problem = str(exc) or "no answer in time"
            self._checked_at = self.now()
            return self._store_problem
