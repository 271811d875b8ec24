"""Resubscribe: asking an address on the suppression list whether it wants mail again.

The story of ``POST /smtp/resubscribe``:

    read the request → check the sender → in ONE transaction: the address is on the list →
    fewer than 5 sent in the last 24 hours → record the resubscription → compose the
    confirmation with its signed link → queue it

and of the link the confirmation carries (``/resubscribe/<token>``):

    GET  shows a page with a button and changes nothing (link scanners only GET)
    POST takes the address off the account's list: once, and within LINK_LIFETIME

The confirmation is queued like a send (same log, same delivery) but not through the submit
pipeline: its recipient is suppressed by definition, and this one mail must still go out.
The rules are plain functions here; :class:`Resubscriber` runs the story over a
:class:`ResubscribeStore` (store/resubscriptions.py) and the confirmation texts
(mime/confirmation.py).
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final, Protocol

from mailpulse.core import errors
from mailpulse.core.clock import Clock
from mailpulse.core.errors import ErrorKind, unprocessable
from mailpulse.core.ids import IdFactory
from mailpulse.core.model import Address, EmailRequest, NewDelivery, NewMessage
from mailpulse.core.signing import Signer
from mailpulse.core.validate import normalise_address
from mailpulse.mime import confirmation
from mailpulse.mime.compose import compose

log = logging.getLogger(__name__)

LANGUAGES: Final = ("en", "ru", "ua", "tr", "es", "pt")
DEFAULT_LANGUAGE: Final = "en"
# ISO 639-1 names Ukrainian "uk"; SendPulse calls it "ua". Both are understood.
_ALIASES: Final = {"uk": "ua"}

DAILY_LIMIT: Final = 5
WINDOW: Final = timedelta(hours=24)
#: how long a confirmation link can be followed
LINK_LIFETIME: Final = timedelta(days=7)
PURPOSE: Final = "resubscribe"  # the signing purpose of the link's token
SOURCE: Final = "confirm"  # messages.source of a confirmation (the column takes 10 characters)

# The refusals of compat §a.12 (each with SendPulse's message); "Argument email missing" is
# the send's errors.EMAIL_MISSING.
EMAIL_INVALID = unprocessable(422, "Argument email is invalid")
SENDER_MISSING = unprocessable(422, "Argument sender missing")
LANG_NOT_STRING = unprocessable(422, "Argument lang must be string")
NOT_ON_LIST = unprocessable(422, "Blocked email not found")
OVER_DAILY_LIMIT = unprocessable(422, "No more than 5 are allowed per day")
NO_SMTP_USER = unprocessable(503, "Smtp user not found")

#: every refusal of the endpoint, in the order they are checked (docs and OpenAPI list them)
REFUSALS: Final = (
    errors.EMAIL_MISSING,
    EMAIL_INVALID,
    SENDER_MISSING,
    errors.SENDER_NOT_VALID,
    LANG_NOT_STRING,
    NO_SMTP_USER,
    NOT_ON_LIST,
    OVER_DAILY_LIMIT,
)


# -- the request ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class ResubscribeRequest:
    email: str  # as stored and sent to (normalise_address)
    sender: str
    lang: str  # one of LANGUAGES


def _not_set(value: Any) -> bool:
    return value is None or value in ("", [], {}) or (isinstance(value, str) and not value.strip())


def read_request(params: dict[str, Any]) -> ResubscribeRequest:
    """``{email, sender, lang}`` checked in SendPulse's order, or the ApiError of the first
    check that fails."""
    raw_email = params.get("email")
    if _not_set(raw_email):
        raise errors.EMAIL_MISSING()
    email = normalise_address(raw_email) if isinstance(raw_email, str) else None
    if email is None:
        raise EMAIL_INVALID()
    raw_sender = params.get("sender")
    if _not_set(raw_sender):
        raise SENDER_MISSING()
    sender = normalise_address(raw_sender) if isinstance(raw_sender, str) else None
    if sender is None:
        raise errors.SENDER_NOT_VALID()
    return ResubscribeRequest(email=email, sender=sender, lang=language(params.get("lang")))


def language(value: Any) -> str:
    """The confirmation's language: one of LANGUAGES, in any case; not set or unknown → en
    (SendPulse refuses only a value that is not a string)."""
    if _not_set(value):
        return DEFAULT_LANGUAGE
    if not isinstance(value, str):
        raise LANG_NOT_STRING()
    code = value.strip().lower()
    code = _ALIASES.get(code, code)
    return code if code in LANGUAGES else DEFAULT_LANGUAGE


# -- the decisions -------------------------------------------------------------------------------
def window_start(now: datetime) -> datetime:
    """Resubscriptions created after this instant count against the daily limit."""
    return now - WINDOW


def refusal(on_list: bool, sent_in_window: int) -> ErrorKind | None:
    """Why a resubscribe cannot be sent now, or None: only an address on the account's list
    can be asked, and an account asks at most DAILY_LIMIT in any 24 hours."""
    if not on_list:
        return NOT_ON_LIST
    if sent_in_window >= DAILY_LIMIT:
        return OVER_DAILY_LIMIT
    return None


class LinkState(enum.Enum):
    OPEN = "open"  # may be followed
    USED = "used"  # followed once already
    EXPIRED = "expired"  # older than LINK_LIFETIME


def link_state(created_at: datetime, confirmed_at: datetime | None, now: datetime) -> LinkState:
    """A link takes its address off the list once: after that (the address may have left
    again since) and after LINK_LIFETIME, following it changes nothing."""
    if confirmed_at is not None:
        return LinkState.USED
    if now - created_at > LINK_LIFETIME:
        return LinkState.EXPIRED
    return LinkState.OPEN


# -- the link ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class LinkRef:
    """What a verified link names: a resubscription of an account for an address."""

    account_id: int
    email: str
    resubscription_id: int


def link_token(signer: Signer, ref: LinkRef) -> str:
    return signer.sign(PURPOSE, str(ref.account_id), ref.email, str(ref.resubscription_id))


def read_link(signer: Signer, token: str) -> LinkRef | None:
    """The resubscription a token names, or None for anything that is not a token we made."""
    fields = signer.verify(PURPOSE, token)
    if fields is None or len(fields) != 3:
        return None
    account, email, rid = fields
    if not (account.isascii() and account.isdigit() and rid.isascii() and rid.isdigit()):
        return None
    return LinkRef(account_id=int(account), email=email, resubscription_id=int(rid))


@dataclass(frozen=True)
class Link:
    """A resubscription as its link's pages need it."""

    ref: LinkRef
    sender: str
    lang: str
    created_at: datetime
    confirmed_at: datetime | None


