"""core/resubscribe.py: the rules of POST /smtp/resubscribe and of its confirmation link, and
the story run over an in-memory store (the SQL store is tested end to end in tests/e2e/)."""

from __future__ import annotations

import email
import email.policy
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import pytest

from mailpulse.core import errors
from mailpulse.core import resubscribe as rs
from mailpulse.core.clock import FixedClock
from mailpulse.core.errors import ApiError, ErrorKind
from mailpulse.core.model import NewMessage
from mailpulse.core.signing import Signer

NOW = datetime(2026, 12, 1, 12, 0, 0)
SIGNER = Signer("unit-test-secret")


def refused_with(kind: ErrorKind, params: dict[str, Any]) -> None:
    with pytest.raises(ApiError) as caught:
        rs.read_request(params)
    assert (caught.value.status, caught.value.error_code, caught.value.message) == (
        kind.status,
        kind.error_code,
        kind.message,
    )


# -- the request ---------------------------------------------------------------------------------
@pytest.mark.parametrize("lang", ["en", "ru", "ua", "tr", "es", "pt"])
def test_each_language_sendpulse_offers_is_chosen_as_asked(lang: str) -> None:
    assert rs.language(lang) == lang
    assert rs.language(f" {lang.upper()} ") == lang


@pytest.mark.parametrize("value", [None, "", "  ", [], {}])
def test_a_language_not_set_is_english(value: Any) -> None:
    assert rs.language(value) == "en"


def test_an_unknown_language_is_english_and_iso_uk_is_ukrainian() -> None:
    assert rs.language("de") == "en"
    assert rs.language("english") == "en"
    assert rs.language("uk") == "ua"


@pytest.mark.parametrize("value", [5, 1.5, True, ["en"], {"0": "en"}])
def test_a_language_that_is_not_text_is_refused(value: Any) -> None:
    with pytest.raises(ApiError) as caught:
        rs.language(value)
    assert caught.value.message == "Argument lang must be string"
    assert (caught.value.status, caught.value.error_code) == (422, 422)


def test_a_valid_request_is_read_with_addresses_normalised() -> None:
    request = rs.read_request({"email": " Rita@Bücher.DE ", "sender": "news@example.com"})
    assert request == rs.ResubscribeRequest("Rita@xn--bcher-kva.de", "news@example.com", "en")


@pytest.mark.parametrize(
    ("params", "kind"),
    [
        ({"sender": "s@example.com"}, errors.EMAIL_MISSING),
        ({"email": "", "sender": "s@example.com"}, errors.EMAIL_MISSING),
        ({"email": None, "sender": "s@example.com"}, errors.EMAIL_MISSING),
        ({"email": "not an address", "sender": "s@example.com"}, rs.EMAIL_INVALID),
        ({"email": 12, "sender": "s@example.com"}, rs.EMAIL_INVALID),
        ({"email": ["a@example.org"], "sender": "s@example.com"}, rs.EMAIL_INVALID),
        ({"email": "a\x00@example.org", "sender": "s@example.com"}, rs.EMAIL_INVALID),
        ({"email": "a@example.org"}, rs.SENDER_MISSING),
        ({"email": "a@example.org", "sender": ""}, rs.SENDER_MISSING),
        ({"email": "a@example.org", "sender": "nobody"}, errors.SENDER_NOT_VALID),
        ({"email": "a@example.org", "sender": {"email": "s@x.org"}}, errors.SENDER_NOT_VALID),
        ({"email": "a@example.org", "sender": "s@example.com", "lang": 3}, rs.LANG_NOT_STRING),
        # SendPulse's order: email before sender before lang
        ({"email": "bad", "lang": 3}, rs.EMAIL_INVALID),
        ({"email": "a@example.org", "lang": 3}, rs.SENDER_MISSING),
    ],
)
def test_each_bad_request_gets_sendpulses_refusal(params: dict[str, Any], kind: ErrorKind) -> None:
    refused_with(kind, params)


