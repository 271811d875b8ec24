"""The bounce receiver over real SMTP on loopback, on SQLite and PostgreSQL: reports mailed to
it change the deliveries their tokens name, and nothing else gets in."""

from __future__ import annotations

import asyncio
import json
import logging

import aiosmtplib
import pytest
import sqlalchemy as sa

from mailpulse.core.signing import Signer
from mailpulse.delivery import verp
from mailpulse.inbound.server import MAX_REPORT_BYTES, BounceReceiver
from mailpulse.store.db import Database
from mailpulse.store.tables import bounces, deliveries, delivery_queue, events, suppressions
from tests.delivery.helpers import BOUNCE_DOMAIN, delivery, rows, seed, set_row
from tests.inbound import reports

RECIPIENT = "rita@example.test"


def delivered(db: Database, recipient: str = RECIPIENT, account_id: int | None = None) -> str:
    """A delivery the receiving server accepted; its public id."""
    seeded = seed(db, [recipient], account_id=account_id)
    set_row(db, recipient, status="delivered", smtp_answer_code=250, smtp_answer_subcode="2.0.0")
    return str(rows(db, id=seeded.delivery_ids[0])[0].public_id)


def return_path(signer: Signer, public_id: str) -> str:
    return verp.return_path(signer, BOUNCE_DOMAIN, public_id)


def suppression_rows(db: Database) -> list[sa.Row[object]]:
    return list(rows(db, suppressions))


async def test_a_dsn_bounces_its_delivered_message_lists_it_and_suppresses_a_bad_mailbox(
    ddb: Database, receiver: BounceReceiver, signer: Signer, caplog: pytest.LogCaptureFixture
) -> None:
    public_id = delivered(ddb)
    address = return_path(signer, public_id)
    with caplog.at_level(logging.INFO, logger="mailpulse.inbound"):
        await reports.mail(receiver.port, [address], reports.dsn(address, RECIPIENT))

    row = delivery(ddb, RECIPIENT)
    assert (row.status, row.smtp_answer_code, row.smtp_answer_subcode) == ("bounced", 550, "5.1.1")
    assert "Recipient address rejected: User unknown" in row.smtp_answer_data
    assert row.bounce_category == "bad_mailbox"
    (listed,) = rows(ddb, bounces)
    assert (listed.email_to, listed.source, listed.category) == (RECIPIENT, "dsn", "bad_mailbox")
    assert (listed.smtp_answer_code, listed.smtp_answer_subcode) == (550, "5.1.1")
    assert listed.delivery_id == row.id and listed.suppressed
    (entry,) = suppression_rows(ddb)
    assert (entry.email, entry.bounced, entry.bounce_category) == (RECIPIENT, 1, "bad_mailbox")
    assert entry.spam_complaint == entry.unsubscribe_by_link == 0
    (event,) = rows(ddb, events)
    assert event.type == "hard_bounce"
    assert json.loads(event.data)["source"] == "dsn"
    decisions = [r.getMessage() for r in caplog.records if public_id in r.getMessage()]
    assert len(decisions) == 1
    assert "bounced, address suppressed" in decisions[0]


async def test_a_blocklist_report_is_listed_but_does_not_suppress(
    ddb: Database, receiver: BounceReceiver, signer: Signer
) -> None:
    public_id = delivered(ddb)
    address = return_path(signer, public_id)
    report = reports.dsn(
        address,
        RECIPIENT,
        status="5.7.1",
        diagnostic="smtp; 550 5.7.1 Service unavailable; client [192.0.2.1] blocked using "
        "zen.spamhaus.org",
    )
    await reports.mail(receiver.port, [address], report)

    row = delivery(ddb, RECIPIENT)
    assert (row.status, row.smtp_answer_subcode, row.bounce_category) == (
        "bounced",
        "5.7.1",
        "policy",
    )
    (listed,) = rows(ddb, bounces)
    assert (listed.category, listed.suppressed) == ("policy", False)
    assert suppression_rows(ddb) == []


