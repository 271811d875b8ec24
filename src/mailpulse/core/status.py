"""The states of one delivery (one recipient of one message), as stored and as reported.

queued     accepted, waiting for its first attempt
deferred   tried, answered 4xx or unreachable; waiting for its next attempt
delivered  the receiving server answered 2xx
bounced    the receiving server answered 5xx (or it expired after the retry window)
suppressed never attempted: the recipient is on the account's suppression list
"""

from __future__ import annotations

from typing import Final

QUEUED: Final = "queued"
DEFERRED: Final = "deferred"
DELIVERED: Final = "delivered"
BOUNCED: Final = "bounced"
SUPPRESSED: Final = "suppressed"

PENDING: Final = (QUEUED, DEFERRED)
FINAL: Final = (DELIVERED, BOUNCED, SUPPRESSED)

EXPLAIN: Final = {
    QUEUED: "Queued",
    DEFERRED: "Deferred",
    DELIVERED: "Delivered",
    BOUNCED: "Bounced",
    SUPPRESSED: "Suppressed",
}
