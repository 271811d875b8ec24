"""The submit pipeline: the story of one email from request to queue.

    check the account → read the request → check the sender → suppress → render → compose
    → store

Each step is a short function that either hands its result on or stops the story with an
:class:`ApiError`. Nothing is written until the last step, and that step writes the message and
every recipient's queued delivery in one transaction: the caller hears ``{"result": true}`` only
after that commit. Later capabilities (templates, tracking links, DKIM) are further steps in the
same list.

``suppress`` looks the recipients up on the account's suppression list (one indexed lookup for
the whole send): a listed recipient is still accepted and recorded, with status ``suppressed``
and an answer saying why (core/suppression.py), but never queued; the others are queued as
usual, and the send answers ``{"result": true, "id"}`` even when every recipient is held.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any, Protocol

from mailpulse.core import errors
from mailpulse.core.clock import Clock
from mailpulse.core.ids import IdFactory
from mailpulse.core.model import EmailRequest, NewDelivery, NewMessage
from mailpulse.core.suppression import ANSWER_PREFIX, Listed
from mailpulse.core.validate import Limits, parse_email
from mailpulse.mime.compose import compose
from mailpulse.mime.plaintext import html_to_text

log = logging.getLogger(__name__)


class SubmitStore(Protocol):
    """What the pipeline needs from storage (implemented in store/gateway.py)."""

    async def sender_check(self, account_id: int, sender: str) -> tuple[bool, bool]:
        """(account is SMTP-activated, sender is an active sender of the account)."""
        ...

    async def suppressed_among(self, account_id: int, emails: list[str]) -> Mapping[str, Listed]:
        """Which of ``emails`` are on the account's suppression list, keyed lower-cased."""
        ...

    async def template_exists(self, account_id: int, template_id: str) -> bool: ...

    async def save(self, message: NewMessage) -> None: ...


@dataclass(frozen=True)
class Submitted:
    id: str
    ids: tuple[str, ...]


@dataclass
class Submitter:
    store: SubmitStore
    clock: Clock
    new_id: IdFactory
    limits: Limits
    hostname: str = "mailpulse.local"
    on_queued: Callable[[], None] | None = None

    async def submit(self, account_id: int, email: dict[str, Any], sender_ip: str) -> Submitted:
        request = parse_email(email, self.limits)
        await self.check_sender(account_id, request)
        held = await self.suppress(account_id, request)
        request = await self.render(account_id, request)
        message = self.compose(account_id, request, sender_ip, held)
        await self.store.save(message)
        self.log_held(account_id, message)
        if self.on_queued is not None and len(held) < len(message.deliveries):
            self.on_queued()
        return Submitted(
            id=message.deliveries[0].public_id, ids=tuple(d.public_id for d in message.deliveries)
        )

    async def check_sender(self, account_id: int, request: EmailRequest) -> None:
        activated, allowed = await self.store.sender_check(account_id, request.sender.email)
        if not activated:
            raise errors.NO_SMTP_USER()
        if not allowed:
            raise errors.SENDER_NOT_VALID()

    async def suppress(self, account_id: int, request: EmailRequest) -> Mapping[str, Listed]:
        """The recipients the suppression list holds back, and why (keyed lower-cased)."""
        return await self.store.suppressed_among(
            account_id, [address.email for _, address in request.recipients()]
        )

    async def render(self, account_id: int, request: EmailRequest) -> EmailRequest:
        if request.template_id is not None and not await self.store.template_exists(
            account_id, request.template_id
        ):
            raise errors.TEMPLATE_NOT_FOUND()
        if request.auto_plain_text and request.html and not request.text:
            request = replace(request, text=html_to_text(request.html))
        return request

    def compose(
        self,
        account_id: int,
        request: EmailRequest,
        sender_ip: str,
        held: Mapping[str, Listed] | None = None,
    ) -> NewMessage:
        now = self.clock.now()
        recipients = request.recipients()
        ids = [self.new_id() for _ in recipients]
        message_id = f"{ids[0]}@{self.hostname}"
        raw = compose(request, message_id=message_id, date=now)
        if len(raw) > self.limits.max_message_bytes:
            raise errors.MESSAGE_TOO_LARGE()
        return NewMessage(
            account_id=account_id,
            source="api",
            envelope_from=request.sender.email,
            sender=request.sender.email,
            subject=request.subject,
            message_id_header=f"<{message_id}>",
            raw=raw,
            sender_ip=sender_ip,
            template_id=request.template_id,
            created_at=now,
            deliveries=tuple(
                NewDelivery(
                    public_id=pid,
                    recipient=address.email,
                    kind=kind,
                    held=_answer(held, address.email),
                )
                for pid, (kind, address) in zip(ids, recipients, strict=True)
            ),
        )

    def log_held(self, account_id: int, message: NewMessage) -> None:
        """One line per suppression decision, after the commit that recorded it."""
        for delivery in message.deliveries:
            if delivery.held is not None:
                log.info(
                    "recipient is on the suppression list (%s), holding: delivery %s, "
                    "account %d, %s",
                    delivery.held.removeprefix(ANSWER_PREFIX),
                    delivery.public_id,
                    account_id,
                    delivery.recipient,
                )


def _answer(held: Mapping[str, Listed] | None, email: str) -> str | None:
    if not held:
        return None
    listed = held.get(email.lower())
    return None if listed is None else listed.answer()
