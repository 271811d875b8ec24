"""What an SMTP reply means for one delivery: delivered, deferred or bounced, and why.

Pure functions over plain data. The outcome follows the reply code (2xx delivered, 4xx and no
reply at all deferred, 5xx bounced); the category follows the enhanced status code (RFC 3463)
when there is one, then well-known phrases in the text. Bounces and suppression build on the
category, so it errs towards ``other`` rather than guessing.

**Which bounces suppress** (``Classification.hard``; docs/architecture.md, "Bounces and
suppression"). Only a failure that says *this address* cannot receive mail puts it on the
account's suppression list: ``bad_mailbox`` (X.1.1 no such mailbox, X.1.3 bad syntax, X.1.6
moved away, X.2.1 disabled, and the unmistakable phrases: "user unknown", "no such user", …),
``bad_domain`` (X.1.2, X.1.10 null MX, X.4.4 unroutable, and the routing's own NXDOMAIN /
null MX / no-address verdicts) and ``expired_bad_address`` (see :func:`expired_classification`).
Everything else is reported and bounced but does not suppress: policy and reputation blocks
(5.7.x, "blocked using Spamhaus": about the sending IP or domain, not the address), spam
content, a message too large, a full mailbox (it may be emptied), a plain expiry, our own
failures (``internal``), and ``other`` — a 5xx that does not say why. Postal suppresses on
any hard bounce, so one blocklisting of the sending IP condemns every address it hit; here
only an answer about the address itself is taken as proof that the address is dead.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
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
#: the retry window ran out and every attempt was answered "no such mailbox / domain"
EXPIRED_BAD_ADDRESS: Final = "expired_bad_address"
CONNECTION: Final = "connection"
TEMPORARY: Final = "temporary"
OTHER: Final = "other"
#: our own failure (an unexpected error while delivering): never the address's fault
INTERNAL: Final = "internal"

#: Categories that say the address itself is unusable (they suppress it); every other
#: bounce is "soft": reported, not suppressed.
HARD_CATEGORIES: Final = frozenset({BAD_MAILBOX, BAD_DOMAIN, EXPIRED_BAD_ADDRESS})
#: The categories that blame the address when a server says so (in a 5xx or a 4xx).
ADDRESS_FAULTS: Final = frozenset({BAD_MAILBOX, BAD_DOMAIN})
#: Fewest attempts an expiry needs to count as "repeated" failures.
REPEATED: Final = 2

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
# "blocked as spam" is about the content). A text about the *sender* ("Sender address
# rejected: Domain not found") is about us, never the recipient's address. RFC 5321's stock
# 550 text, "mailbox unavailable", is not among the mailbox phrases: servers send it for
# policy refusals too (its own example list says "no access, or command rejected for policy
# reasons"), so it proves nothing about the address.
_REPUTATION = ("spamhaus", "reputation", "blacklist", "blocklist", "dnsbl", "rbl", "listed at")
_SPAM = ("spam",)
_SENDER = ("sender",)
_BLOCKED = ("blocked", "block list", "not allowed", "policy")
_BAD_MAILBOX = (
    "user unknown",
    "unknown user",
    "no such user",
    "no such recipient",
    "no such mailbox",
    "no mailbox",
    "mailbox not found",
    "does not exist",
    "invalid recipient",
    "recipient not found",
    "recipientnotfound",
    "account is disabled",
    "account has been disabled",
)
_MAILBOX_FULL = ("mailbox full", "mailbox is full", "over quota", "quota exceeded", "insufficient")
_TOO_LARGE = ("too large", "too big", "size limit", "exceeds size", "message size")
_BAD_DOMAIN = ("domain not found", "no such domain", "host not found", "unrouteable")
# A temporary answer that names the address but says its check failed for now.
_INCONCLUSIVE = ("timed out", "timeout", "connection refused", "try again", "temporar")


def _has(text: str, words: tuple[str, ...]) -> bool:
    return any(word in text for word in words)


def _address_status(detail: int, text: str) -> str | None:
    """X.1.<detail>: address status (RFC 3463 §3.2, RFC 7505)."""
    if detail in (1, 3, 6):  # no such mailbox, bad syntax, moved with no forwarding address
        return BAD_MAILBOX
    if detail == 2:  # bad destination system (domain)
        return BAD_DOMAIN
    if detail == 10:  # null MX; Microsoft says "RecipientNotFound" with it: the mailbox
        return BAD_MAILBOX if _has(text, _BAD_MAILBOX) else BAD_DOMAIN
    if detail in (7, 8, 11):  # the *sender's* address or domain: about us, not the recipient
        return POLICY
    # X.1.0 (other), X.1.4 (ambiguous), X.1.5 (valid), X.1.9, unknown: only the text can say
    return None


def _category_from_status(status: str, text: str) -> str | None:
    if not status:
        return None
    _, subject, detail = (int(x) for x in status.split("."))
    if subject == 1:
        return _address_status(detail, text)
    if subject == 2:
        if detail == 2:
            return MAILBOX_FULL
        if detail == 3:
            return MESSAGE_TOO_LARGE
        if detail == 1:  # mailbox disabled (some servers say "over quota" with it)
            return MAILBOX_FULL if _has(text, _MAILBOX_FULL) else BAD_MAILBOX
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
    if _has(text, _SENDER):
        return POLICY
    if _has(text, _BAD_DOMAIN):
        return BAD_DOMAIN
    if _has(text, _BAD_MAILBOX):
        return BAD_MAILBOX
    if _has(text, _BLOCKED):
        return POLICY
    return None


def _category(enhanced: str, text: str) -> str | None:
    status = enhanced or parse_enhanced_status(text)
    lowered = text.lower()
    return _category_from_status(status, lowered) or _category_from_text(lowered)


def classify(code: int | None, enhanced: str, text: str) -> Classification:
    """Classify one reply. ``code`` is None when there was no reply (refused, timeout, drop)."""
    if code is None:
        return Classification(DEFERRED, CONNECTION)
    if 200 <= code < 300:
        return Classification(DELIVERED, None)
    category = _category(enhanced, text)
    if 500 <= code < 600:
        if category in (None, EXPIRED):
            category = OTHER
        return Classification(BOUNCED, category)
    # 4xx, and anything else unexpected (1xx, 3xx out of place), is worth another try.
    if category in (None, BAD_MAILBOX, BAD_DOMAIN, EXPIRED, OTHER):
        category = TEMPORARY
    return Classification(DEFERRED, category)


def address_fault(code: int | None, enhanced: str, text: str) -> str | None:
    """``bad_mailbox`` or ``bad_domain`` when a server's answer, permanent or temporary,
    blames the recipient's address ("450 4.1.1 user unknown"); else None. No answer at all
    (a refused or timed-out connection, a failed DNS lookup) blames nobody: from here a dead
    domain looks just like our own blocked port 25 or broken resolver. Nor does an answer that
    says its own check was inconclusive (Postfix's "450 4.1.1 … unverified address: connect to
    …: Connection timed out")."""
    if code is None or _has(text.lower(), _INCONCLUSIVE):
        return None
    category = _category(enhanced, text)
    return category if category in ADDRESS_FAULTS else None


Answer = tuple[int | None, str, str]  # code, enhanced status, text


def expired_classification(answers: Sequence[Answer] = ()) -> Classification:
    """The outcome of a delivery whose retry window ran out, given the answers of all its
    attempts (oldest first, the last one included).

    A plain expiry (``expired``) does not suppress: the mail could not be delivered in time,
    which says nothing certain about the address. It is ``expired_bad_address``, which does,
    when there were at least ``REPEATED`` attempts and every one of them was a server's answer
    blaming the address (:func:`address_fault`: e.g. "450 4.1.1 user unknown" for five days).
    One attempt without an answer, or with any other answer, keeps it a plain expiry.
    """
    if len(answers) >= REPEATED and all(address_fault(*answer) for answer in answers):
        return Classification(BOUNCED, EXPIRED_BAD_ADDRESS)
    return Classification(BOUNCED, EXPIRED)


# What each bounce category means for the address, for the decision's log line.
_LABELS: Final = {
    BAD_MAILBOX: ("bad mailbox", ""),
    BAD_DOMAIN: ("bad domain", ""),
    EXPIRED_BAD_ADDRESS: ("expired, every answer blamed the address", ""),
    MAILBOX_FULL: ("mailbox full", "the mailbox may be emptied"),
    POLICY: ("policy", "a block, not the address"),
    SPAM_CONTENT: ("spam content", "the content, not the address"),
    MESSAGE_TOO_LARGE: ("message too large", "the message, not the address"),
    EXPIRED: ("expired", "no answer blamed the address every time"),
    INTERNAL: ("internal", "our failure, not the address"),
}


def suppression_note(classification: Classification) -> str:
    """How a bounce was judged, for its log line: "bad mailbox: address suppressed" or
    "policy: not suppressed (a block, not the address)"."""
    category = classification.category or OTHER
    label, why = _LABELS.get(category, (category, "the answer does not say the address is bad"))
    if classification.hard:
        return f"{label}: address suppressed"
    return f"{label}: not suppressed ({why})"
