"""What a failure that is not a recipient's own reply means for every recipient it hits.

The classifier (``delivery/classify.py``) judges a server's reply to one recipient. Some
failures hit a whole transaction or destination at once: the routing found no host, no host
would take a session, or something unexpected (a bug) broke the attempt. Each gives one
verdict and one reply for all the recipients it hit. Pure.
"""

from __future__ import annotations

from mailpulse.delivery.classify import (
    BOUNCED,
    CONNECTION,
    DEFERRED,
    INTERNAL,
    TEMPORARY,
    Classification,
    classify,
)
from mailpulse.delivery.routing import RoutingError
from mailpulse.delivery.session import ConnectFailed, Reply


def routing_failure(exc: RoutingError) -> tuple[Classification, Reply]:
    """A permanent routing failure bounces with its own category (NXDOMAIN, null MX: a bad
    domain, which suppresses; a refused private MX: our policy, which does not); DNS trouble
    defers."""
    if exc.permanent:
        return Classification(BOUNCED, exc.category), Reply(550, exc.subcode, exc.text)
    return Classification(DEFERRED, CONNECTION), Reply(None, exc.subcode, exc.text)


def connect_failure(exc: ConnectFailed) -> Classification:
    """The last candidate's answer decides, unless the fault is ours (``defer``)."""
    reply = exc.reply
    verdict = classify(reply.code, reply.subcode, reply.text)
    if exc.defer and verdict.outcome != DEFERRED:
        return Classification(DEFERRED, TEMPORARY)
    return verdict


def unexpected_failure(exc: BaseException) -> tuple[Classification, Reply]:
    """A deferral with the exception as its reason (the queue bounces repeated ones)."""
    reply = Reply(None, "4.3.0", f"internal error: {type(exc).__name__}: {exc}"[:1000])
    return Classification(DEFERRED, INTERNAL), reply
