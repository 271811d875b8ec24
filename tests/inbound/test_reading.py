"""What a message at the bounce receiver means: RFC 3464 reports read with the standard
library, other reports with flufl.bounce and the text, feedback reports (RFC 5965)."""

from __future__ import annotations

import email
from email.message import Message

from mailpulse.core.signing import Signer
from mailpulse.inbound import arf, dsn, report
from mailpulse.inbound.addresses import (
    Addresses,
    BounceAddress,
    FeedbackAddress,
    UnsubscribeAddress,
)
from tests.delivery.helpers import BOUNCE_DOMAIN, TEST_SECRET
from tests.inbound import reports

RETURN_PATH = f"bounce+token@{BOUNCE_DOMAIN}"


def parse(raw: bytes) -> Message:
    return email.message_from_bytes(raw)


def test_a_standard_report_gives_action_status_and_the_diagnostic_unfolded() -> None:
    raw = reports.dsn(
        RETURN_PATH,
        "rita@example.test",
        diagnostic="smtp; 550-5.1.1 The email account that you tried to reach does\r\n"
        " not exist. Please try double-checking the recipient's email",
    )
    status = dsn.read_status(parse(raw), "")
    assert status is not None
    assert (status.action, status.status, status.code, status.standard) == (
        "failed",
        "5.1.1",
        550,
        True,
    )
    assert status.text.startswith("550-5.1.1 The email account that you tried to reach does not")
    assert status.recipient == "rita@example.test"


def test_a_report_without_a_diagnostic_says_who_reported_it() -> None:
    raw = reports.dsn(RETURN_PATH, "rita@example.test").replace(
        b"Diagnostic-Code: smtp; 550 5.1.1 <rita@example.test>: Recipient address rejected: "
        b"User unknown\r\n",
        b"",
    )
    status = dsn.read_status(parse(raw), "")
    assert status is not None
    assert (status.code, status.status) == (None, "5.1.1")
    assert status.text == "5.1.1 reported by mx.example.test"
    code, classification = report.classify_failure(status)
    assert (code, classification.category, classification.hard) == (550, "bad_mailbox", True)


def test_a_remote_server_giving_up_on_a_temporary_failure_is_expired_and_soft() -> None:
    raw = reports.dsn(
        RETURN_PATH,
        "rita@example.test",
        status="4.4.7",
        diagnostic="smtp; 451 4.4.7 Delivery time expired",
    )
    status = dsn.read_status(parse(raw), "")
    assert status is not None and status.action == "failed"
    code, classification = report.classify_failure(status)
    assert (code, classification.category, classification.hard) == (451, "expired", False)


def test_a_global_delivery_status_part_is_read_too() -> None:
    raw = reports.dsn(RETURN_PATH, "jörg@example.test").replace(
        b"message/delivery-status", b"message/global-delivery-status"
    )
    status = dsn.read_status(parse(raw), "")
    assert status is not None
    assert (status.action, status.status, status.code) == ("failed", "5.1.1", 550)


QMAIL = (
    b"From: MAILER-DAEMON@mx.example.test\r\n"
    b"To: " + RETURN_PATH.encode() + b"\r\n"
    b"Subject: failure notice\r\n"
    b"\r\n"
    b"Hi. This is the qmail-send program at mx.example.test.\r\n"
    b"I'm afraid I wasn't able to deliver your message to the following addresses.\r\n"
    b"This is a permanent error; I've given up. Sorry it didn't work out.\r\n"
    b"\r\n"
    b"<rita@example.test>:\r\n"
    b"192.0.2.7 does not like recipient.\r\n"
    b"Remote host said: 550 5.1.1 <rita@example.test>: Recipient address rejected: "
    b"User unknown in virtual mailbox table\r\n"
    b"Giving up on 192.0.2.7.\r\n"
    b"\r\n"
    b"--- Below this line is a copy of the message.\r\n"
)


def test_a_qmail_report_is_read_by_flufl_bounce_and_its_reply_by_the_text() -> None:
    status = dsn.read_status(parse(QMAIL), "")
    assert status is not None
    assert (status.action, status.code, status.status, status.standard) == (
        "failed",
        550,
        "5.1.1",
        False,
    )
    assert status.recipient == "rita@example.test"  # flufl.bounce found the address
    assert "User unknown" in status.text


def test_a_non_standard_temporary_report_is_a_delay() -> None:
    raw = (
        b"From: postmaster@mx.example.test\r\n"
        b"Subject: Delivery delayed\r\n"
        b"\r\n"
        b"Your message is still being retried.\r\n"
        b"The server said: 452 4.2.2 Mailbox full\r\n"
    )
    status = dsn.read_status(parse(raw), "")
    assert status is not None
    assert (status.action, status.code) == ("delayed", 452)


def test_replies_from_people_and_auto_replies_are_no_reports() -> None:
    person = b"From: Rita <rita@example.test>\r\nSubject: Re: hello\r\n\r\nThanks!\r\n"
    assert dsn.read_status(parse(person), "rita@example.test") is None
    away = reports.out_of_office(RETURN_PATH)
    assert dsn.read_status(parse(away), "") is None  # even with a null sender


def test_a_feedback_report_gives_its_type_and_the_return_paths_it_quotes() -> None:
    feedback = arf.read_feedback(parse(reports.arf(RETURN_PATH, "rita@example.test")))
    assert feedback is not None
    assert feedback.feedback_type == "abuse" and feedback.complaint
    assert feedback.return_paths == (f"<{RETURN_PATH}>", f"<{RETURN_PATH}>")
    assert feedback.original_rcpt_to == "<rita@example.test>"
    virus = arf.read_feedback(
        parse(reports.arf(RETURN_PATH, "rita@example.test", feedback_type="virus"))
    )
    assert virus is not None and not virus.complaint
    assert arf.read_feedback(parse(reports.dsn(RETURN_PATH, "rita@example.test"))) is None


def test_addresses_are_read_case_insensitively_and_only_at_the_bounce_domain() -> None:
    signer = Signer(TEST_SECRET)
    addresses = Addresses(signer, BOUNCE_DOMAIN.upper())
    token = signer.sign("bounce", "abc123-def456-gh")
    assert addresses.target(f"<BOUNCE+{token.upper()}@{BOUNCE_DOMAIN.upper()}.>") == (
        BounceAddress("abc123-def456-gh")
    )
    assert addresses.target(f"FBL@{BOUNCE_DOMAIN}") == FeedbackAddress()
    unsubscribe = signer.sign("unsubscribe-mail", "abc123-def456-gh")
    assert addresses.target(f"unsubscribe+{unsubscribe}@{BOUNCE_DOMAIN}") == (
        UnsubscribeAddress("abc123-def456-gh")
    )
    assert addresses.target(f"bounce+{token}@example.test") is None
    assert addresses.target(f"unsubscribe+{token}@{BOUNCE_DOMAIN}") is None  # wrong purpose
    assert addresses.target("no-at-sign") is None
