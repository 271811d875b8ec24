"""The delivery worker: claim due deliveries, send them over pooled sessions, record outcomes.

One worker is one asyncio task tree:

* the *claim loop* leases batches of due deliveries (``claim_batch`` at a time, while fewer
  than ``2 × claim_batch`` are in flight), loads their messages, and files them as
  transactions (one message × the recipients of one destination) under their destination;
* *sessions*, one task each, are started per destination while it has work — one more
  whenever more than ``SESSION_FILL`` transactions wait per running session — up to
  ``sessions_per_destination`` per destination and ``max_sessions`` in all. A session
  resolves the route, connects, then takes transaction after transaction from its
  destination until none are left or it has sent ``messages_per_session``;
* the *recorder* (``delivery/recorder.py``) writes results in batches through
  ``Database.write`` (group commit), so a session never waits for an fsync, and lists every
  bounce in the same transaction (suppressing the address when the bounce is hard).

Leases are short and renewed while the worker lives (``delivery/leases.py``); a worker that
dies stops renewing, and its deliveries are due again when the lease runs out — or at once
when a worker starts on the same host. A live worker does not start a transaction on a claim
whose lease is about to end: it gives that claim back instead, so no claim is ever used by
two live workers. Delivery is at least once: mail a killed worker had handed to the
receiving server but not yet recorded is sent again.

Nothing that goes wrong while delivering is silent: an unexpected exception becomes a
deferral of the transaction it hit, recorded with its reason (``RetryPolicy`` bounces it
after ``max_unexpected_failures`` identical failures), and the session goes on with the next
transaction on a fresh connection. Every decision leaves one log line at info level.

An outage of the store is not an end either (docs/architecture.md, "Outages"): the claim loop
and the recorder each say it once ("store unavailable: …, retrying"), wait with a capped
backoff, and go on when the store is back ("store available again after 42 s"); results wait
in memory meanwhile, under leases the heartbeat renews when it can. Anything else that ends
the claim loop ends :meth:`DeliveryWorker.run` with the exception, and the process's watchdog
(``runtime.py``) stops the process with a non-zero status rather than serve without
delivering. Stopping is bounded (``SHUTDOWN_SESSIONS_SECONDS`` for running SMTP
transactions); claims the store will not take back are left to their (short) leases.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Final

from sqlalchemy import Connection

from mailpulse.config import Settings
from mailpulse.core.clock import Clock, SystemClock
from mailpulse.core.errors import StoreUnavailable
from mailpulse.core.outage import Outage
from mailpulse.delivery.backoff import RetryPolicy
from mailpulse.delivery.classify import Classification, classify
from mailpulse.delivery.leases import LeaseKeeper
from mailpulse.delivery.owner import new_owner
from mailpulse.delivery.personalise import Personaliser, for_settings
from mailpulse.delivery.queue import (
    ClaimedDelivery,
    DeliveryResult,
    StoredMessage,
    claim,
    load_messages,
    release,
)
from mailpulse.delivery.recorder import Recorder
from mailpulse.delivery.routing import Candidate, Router, RoutingError
from mailpulse.delivery.session import (
    ConnectFailed,
    Reply,
    Session,
    SessionSettings,
    Transaction,
    open_session,
)
from mailpulse.delivery.verdicts import connect_failure, routing_failure, unexpected_failure
from mailpulse.store.db import Database

log = logging.getLogger(__name__)

#: Start another session for a destination when more than this many transactions wait per
#: running session.
SESSION_FILL: Final = 10
#: Most recipients in one transaction (RFC 5321 §4.5.3.1.8 says servers take at least 100).
MAX_RECIPIENTS: Final = 100
MESSAGE_CACHE: Final = 2000
#: On stop, how long running SMTP transactions may take before they are cancelled (their
#: claims then run out and the mail is sent again: at least once, never lost).
SHUTDOWN_SESSIONS_SECONDS: Final = 3.0


@dataclass
class _Destination:
    key: str
    domain: str
    pending: deque[Transaction] = field(default_factory=deque)
    active: int = 0
    # set whenever transactions are filed, so idle sessions to this destination wake up
    arrived: asyncio.Event = field(default_factory=asyncio.Event)


def default_owner() -> str:
    return new_owner()


class DeliveryWorker:
    """Delivers the queue. ``await run(stop)`` until ``stop`` is set; ``wake()`` on new mail."""

    def __init__(
        self,
        db: Database,
        settings: Settings,
        *,
        clock: Clock | None = None,
        owner: str | None = None,
        rng: random.Random | None = None,
        router: Router | None = None,
        retry: RetryPolicy | None = None,
        poll_interval: float = 0.2,
        monotonic: Callable[[], float] = time.monotonic,
        personaliser: Personaliser | None = None,
    ) -> None:
        self.db = db
        self.personaliser = personaliser or for_settings(settings)
        self.settings = settings
        self.clock: Clock = clock or SystemClock()
        self.owner = (owner or default_owner())[:64]
        self._rng = rng or random.Random()
        self.router = router or Router(settings, rng=self._rng)
        self.retry = retry or RetryPolicy(
            rng=self._rng,
            window=timedelta(seconds=settings.retry_window_seconds),
            max_unexpected_failures=settings.max_unexpected_failures,
        )
        self.poll_interval = poll_interval
        self._session_settings = SessionSettings.from_settings(settings)
        self._lease_margin = timedelta(
            seconds=min(
                settings.lease_seconds / 2,
                settings.connect_timeout + 3 * settings.command_timeout,
            )
        )
        self._wake = asyncio.Event()
        self._progress = asyncio.Event()
        self._destinations: dict[str, _Destination] = {}
        self._messages: OrderedDict[int, StoredMessage] = OrderedDict()
        self._tasks: set[asyncio.Task[None]] = set()
        self._inflight = 0
        self.leases = LeaseKeeper(db, self.clock, self.owner, settings.lease_seconds)
        self._sessions = 0
        self._stopping = False
        self._monotonic = monotonic
        self._claims_outage = Outage("delivery worker", log, now=monotonic)
        self.recorder = Recorder(
            db,
            self.clock,
            self.retry,
            done=self._forget,
            progressed=self._recorded,
            monotonic=monotonic,
        )
        #: when the claim loop or the recorder last used the store successfully (readiness)
        self.last_progress = monotonic()

    # -- public ------------------------------------------------------------------------------
    def wake(self) -> None:
        """New mail was accepted: look at the queue now instead of at the next poll."""
        self._wake.set()

    async def run(self, stop: asyncio.Event) -> None:
        await self._run(stop, until_idle=False)

    def stalled_for(self) -> float:
        """Seconds since the worker last used the store successfully (a claim query, a
        record). The claim loop asks the queue every ``poll_interval`` while it has room, so
        a healthy worker is never far behind; one that cannot claim or record is."""
        return self._monotonic() - self.last_progress

    async def run_until_idle(self) -> None:
        """Deliver until nothing is due and nothing is in flight (tests, ``flush`` commands)."""
        await self._run(asyncio.Event(), until_idle=True)

    # -- the claim loop ----------------------------------------------------------------------
    async def _run(self, stop: asyncio.Event, *, until_idle: bool) -> None:
        self._stopping = False
        self.recorder.open()
        await self.leases.free_dead_owners()
        recorder = asyncio.create_task(self.recorder.run())
        heartbeat_stop = asyncio.Event()
        heartbeat = asyncio.create_task(self.leases.heartbeat(heartbeat_stop))
        max_inflight = 2 * self.settings.claim_batch
        try:
            while not stop.is_set():
                if self._inflight >= max_inflight:
                    await self._wait(self._progress, stop, self.poll_interval)
                    continue
                try:
                    claimed = await self._claim()
                    if claimed:
                        await self._dispatch(claimed)
                except StoreUnavailable as exc:
                    await self._wait(asyncio.Event(), stop, self._claims_outage.failed(exc))
                    continue
                self._claims_outage.succeeded()
                self.last_progress = self._monotonic()
                if claimed:
                    continue
                if until_idle:
                    if self._inflight == 0:
                        return
                    await self._wait(self._progress, stop, self.poll_interval)
                    continue
                await self._wait(self._wake, stop, self.poll_interval)
        finally:
            try:
                await self._shutdown(recorder)
            finally:
                heartbeat_stop.set()  # renewing until every result is written
                await heartbeat

    async def _claim(self) -> list[ClaimedDelivery]:
        now = self.clock.now()
        settings = self.settings
        owner = self.owner

        def job(conn: Connection) -> list[ClaimedDelivery]:
            return claim(conn, now, owner, settings.claim_batch, settings.lease_seconds)

        claimed = await self.db.write(job)
        self._inflight += len(claimed)
        self.leases.hold(claimed)
        return claimed

    @staticmethod
    async def _wait(event: asyncio.Event, stop: asyncio.Event, timeout: float) -> None:
        waiters = [asyncio.ensure_future(event.wait()), asyncio.ensure_future(stop.wait())]
        try:
            await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()
        event.clear()

    async def _dispatch(self, claimed: Sequence[ClaimedDelivery]) -> None:
        try:
            messages = await self._load_messages({c.message_id for c in claimed})
        except StoreUnavailable:
            # Claimed but unreadable: not renewed, so the leases run out and they come back.
            self._inflight -= len(claimed)
            self.leases.drop(c.id for c in claimed)
            raise
        groups: dict[tuple[str, int], list[ClaimedDelivery]] = {}
        orphans: list[ClaimedDelivery] = []
        for delivery in claimed:
            if delivery.message_id not in messages:
                orphans.append(delivery)
                continue
            key = self.router.destination(delivery.recipient_domain)
            groups.setdefault((key, delivery.message_id), []).append(delivery)
        for (key, message_id), group in groups.items():
            dest = self._destinations.get(key)
            if dest is None:
                dest = self._destinations[key] = _Destination(key, group[0].recipient_domain)
            size = 1 if self.personaliser.per_recipient else MAX_RECIPIENTS
            for start in range(0, len(group), size):
                chunk = group[start : start + size]
                dest.pending.append(Transaction(messages[message_id], chunk))
            dest.arrived.set()
        if orphans:  # cannot happen with the foreign key; never spin on it
            log.error("deliveries without a stored message: %s", [o.id for o in orphans])
            await self._release(orphans)
        self._schedule()

    async def _load_messages(self, ids: set[int]) -> dict[int, StoredMessage]:
        found = {i: self._messages[i] for i in ids if i in self._messages}
        missing = sorted(ids - found.keys())
        if missing:
            loaded = await self.db.read(lambda conn: load_messages(conn, missing))
            found.update(loaded)
            for message_id, message in loaded.items():
                self._messages[message_id] = message
            while len(self._messages) > MESSAGE_CACHE:
                self._messages.popitem(last=False)
        return found

    # -- sessions ----------------------------------------------------------------------------
    def _schedule(self) -> None:
        settings = self.settings
        for key, dest in list(self._destinations.items()):
            while (
                dest.pending
                and not self._stopping
                and self._sessions < settings.max_sessions
                and dest.active < settings.sessions_per_destination
                and (dest.active == 0 or len(dest.pending) > dest.active * SESSION_FILL)
            ):
                dest.active += 1
                self._sessions += 1
                task = asyncio.create_task(self._session_task(dest), name=f"smtp:{key}")
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
            if not dest.pending and dest.active == 0:
                del self._destinations[key]

    async def _session_task(self, dest: _Destination) -> None:
        try:
            await self._deliver_destination(dest)
        except Exception:
            log.exception("session for %s failed", dest.key)
        finally:
            dest.active -= 1
            self._sessions -= 1
            if not self._stopping:
                self._schedule()

    async def _deliver_destination(self, dest: _Destination) -> None:
        try:
            candidates = await self.router.route(dest.domain)
        except RoutingError as exc:
            self._fail_all(dest, exc)
            return
        except Exception as exc:  # a bug, not DNS: said and recorded, never a silent requeue
            log.exception("routing %s failed unexpectedly", dest.domain)
            for tx in self._take_all(dest):
                self._unexpected(tx, exc, "")
            return
        session: Session | None = None
        per_session = self.settings.messages_per_session
        try:
            while not self._stopping:
                if not dest.pending and not await self._await_work(dest, session):
                    break
                if session is None or not session.alive or session.sent >= per_session:
                    if session is not None:
                        await session.close()
                        session = None
                    session = await self._open(dest, candidates)
                    if session is None:
                        return
                if not dest.pending:  # another session took it while this one connected
                    continue
                tx = dest.pending.popleft()
                if self.clock.now() >= self.leases.lease_end(tx.deliveries) - self._lease_margin:
                    await self._release(list(tx.deliveries))
                    continue
                try:
                    replies = await session.send(self.personaliser.transaction(tx))
                except Exception as exc:
                    # Whatever it was, this transaction hears it and the rest go on: the
                    # connection is in an unknown state, so the next one gets a fresh one.
                    log.exception("sending message %d to %s failed", tx.message.id, dest.key)
                    self._unexpected(tx, exc, session.host)
                    await session.close()
                    session = None
                    continue
                for delivery in tx.deliveries:
                    reply = replies[delivery.id]
                    self._add_result(
                        delivery,
                        classify(reply.code, reply.subcode, reply.text),
                        reply,
                        session.host,
                        session.used_ip,
                    )
        finally:
            if session is not None:
                await session.close()

    async def _await_work(self, dest: _Destination, session: Session | None) -> bool:
        """Keep an open connection for a moment when the destination runs dry, as Postfix's
        connection cache does: under a steady trickle of mail, one session carries it all
        instead of a connection (and a TLS handshake) per message. True when work arrived."""
        idle = self.settings.session_idle_seconds
        if session is None or not session.alive or idle <= 0:
            return False
        dest.arrived.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(dest.arrived.wait(), timeout=idle)
        return bool(dest.pending) and not self._stopping

    async def _open(self, dest: _Destination, candidates: list[Candidate]) -> Session | None:
        try:
            return await open_session(candidates, self._session_settings, self._rng)
        except ConnectFailed as exc:
            # The destination is unreachable now: every transaction waiting for it hears so.
            verdict = connect_failure(exc)
            for tx in self._take_all(dest):
                for delivery in tx.deliveries:
                    self._add_result(delivery, verdict, exc.reply, exc.host, exc.used_ip)
            return None
        except Exception as exc:
            log.exception("connecting to %s failed unexpectedly", dest.key)
            for tx in self._take_all(dest):
                self._unexpected(tx, exc, "")
            return None

    def _unexpected(self, tx: Transaction, exc: BaseException, host: str) -> None:
        """Record an unexpected failure as a deferral of each recipient, with its reason."""
        verdict, reply = unexpected_failure(exc)
        for delivery in tx.deliveries:
            self._add_result(delivery, verdict, reply, host, "", unexpected=True)

    def _fail_all(self, dest: _Destination, exc: RoutingError) -> None:
        verdict, reply = routing_failure(exc)
        for tx in self._take_all(dest):
            for delivery in tx.deliveries:
                self._add_result(delivery, verdict, reply, "", "")

    @staticmethod
    def _take_all(dest: _Destination) -> list[Transaction]:
        taken = list(dest.pending)
        dest.pending.clear()
        return taken

    # -- results -----------------------------------------------------------------------------
    def _add_result(
        self,
        delivery: ClaimedDelivery,
        verdict: Classification,
        reply: Reply,
        host: str,
        used_ip: str,
        *,
        unexpected: bool = False,
    ) -> None:
        self.recorder.add(
            DeliveryResult(
                delivery=delivery,
                classification=verdict,
                code=reply.code,
                subcode=reply.subcode,
                text=reply.text,
                host=host,
                used_ip=used_ip,
                unexpected=unexpected,
            )
        )

    def _forget(self, batch: Sequence[DeliveryResult]) -> None:
        """Results the recorder is done with (written, or given up on stop)."""
        self.leases.drop(result.delivery.id for result in batch)
        self._inflight -= len(batch)

    def _recorded(self) -> None:
        self.last_progress = self._monotonic()
        self._progress.set()

    async def _release(self, claimed: list[ClaimedDelivery]) -> None:
        """Give claims back; when the store will not take them, their leases run out."""
        if not claimed:
            return
        now = self.clock.now()
        try:
            await self.db.write(lambda conn: release(conn, claimed, now))
        except StoreUnavailable as exc:
            log.warning(
                "could not give back %d claims (%s): they come back when their leases run out",
                len(claimed),
                exc,
            )
        self._inflight -= len(claimed)
        self.leases.drop(delivery.id for delivery in claimed)
        self._progress.set()

    async def _shutdown(self, recorder: asyncio.Task[None]) -> None:
        """Let running transactions finish, give back the rest, write every result."""
        self._stopping = True
        for dest in self._destinations.values():
            dest.arrived.set()  # idle sessions close now
        if self._tasks:
            tasks = list(self._tasks)
            _, running = await asyncio.wait(tasks, timeout=SHUTDOWN_SESSIONS_SECONDS)
            for task in running:  # their claims run out; the mail is sent again later
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        leftovers = [
            delivery
            for dest in self._destinations.values()
            for tx in self._take_all(dest)
            for delivery in tx.deliveries
        ]
        self._destinations.clear()
        self.recorder.close()
        await recorder
        with contextlib.suppress(Exception):
            await self._release(leftovers)

    @property
    def in_flight(self) -> int:
        """Deliveries claimed and not yet recorded or given back."""
        return self._inflight