async def test_a_mangled_report_still_bounces_the_delivery_its_address_names(
    ddb: Database, receiver: BounceReceiver, signer: Signer
) -> None:
    public_id = delivered(ddb)
    address = return_path(signer, public_id)
    await reports.mail(receiver.port, [address.upper()], reports.mangled(address))

    row = delivery(ddb, RECIPIENT)
    assert (row.status, row.smtp_answer_code) == ("bounced", 550)
    assert "without a readable status" in row.smtp_answer_data
    (listed,) = rows(ddb, bounces)
    assert (listed.delivery_id, listed.email_to, listed.source) == (row.id, RECIPIENT, "dsn")


async def test_the_token_decides_the_delivery_not_the_addresses_in_the_report(
    ddb: Database, receiver: BounceReceiver, signer: Signer
) -> None:
    """A report naming another tenant's recipient changes only the delivery of its token."""
    public_id = delivered(ddb)
    delivered(ddb, "victim@example.test")
    address = return_path(signer, public_id)
    await reports.mail(receiver.port, [address], reports.dsn(address, "victim@example.test"))

    assert delivery(ddb, RECIPIENT).status == "bounced"
    assert delivery(ddb, "victim@example.test").status == "delivered"
    assert [r.email_to for r in rows(ddb, bounces)] == [RECIPIENT]
    assert [r.email for r in suppression_rows(ddb)] == [RECIPIENT]


async def test_a_forged_token_is_refused_at_rcpt_and_changes_nothing(
    ddb: Database, receiver: BounceReceiver, signer: Signer
) -> None:
    public_id = delivered(ddb)
    genuine = return_path(signer, public_id)
    local, domain = genuine.split("@")
    last = local[-1]
    forged = [
        f"{local[:-1]}{'a' if last != 'a' else 'b'}@{domain}",  # one character changed
        return_path(Signer("another-secret-key-0123456789abcdef"), public_id),  # wrong key
        # a genuine token of another purpose
        f"bounce+{signer.sign('unsubscribe', public_id)}@{BOUNCE_DOMAIN}",
    ]
    for address in forged:
        with pytest.raises(aiosmtplib.SMTPRecipientsRefused) as refused:
            await reports.mail(receiver.port, [address], reports.dsn(address, RECIPIENT))
        assert refused.value.recipients[0].code == 550
    assert delivery(ddb, RECIPIENT).status == "delivered"
    assert rows(ddb, bounces) == []
    assert suppression_rows(ddb) == []


@pytest.mark.parametrize(
    "address",
    [
        "rita@example.test",  # a relay attempt
        f"postmaster@{BOUNCE_DOMAIN}",
        f"bounce@{BOUNCE_DOMAIN}",
        f"unsubscribe+@{BOUNCE_DOMAIN}",
    ],
)
async def test_any_other_recipient_is_refused(
    ddb: Database, receiver: BounceReceiver, signer: Signer, address: str
) -> None:
    public_id = delivered(ddb)
    # even a genuine token at another domain: the receiver is no relay
    elsewhere = return_path(signer, public_id).replace(BOUNCE_DOMAIN, "example.test")
    for rcpt in (address, elsewhere):
        with pytest.raises(aiosmtplib.SMTPRecipientsRefused) as refused:
            await reports.mail(receiver.port, [rcpt], reports.out_of_office(rcpt), "a@b.test")
        assert refused.value.recipients[0].code == 550
        assert "5.1.1" in refused.value.recipients[0].message


