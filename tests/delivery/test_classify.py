"""The reply classifier: a table of real-world replies and what they mean, and the policy of
which bounces suppress the address (only recipient-level permanent failures)."""

from __future__ import annotations

import pytest

from mailpulse.delivery.classify import (
    Classification,
    address_fault,
    classify,
    expired_classification,
    parse_enhanced_status,
    suppression_note,
)

D, F, B = "delivered", "deferred", "bounced"

TABLE = [
    # code, enhanced, text, outcome, category
    (250, "2.0.0", "2.0.0 Ok: queued as 4Xy", D, None),
    (250, "", "OK id=1rAbc", D, None),
    (251, "", "User not local; will forward", D, None),
    (None, "", "connect to mx.example.com: Connection refused", F, "connection"),
    (None, "", "Timed out waiting for server response", F, "connection"),
    (421, "4.3.2", "4.3.2 Service shutting down", F, "temporary"),
    (451, "4.3.0", "4.3.0 Temporary local problem", F, "temporary"),
    (
        450,
        "4.2.1",
        "4.2.1 The user you are trying to contact is receiving mail too fast",
        F,
        "temporary",
    ),
    (
        452,
        "4.2.2",
        "4.2.2 The email account that you tried to reach is over quota",
        F,
        "mailbox_full",
    ),
    (451, "4.7.1", "4.7.1 Greylisted, please try again later", F, "policy"),
    (421, "4.7.0", "4.7.0 IP not in whitelist, blocked using Spamhaus", F, "policy"),
    (450, "", "Mailbox busy", F, "temporary"),
    (452, "", "Too many recipients", F, "temporary"),
    (
        550,
        "5.1.1",
        "5.1.1 <bob@example.com>: Recipient address rejected: User unknown",
        B,
        "bad_mailbox",
    ),
    (550, "", "5.1.1 The email account that you tried to reach does not exist", B, "bad_mailbox"),
    (553, "5.1.3", "5.1.3 Bad recipient address syntax", B, "bad_mailbox"),
    (550, "5.1.2", "5.1.2 Host unknown", B, "bad_domain"),
    (554, "5.4.4", "5.4.4 Unable to route", B, "bad_domain"),
    # Microsoft puts its "no such mailbox" under 5.1.10 (null MX, RFC 7505): the text decides
    (550, "5.1.10", "5.1.10 RESOLVER.ADR.RecipientNotFound; not found", B, "bad_mailbox"),
    (556, "5.1.10", "5.1.10 Recipient address has null MX", B, "bad_domain"),
    (550, "5.1.6", "5.1.6 Recipient no longer on server; no forwarding address", B, "bad_mailbox"),
    (550, "5.1.0", "5.1.0 Address rejected: user unknown", B, "bad_mailbox"),
    (550, "5.1.0", "5.1.0 Address rejected", B, "other"),
    (550, "5.1.4", "5.1.4 Destination mailbox address ambiguous", B, "other"),
    (550, "5.1.11", "5.1.11 Sender address has null MX", B, "policy"),
    (552, "5.2.1", "5.2.1 Mailbox over quota", B, "mailbox_full"),
    (550, "5.7.1", "5.7.1 Recipient address rejected: Access denied", B, "policy"),
    (550, "", "Sender address rejected: Domain not found", B, "policy"),
    (550, "", "sorry, no mailbox here by that name. (#5.1.1)", B, "bad_mailbox"),
    (550, "", "Unrouteable address", B, "bad_domain"),
    (554, "5.7.1", "5.7.1 Client host rejected: Access denied", B, "policy"),
    (550, "", "Recipient address rejected: Greylisted", B, "other"),
    (552, "5.2.2", "5.2.2 Mailbox full", B, "mailbox_full"),
    (550, "5.2.1", "5.2.1 The email account that you tried to reach is disabled", B, "bad_mailbox"),
    (552, "5.3.4", "5.3.4 Message size exceeds fixed maximum message size", B, "message_too_large"),
    (552, "5.2.3", "5.2.3 Message length exceeds administrative limit", B, "message_too_large"),
    (554, "5.7.1", "5.7.1 Message rejected as spam by Content Filtering", B, "spam_content"),
    (
        550,
        "5.7.1",
        "5.7.1 Service unavailable; Client host [1.2.3.4] blocked using Spamhaus",
        B,
        "policy",
    ),
    (550, "5.7.1", "5.7.1 Relaying denied", B, "policy"),
    (550, "5.7.26", "5.7.26 Unauthenticated email is not accepted (DMARC)", B, "policy"),
    (554, "", "Your IP has a poor reputation", B, "policy"),
    (550, "", "Message blocked: looks like spam", B, "spam_content"),
    # RFC 5321's stock 550 text: servers send it for policy refusals too, so it blames nobody
    (550, "", "Requested action not taken: mailbox unavailable", B, "other"),
    (550, "", "No such user here", B, "bad_mailbox"),
    (552, "", "Requested mail action aborted: mailbox is full", B, "mailbox_full"),
    (554, "", "Transaction failed", B, "other"),
    (500, "5.5.1", "5.5.1 Command unrecognized", B, "other"),
    (553, "5.1.8", "5.1.8 Sender address domain does not exist", B, "policy"),
    (550, "", "5.4.7 Delivery time expired", B, "other"),
    (354, "", "Start mail input", F, "temporary"),
]


