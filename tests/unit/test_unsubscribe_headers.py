"""The List-Unsubscribe step (delivery/unsubscribe_headers.py), the unsubscribe token
(core/unsubscribe.py) and the reasons of a suppressed delivery (core/suppression.py)."""

from __future__ import annotations

import email
import email.policy
from datetime import datetime

import pytest

from mailpulse.config import Settings
from mailpulse.core import unsubscribe
from mailpulse.core.signing import Signer
from mailpulse.core.suppression import Listed
from mailpulse.delivery.personalise import for_settings
from mailpulse.delivery.queue import ClaimedDelivery, StoredMessage
from mailpulse.delivery.unsubscribe_headers import (
    ListUnsubscribe,
    without_list_unsubscribe,
)

SIGNER = Signer("unit-test-secret")
RAW = (
    b"From: a@x.org\r\nTo: rita@example.org\r\nSubject: hi\r\n"
    b"Content-Type: text/plain\r\n\r\nbody line\r\nList-Unsubscribe: in the body stays\r\n"
)


def delivery(recipient: str = "rita@example.org", account: int = 7) -> ClaimedDelivery:
    now = datetime(2026, 1, 1)
    return ClaimedDelivery(
        id=1,
        public_id="abc123-def456-gh",
        account_id=account,
        message_id=1,
        recipient=recipient,
        recipient_domain=recipient.rpartition("@")[2],
        attempts=0,
        created_at=now,
        lease_owner="t",
        lease_until=now,
    )


STEP = ListUnsubscribe(SIGNER, "https://mail.example.net/", "bounces.example.net")


def test_the_headers_name_a_signed_link_and_mailto_and_one_click() -> None:
    sent = STEP(StoredMessage(1, "a@x.org", RAW), delivery())
    parsed = email.message_from_bytes(sent.raw, policy=email.policy.default)
    token = unsubscribe.token(SIGNER, 7, "rita@example.org", "abc123-def456-gh")
    assert str(parsed["List-Unsubscribe"]) == (
        f"<https://mail.example.net/unsubscribe/{token}>, "
        f"<mailto:unsubscribe+{unsubscribe.mail_token(SIGNER, 'abc123-def456-gh')}"
        "@bounces.example.net>"
    )
    assert parsed["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert sent.raw.endswith(RAW)  # the stored bytes follow untouched
    assert sent.envelope_from == "a@x.org"
    assert unsubscribe.read(SIGNER, token) == unsubscribe.Unsubscribe(
        7, "rita@example.org", "abc123-def456-gh"
    )


def test_the_header_is_folded_between_its_elements_and_no_line_exceeds_998() -> None:
    long_recipient = "r" * 64 + "@" + ".".join(["d" * 60] * 4) + ".org"
    ours = STEP.headers(7, long_recipient, "abc123-def456-gh")
    lines = ours.split(b"\r\n")
    assert lines[0].startswith(b"List-Unsubscribe: <https://") and lines[0].endswith(b">,")
    assert lines[1].startswith(b" <mailto:unsubscribe+")
    assert lines[2] == b"List-Unsubscribe-Post: List-Unsubscribe=One-Click"
    assert lines[3] == b""
    assert all(len(line) <= 998 for line in lines)


def test_a_line_that_cannot_fit_leaves_the_headers_out() -> None:
    step = ListUnsubscribe(SIGNER, "https://x.org/" + "p" * 900, "b.org")
    message = StoredMessage(1, "a@x.org", RAW)
    assert step(message, delivery()) is message


def test_the_messages_own_list_unsubscribe_headers_are_replaced_by_ours() -> None:
    theirs = (
        b"From: a@x.org\r\nList-Unsubscribe: <https://evil.example/u>,\r\n"
        b"\t<mailto:u@evil.example>\r\nlist-unsubscribe-post: List-Unsubscribe=One-Click\r\n"
        b"Subject: hi\r\n\r\nList-Unsubscribe: body text\r\n"
    )
    assert without_list_unsubscribe(theirs) == (
        b"From: a@x.org\r\nSubject: hi\r\n\r\nList-Unsubscribe: body text\r\n"
    )
    sent = STEP(StoredMessage(1, "a@x.org", theirs), delivery())
    parsed = email.message_from_bytes(sent.raw, policy=email.policy.default)
    assert len(parsed.get_all("List-Unsubscribe") or []) == 1
    assert b"evil.example" not in sent.raw


def test_a_message_without_those_headers_is_returned_as_is() -> None:
    assert without_list_unsubscribe(RAW) is RAW


def test_forged_altered_or_foreign_tokens_do_not_verify() -> None:
    token = unsubscribe.token(SIGNER, 7, "rita@example.org", "d")
    assert unsubscribe.read(SIGNER, token.upper()) is not None  # case-insensitive, as base32
    assert unsubscribe.read(Signer("another-secret"), token) is None
    assert unsubscribe.read(SIGNER, token[:-1] + ("a" if token[-1] != "a" else "b")) is None
    assert unsubscribe.read(SIGNER, SIGNER.sign("bounce", "7", "rita@example.org", "d")) is None
    assert unsubscribe.read(SIGNER, SIGNER.sign("unsubscribe", "x7", "r@x.org", "d")) is None
    assert unsubscribe.read(SIGNER, SIGNER.sign("unsubscribe", "7", "r@x.org")) is None
    assert unsubscribe.read(SIGNER, "") is None


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        ({"bounce_domain": "b.example", "hostname": "h.example"}, "b.example"),
        ({"hostname": "h.example"}, "h.example"),
    ],
)
def test_the_bounce_domain_defaults_to_the_hostname(
    settings: dict[str, str], expected: str
) -> None:
    assert Settings(**settings).resolved_bounce_domain() == expected


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("public_url", "https://x.org/a b"),
        ("public_url", "https://x.org/\r\nBcc: a@b.c"),
        ("public_url", "https://x.org/<>"),
        ("public_url", "ftp://x.org"),
        ("bounce_domain", "b.example>\r\nX: y"),
        ("bounce_domain", "b example"),
    ],
)
def test_settings_that_could_inject_into_the_header_are_refused(field: str, value: str) -> None:
    with pytest.raises(ValueError):
        Settings(**{field: value})


