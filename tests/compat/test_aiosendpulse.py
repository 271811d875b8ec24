"""PyPI ``aiosendpulse==0.0.6`` against a real mailpulse server.

Pointed at the server by setting ``client.base_url`` after construction (compat Appendix Z),
with an in-memory token storage. Its wire quirks: the misspelled ``"auto_plaint_text"`` is
always sent (``false`` unless asked), ``attachments_binary`` values are base64-encoded by the
client from ``str``, and the answer is validated as ``Result{result: bool, id}`` (§a.1, §h.9,
§h.13). It has no email-log calls.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import httpx
import pytest
from aiosendpulse import AioSendPulseClient
from aiosendpulse.storage.base import BaseTokenStorage
from aiosendpulse.types import Result

from tests.compat.stored import EMAIL_ID, stored_email
from tests.support.server import RunningServer, Tenant


class MemoryTokenStorage(BaseTokenStorage):
    def __init__(self) -> None:
        self.token: str | None = None
        self.ex: int | timedelta | None = None

    async def set(self, token: str, ex: int | timedelta) -> None:
        self.token, self.ex = token, ex

    async def get(self) -> str | None:
        return self.token


class Spy:
    """Records the JSON bodies the client puts on the wire (to check its quirks are real)."""

    def __init__(self) -> None:
        self.bodies: list[tuple[str, Any]] = []

    async def __call__(self, request: httpx.Request) -> None:
        body = request.content
        self.bodies.append((request.url.path, json.loads(body) if body else None))

    def last_email(self) -> dict[str, Any]:
        email = [body for path, body in self.bodies if path == "/smtp/emails"][-1]["email"]
        assert isinstance(email, dict)
        return email


Build = Callable[[Tenant], AioSendPulseClient]


@pytest.fixture
def storage() -> MemoryTokenStorage:
    return MemoryTokenStorage()


@pytest.fixture
def spy() -> Spy:
    return Spy()


@pytest.fixture
def aio(server: RunningServer, storage: MemoryTokenStorage, spy: Spy) -> Build:
    """Builds clients pointed at ``server``; ``async with`` authorizes and closes them."""

    def build(tenant: Tenant) -> AioSendPulseClient:
        client = AioSendPulseClient(tenant.client_id, tenant.client_secret, token_storage=storage)
        client.base_url = httpx.URL(server.url)
        client.http_client.event_hooks["request"].append(spy)
        return client

    return build


async def test_authorize_stores_the_token_with_its_lifetime(
    server: RunningServer, aio: Build, storage: MemoryTokenStorage
) -> None:
    tenant = server.tenant()

    async with aio(tenant):
        pass

    assert storage.token
    assert storage.ex == 3600
    with server.client() as http:
        answer = http.get(
            "/smtp/emails/total", headers={"Authorization": f"Bearer {storage.token}"}
        )
    assert answer.status_code == 200, answer.text


async def test_send_html_with_cc_bcc_and_binary_attachments_returns_a_result(
    server: RunningServer, aio: Build, spy: Spy
) -> None:
    tenant = server.tenant()
    async with aio(tenant) as client:
        result = await client.smtp.send_email(
            subject="Счёт за март 🧾",
            sender={"name": "Billing", "email": tenant.sender},
            to=[
                {"name": "Anna", "email": "anna@example.com"},
                {"name": "Bob", "email": "bob@example.org"},
            ],
            cc=[{"name": "Carol", "email": "carol@example.com"}],
            bcc=[{"name": "Dave", "email": "dave@example.net"}],
            html="<h1>Счёт</h1><p>Сумма: 100 €</p>",
            attachments_binary={"invoice.csv": "item;sum\nплан;100\n", "readme.txt": "hello"},
        )

    assert isinstance(result, Result)
    assert result.result is True
    assert isinstance(result.id, str) and EMAIL_ID.match(result.id)

    sent = spy.last_email()
    assert sent["auto_plaint_text"] is False
    assert sent["attachments_binary"]["readme.txt"] == "aGVsbG8="

    stored = stored_email(server, result.id)
    assert stored.ids["anna@example.com"] == result.id
    assert stored.recipients == {
        "anna@example.com": "to",
        "bob@example.org": "to",
        "carol@example.com": "cc",
        "dave@example.net": "bcc",
    }
    assert stored.message["Subject"] == "Счёт за март 🧾"
    assert stored.header_addresses("Cc") == ["carol@example.com"]
    assert "Bcc" not in stored.message
    assert "<p>Сумма: 100 €</p>" in (stored.html() or "")
    assert stored.attachments() == {
        "invoice.csv": "item;sum\nплан;100\n".encode(),
        "readme.txt": b"hello",
    }


async def test_misspelled_auto_plaint_text_false_adds_no_plain_text_part(
    server: RunningServer, aio: Build
) -> None:
    tenant = server.tenant()
    async with aio(tenant) as client:
        result = await client.smtp.send_email(
            subject="HTML only",
            sender={"name": "S", "email": tenant.sender},
            to=[{"name": "Anna", "email": "anna@example.com"}],
            html="<p>Only <i>markup</i></p>",
        )

    assert result.result is True and isinstance(result.id, str)
    stored = stored_email(server, result.id)
    assert "<i>markup</i>" in (stored.html() or "")
    assert stored.text() is None


async def test_misspelled_auto_plaint_text_true_derives_the_plain_text_part(
    server: RunningServer, aio: Build, spy: Spy
) -> None:
    tenant = server.tenant()
    async with aio(tenant) as client:
        result = await client.smtp.send_email(
            subject="HTML with derived text",
            sender={"name": "S", "email": tenant.sender},
            to=[{"name": "Anna", "email": "anna@example.com"}],
            html="<p>Derived <b>plain</b> text</p>",
            auto_plain_text=True,
        )

    sent = spy.last_email()
    assert sent["auto_plaint_text"] is True and "auto_plain_text" not in sent
    assert result.result is True and isinstance(result.id, str)
    text = stored_email(server, result.id).text()
    assert text is not None and "Derived" in text and "plain" in text and "<b>" not in text


async def test_send_with_html_and_text_keeps_both_parts(server: RunningServer, aio: Build) -> None:
    tenant = server.tenant()
    async with aio(tenant) as client:
        result = await client.smtp.send_email(
            subject="Both",
            sender={"name": "S", "email": tenant.sender},
            to=[{"name": "Anna", "email": "anna@example.com"}],
            html="<p>rich</p>",
            text="poor",
        )

    assert result.result is True and isinstance(result.id, str)
    stored = stored_email(server, result.id)
    assert "<p>rich</p>" in (stored.html() or "")
    assert "poor" in (stored.text() or "")


async def test_unknown_sender_raises_http_status_error_with_the_server_answer(
    server: RunningServer, aio: Build
) -> None:
    tenant = server.tenant()
    async with aio(tenant) as client:
        with pytest.raises(httpx.HTTPStatusError) as raised:
            await client.smtp.send_email(
                subject="Nope",
                sender={"name": "S", "email": "stranger@example.com"},
                to=[{"name": "Anna", "email": "anna@example.com"}],
                html="<p>x</p>",
            )

    assert raised.value.response.status_code == 422
    assert raised.value.response.json() == {"error_code": 422, "message": "Sender is not valid"}
