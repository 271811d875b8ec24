"""The signed tokens of an unsubscribe link and of the List-Unsubscribe mailto address.

The link ``<public_url>/unsubscribe/<token>`` (api/unsubscribe_page.py) carries
``Signer.sign("unsubscribe", str(account_id), recipient, public_id)`` (core/signing.py): the
page needs no lookup to know whom to unsubscribe. The mailto address
``unsubscribe+<token>@<bounce domain>`` (the bounce receiver) carries a shorter token,
``Signer.sign("unsubscribe-mail", public_id)``: a local part may have at most 64 characters
(RFC 5321 §4.5.3.1.1), and the three fields would not fit; the receiver reads the account and
the recipient from the delivery it names. Both put the recipient on the account's list with
``unsubscribe_by_link=1``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from mailpulse.core.signing import Signer

PURPOSE: Final = "unsubscribe"
#: the mailto address's token: the delivery's public id only
MAIL_PURPOSE: Final = "unsubscribe-mail"
#: the local part's prefix of the List-Unsubscribe mailto address
MAILTO_PREFIX: Final = "unsubscribe+"
_MAX_ID: Final = 2**63 - 1


@dataclass(frozen=True, slots=True)
class Unsubscribe:
    """What a verified token asks: take ``email`` off ``account_id``'s mailings."""

    account_id: int
    email: str
    delivery: str  # the public id of the delivery that carried the link


def token(signer: Signer, account_id: int, email: str, delivery: str) -> str:
    return signer.sign(PURPOSE, str(account_id), email.lower(), delivery)


def read(signer: Signer, value: str) -> Unsubscribe | None:
    """The request a token carries; None for anything this service did not sign as one."""
    fields = signer.verify(PURPOSE, value)
    if fields is None or len(fields) != 3:
        return None
    account, email, delivery = fields
    if not (account.isascii() and account.isdigit()) or int(account) > _MAX_ID:
        return None
    if not email or "\x00" in email or "\x00" in delivery:
        return None
    return Unsubscribe(int(account), email, delivery)


def mail_token(signer: Signer, delivery: str) -> str:
    """The token of the mailto address ``unsubscribe+<token>@<bounce domain>``."""
    return signer.sign(MAIL_PURPOSE, delivery)


def mail_delivery(signer: Signer, value: str) -> str | None:
    """The delivery (public id) a mailto token names; None if this service did not sign it."""
    fields = signer.verify(MAIL_PURPOSE, value)
    if fields is None or len(fields) != 1 or not fields[0] or "\x00" in fields[0]:
        return None
    return fields[0]