@pytest.mark.parametrize(("code", "enhanced", "text", "outcome", "category"), TABLE)
def test_classify(
    code: int | None, enhanced: str, text: str, outcome: str, category: str | None
) -> None:
    assert classify(code, enhanced, text) == Classification(outcome, category)  # type: ignore[arg-type]


def test_table_is_large() -> None:
    assert len(TABLE) >= 25


def test_enhanced_status_is_read_from_the_text_when_not_given() -> None:
    assert classify(550, "", "5.2.2 mailbox full") == Classification("bounced", "mailbox_full")


def test_the_code_decides_the_outcome_not_the_enhanced_status() -> None:
    assert classify(450, "5.1.1", "5.1.1 user unknown").outcome == "deferred"
    assert classify(550, "4.2.2", "4.2.2 full").outcome == "bounced"


@pytest.mark.parametrize(
    ("category", "hard"),
    [
        ("bad_mailbox", True),
        ("bad_domain", True),
        ("expired_bad_address", True),
        ("other", False),  # an unexplained 5xx is no proof the address is dead
        ("mailbox_full", False),
        ("policy", False),
        ("spam_content", False),
        ("message_too_large", False),
        ("expired", False),
        ("internal", False),
    ],
)
def test_only_recipient_level_failures_are_hard(category: str, hard: bool) -> None:
    assert Classification("bounced", category).hard is hard
    assert Classification("deferred", category).hard is False


@pytest.mark.parametrize(
    ("code", "enhanced", "text", "hard"),
    [
        (550, "5.1.1", "5.1.1 <bob@example.com>: Recipient address rejected: User unknown", True),
        (550, "5.1.2", "5.1.2 Host unknown", True),
        (556, "5.1.10", "5.1.10 Recipient address has null MX", True),
        (550, "5.2.1", "5.2.1 The email account that you tried to reach is disabled", True),
        (550, "5.7.1", "5.7.1 Service unavailable; client [1.2.3.4] blocked using Spamhaus", False),
        (554, "5.7.1", "5.7.1 Message rejected as spam", False),
        (552, "5.3.4", "5.3.4 Message too big", False),
        (552, "5.2.2", "5.2.2 Mailbox full", False),
        (554, "", "Transaction failed", False),
        (500, "5.5.1", "5.5.1 Command unrecognized", False),
        (550, "", "Requested action not taken: mailbox unavailable", False),
    ],
)
def test_which_replies_suppress(code: int, enhanced: str, text: str, hard: bool) -> None:
    assert classify(code, enhanced, text).hard is hard


