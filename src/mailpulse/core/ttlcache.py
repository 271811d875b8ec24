"""A small, bounded, short-lived cache of store answers, driven by the injected clock.

Authentication and the sender check ask the same few questions on every request ("which
account owns this key?", "is this account still allowed in, and at which credential
generation?"). Their answers change only when an operator acts, so an answer may be reused for
a few seconds: that window is how long a revocation, a deactivation or a secret rotation takes
to reach a running server, and in exchange no request waits on the store once it is cached.

- Bounded: each cache is an LRU with a size cap, so answers about random bogus keys cannot
  grow memory. Negative answers (``None``: no such key, no such account) are kept in their
  own smaller LRU, so a flood of bogus keys cannot push the real accounts out; and they are
  kept for the same window, so one bogus key asked again and again costs one read per window.
- Coalescing: concurrent misses for the same key share one load (one store read), and a
  waiter that is cancelled (its client went away) does not cancel the load for the others.
- Clock-driven: entries expire by :class:`~mailpulse.core.clock.Clock` time, so tests move a
  clock instead of sleeping. An entry also expires if the clock goes backwards past the
  moment it was stored, so a wall-clock step never stretches the window.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Generic, TypeVar

from mailpulse.core.clock import Clock

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


@dataclass(frozen=True)
class _Entry(Generic[V]):
    value: V
    stored_at: datetime
    expires_at: datetime


class TtlCache(Generic[K, V]):
    """Answers of type ``V | None`` kept for ``ttl_seconds``; ``None`` answers separately."""

    def __init__(
        self,
        clock: Clock,
        ttl_seconds: float,
        *,
        max_entries: int = 10_000,
        max_negative_entries: int = 4_096,
    ) -> None:
        self._clock = clock
        self._ttl = timedelta(seconds=max(ttl_seconds, 0.0))
        self._max = {True: max(max_entries, 1), False: max(max_negative_entries, 1)}
        self._found: OrderedDict[K, _Entry[V]] = OrderedDict()
        self._missing: OrderedDict[K, _Entry[None]] = OrderedDict()
        self._loading: dict[K, asyncio.Future[V | None]] = {}

    def __len__(self) -> int:
        return len(self._found) + len(self._missing)

    def lookup(self, key: K) -> tuple[bool, V | None]:
        """(hit, value): a fresh entry's value, or (False, None) when there is none."""
        now = self._clock.now()
        for table in (self._found, self._missing):
            entry = table.get(key)
            if entry is None:
                continue
            if entry.stored_at <= now < entry.expires_at:
                table.move_to_end(key)
                return True, entry.value
            del table[key]
        return False, None

    def put(self, key: K, value: V | None) -> None:
        now = self._clock.now()
        self._found.pop(key, None)
        self._missing.pop(key, None)
        if self._ttl <= timedelta(0):
            return
        if value is None:
            self._missing[key] = _Entry(None, now, now + self._ttl)
            _trim(self._missing, self._max[False])
        else:
            self._found[key] = _Entry(value, now, now + self._ttl)
            _trim(self._found, self._max[True])

    def forget(self, key: K) -> None:
        self._found.pop(key, None)
        self._missing.pop(key, None)

    async def get(self, key: K, load: Callable[[], Awaitable[V | None]]) -> V | None:
        """The cached answer, or ``load()``'s (stored for the window); one load per key."""
        hit, value = self.lookup(key)
        if hit:
            return value
        pending = self._loading.get(key)
        if pending is None:
            pending = asyncio.ensure_future(self._load(key, load))
            # Retrieved here, so a failed load whose waiters all left logs no warning.
            pending.add_done_callback(lambda done: done.cancelled() or done.exception())
            self._loading[key] = pending
        # shield: a cancelled waiter must not cancel the load the others are waiting for.
        return await asyncio.shield(pending)

    async def _load(self, key: K, load: Callable[[], Awaitable[V | None]]) -> V | None:
        try:
            value = await load()
            self.put(key, value)
            return value
        finally:
            self._loading.pop(key, None)


def _trim(table: OrderedDict[Any, Any], cap: int) -> None:
    """Drop the least recently used entries beyond ``cap``."""
    while len(table) > cap:
        table.popitem(last=False)
