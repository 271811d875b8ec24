"""PyPI ``sendpulse-sdk==1.0.0`` (``SendPulseClient``) against a real mailpulse server.

Pointed at the server with its ``api_url`` argument (compat Appendix Z). Its surface for SMTP is
only ``send_email`` / ``send_bulk_emails`` / ``health``: no cc/bcc, no email-log calls. Its wire
quirks: ``from`` without ``name`` unless given, ``reply_to`` as a plain string, text-only mail
sends only ``text``, attachments go out as ``attachments_binary`` (base64 by the caller) (§a.1,
§h.9). It caches the token in memory and refreshes once on a 401.
"""

from __future__ import annotations

import base64

import pytest
from sendpulse import SendPulseClient
from sendpulse.exceptions import SendPulseRequestError

from tests.compat.stored import EMAIL_ID, PNG_1X1, stored_email
from tests.support.server import RunningServer, Tenant


def client_for(server: RunningServer, tenant: Tenant) -> SendPulseClient:
    return SendPulseClient(tenant.client_id, tenant.client_secret, api_url=server.url)


def assert_sent(answer: dict[str, object]) -> str:
    assert answer["result"] is True, answer
    assert isinstance(answer["id"], str) and EMAIL_ID.match(answer["id"]), answer
    return answer["id"]


def test_health_authenticates_with_the_client_credentials(server: RunningServer) -> None:
    tenant = server.tenant()

    assert client_for(server, tenant).health() == {
        "ok": True,
        "status": "authenticated",
        "client_id": tenant.client_id,
    }


def test_health_with_wrong_secret_reports_the_invalid_client_answer(
    server: RunningServer,
) -> None:
    tenant = server.tenant()
    client = SendPulseClient(tenant.client_id, "wrong-secret", api_url=server.url)

    health = client.health()

    assert health["ok"] is False
    assert health["exception"] == "SendPulseRequestError"
    assert "(401)" in str(health["error"]) and "invalid_client" in str(health["error"])


def test_send_html_with_names_reply_to_string_and_attachments_is_stored_as_sent(
    server: RunningServer,
) -> None:
    tenant = server.tenant()
    client = client_for(server, tenant)

    message_id = assert_sent(
        client.send_email(
            to_email="anna@example.com",
            to_name="Anna Müller",
            subject="Ваш заказ №42 📦",
            body="<p>Заказ <b>отправлен</b></p>",
            from_email=tenant.sender,
            from_name="Магазин",
            type="html",
            reply_to="support@example.com",
            attachments={
                "invoice.txt": base64.b64encode("Счёт: 42 €".encode()).decode(),
                "pixel.png": base64.b64encode(PNG_1X1).decode(),
            },
        )
    )

    stored = stored_email(server, message_id)
    assert stored.recipients == {"anna@example.com": "to"}
    assert stored.ids == {"anna@example.com": message_id}
    msg = stored.message
    assert msg["Subject"] == "Ваш заказ №42 📦"
    assert stored.header_addresses("To") == ["anna@example.com"]
    assert msg["To"].addresses[0].display_name == "Anna Müller"
    assert msg["From"].addresses[0].display_name == "Магазин"
    assert stored.header_addresses("Reply-To") == ["support@example.com"]
    assert "<b>отправлен</b>" in (stored.html() or "")
    assert stored.attachments() == {
        "invoice.txt": "Счёт: 42 €".encode(),
        "pixel.png": PNG_1X1,
    }


def test_send_text_only_without_sender_name_stores_a_plain_text_message(
    server: RunningServer,
) -> None:
    tenant = server.tenant()
    client = client_for(server, tenant)

    message_id = assert_sent(
        client.send_email(
            to_email="bob@example.org",
            subject="Plain notice",
            body="Line one\nLine two",
            from_email=tenant.sender,
            type="text",
        )
    )

    stored = stored_email(server, message_id)
    assert stored.header_addresses("From") == [tenant.sender]
    assert stored.html() is None
    assert "Line one\nLine two" in (stored.text() or "").replace("\r\n", "\n")
    assert "Reply-To" not in stored.message


def test_bulk_send_reports_success_for_each_email(server: RunningServer) -> None:
    tenant = server.tenant()
    client = client_for(server, tenant)

    results = client.send_bulk_emails(
        [
            {"to_email": "anna@example.com", "subject": "One", "body": "<p>1</p>"},
            {"to": "bob@example.org", "subject": "Two", "text": "2", "type": "text"},
            {"to_email": "carol@example.com", "subject": "Three", "html": "<p>3</p>"},
        ],
        from_email=tenant.sender,
        from_name="Bulk",
    )

    assert [(r["recipient"], r["status"]) for r in results] == [
        ("anna@example.com", "success"),
        ("bob@example.org", "success"),
        ("carol@example.com", "success"),
    ]
    for result in results:
        message_id = assert_sent(result["response"])
        assert stored_email(server, message_id).recipients == {result["recipient"]: "to"}


def test_send_with_a_rejected_token_refreshes_once_and_succeeds(server: RunningServer) -> None:
    tenant = server.tenant()
    client = client_for(server, tenant)
    client._access_token = "stale-token-from-another-server"
    client._token_expires_at = float("inf")

    message_id = assert_sent(
        client.send_email(
            to_email="anna@example.com",
            subject="After refresh",
            body="<p>ok</p>",
            from_email=tenant.sender,
        )
    )

    assert client._access_token != "stale-token-from-another-server"
    assert stored_email(server, message_id).subject == "After refresh"


def test_send_from_an_unknown_sender_raises_with_the_server_error(server: RunningServer) -> None:
    tenant = server.tenant()
    client = client_for(server, tenant)

    with pytest.raises(SendPulseRequestError) as raised:
        client.send_email(
            to_email="anna@example.com",
            subject="Nope",
            body="<p>x</p>",
            from_email="stranger@example.com",
        )

    assert "(422)" in str(raised.value)
    assert "Sender is not valid" in str(raised.value)