USER_UNKNOWN = (
    450,
    "4.1.1",
    "4.1.1 <a@example.test>: Recipient address rejected: User unknown in local recipient table",
)
# Postfix's address verification when its own probe could not connect: it blames nobody
UNVERIFIED = (
    450,
    "4.1.1",
    "4.1.1 <a@example.test>: Recipient address rejected: unverified address: connect to "
    "mx.example.test[192.0.2.1]:25: Connection timed out",
)
NO_DOMAIN = (450, "4.1.2", "4.1.2 <a@example.test>: Recipient address rejected: Domain not found")
LATER = (451, "4.3.0", "4.3.0 Temporary local problem")
NO_ANSWER = (None, "", "connect to mx.example.test: Connection refused")
DNS_FAILED = (None, "4.4.3", "DNS lookup of MX for example.test failed: timeout")


@pytest.mark.parametrize(
    ("answers", "category"),
    [
        ([USER_UNKNOWN, USER_UNKNOWN, USER_UNKNOWN], "expired_bad_address"),
        ([NO_DOMAIN, USER_UNKNOWN], "expired_bad_address"),
        ([USER_UNKNOWN], "expired"),  # once is not "repeated"
        ([], "expired"),
        ([USER_UNKNOWN, LATER, USER_UNKNOWN], "expired"),
        # no answer blames nobody: a dead domain looks like our own blocked port 25
        ([NO_ANSWER, NO_ANSWER, NO_ANSWER], "expired"),
        ([DNS_FAILED, DNS_FAILED], "expired"),
        ([USER_UNKNOWN, NO_ANSWER], "expired"),
        ([UNVERIFIED, UNVERIFIED, UNVERIFIED], "expired"),
    ],
)
def test_an_expiry_suppresses_only_when_every_answer_blamed_the_address(
    answers: list[tuple[int | None, str, str]], category: str
) -> None:
    verdict = expired_classification(answers)
    assert verdict == Classification("bounced", category)
    assert verdict.hard is (category == "expired_bad_address")


@pytest.mark.parametrize(
    ("answer", "fault"),
    [
        (USER_UNKNOWN, "bad_mailbox"),
        (UNVERIFIED, None),
        (NO_DOMAIN, "bad_domain"),
        ((550, "5.1.1", "5.1.1 User unknown"), "bad_mailbox"),
        ((450, "4.1.8", "4.1.8 Sender address rejected: Domain not found"), None),
        ((450, "", "Sender address rejected: Domain not found"), None),
        ((450, "4.2.0", "4.2.0 Recipient address rejected: Greylisted"), None),
        (LATER, None),
        (NO_ANSWER, None),
        (DNS_FAILED, None),
    ],
)
def test_address_fault(answer: tuple[int | None, str, str], fault: str | None) -> None:
    assert address_fault(*answer) == fault


@pytest.mark.parametrize(
    ("category", "note"),
    [
        ("bad_mailbox", "bad mailbox: address suppressed"),
        ("bad_domain", "bad domain: address suppressed"),
        ("policy", "policy: not suppressed (a block, not the address)"),
        ("spam_content", "spam content: not suppressed (the content, not the address)"),
        ("other", "other: not suppressed (the answer does not say the address is bad)"),
        ("expired", "expired: not suppressed (no answer blamed the address every time)"),
    ],
)
def test_the_log_line_names_the_suppression_decision(category: str, note: str) -> None:
    assert suppression_note(Classification("bounced", category)) == note


@pytest.mark.parametrize(
    ("text", "status"),
    [
        ("5.1.1 <a@b>: User unknown", "5.1.1"),
        ("2.0.0 Ok", "2.0.0"),
        ("  4.7.1 greylisted", "4.7.1"),
        ("5.7.26 DMARC", "5.7.26"),
        ("5.1.10 null MX", "5.1.10"),
        ("5.01.001 padded", "5.1.1"),
        ("Ok queued", ""),
        ("", ""),
        ("3.1.1 not a class", ""),
        ("5.1 too short", ""),
        ("5.1.1.1 too long", ""),
        ("1.2.3.4 is an address", ""),
        ("see 5.1.1 later", ""),
    ],
)
def test_parse_enhanced_status(text: str, status: str) -> None:
    assert parse_enhanced_status(text) == status