def test_the_refusals_carry_sendpulses_codes_and_messages() -> None:
    assert (rs.OVER_DAILY_LIMIT.status, rs.OVER_DAILY_LIMIT.error_code) == (422, 422)
    assert rs.OVER_DAILY_LIMIT.message == "No more than 5 are allowed per day"
    assert rs.NOT_ON_LIST.message == "Blocked email not found"
    assert (rs.NO_SMTP_USER.status, rs.NO_SMTP_USER.error_code) == (422, 503)
    assert rs.NO_SMTP_USER.message == "Smtp user not found"


# -- the decisions -------------------------------------------------------------------------------
def test_five_a_day_are_allowed_and_the_sixth_is_refused() -> None:
    assert [rs.refusal(True, sent) for sent in range(5)] == [None] * 5
    assert rs.refusal(True, 5) is rs.OVER_DAILY_LIMIT
    assert rs.refusal(True, 50) is rs.OVER_DAILY_LIMIT


def test_an_address_not_on_the_list_is_refused_whatever_the_count() -> None:
    assert rs.refusal(False, 0) is rs.NOT_ON_LIST
    assert rs.refusal(False, 5) is rs.NOT_ON_LIST


def test_the_window_is_the_24_hours_before_now() -> None:
    assert rs.window_start(NOW) == NOW - timedelta(hours=24)


def test_a_link_is_open_for_seven_days_then_expired() -> None:
    assert rs.link_state(NOW, None, NOW) is rs.LinkState.OPEN
    assert rs.link_state(NOW, None, NOW + timedelta(days=7)) is rs.LinkState.OPEN
    later = NOW + timedelta(days=7, seconds=1)
    assert rs.link_state(NOW, None, later) is rs.LinkState.EXPIRED


def test_a_followed_link_is_used_even_before_it_would_expire() -> None:
    assert rs.link_state(NOW, NOW, NOW + timedelta(minutes=1)) is rs.LinkState.USED
    assert rs.link_state(NOW, NOW, NOW + timedelta(days=30)) is rs.LinkState.USED


# -- the link ------------------------------------------------------------------------------------
def test_a_link_token_names_its_account_address_and_resubscription() -> None:
    ref = rs.LinkRef(7, "rita@example.org", 42)
    token = rs.link_token(SIGNER, ref)
    assert re.fullmatch(r"[a-z2-7]+-[a-z2-7]+", token)
    assert rs.read_link(SIGNER, token) == ref
    assert rs.read_link(SIGNER, token.upper()) == ref  # case does not matter


def test_a_token_made_for_another_purpose_or_key_or_tampered_is_not_a_link() -> None:
    ref = rs.LinkRef(7, "rita@example.org", 42)
    assert rs.read_link(SIGNER, SIGNER.sign("unsubscribe", "7", "rita@example.org", "42")) is None
    assert rs.read_link(Signer("another secret"), rs.link_token(SIGNER, ref)) is None
    token = rs.link_token(SIGNER, ref)
    assert rs.read_link(SIGNER, ("b" if token[0] == "a" else "a") + token[1:]) is None
    for forged in ("", "-", "x" * 5000, "abc-def", "ĳ-ĳ"):
        assert rs.read_link(SIGNER, forged) is None


def test_a_signed_token_with_the_wrong_fields_is_not_a_link() -> None:
    assert rs.read_link(SIGNER, SIGNER.sign("resubscribe", "7", "a@b.c")) is None
    assert rs.read_link(SIGNER, SIGNER.sign("resubscribe", "x", "a@b.c", "1")) is None
    assert rs.read_link(SIGNER, SIGNER.sign("resubscribe", "7", "a@b.c", "-1")) is None
    assert rs.read_link(SIGNER, SIGNER.sign("resubscribe", "٣", "a@b.c", "1")) is None


