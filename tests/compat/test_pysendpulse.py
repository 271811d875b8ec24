"""The official Python SDK, PyPI ``pysendpulse==0.1.8``, against a real mailpulse server.

It is pointed at the server through its name-mangled class attribute (compat Appendix Z); the
constructor already fetches a token. Its wire quirks: ``email`` is a JSON string inside the JSON
body (§h.1), list filters are URL-quoted JSON in the query string, nulls included (§h.5), and
after a restart the cached token is read as bytes and sent as ``Bearer b'...'`` (§h.11).
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import requests
from pysendpulse.pysendpulse import PySendPulse

from tests.compat.stored import EMAIL_ID, PNG_1X1, assert_log_record, stored_email
from tests.support.server import RunningServer, Tenant

Factory = Callable[[Tenant], PySendPulse]


@pytest.fixture
def token_dir(tmp_path: Path) -> str:
    return f"{tmp_path}/"  # the SDK concatenates it with the file name


@pytest.fixture
def pysendpulse(server: RunningServer, token_dir: str, monkeypatch: pytest.MonkeyPatch) -> Factory:
    """Builds SDK clients talking to ``server``; the class attribute is restored afterwards."""
    monkeypatch.setattr(PySendPulse, "_PySendPulse__api_url", server.url)

    def build(tenant: Tenant) -> PySendPulse:
        return PySendPulse(
            tenant.client_id, tenant.client_secret, storage_type="FILE", token_file_path=token_dir
        )

    return build


def token_file(token_dir: str, tenant: Tenant) -> Path:
    name = hashlib.md5(f"{tenant.client_id}::{tenant.client_secret}".encode()).hexdigest()
    return Path(token_dir + name)


def full_email(sender: str, **overrides: Any) -> dict[str, Any]:
    email: dict[str, Any] = {
        "subject": "Quarterly report",
        "html": "<h1>Report</h1><p>Numbers inside.</p>",
        "text": "Report. Numbers inside.",
        "from": {"name": "Reports", "email": sender},
        "to": [
            {"name": "Anna", "email": "anna@example.com"},
            {"name": "Bob", "email": "bob@example.org"},
        ],
        "cc": [{"name": "Carol", "email": "carol@example.com"}],
        "bcc": [{"name": "Dave", "email": "dave@example.net"}],
        "attachments": {"notes.txt": "first line\nsecond line", "отчёт 2024.txt": "итог: 42 ✓"},
        "attachments_binary": {"pixel.png": base64.b64encode(PNG_1X1).decode()},
    }
    email.update(overrides)
    return email


def send_ok(client: PySendPulse, email: dict[str, Any]) -> str:
    answer = client.smtp_send_mail(email)
    assert answer["result"] is True, answer
    assert EMAIL_ID.match(answer["id"]), answer
    return str(answer["id"])


# -- token -----------------------------------------------------------------------------------


def test_constructor_gets_a_token_and_caches_it_in_the_token_file(
    server: RunningServer, pysendpulse: Factory, token_dir: str
) -> None:
    tenant = server.tenant()
    pysendpulse(tenant)

    cached = token_file(token_dir, tenant).read_text()
    assert cached
    with server.client() as http:
        answer = http.get("/smtp/emails/total", headers={"Authorization": f"Bearer {cached}"})
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"total": 0}


def test_constructor_with_wrong_secret_raises_could_not_connect(
    server: RunningServer, pysendpulse: Factory
) -> None:
    tenant = server.tenant()
    tenant.client_secret = "not-the-secret"
    with pytest.raises(Exception, match="Could not connect to API"):
        pysendpulse(tenant)


def test_restarted_client_sending_bytes_bearer_gets_401_refreshes_and_sends(
    server: RunningServer, pysendpulse: Factory, token_dir: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    tenant = server.tenant()
    # What an earlier run left behind: the SDK writes the token in text mode ...
    with open(token_file(token_dir, tenant), "w") as f:
        f.write(tenant.token)
    # ... and the next run reads it back in binary mode, so no token request here.
    seen: list[tuple[str, str, str, int]] = []
    real_post = requests.post

    def spy_post(url: str, **kwargs: Any) -> requests.Response:
        response = real_post(url, **kwargs)
        auth = kwargs.get("headers", {}).get("Authorization", "")
        seen.append(("POST", httpx.URL(url).path, auth, response.status_code))
        return response

    monkeypatch.setattr(requests, "post", spy_post)
    client = pysendpulse(tenant)
    assert seen == []

    message_id = send_ok(client, full_email(tenant.sender))

    assert [(method, path, status) for method, path, _, status in seen] == [
        ("POST", "/smtp/emails", 401),
        ("POST", "/oauth/access_token", 200),
        ("POST", "/smtp/emails", 200),
    ]
    assert seen[0][2] == f"Bearer b'{tenant.token}'"
    fresh = token_file(token_dir, tenant).read_text()
    assert seen[2][2] == f"Bearer {fresh}"
    assert stored_email(server, message_id).ids["anna@example.com"] == message_id


# -- send ------------------------------------------------------------------------------------


def test_send_with_html_text_cc_bcc_and_attachments_is_stored_as_sent(
    server: RunningServer, pysendpulse: Factory
) -> None:
    tenant = server.tenant()
    client = pysendpulse(tenant)

    message_id = send_ok(client, full_email(tenant.sender))

    stored = stored_email(server, message_id)
    assert stored.ids["anna@example.com"] == message_id  # the first To recipient's id
    assert stored.recipients == {
        "anna@example.com": "to",
        "bob@example.org": "to",
        "carol@example.com": "cc",
        "dave@example.net": "bcc",
    }
    msg = stored.message
    assert msg["Subject"] == "Quarterly report"
    assert stored.header_addresses("From") == [tenant.sender]
    assert stored.header_addresses("To") == ["anna@example.com", "bob@example.org"]
    assert stored.header_addresses("Cc") == ["carol@example.com"]
    assert "Bcc" not in msg
    assert b"dave@example.net" not in stored.raw
    assert "<h1>Report</h1>" in (stored.html() or "")
    assert "Numbers inside." in (stored.text() or "")
    assert stored.attachments() == {
        "notes.txt": b"first line\nsecond line",
        "отчёт 2024.txt": "итог: 42 ✓".encode(),
        "pixel.png": PNG_1X1,
    }


def test_send_text_only_sends_null_html_and_stores_a_plain_text_message(
    server: RunningServer, pysendpulse: Factory
) -> None:
    tenant = server.tenant()
    client = pysendpulse(tenant)

    message_id = send_ok(
        client,
        {
            "subject": "Plain",
            "html": None,  # the SDK needs the key; it sends "html": null
            "text": "Just text, no markup.",
            "from": {"name": "Plain", "email": tenant.sender},
            "to": [{"email": "anna@example.com"}],
        },
    )

    stored = stored_email(server, message_id)
    assert stored.html() is None
    assert "Just text, no markup." in (stored.text() or "")
    assert stored.attachments() == {}


def test_send_with_unknown_sender_returns_the_sdk_error_shape(
    server: RunningServer, pysendpulse: Factory
) -> None:
    tenant = server.tenant()
    client = pysendpulse(tenant)

    answer = client.smtp_send_mail(full_email("stranger@example.com"))

    assert answer == {"data": {"is_error": True, "http_code": 422}}


# -- the email log ---------------------------------------------------------------------------


def test_list_of_emails_holds_every_recipient_and_filters_by_recipient_and_sender(
    server: RunningServer, pysendpulse: Factory
) -> None:
    tenant = server.tenant()
    client = pysendpulse(tenant)
    first = send_ok(client, full_email(tenant.sender))
    second = send_ok(
        client,
        full_email(
            tenant.sender,
            subject="Second",
            to=[{"email": "erin@example.com"}],
            cc=None,
            bcc=None,
            attachments=None,
            attachments_binary=None,
        ),
    )

    everything = client.smtp_get_list_of_emails(limit=100)
    assert isinstance(everything, list), everything
    for record in everything:
        assert_log_record(record)
    assert {r["recipient"] for r in everything} == {
        "anna@example.com",
        "bob@example.org",
        "carol@example.com",
        "dave@example.net",
        "erin@example.com",
    }
    assert {first, second} <= {r["id"] for r in everything}

    for_erin = client.smtp_get_list_of_emails(recipient="erin@example.com")
    assert [(r["id"], r["recipient"], r["subject"]) for r in for_erin] == [
        (second, "erin@example.com", "Second")
    ]

    for_carol = client.smtp_get_list_of_emails(recipient="carol@example.com")
    assert [(r["recipient"], r["subject"]) for r in for_carol] == [
        ("carol@example.com", "Quarterly report")
    ]

    by_sender = client.smtp_get_list_of_emails(limit=100, sender=tenant.sender)
    assert len(by_sender) == 5
    assert client.smtp_get_list_of_emails(sender="nobody@example.com") == []

    one = client.smtp_get_list_of_emails(limit=1)
    assert len(one) == 1


def test_list_of_emails_filters_by_date_range(server: RunningServer, pysendpulse: Factory) -> None:
    tenant = server.tenant()
    client = pysendpulse(tenant)
    message_id = send_ok(client, full_email(tenant.sender, cc=None, bcc=None))
    today = server.runtime.clock.now().strftime("%Y-%m-%d")

    within = client.smtp_get_list_of_emails(limit=10, date_from=today, date_to=today)
    assert message_id in {r["id"] for r in within}

    before = client.smtp_get_list_of_emails(limit=10, date_from="2001-01-01", date_to="2001-01-02")
    assert before == []


def test_email_info_by_id_returns_the_record_with_a_cyrillic_and_emoji_subject(
    server: RunningServer, pysendpulse: Factory
) -> None:
    tenant = server.tenant()
    client = pysendpulse(tenant)
    subject = "Привет, мир! Отчёт готов 🎉📈"

    message_id = send_ok(client, full_email(tenant.sender, subject=subject))
    record = client.smtp_get_email_info_by_id(message_id)

    assert_log_record(record)
    assert record["id"] == message_id
    assert record["subject"] == subject
    assert record["recipient"] == "anna@example.com"
    assert record["sender"] == tenant.sender
    assert stored_email(server, message_id).message["Subject"] == subject


def test_email_info_for_unknown_id_returns_the_sdk_error_shape(
    server: RunningServer, pysendpulse: Factory
) -> None:
    tenant = server.tenant()
    client = pysendpulse(tenant)

    answer = client.smtp_get_email_info_by_id("aaaaaa-bbbbbb-cc")

    assert answer == {"data": {"is_error": True, "http_code": 400}}