def test_the_step_is_on_by_default_and_can_be_switched_off() -> None:
    def has_step(settings: Settings) -> bool:
        return any(isinstance(step, ListUnsubscribe) for step in for_settings(settings).steps)

    assert has_step(Settings(secret_key="k")) is True
    assert has_step(Settings(secret_key="k", list_unsubscribe=False)) is False


@pytest.mark.parametrize(
    ("listed", "answer"),
    [
        (Listed("a@x.org", unsubscribe_by_link=True), "suppressed: unsubscribed by link"),
        (Listed("a@x.org", unsubscribe_by_user=True), "suppressed: unsubscribed by the sender"),
        (Listed("a@x.org", spam_complaint=True), "suppressed: spam complaint"),
        (
            Listed("a@x.org", bounced=True, bounce_category="bad_domain"),
            "suppressed: hard bounce (bad_domain)",
        ),
        (
            Listed("a@x.org", spam_complaint=True, bounced=True, bounce_category="bad_mailbox"),
            "suppressed: spam complaint, hard bounce (bad_mailbox)",
        ),
    ],
)
def test_the_answer_of_a_suppressed_delivery_says_why(listed: Listed, answer: str) -> None:
    assert listed.answer() == answer


def test_the_mailto_local_part_fits_in_64_characters_even_for_a_long_address() -> None:
    """RFC 5321 4.5.3.1.1: some servers refuse to send to a longer local part."""
    long_recipient = "a.very.long.name.of.a.recipient" + "x" * 150 + "@example.org"
    sent = STEP(StoredMessage(1, "a@x.org", RAW), delivery(recipient=long_recipient))
    parsed = email.message_from_bytes(sent.raw, policy=email.policy.default)
    mailto = str(parsed["List-Unsubscribe"]).split("<mailto:")[1].rstrip(">")
    local = mailto.rpartition("@")[0]
    assert len(local) <= 64
    token = local.removeprefix(unsubscribe.MAILTO_PREFIX)
    assert unsubscribe.mail_delivery(SIGNER, token) == "abc123-def456-gh"
    assert unsubscribe.mail_delivery(SIGNER, unsubscribe.token(SIGNER, 7, "r@x.org", "d")) is None
