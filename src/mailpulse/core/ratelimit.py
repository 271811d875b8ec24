"""Failed token requests, counted per client IP and per client_id, so secrets cannot be guessed.

Each failed ``POST /oauth/access_token`` (wrong secret, unknown or disabled client) is counted
against the caller's IP and against the client_id it named, in a sliding window. Once either
has ``limit`` failures within the window, further requests for it are refused with 429 and a
Retry-After — before the secret is checked, so guessing stops and so does the Argon2 work —
until the oldest of those failures leaves the window. Successful requests are neither counted
nor delayed; refused (429) requests are not counted either, so a client that retries while
blocked does not extend its own block.

The counts live in the memory of one process: with N server processes a caller can make up to
N times the limit. Memory is bounded: each key keeps at most ``limit`` timestamps, and at most
``max_keys`` keys are remembered (least recently failed forgotten first).
"""

from __future__ import annotations

import math
from collections import OrderedDict, deque
from datetime import datetime, timedelta

from mailpulse.core.clock import Clock


class FailureLimiter:
    """At most ``limit`` failures per key within ``window_seconds``; ``limit`` 0 turns it off."""

    def __init__(
        self, clock: Clock, limit: int, window_seconds: float, *, max_keys: int = 10_000
    ) -> None:
        self._clock = clock
        self.limit = max(limit, 0)
        self._window = timedelta(seconds=max(window_seconds, 0.0))
        self._max_keys = max(max_keys, 1)
        self._failures: OrderedDict[str, deque[datetime]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._failures)

    def retry_after(self, key: str) -> int | None:
        """Whole seconds until ``key`` may try again, or None when it may now."""
        if self.limit == 0:
            return None
        now = self._clock.now()
        times = self._recent(key, now)
        if times is None or len(times) < self.limit:
            return None
        wait = (times[0] + self._window - now).total_seconds()
        return max(1, math.ceil(wait))

    def record_failure(self, key: str) -> bool:
        """Count one failure; True when it is the one that blocks ``key``."""
        if self.limit == 0:
            return False
        now = self._clock.now()
        times = self._recent(key, now)
        if times is None:
            times = deque(maxlen=self.limit)
            self._failures[key] = times
        times.append(now)
        self._failures.move_to_end(key)
        while len(self._failures) > self._max_keys:
            self._failures.popitem(last=False)
        return len(times) == self.limit

    def _recent(self, key: str, now: datetime) -> deque[datetime] | None:
        times = self._failures.get(key)
        if times is None:
            return None
        horizon = now - self._window
        # A clock that stepped back counts as time passed: such stamps are dropped too.
        while times and (times[0] <= horizon or times[0] > now):
            times.popleft()
        if not times:
            del self._failures[key]
            return None
        return times


class TokenThrottle:
    """The token endpoint's two limits: per client IP and per client_id."""

    def __init__(
        self,
        clock: Clock,
        *,
        per_ip: int,
        per_client: int,
        window_seconds: float,
        max_keys: int = 10_000,
    ) -> None:
        self.by_ip = FailureLimiter(clock, per_ip, window_seconds, max_keys=max_keys)
        self.by_client = FailureLimiter(clock, per_client, window_seconds, max_keys=max_keys)

    def retry_after(self, ip: str, client_id: str) -> int | None:
        client = _client_key(client_id)
        waits = [w for w in (self.by_ip.retry_after(ip), self.by_client.retry_after(client)) if w]
        return max(waits) if waits else None

    def failed(self, ip: str, client_id: str) -> list[str]:
        """Count a failure for both; names what this failure blocked (for one log line)."""
        blocked = []
        if self.by_ip.record_failure(ip):
            blocked.append(f"ip {ip}")
        client = _client_key(client_id)
        if self.by_client.record_failure(client):
            blocked.append(f"client_id {client!r}")
        return blocked


def _client_key(client_id: str) -> str:
    # Real client ids are 32 hex digits; a longer one is bogus, and its head is key enough
    # (it keeps the memory per remembered key small).
    return client_id[:64]
