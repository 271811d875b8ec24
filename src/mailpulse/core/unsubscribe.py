"""The signed token of an unsubscribe link and of the List-Unsubscribe mailto address.

One token per delivery: ``Signer.sign("unsubscribe", str(account_id), recipient, public_id)``
(core/signing.py). The link ``<public_url>/unsubscribe/<token>`` (api/unsubscribe_page.py) and
the address ``unsubscribe+<token>@<bounce domain>`` (the bounce receiver) both carry it, and
both put ``recipient`` on ``account_id``'s list with ``unsubscribe_by_link=1``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from mailpulse.core.signing import Signer

PURPOSE: Final = "unsubscribe"
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
