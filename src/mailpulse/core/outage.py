"""One part's view of an outage of the store: when it began, how long to wait, one line each way.

Every long-lived part that talks to the store (the writer thread, the delivery worker's claim
loop and recorder, the lease heartbeat) meets the same failure when the database goes away: a
locked SQLite file, a PostgreSQL server restarting, a connection killed. None of them may end
because of it, and none may log one traceback per attempt. Each holds an :class:`Outage`:
``failed()`` says the first failure (one line: "store unavailable: …, retrying") and returns
how long to wait before the next attempt (capped exponential backoff with jitter, so a fleet of
workers does not reconnect in step); ``succeeded()`` says the end (one line: "store available
again after 42 s"). The clock and the randomness are injected (tests drive them).
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field

INITIAL_DELAY = 0.5
MAX_DELAY = 10.0


@dataclass
class Outage:
    """Whether ``name``'s last use of the store failed, since when, and the next wait."""

    name: str
    log: logging.Logger
    now: Callable[[], float] = time.monotonic
    jitter: Callable[[], float] = random.random
    initial: float = INITIAL_DELAY
    cap: float = MAX_DELAY
    since: float | None = field(default=None, init=False)
    failures: int = field(default=0, init=False)

    @property
    def down(self) -> bool:
        return self.since is not None

    def failed(self, reason: BaseException | str) -> float:
        """Note a failure; the first of an outage is logged. Returns the seconds to wait."""
        if self.since is None:
            self.since = self.now()
            self.log.warning("%s: store unavailable: %s, retrying", self.name, describe(reason))
        self.failures += 1
        delay: float = min(self.cap, self.initial * 2.0 ** min(self.failures - 1, 30))
        # "equal jitter": between half the delay and all of it
        return delay / 2 + delay / 2 * self.jitter()

    def succeeded(self) -> None:
        """Note a success; the end of an outage is logged with its length."""
        if self.since is None:
            return
        lasted = self.now() - self.since
        self.since = None
        self.failures = 0
        self.log.warning("%s: store available again after %.0f s", self.name, lasted)

    def down_for(self) -> float:
        """Seconds since the outage began (0 when the store is up)."""
        return 0.0 if self.since is None else self.now() - self.since


def describe(reason: BaseException | str) -> str:
    """The first line of a driver's message, without SQLAlchemy's "(Background …)" tail."""
    if isinstance(reason, str):
        text = reason
    else:
        inner = getattr(reason, "orig", None) or reason.__cause__ or reason
        text = str(inner) or type(inner).__name__
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    first = " ".join(lines[0].split()) if lines else "unknown error"
    return first[:300]
