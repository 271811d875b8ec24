"""Reports as mail systems write them, for the bounce receiver's tests, and a way to mail
them to it over SMTP."""

from __future__ import annotations

import aiosmtplib

from tests.delivery.helpers import BOUNCE_DOMAIN

ORIGINAL = (
    "Return-Path: <{return_path}>\r\n"
    "From: Shop <news@shop.example>\r\n"
    "To: {recipient}\r\n"
    "Subject: hello\r\n"
    "Message-ID: <m1@shop.example>\r\n"
    "\r\n"
    "Hello.\r\n"
)


def dsn(
    return_path: str,
    recipient: str,
    *,
    status: str = "5.1.1",
    diagnostic: str = "smtp; 550 5.1.1 <{recipient}>: Recipient address rejected: User unknown",
    action: str = "failed",
) -> bytes:
    """An RFC 3464 report (multipart/report) as Postfix writes it, with the original's headers."""
    diag = diagnostic.format(recipient=recipient)
    text = (
        f"From: MAILER-DAEMON@mx.example.test (Mail Delivery System)\r\n"
        f"To: {return_path}\r\n"
        f"Subject: Undelivered Mail Returned to Sender\r\n"
        f"Auto-Submitted: auto-replied\r\n"
        f"MIME-Version: 1.0\r\n"
        f'Content-Type: multipart/report; report-type=delivery-status; boundary="BB"\r\n'
        f"\r\n"
        f"--BB\r\n"
        f"Content-Type: text/plain\r\n"
        f"\r\n"
        f"I'm sorry to have to inform you that your message could not be delivered.\r\n"
        f"\r\n"
        f"--BB\r\n"
        f"Content-Type: message/delivery-status\r\n"
        f"\r\n"
        f"Reporting-MTA: dns; mx.example.test\r\n"
        f"Arrival-Date: Mon,  1 Dec 2030 10:00:00 +0000\r\n"
        f"\r\n"
        f"Final-Recipient: rfc822; {recipient}\r\n"
        f"Original-Recipient: rfc822; {recipient}\r\n"
        f"Action: {action}\r\n"
        f"Status: {status}\r\n"
        f"Remote-MTA: dns; mx.example.test\r\n"
        f"Diagnostic-Code: {diag}\r\n"
        f"\r\n"
        f"--BB\r\n"
        f"Content-Type: text/rfc822-headers\r\n"
        f"\r\n"
        + ORIGINAL.format(return_path=return_path, recipient=recipient).split("\r\n\r\n")[0]
        + "\r\n\r\n--BB--\r\n"
    )
    return text.encode()


def mangled(return_path: str) -> bytes:
    """What is left of a report after a broken mail system: no structure, no recipient, no
    codes; only the address it was sent to (the VERP return path) is intact."""
    return (
        "From: MAILER-DAEMON@relay.example.test\r\n"
        f"To: {return_path}\r\n"
        "Subject: failure notice\r\n"
        "\r\n"
        "Hi. This is the qmail-send program. I'm afraid I wasn't able to deliver your message.\r\n"
        "--- the rest of this report was lost ---\r\n"
    ).encode()


def arf(return_path: str, recipient: str, *, feedback_type: str = "abuse") -> bytes:
    """An RFC 5965 feedback report as a mailbox provider's feedback loop sends it."""
    original = ORIGINAL.format(return_path=return_path, recipient=recipient)
    return (
        "From: feedback@mailbox.example.test\r\n"
        f"To: fbl@{BOUNCE_DOMAIN}\r\n"
        "Subject: FW: hello\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=feedback-report; boundary="FF"\r\n'
        "\r\n"
        "--FF\r\n"
        "Content-Type: text/plain\r\n"
        "\r\n"
        "This is an email abuse report for an email message received from IP 192.0.2.1.\r\n"
        "\r\n"
        "--FF\r\n"
        "Content-Type: message/feedback-report\r\n"
        "\r\n"
        f"Feedback-Type: {feedback_type}\r\n"
        "User-Agent: SomeGenerator/1.0\r\n"
        "Version: 1\r\n"
        f"Original-Mail-From: <{return_path}>\r\n"
        f"Original-Rcpt-To: <{recipient}>\r\n"
        "Source-IP: 192.0.2.1\r\n"
        "\r\n"
        "--FF\r\n"
        "Content-Type: message/rfc822\r\n"
        "\r\n" + original + "\r\n--FF--\r\n"
    ).encode()


def out_of_office(return_path: str) -> bytes:
    return (
        "From: Rita <rita@example.test>\r\n"
        f"To: {return_path}\r\n"
        "Subject: Automatic reply: hello\r\n"
        "Auto-Submitted: auto-replied\r\n"
        "\r\n"
        "I am out of the office until Monday.\r\n"
    ).encode()


async def mail(port: int, recipients: list[str], message: bytes, sender: str = "") -> None:
    """Mail ``message`` to the receiver on loopback, as a reporting server does (null sender by
    default). Raises aiosmtplib's errors for refusals."""
    async with aiosmtplib.SMTP(hostname="127.0.0.1", port=port, timeout=10) as smtp:
        await smtp.sendmail(sender, recipients, message)