# -- the story, over an in-memory store ------------------------------------------------------------
@dataclass
class MemoryStore:
    """Keeps what the SQL store keeps, enough to run the story."""

    activated: bool = True
    senders: set[str] = field(default_factory=lambda: {"news@example.com"})
    listed: set[str] = field(default_factory=lambda: {"rita@example.org"})
    created: list[datetime] = field(default_factory=list)
    queued: list[NewMessage] = field(default_factory=list)

    async def sender_check(self, account_id: int, sender: str) -> tuple[bool, bool]:
        return self.activated, sender in self.senders

    async def create(
        self, account_id: int, request: rs.ResubscribeRequest, now: datetime, confirm: rs.Confirm
    ) -> ErrorKind | NewMessage:
        since = rs.window_start(now)
        refused = rs.refusal(
            request.email.lower() in self.listed, sum(1 for at in self.created if at > since)
        )
        if refused is not None:
            return refused
        self.created.append(now)
        message = confirm(len(self.created))
        self.queued.append(message)
        return message

    async def link(self, ref: rs.LinkRef) -> rs.Link | None:
        return None

    async def follow(self, ref: rs.LinkRef, now: datetime) -> tuple[rs.Link, rs.LinkState] | None:
        return None


def resubscriber(store: MemoryStore, clock: FixedClock) -> rs.Resubscriber:
    ids = iter(f"id{n:04d}-000000-00" for n in range(100))
    return rs.Resubscriber(
        store=store,
        clock=clock,
        new_id=lambda: next(ids),
        signer=SIGNER,
        base_url="https://mail.example.net/",
        hostname="mx.example.net",
    )


PARAMS = {"email": "Rita@example.org", "sender": "news@example.com", "lang": "es"}


async def test_the_confirmation_is_from_the_sender_to_the_address_with_a_signed_link() -> None:
    store, clock = MemoryStore(), FixedClock(NOW)
    public_id = await resubscriber(store, clock).resubscribe(3, PARAMS, "192.0.2.1")
    (message,) = store.queued
    assert public_id == message.deliveries[0].public_id == "id0000-000000-00"
    assert (message.account_id, message.sender, message.envelope_from) == (
        3,
        "news@example.com",
        "news@example.com",
    )
    assert message.deliveries[0].recipient == "Rita@example.org"
    assert message.source == "confirm" and message.sender_ip == "192.0.2.1"
    parsed = email.message_from_bytes(message.raw, policy=email.policy.default)
    assert parsed["From"] == "news@example.com" and parsed["To"] == "Rita@example.org"
    assert parsed["Subject"] == "Confirme: volver a recibir correos de news@example.com"
    assert parsed["Message-ID"] == "<id0000-000000-00@mx.example.net>"
    text = parsed.get_body(("plain",))
    assert text is not None
    links = re.findall(r"https://mail\.example\.net/resubscribe/(\S+)", text.get_content())
    assert len(links) == 1
    assert rs.read_link(SIGNER, links[0]) == rs.LinkRef(3, "Rita@example.org", 1)


async def test_the_sixth_in_a_day_is_refused_and_allowed_again_after_24_hours() -> None:
    store, clock = MemoryStore(), FixedClock(NOW)
    story = resubscriber(store, clock)
    for _ in range(5):
        await story.resubscribe(3, PARAMS, "")
        clock.advance(hours=1)
    with pytest.raises(ApiError) as caught:
        await story.resubscribe(3, PARAMS, "")
    assert caught.value.message == "No more than 5 are allowed per day"
    clock.advance(hours=19, seconds=1)  # the first one is now more than 24 h old
    await story.resubscribe(3, PARAMS, "")
    assert len(store.queued) == 6


@pytest.mark.parametrize(
    ("store", "message"),
    [
        (MemoryStore(activated=False), "Smtp user not found"),
        (MemoryStore(senders=set()), "Sender is not valid"),
        (MemoryStore(listed=set()), "Blocked email not found"),
    ],
)
async def test_a_refused_resubscribe_queues_nothing(store: MemoryStore, message: str) -> None:
    with pytest.raises(ApiError) as caught:
        await resubscriber(store, FixedClock(NOW)).resubscribe(3, PARAMS, "")
    assert caught.value.message == message
    assert store.queued == [] and store.created == []
