"""Which addresses of the bounce domain exist, and what each one names.

    bounce+<token>@<bounce domain>        a VERP return path (delivery/verp.py): one delivery
    unsubscribe+<token>@<bounce domain>   a List-Unsubscribe mailto: one delivery (its recipient)
    fbl@<bounce domain>                   where feedback loops send complaints (ARF); the
                                          delivery is then named by the VERP return path
                                          inside the report

Every other address, and every token that does not verify, names nothing: the receiver
refuses it at RCPT (never a relay). Tokens decide the delivery and the account; nothing a
report's body says about addresses is trusted for that.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from mailpulse.core import unsubscribe
from mailpulse.core.signing import Signer
from mailpulse.delivery import verp

UNSUBSCRIBE_PREFIX: Final = unsubscribe.MAILTO_PREFIX
FEEDBACK_LOCAL: Final = "fbl"


@dataclass(frozen=True, slots=True)
class BounceAddress:
    """``bounce+<token>``: reports about one delivery."""

    public_id: str


@dataclass(frozen=True, slots=True)
class UnsubscribeAddress:
    """``unsubscribe+<token>``: the recipient of a delivery asks to be taken off the list."""

    public_id: str


@dataclass(frozen=True, slots=True)
class FeedbackAddress:
    """``fbl@``: feedback-loop reports, each naming its delivery inside."""


Target = BounceAddress | UnsubscribeAddress | FeedbackAddress


class Addresses:
    """Reads recipient addresses of the bounce domain, checking their tokens."""

    def __init__(self, signer: Signer, domain: str) -> None:
        self.signer = signer
        self.domain = domain.lower()

    def target(self, address: str) -> Target | None:
        """What ``address`` names; None when it is not one of ours or its token is forged."""
        local, at, domain = address.strip().strip("<>").rpartition("@")
        if not at or domain.rstrip(".").lower() != self.domain:
            return None
        local = local.lower()
        if local == FEEDBACK_LOCAL:
            return FeedbackAddress()
        if local.startswith(verp.LOCAL_PREFIX):
            public_id = self.bounce_token(local.removeprefix(verp.LOCAL_PREFIX))
            return None if public_id is None else BounceAddress(public_id)
        if local.startswith(UNSUBSCRIBE_PREFIX):
            return self.unsubscribe_token(local.removeprefix(UNSUBSCRIBE_PREFIX))
        return None

    def bounce_token(self, token: str) -> str | None:
        return verp.delivery_of(self.signer, token)

    def unsubscribe_token(self, token: str) -> UnsubscribeAddress | None:
        public_id = unsubscribe.mail_delivery(self.signer, token)
        return None if public_id is None else UnsubscribeAddress(public_id)

    def return_path_delivery(self, text: str) -> str | None:
        """The delivery named by a VERP return path found in ``text`` (an Original-Mail-From
        field or a Return-Path header), if its token verifies."""
        target = self.target(text.strip().strip("<>"))
        return target.public_id if isinstance(target, BounceAddress) else None