# -- the story -----------------------------------------------------------------------------------
#: Given the new resubscription's id, the confirmation to queue (built inside the transaction).
Confirm = Callable[[int], NewMessage]


class ResubscribeStore(Protocol):
    """What the story needs from storage (store/resubscriptions.py)."""

    async def sender_check(self, account_id: int, sender: str) -> tuple[bool, bool]:
        """(account is SMTP-activated, sender is an active sender of the account)."""
        ...

    async def create(
        self, account_id: int, request: ResubscribeRequest, now: datetime, confirm: Confirm
    ) -> ErrorKind | NewMessage:
        """In one transaction: :func:`refusal` over the account's list and its resubscriptions
        since :func:`window_start`; if none, record the resubscription and queue
        ``confirm(id)``. Returns the refusal or the queued message."""
        ...

    async def link(self, ref: LinkRef) -> Link | None: ...

    async def follow(self, ref: LinkRef, now: datetime) -> tuple[Link, LinkState] | None:
        """In one transaction: the link's state; if OPEN, take the address off the list and
        mark the resubscription confirmed. None when no such resubscription exists."""
        ...


@dataclass
class Resubscriber:
    store: ResubscribeStore
    clock: Clock
    new_id: IdFactory
    signer: Signer
    base_url: str  # where the link pages are served (settings.base_url())
    hostname: str = "mailpulse.local"
    on_queued: Callable[[], None] | None = None

    async def resubscribe(self, account_id: int, params: dict[str, Any], sender_ip: str) -> str:
        """Queue the confirmation; returns its public id (the log's id of that email)."""
        request = read_request(params)
        await self.check_sender(account_id, request.sender)
        now = self.clock.now()
        public_id = self.new_id()

        def confirm(resubscription_id: int) -> NewMessage:
            ref = LinkRef(account_id, request.email, resubscription_id)
            return self.compose(ref, request, public_id, sender_ip, now)

        outcome = await self.store.create(account_id, request, now, confirm)
        if isinstance(outcome, ErrorKind):
            log.info("resubscribe refused for account %d: %s", account_id, outcome.message)
            raise outcome()
        if self.on_queued is not None:
            self.on_queued()
        log.info(
            "resubscribe confirmation %s queued for account %d (%s): sent although the "
            "address is on the suppression list",
            public_id,
            account_id,
            request.lang,
        )
        return public_id

    async def check_sender(self, account_id: int, sender: str) -> None:
        activated, allowed = await self.store.sender_check(account_id, sender)
        if not activated:
            raise NO_SMTP_USER()
        if not allowed:
            raise errors.SENDER_NOT_VALID()

    def link_url(self, ref: LinkRef) -> str:
        return f"{self.base_url.rstrip('/')}/resubscribe/{link_token(self.signer, ref)}"

    def compose(
        self,
        ref: LinkRef,
        request: ResubscribeRequest,
        public_id: str,
        sender_ip: str,
        now: datetime,
    ) -> NewMessage:
        texts = confirmation.render(
            request.lang, link=self.link_url(ref), email=request.email, sender=request.sender
        )
        mail = EmailRequest(
            sender=Address(request.sender),
            to=(Address(request.email),),
            subject=texts.subject,
            html=texts.html,
            text=texts.text,
        )
        message_id = f"{public_id}@{self.hostname}"
        raw = compose(mail, message_id=message_id, date=now)
        return NewMessage(
            account_id=ref.account_id,
            source=SOURCE,
            envelope_from=request.sender,
            sender=request.sender,
            subject=texts.subject,
            message_id_header=f"<{message_id}>",
            raw=raw,
            sender_ip=sender_ip,
            template_id=None,
            created_at=now,
            deliveries=(NewDelivery(public_id=public_id, recipient=request.email, kind="to"),),
        )

    # -- the link's pages ----------------------------------------------------------------------
    async def open_link(self, token: str) -> tuple[Link, LinkState] | None:
        """What the link's GET page shows (changes nothing); None: not a link of ours."""
        ref = read_link(self.signer, token)
        if ref is None:
            return None
        found = await self.store.link(ref)
        if found is None:
            return None
        return found, link_state(found.created_at, found.confirmed_at, self.clock.now())

    async def follow_link(self, token: str) -> tuple[Link, LinkState] | None:
        """The link's POST: takes the address off the list if the link is OPEN; returns the
        state it was in (None: not a link of ours)."""
        ref = read_link(self.signer, token)
        if ref is None:
            return None
        followed = await self.store.follow(ref, self.clock.now())
        if followed is None:
            return None
        found, state = followed
        if state is LinkState.OPEN:
            log.info(
                "resubscribe link followed: address taken off the suppression list of account %d",
                ref.account_id,
            )
        else:
            log.info(
                "resubscribe link of account %d is %s: suppression list unchanged",
                ref.account_id,
                state.value,
            )
        return found, state
