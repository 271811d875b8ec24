"""The claims one worker holds: renewed while it lives, freed at once when it is dead.

Leases are short (``lease_seconds``, 30 s by default) so that a dead worker's claims come
back soon. A live worker keeps them with a *heartbeat*: every third of a lease it extends
every claim it still holds, in one statement (not one per message). A worker starting on a
host frees, before it claims anything, the claims of that host's dead processes
(``delivery/owner.py``), so a server restarted after a kill -9 sends the mail its previous
incarnation had claimed within seconds, without waiting for the leases to run out.

The heartbeat is a periodic job that outlives outages of the store: it says the outage once,
tries again at its next beat (sooner if the backoff allows), and says when the store is back.
Claims it could not renew may pass to another worker; the worker never starts a transaction on
a claim close to its end (``DeliveryWorker``), so no claim is used twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta

from sqlalchemy import Connection

from mailpulse.core.clock import Clock
from mailpulse.core.errors import StoreUnavailable
from mailpulse.core.outage import Outage
from mailpulse.delivery.owner import dead_here, host_label, parse_owner
from mailpulse.delivery.queue import ClaimedDelivery, free_owners, lease_owners, renew
from mailpulse.store.db import Database

log = logging.getLogger(__name__)


class LeaseKeeper:
    """Tracks the claims of ``owner``, renews them, and frees those of dead predecessors."""

    def __init__(self, db: Database, clock: Clock, owner: str, lease_seconds: float) -> None:
        self.db = db
        self.clock = clock
        self.owner = owner
        self.lease_seconds = lease_seconds
        self._held: set[int] = set()
        self._renewed_until: datetime | None = None
        self.outage = Outage("lease heartbeat", log)

    def hold(self, claimed: Iterable[ClaimedDelivery]) -> None:
        self._held.update(d.id for d in claimed)

    def drop(self, ids: Iterable[int]) -> None:
        self._held.difference_update(ids)

    def lease_end(self, claimed: Sequence[ClaimedDelivery]) -> datetime:
        """When the earliest of these claims runs out, renewals included."""
        end = min(d.lease_until for d in claimed)
        renewed = self._renewed_until
        return end if renewed is None or renewed < end else renewed

    async def free_dead_owners(self) -> None:
        """Free the claims of this host's dead worker processes (a restart after kill -9)."""
        parsed = parse_owner(self.owner)
        if parsed is None or parsed.host != host_label():
            return  # an owner name given by hand (tests): no host to speak for
        host = parsed.host
        now = self.clock.now()
        mine = self.owner

        def job(conn: Connection) -> tuple[list[str], int]:
            owners = lease_owners(conn, now, f"{host}:")
            dead = [o for o in owners if o != mine and dead_here(o, host)]
            return dead, free_owners(conn, dead, now)

        try:
            dead, freed = await self.db.write(job)
        except StoreUnavailable as exc:
            log.warning("could not free the claims of dead workers now: %s", exc)
            return
        except Exception:
            log.exception("could not free the claims of dead workers")
            return
        if freed:
            log.info(
                "freed %d claims of %d dead worker process(es) on this host: %s",
                freed,
                len(dead),
                ", ".join(dead),
            )

    async def heartbeat(self, stop: asyncio.Event) -> None:
        """Renew every claim still held, every third of a lease, until ``stop``."""
        interval = self.lease_seconds / 3
        wait = interval
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=wait)
            wait = interval
            held = list(self._held)
            if not held or stop.is_set():
                continue
            until = self.clock.now() + timedelta(seconds=self.lease_seconds)
            job = functools.partial(renew, ids=held, owner=self.owner, until=until)
            try:
                await self.db.write(job)
            except StoreUnavailable as exc:
                wait = min(interval, self.outage.failed(exc))
                continue
            except Exception:
                log.exception("could not renew %d claims", len(held))
                continue
            self.outage.succeeded()
            self._renewed_until = until
