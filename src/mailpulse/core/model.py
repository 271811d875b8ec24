"""Plain data the submit pipeline passes along: a validated email request."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class Address:
    email: str
    name: str = ""

    @property
    def domain(self) -> str:
        return self.email.rpartition("@")[2].lower()


@dataclass(frozen=True)
class Attachment:
    filename: str
    content: bytes
    content_type: str = "application/octet-stream"


@dataclass(frozen=True)
class EmailRequest:
    """One send request after decoding and validation (``core.validate``)."""

    sender: Address
    to: tuple[Address, ...]
    subject: str
    cc: tuple[Address, ...] = ()
    bcc: tuple[Address, ...] = ()
    reply_to: Address | None = None
    html: str | None = None
    text: str | None = None
    auto_plain_text: bool = False
    attachments: tuple[Attachment, ...] = ()
    template_id: str | None = None
    template_variables: dict[str, Any] = field(default_factory=dict)

    def recipients(self) -> list[tuple[str, Address]]:
        """Every envelope recipient once, with its kind (to, cc, bcc), in that order."""
        seen: set[str] = set()
        out: list[tuple[str, Address]] = []
        for kind, group in (("to", self.to), ("cc", self.cc), ("bcc", self.bcc)):
            for address in group:
                key = address.email.lower()
                if key not in seen:
                    seen.add(key)
                    out.append((kind, address))
        return out


@dataclass(frozen=True)
class NewDelivery:
    """One recipient of an accepted message: one row of the email log and of the queue."""

    public_id: str
    recipient: str
    kind: str
    #: not to be sent: the recipient is on the suppression list; the answer says why
    held: str | None = None


@dataclass(frozen=True)
class NewMessage:
    """Everything one accepted email writes, in one transaction."""

    account_id: int
    source: str
    envelope_from: str
    sender: str
    subject: str
    message_id_header: str
    raw: bytes
    sender_ip: str
    template_id: str | None
    created_at: datetime
    deliveries: tuple[NewDelivery, ...] = ()
