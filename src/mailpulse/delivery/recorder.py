"""The delivery recorder: the worker's attempts written in batches, each bounce listed with them.

Sessions hand every attempt's result to :meth:`Recorder.add` and go on; the recorder's loop
writes what has gathered through ``Database.write`` (group commit), so a session never waits
for an fsync. One batch is one transaction (:func:`record_batch`):

* ``queue.record_results``: the attempt rows, the deliveries' new states, the queue, the events;
* every bounce it decided — a 5xx, a permanent routing failure (NXDOMAIN, null MX), an expiry,
  a give-up after repeated unexpected failures — listed through ``store/bounces.py``, with the
  address put on the account's suppression list when the classifier calls the bounce hard
  (``delivery/classify.py``). A delivery's status and its bounce are never seen apart.

After the commit, one log line per decision (:func:`describe_decision`); a bounce's line also
names how it was judged ("…; bad mailbox: address suppressed", "…; policy: not suppressed (a
block, not the address)").

When the store is unavailable the results wait in memory and the recorder says so once,
retrying with a capped backoff (docs/architecture.md, "Outages"); on stop with the store still
failing, they are given up to their leases (the deliveries are tried again: a repeat, never a
loss).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy import Connection

from mailpulse.core.clock import Clock
from mailpulse.core.errors import StoreUnavailable
from mailpulse.core.outage import Outage
from mailpulse.delivery.backoff import RetryPolicy
from mailpulse.delivery.classify import BOUNCED, OTHER, suppression_note
from mailpulse.delivery.queue import Decision, DeliveryResult, record_results
from mailpulse.store import bounces
from mailpulse.store.db import Database
from mailpulse.store.tables import deliveries, messages

# The decision lines keep the logger operators know them by (they were the worker's).
log = logging.getLogger("mailpulse.delivery.worker")

#: The code a listed bounce carries when no server answered 5xx: an expiry (its last answer
#: was a 4xx or none), a give-up after unexpected failures. RFC 5321's "transaction failed".
BOUNCE_CODE: Final = 554


def describe_decision(decision: Decision, now: datetime) -> str:
    """The log line of one decision: "delivery <id> to <domain>: <outcome> <code> <text>",
    and for a recorded bounce how it was judged."""
    answer = " ".join(str(x) for x in (decision.code, decision.subcode) if x)
    text = decision.text if len(decision.text) <= 200 else decision.text[:199] + "…"
    line = f"delivery {decision.public_id} to {decision.domain}: {decision.outcome}"
    if answer:
        line += f" {answer}"
    if text:
        line += f" ({text})"
    if not decision.recorded:
        line += ", not recorded: the claim had passed to another worker"
    elif decision.next_attempt_at is not None:
        wait = max(0, round((decision.next_attempt_at - now).total_seconds()))
        line += f", retry in {wait}s"
    elif decision.outcome == BOUNCED:
        line += f"; {suppression_note(decision.classification)}"
    return line


def record_batch(
    conn: Connection, batch: Sequence[DeliveryResult], now: datetime, policy: RetryPolicy
) -> list[Decision]:
    """Record the results and list their bounces, in the caller's transaction."""
    decisions = record_results(conn, batch, now, policy)
    list_bounces(conn, decisions, now)
    return decisions


def _listed_code(decision: Decision) -> int:
    code = decision.code
    return code if code is not None and 500 <= code < 600 else BOUNCE_CODE


def list_bounces(conn: Connection, decisions: Sequence[Decision], now: datetime) -> None:
    """List the recorded bounces among ``decisions`` (sender and subject: one query)."""
    bounced = [d for d in decisions if d.recorded and d.outcome == BOUNCED]
    if not bounced:
        return
    query = (
        sa.select(deliveries.c.id, deliveries.c.sender, messages.c.subject)
        .select_from(deliveries.join(messages, messages.c.id == deliveries.c.message_id))
        .where(deliveries.c.id.in_(sorted({d.delivery.id for d in bounced})))
    )
    about = {row.id: (row.sender, row.subject) for row in conn.execute(query)}
    bounces.record_all(
        conn,
        [
            bounces.NewBounce(
                account_id=d.delivery.account_id,
                delivery_id=d.delivery.id,
                email_to=d.delivery.recipient,
                sender=about.get(d.delivery.id, ("", ""))[0],
                subject=about.get(d.delivery.id, ("", ""))[1],
                send_date=now,  # the log's send_date of a bounced delivery: when it bounced
                code=_listed_code(d),
                subcode=d.subcode,
                data=d.text,
                category=d.classification.category or OTHER,
                source="sync",
                suppress=d.classification.hard,
            )
            for d in bounced
        ],
        now,
    )


class Recorder:
    """Gathers results and writes them in batches until closed.

    ``done(batch)`` is called once for every batch that will not be written again (recorded,
    or given up on stop): the worker drops its leases and in-flight count there.
    ``progressed()`` after each successful write (the worker's readiness and claim loop).
    """

    def __init__(
        self,
        db: Database,
        clock: Clock,
        policy: RetryPolicy,
        *,
        done: Callable[[Sequence[DeliveryResult]], None],
        progressed: Callable[[], None],
        monotonic: Callable[[], float],
    ) -> None:
        self.db = db
        self.clock = clock
        self.policy = policy
        self._done = done
        self._progressed = progressed
        self._results: list[DeliveryResult] = []
        self._ready = asyncio.Event()
        self._closing = False
        self._closed = asyncio.Event()  # set with _closing: a recorder waiting to retry stops
        self._outage = Outage("delivery recorder", log, now=monotonic)

    def add(self, result: DeliveryResult) -> None:
        self._results.append(result)
        self._ready.set()

    def open(self) -> None:
        """Before a run: take results until :meth:`close`."""
        self._closing = False
        self._closed.clear()

    def close(self) -> None:
        """Write what is left, then let :meth:`run` end."""
        self._closing = True
        self._closed.set()
        self._ready.set()

    async def run(self) -> None:
        while True:
            await self._ready.wait()
            self._ready.clear()
            await self._flush()
            if self._closing:
                return

    async def _flush(self) -> None:
        while self._results:
            batch, self._results = self._results, []
            now = self.clock.now()
            try:
                decisions = await self.db.write(self._job(batch, now))
            except Exception as exc:
                if self._closing:
                    # Shutting down with the store failing: the leases will run out and the
                    # deliveries be tried again (a repeat, never a loss).
                    log.warning(
                        "could not record %d delivery results on stop (%s): they will be "
                        "tried again when their leases run out",
                        len(batch),
                        exc,
                    )
                    self._done(batch)
                    continue
                if isinstance(exc, StoreUnavailable):
                    delay = self._outage.failed(exc)
                else:
                    log.exception("recording %d delivery results failed; retrying", len(batch))
                    delay = 1.0
                self._results[:0] = batch
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._closed.wait(), timeout=delay)
                continue
            self._outage.succeeded()
            self._done(batch)
            self._progressed()
            if log.isEnabledFor(logging.INFO):
                for decision in decisions:
                    log.info("%s", describe_decision(decision, now))

    def _job(self, batch: list[DeliveryResult], now: datetime) -> Callable[[Connection], Any]:
        policy = self.policy
        return lambda conn: record_batch(conn, batch, now, policy)
