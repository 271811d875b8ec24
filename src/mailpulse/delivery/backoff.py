"""When to try a deferred delivery again, and when to give up. Pure: time and chance injected.

The n-th retry waits ``base * 2**(n-1)`` seconds (1, 2, 4, 8 … minutes), capped at ``cap``
(one hour), each multiplied by a jitter factor drawn uniformly from [1 - jitter, 1 + jitter]
and capped again, so retries of a batch deferred together spread out instead of stampeding.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

BASE_SECONDS = 60.0
CAP_SECONDS = 3600.0
JITTER = 0.2
RETRY_WINDOW = timedelta(days=5)
MAX_UNEXPECTED_FAILURES = 5


class RandomSource(Protocol):
    def random(self) -> float: ...


def retry_delay(
    attempts: int,
    rng: RandomSource,
    *,
    base: float = BASE_SECONDS,
    cap: float = CAP_SECONDS,
    jitter: float = JITTER,
) -> timedelta:
    """The wait after ``attempts`` failed attempts (1 after the first failure)."""
    exponent = max(0, attempts - 1)
    # 2**exponent grows without bound; stop doubling once past the cap.
    raw = cap if exponent >= 32 else min(cap, base * (2**exponent))
    factor = 1.0 + jitter * (2.0 * rng.random() - 1.0)
    return timedelta(seconds=min(cap, raw * factor))


def next_attempt_at(
    attempts: int,
    now: datetime,
    rng: RandomSource,
    *,
    base: float = BASE_SECONDS,
    cap: float = CAP_SECONDS,
    jitter: float = JITTER,
) -> datetime:
    return now + retry_delay(attempts, rng, base=base, cap=cap, jitter=jitter)


def expired(created_at: datetime, now: datetime, retry_window: timedelta = RETRY_WINDOW) -> bool:
    """True once a delivery accepted at ``created_at`` has been retried for long enough."""
    return now - created_at >= retry_window


@dataclass(frozen=True)
class RetryPolicy:
    """The retry schedule and window, bundled for the queue's result recording."""

    rng: RandomSource = field(default_factory=random.Random)
    base: float = BASE_SECONDS
    cap: float = CAP_SECONDS
    jitter: float = JITTER
    window: timedelta = RETRY_WINDOW
    #: tries failing with the same unexpected error before the delivery bounces
    max_unexpected_failures: int = MAX_UNEXPECTED_FAILURES

    def next_attempt_at(self, attempts: int, now: datetime) -> datetime:
        return next_attempt_at(
            attempts, now, self.rng, base=self.base, cap=self.cap, jitter=self.jitter
        )

    def expired(self, created_at: datetime, now: datetime) -> bool:
        return expired(created_at, now, self.window)
