"""What an SMTP reply means for one delivery: delivered, deferred or bounced, and why.

Pure functions over plain data. The outcome follows the reply code (2xx delivered, 4xx and no
reply at all deferred, 5xx bounced); the category follows the enhanced status code (RFC 3463)
when there is one, then well-known phrases in the text. Bounces and suppression build on the
category, so it errs towards ``other`` rather than guessing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final, Literal

Outcome = Literal["delivered", "deferred", "bounced"]

DELIVERED: Final = "delivered"
DEFERRED: Final = "deferred"
BOUNCED: Final = "bounced"

# categories
BAD_MAILBOX: Final = "bad_mailbox"
BAD_DOMAIN: Final = "bad_domain"
MAILBOX_FULL: Final = "mailbox_full"
POLICY: Final = "policy"
SPAM_CONTENT: Final = "spam_content"
MESSAGE_TOO_LARGE: Final = "message_too_large"
EXPIRED: Final = "expired"
CONNECTION: Final = "connection"
TEMPORARY: Final = "temporary"
OTHER: Final = "other"
#: our own failure (an unexpected error while delivering): never the address's fault
INTERNAL: Final = "internal"

#: Categories that say the address itself is unusable; every other bounce is "soft".
HARD_CATEGORIES: Final = frozenset({BAD_MAILBOX, BAD_DOMAIN, OTHER})

_ENHANCED = re.compile(r"^\s*([245])\.(\d{1,3})\.(\d{1,3})(?![\d.])")


@dataclass(frozen=True, slots=True)
class Classification:
    outcome: Outcome
    category: str | None  # None when delivered

    @property
    def hard(self) -> bool:
        """A bounce that condemns the address (suppress it), as opposed to a soft one."""
        return self.outcome == BOUNCED and self.category in HARD_CATEGORIES


def parse_enhanced_status(text: str) -> str:
    """The RFC 3463 status ("5.1.1") at the start of a reply text, or ""."""
    match = _ENHANCED.match(text)
    if match is None:
        return ""
    return ".".join(str(int(part)) for part in match.groups())


# Phrases, checked in order against the lower-cased text. Reputation words come before
# "spam" (so "blocked using Spamhaus" is a policy block) and "spam" before "blocked" (so
# "blocked as spam" is about the content).
_REPUTATION = ("spamhaus", "reputation", "blacklist", "blocklist", "dnsbl", "rbl", "listed at")
_SPAM = ("spam",)
_BLOCKED = ("blocked", "block list", "not allowed", "policy")
_BAD_MAILBOX = (
    "user unknown",
    "unknown user",
    "no such user",
    "no such recipient",
    "no mailbox",
    "mailbox unavailable",
    "mailbox not found",
    "does not exist",
    "invalid recipient",
    "recipient not found",
    "address rejected",
)
_MAILBOX_FULL = ("mailbox full", "mailbox is full", "over quota", "quota exceeded", "insufficient")
_TOO_LARGE = ("too large", "too big", "size limit", "exceeds size", "message size")
_BAD_DOMAIN = ("domain not found", "no such domain", "host not found", "unrouteable")


def _has(text: str, words: tuple[str, ...]) -> bool:
    return any(word in text for word in words)


def _category_from_status(status: str, text: str) -> str | None:
    if not status:
        return None
    _, subject, detail = (int(x) for x in status.split("."))
    if subject == 1:
        if detail in (2, 10):
            return BAD_DOMAIN
        if detail in (7, 8):  # the *sender's* address is bad: about us, not the recipient
            return POLICY
        return BAD_MAILBOX
    if subject == 2:
        if detail == 2:
            return MAILBOX_FULL
        if detail == 3:
            return MESSAGE_TOO_LARGE
        if detail == 1:  # mailbox disabled
            return BAD_MAILBOX
        return None
    if subject == 3 and detail == 4:
        return MESSAGE_TOO_LARGE
    if subject == 4:
        if detail == 4:
            return BAD_DOMAIN
        if detail == 7:
            return EXPIRED
        return None
    if subject == 7:
        if _has(text, _REPUTATION):
            return POLICY
        if _has(text, _SPAM):
            return SPAM_CONTENT
        return POLICY
    return None


def _category_from_text(text: str) -> str | None:
    if _has(text, _REPUTATION):
        return POLICY
    if _has(text, _SPAM):
        return SPAM_CONTENT
    if _has(text, _MAILBOX_FULL):
        return MAILBOX_FULL
    if _has(text, _TOO_LARGE):
        return MESSAGE_TOO_LARGE
    if _has(text, _BAD_DOMAIN):
        return BAD_DOMAIN
    if _has(text, _BAD_MAILBOX):
        return BAD_MAILBOX
    if _has(text, _BLOCKED):
        return POLICY
    return None


def classify(code: int | None, enhanced: str, text: str) -> Classification:
    """Classify one reply. ``code`` is None when there was no reply (refused, timeout, drop)."""
    if code is None:
        return Classification(DEFERRED, CONNECTION)
    if 200 <= code < 300:
        return Classification(DELIVERED, None)
    status = enhanced or parse_enhanced_status(text)
    lowered = text.lower()
    category = _category_from_status(status, lowered) or _category_from_text(lowered)
    if 500 <= code < 600:
        if category in (None, EXPIRED):
            category = OTHER
        return Classification(BOUNCED, category)
    # 4xx, and anything else unexpected (1xx, 3xx out of place), is worth another try.
    if category in (None, BAD_MAILBOX, BAD_DOMAIN, EXPIRED, OTHER):
        category = TEMPORARY
    return Classification(DEFERRED, category)


def expired_classification() -> Classification:
    """The outcome of a delivery whose retry window ran out."""
    return Classification(BOUNCED, EXPIRED)
