"""The personalisation step that gives every outgoing copy its own unsubscribe headers.

    List-Unsubscribe: <https://<public_url>/unsubscribe/<token>>,
     <mailto:unsubscribe+<token>@<bounce domain>>
    List-Unsubscribe-Post: List-Unsubscribe=One-Click

(RFC 2369 and RFC 8058.) The token is the delivery's signed unsubscribe token
(core/unsubscribe.py): a POST to the link unsubscribes at once (api/unsubscribe_page.py), mail
to the address does the same at the bounce receiver. The links use the ``public_url`` setting
(it must be the address the recipients' providers reach, https in production); the mailto uses
``bounce_domain`` (default: the ``hostname`` setting, else the FQDN).

Header injection is impossible by construction: the token is base32 and ``-``, and both
settings are checked when they are read (config.py: printable ASCII without spaces or angle
brackets; a domain name). The header is folded between its two elements, the only place
RFC 2369 allows it, so each line stays well under RFC 5322's 998 characters (a line that would
not is never written: the header is then left out, and that is logged).

A List-Unsubscribe or List-Unsubscribe-Post header already in the message is removed: ours
wins. Two of them would be invalid (RFC 2369 allows one), and a sender's own link would take
unsubscribes past this service's suppression list, which is what keeps the sender's
reputation.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Final

from mailpulse.config import Settings
from mailpulse.core import unsubscribe
from mailpulse.core.signing import Signer
from mailpulse.delivery.queue import ClaimedDelivery, StoredMessage

log = logging.getLogger(__name__)

MAX_LINE: Final = 998  # RFC 5322 2.1.1, without the CRLF
_POST: Final = b"List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n"
_OURS: Final = (b"list-unsubscribe", b"list-unsubscribe-post")


class ListUnsubscribe:
    """A personalise.Step: prepends the recipient's List-Unsubscribe headers."""

    def __init__(self, signer: Signer, base_url: str, domain: str) -> None:
        self.signer = signer
        self.link_prefix = f"{base_url.rstrip('/')}/unsubscribe/".encode("ascii")
        self.mailto_suffix = f"@{domain}".encode("ascii")

    @classmethod
    def for_settings(cls, settings: Settings, signer: Signer | None = None) -> ListUnsubscribe:
        if not settings.public_url:
            log.warning(
                "public_url is not set: List-Unsubscribe links point at %s, which recipients "
                "cannot reach; set MAILPULSE_PUBLIC_URL",
                settings.base_url(),
            )
        return cls(
            signer or Signer(settings.resolved_secret_key()),
            settings.base_url(),
            settings.resolved_bounce_domain(),
        )

    def headers(self, account_id: int, recipient: str, delivery: str) -> bytes:
        """The two header fields, folded, each line ending in CRLF; b"" if they cannot fit."""
        token = unsubscribe.token(self.signer, account_id, recipient, delivery).encode("ascii")
        first = b"List-Unsubscribe: <" + self.link_prefix + token + b">,"
        mail_token = unsubscribe.mail_token(self.signer, delivery).encode("ascii")
        second = b" <mailto:" + unsubscribe.MAILTO_PREFIX.encode() + mail_token
        second += self.mailto_suffix
        second += b">"
        if max(len(first), len(second)) > MAX_LINE:
            log.warning(
                "List-Unsubscribe left out of delivery %s: a line would exceed %d characters",
                delivery,
                MAX_LINE,
            )
            return b""
        return first + b"\r\n" + second + b"\r\n" + _POST

    def __call__(self, message: StoredMessage, delivery: ClaimedDelivery) -> StoredMessage:
        ours = self.headers(delivery.account_id, delivery.recipient, delivery.public_id)
        if not ours:
            return message
        return replace(message, raw=ours + without_list_unsubscribe(message.raw))


def without_list_unsubscribe(raw: bytes) -> bytes:
    """``raw`` without its own List-Unsubscribe / List-Unsubscribe-Post fields (continuation
    lines included); ``raw`` itself when it has none (the usual case: one search)."""
    end = raw.find(b"\r\n\r\n")
    head = raw[: end + 2]
    if end < 0 or b"list-unsubscribe" not in head.lower():
        return raw
    kept: list[bytes] = []
    dropping = False
    for line in head.split(b"\r\n")[:-1]:
        if line[:1] in (b" ", b"\t"):
            if not dropping:
                kept.append(line)
            continue
        name = line.partition(b":")[0].strip().lower()
        dropping = name in _OURS
        if not dropping:
            kept.append(line)
    return b"".join(line + b"\r\n" for line in kept) + raw[end + 2 :]