async def test_a_report_larger_than_the_limit_is_refused(
    ddb: Database, receiver: BounceReceiver, signer: Signer
) -> None:
    public_id = delivered(ddb)
    address = return_path(signer, public_id)
    huge = (
        reports.dsn(address, RECIPIENT)
        + b"x" * 998
        + (b"\r\n" + b"x" * 998) * (MAX_REPORT_BYTES // 1000)
    )
    # declared with SIZE at MAIL FROM: refused there
    with pytest.raises(aiosmtplib.SMTPSenderRefused) as at_mail:
        await reports.mail(receiver.port, [address], huge)
    assert at_mail.value.code == 552
    # undeclared: refused at the end of DATA
    async with aiosmtplib.SMTP(hostname="127.0.0.1", port=receiver.port, timeout=10) as smtp:
        await smtp.mail("")
        await smtp.rcpt(address)
        with pytest.raises(aiosmtplib.SMTPDataError) as at_data:
            await smtp.data(huge)
    assert at_data.value.code == 552
    assert delivery(ddb, RECIPIENT).status == "delivered"


async def test_no_auth_is_offered(receiver: BounceReceiver) -> None:
    async with aiosmtplib.SMTP(hostname="127.0.0.1", port=receiver.port, timeout=10) as smtp:
        await smtp.ehlo()
        assert not smtp.supports_extension("auth")
        code, _ = await smtp.execute_command(b"AUTH", b"PLAIN", b"AGFAYg==")
        assert code >= 500


async def test_an_arf_complaint_marks_spam_complaint_and_unsubscribes(
    ddb: Database, receiver: BounceReceiver, signer: Signer
) -> None:
    """At the feedback-loop address the report's quoted return path names the delivery."""
    public_id = delivered(ddb)
    report = reports.arf(return_path(signer, public_id), RECIPIENT)
    await reports.mail(receiver.port, [f"fbl@{BOUNCE_DOMAIN}"], report)

    (entry,) = suppression_rows(ddb)
    assert (entry.email, entry.spam_complaint, entry.bounced) == (RECIPIENT, 1, 0)
    (event,) = rows(ddb, events)
    assert event.type == "spam_complaint"
    assert event.delivery_id == delivery(ddb, RECIPIENT).id
    assert delivery(ddb, RECIPIENT).status == "delivered"  # a complaint is no bounce
    assert rows(ddb, bounces) == []


async def test_an_arf_complaint_at_the_return_path_counts_too(
    ddb: Database, receiver: BounceReceiver, signer: Signer
) -> None:
    public_id = delivered(ddb)
    address = return_path(signer, public_id)
    # the quoted return path is someone else's: the address the report came to decides
    other = delivered(ddb, "other@example.test")
    report = reports.arf(return_path(signer, other), "other@example.test")
    await reports.mail(receiver.port, [address], report)
    (entry,) = suppression_rows(ddb)
    assert (entry.email, entry.spam_complaint) == (RECIPIENT, 1)


async def test_a_feedback_report_quoting_no_verified_return_path_changes_nothing(
    ddb: Database, receiver: BounceReceiver, signer: Signer
) -> None:
    public_id = delivered(ddb)
    forged = return_path(Signer("another-secret-key-0123456789abcdef"), public_id)
    await reports.mail(receiver.port, [f"fbl@{BOUNCE_DOMAIN}"], reports.arf(forged, RECIPIENT))
    assert suppression_rows(ddb) == []
    assert rows(ddb, events) == []


async def test_mail_to_the_unsubscribe_address_unsubscribes_by_link(
    ddb: Database, receiver: BounceReceiver, signer: Signer
) -> None:
    public_id = delivered(ddb)
    account_id = delivery(ddb, RECIPIENT).account_id
    token = signer.sign("unsubscribe-mail", public_id)
    address = f"unsubscribe+{token}@{BOUNCE_DOMAIN}"
    message = (
        f"From: {RECIPIENT}\r\nTo: {address}\r\nSubject: unsubscribe\r\n\r\nunsubscribe\r\n"
    ).encode()
    await reports.mail(receiver.port, [address], message, sender=RECIPIENT)

    (entry,) = suppression_rows(ddb)
    assert (entry.account_id, entry.email) == (account_id, RECIPIENT)
    assert (entry.unsubscribe_by_link, entry.spam_complaint, entry.bounced) == (1, 0, 0)
    (event,) = rows(ddb, events)
    assert (event.type, event.delivery_id) == ("unsubscribe", delivery(ddb, RECIPIENT).id)
    assert delivery(ddb, RECIPIENT).status == "delivered"


async def test_an_out_of_office_reply_and_a_delay_report_change_nothing(
    ddb: Database, receiver: BounceReceiver, signer: Signer
) -> None:
    public_id = delivered(ddb)
    address = return_path(signer, public_id)
    await reports.mail(receiver.port, [address], reports.out_of_office(address), RECIPIENT)
    delay = reports.dsn(
        address, RECIPIENT, action="delayed", status="4.4.1", diagnostic="smtp; 451 4.4.1 later"
    )
    await reports.mail(receiver.port, [address], delay)
    assert delivery(ddb, RECIPIENT).status == "delivered"
    assert rows(ddb, bounces) == []
    assert rows(ddb, events) == []


async def test_a_second_report_for_a_bounced_delivery_is_dropped(
    ddb: Database, receiver: BounceReceiver, signer: Signer
) -> None:
    public_id = delivered(ddb)
    address = return_path(signer, public_id)
    await reports.mail(receiver.port, [address], reports.dsn(address, RECIPIENT))
    await reports.mail(receiver.port, [address], reports.dsn(address, RECIPIENT, status="5.2.2"))
    assert len(rows(ddb, bounces)) == 1
    assert delivery(ddb, RECIPIENT).smtp_answer_subcode == "5.1.1"


async def test_a_report_for_a_delivery_still_queued_takes_it_out_of_the_queue(
    ddb: Database, receiver: BounceReceiver, signer: Signer
) -> None:
    seeded = seed(ddb, [RECIPIENT])
    public_id = rows(ddb, id=seeded.delivery_ids[0])[0].public_id
    address = return_path(signer, public_id)
    await reports.mail(receiver.port, [address], reports.dsn(address, RECIPIENT))
    assert delivery(ddb, RECIPIENT).status == "bounced"
    queued = ddb.read_sync(lambda conn: conn.execute(sa.select(delivery_queue)).all())
    assert queued == []
    assert delivery(ddb, RECIPIENT).send_date is not None


async def test_rows_of_another_delivery_are_untouched(
    ddb: Database, receiver: BounceReceiver, signer: Signer
) -> None:
    first = delivered(ddb)
    delivered(ddb, "second@example.test")
    address = return_path(signer, first)
    await reports.mail(receiver.port, [address], reports.dsn(address, RECIPIENT))
    statuses = {r.recipient: r.status for r in rows(ddb, deliveries)}
    assert statuses == {RECIPIENT: "bounced", "second@example.test": "delivered"}


async def test_a_report_that_trips_a_bug_is_deferred_not_lost(
    ddb: Database,
    receiver: BounceReceiver,
    signer: Signer,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    def broken(*args: object) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr("mailpulse.inbound.report.read", broken)
    public_id = delivered(ddb)
    address = return_path(signer, public_id)
    with pytest.raises(aiosmtplib.SMTPDataError) as deferred:
        await reports.mail(receiver.port, [address], reports.dsn(address, RECIPIENT))
    assert deferred.value.code == 451  # the reporting server keeps it and tries again
    assert delivery(ddb, RECIPIENT).status == "delivered"
    assert any("a report from" in r.getMessage() for r in caplog.records)


async def test_connections_past_the_limit_are_told_to_come_back_later(
    receiver: BounceReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("mailpulse.inbound.server.MAX_CONNECTIONS", 1)
    async with aiosmtplib.SMTP(hostname="127.0.0.1", port=receiver.port, timeout=10) as first:
        await first.ehlo()
        with pytest.raises(aiosmtplib.SMTPConnectResponseError) as busy:
            await aiosmtplib.SMTP(hostname="127.0.0.1", port=receiver.port, timeout=10).connect()
        assert busy.value.code == 421
    # the first one gone, there is room again
    for _ in range(500):  # only to detect a leak: the count must come back down
        if receiver.connections == 0:
            break
        await asyncio.sleep(0.01)
    assert receiver.connections == 0
    async with aiosmtplib.SMTP(hostname="127.0.0.1", port=receiver.port, timeout=10) as again:
        code, _ = await again.ehlo()
        assert code == 250
