"""VERP: each recipient's own return path, so that a bounce report names its delivery.

Every message leaves with the envelope sender (MAIL FROM, the future Return-Path)

    bounce+<token>@<bounce domain>      token = Signer.sign("bounce", <delivery public_id>)

so a delivery status notification mailed back days later reaches the bounce receiver
(inbound/) at an address that says which delivery it is about, even when the report's body is
mangled or says nothing useful. The token carries the delivery's public id (random, like the
log ids: an internal row id would reveal a tenant's volume) and a MAC, so a forged or altered
address names nothing. Tokens are lower-case base32, so a server lower-casing the local part
does not break them; the address is at most 7 + 51 + 1 + the domain long (the local part
stays within RFC 5321's 64 octets).

Only the envelope changes: the From header, and everything else the recipient sees, is the
message as accepted.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Final

from mailpulse.core.signing import Signer
from mailpulse.delivery.queue import ClaimedDelivery, StoredMessage

PURPOSE: Final = "bounce"
LOCAL_PREFIX: Final = "bounce+"


def return_path(signer: Signer, domain: str, public_id: str) -> str:
    """The envelope sender of one delivery."""
    return f"{LOCAL_PREFIX}{signer.sign(PURPOSE, public_id)}@{domain}"


def delivery_of(signer: Signer, token: str) -> str | None:
    """The public id a VERP token was made for; None when it does not verify."""
    fields = signer.verify(PURPOSE, token)
    if fields is None or len(fields) != 1 or not fields[0]:
        return None
    return fields[0]


def verp_step(
    signer: Signer, domain: str
) -> Callable[[StoredMessage, ClaimedDelivery], StoredMessage]:
    """The personalise step (delivery/personalise.py) that sets the VERP return path."""

    def step(message: StoredMessage, delivery: ClaimedDelivery) -> StoredMessage:
        return dataclasses.replace(
            message, envelope_from=return_path(signer, domain, delivery.public_id)
        )

    return step
