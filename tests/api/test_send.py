"""POST /smtp/emails over real HTTP: what is accepted, what is stored, what is refused."""

from __future__ import annotations

import base64
import email
import email.policy
import json
import re
from typing import Any

import phpserialize
import pytest
import sqlalchemy as sa

from mailpulse.store.tables import deliveries, messages
from tests.support.server import RunningServer, Tenant

ID_RE = re.compile(r"^[0-9a-z]{6}-[0-9a-z]{6}-[0-9a-z]{2}$")


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def mail(tenant: Tenant, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "subject": "Hello",
        "html": b64("<p>Hello <b>world</b></p>"),
        "text": "Hello world",
        "from": {"name": "Acme", "email": tenant.sender},
        "to": [{"name": "Rita", "email": "rita@example.org"}],
    }
    body.update(extra)
    return {k: v for k, v in body.items() if v is not None}


def send(server: RunningServer, tenant: Tenant, payload: Any, **kwargs: Any) -> Any:
    with server.client() as http:
        return http.post("/smtp/emails", headers=tenant.auth, **kwargs, json=payload)


def stored(server: RunningServer, public_id: str) -> tuple[email.message.EmailMessage, list[Any]]:
    def query(conn: sa.Connection) -> tuple[bytes, list[Any]]:
        message_id = conn.execute(
            sa.select(deliveries.c.message_id).where(deliveries.c.public_id == public_id)
        ).scalar_one()
        raw = conn.execute(
            sa.select(messages.c.raw).where(messages.c.id == message_id)
        ).scalar_one()
        rows = conn.execute(
            sa.select(deliveries)
            .where(deliveries.c.message_id == message_id)
            .order_by(deliveries.c.id)
        ).all()
        return raw, rows

    raw, rows = server.runtime.db.read_sync(query)
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(parsed, email.message.EmailMessage)
    return parsed, rows


def test_send_answers_result_true_and_an_id_of_sendpulse_form(server: RunningServer) -> None:
    tenant = server.tenant()
    answer = send(server, tenant, {"email": mail(tenant)})
    assert answer.status_code == 200
    body = answer.json()
    assert body["result"] is True
    assert ID_RE.match(body["id"])


def test_one_queued_delivery_per_recipient_and_the_answer_names_the_first_to(
    server: RunningServer,
) -> None:
    tenant = server.tenant()
    payload = mail(
        tenant,
        to=[{"email": "a@example.org"}, {"email": "b@example.org"}],
        cc=[{"email": "c@example.org"}],
        bcc=[{"email": "d@example.org"}],
    )
    answer = send(server, tenant, {"email": payload})
    _msg, rows = stored(server, answer.json()["id"])
    assert [(r.recipient, r.kind, r.status) for r in rows] == [
        ("a@example.org", "to", "queued"),
        ("b@example.org", "to", "queued"),
        ("c@example.org", "cc", "queued"),
        ("d@example.org", "bcc", "queued"),
    ]
    assert rows[0].public_id == answer.json()["id"]
    assert len({r.public_id for r in rows}) == 4
    assert all(ID_RE.match(r.public_id) for r in rows)


def test_stored_message_is_correct_mime_with_cc_visible_and_bcc_hidden(
    server: RunningServer,
) -> None:
    tenant = server.tenant()
    payload = mail(
        tenant,
        cc=[{"name": "Carl", "email": "carl@example.org"}],
        bcc=[{"email": "hidden@example.org"}],
        reply_to={"email": "replies@example.com", "name": "Replies"},
    )
    answer = send(server, tenant, {"email": payload})
    msg, _rows = stored(server, answer.json()["id"])
    assert msg.get_content_type() == "multipart/alternative"
    assert msg["MIME-Version"] == "1.0"
    assert msg["Message-ID"] and msg["Date"]
    assert "carl@example.org" in str(msg["Cc"])
    assert msg["Bcc"] is None
    assert b"hidden@example.org" not in msg.as_bytes()
    assert "replies@example.com" in str(msg["Reply-To"])
    assert msg["From"].addresses[0].addr_spec == tenant.sender
    text, html = (part.get_content() for part in msg.iter_parts())
    assert text.strip() == "Hello world"
    assert "<b>world</b>" in html


def test_cyrillic_and_emoji_subject_and_names_round_trip_exactly(server: RunningServer) -> None:
    tenant = server.tenant()
    subject = "Привет, мир 👋🏽 — заказ №42 🎉"
    payload = mail(tenant, subject=subject, to=[{"name": "Рита Ш.", "email": "rita@example.org"}])
    answer = send(server, tenant, {"email": payload})
    msg, _rows = stored(server, answer.json()["id"])
    assert msg["Subject"] == subject
    assert msg["To"].addresses[0].display_name == "Рита Ш."
    with server.client() as http:
        record = http.get(f"/smtp/emails/{answer.json()['id']}", headers=tenant.auth).json()
    assert record["subject"] == subject


def test_attachments_and_binary_attachments_make_multipart_mixed(server: RunningServer) -> None:
    tenant = server.tenant()
    blob = bytes(range(256))
    payload = mail(
        tenant,
        attachments={"notes.txt": "plain text content"},
        attachments_binary={"blob.bin": base64.b64encode(blob).decode()},
    )
    answer = send(server, tenant, {"email": payload})
    msg, _rows = stored(server, answer.json()["id"])
    assert msg.get_content_type() == "multipart/mixed"
    parts = list(msg.iter_parts())
    assert parts[0].get_content_type() == "multipart/alternative"
    files = {p.get_filename(): p.get_content() for p in msg.iter_attachments()}
    assert files["notes.txt"].strip() == "plain text content"
    assert files["blob.bin"] == blob


def test_auto_plain_text_generates_a_text_part_from_html(server: RunningServer) -> None:
    tenant = server.tenant()
    payload = mail(
        tenant,
        text=None,
        html=b64('<h1>Order shipped</h1><p>Track it <a href="https://t.example/1">here</a>.</p>'),
        auto_plain_text=True,
    )
    answer = send(server, tenant, {"email": payload})
    msg, _rows = stored(server, answer.json()["id"])
    assert msg.get_content_type() == "multipart/alternative"
    text = next(msg.iter_parts()).get_content()
    assert "Order shipped" in text and "https://t.example/1" in text
    assert "<h1>" not in text


def test_html_only_without_auto_plain_text_is_a_single_html_part(server: RunningServer) -> None:
    tenant = server.tenant()
    answer = send(server, tenant, {"email": mail(tenant, text=None)})
    msg, _rows = stored(server, answer.json()["id"])
    assert msg.get_content_type() == "text/html"


def test_header_injection_through_subject_and_names_is_neutralised(server: RunningServer) -> None:
    tenant = server.tenant()
    payload = mail(
        tenant,
        subject="Hi\r\nBcc: evil@attacker.example",
        to=[{"name": "Rita\nX-Injected: yes", "email": "rita@example.org"}],
    )
    answer = send(server, tenant, {"email": payload})
    msg, rows = stored(server, answer.json()["id"])
    assert msg.get_all("Bcc") is None
    assert msg.get_all("X-Injected") is None
    assert len(msg.get_all("Subject")) == 1
    assert [r.recipient for r in rows] == ["rita@example.org"]


def test_email_as_json_string_and_php_serialize_string_are_accepted(
    server: RunningServer,
) -> None:
    tenant = server.tenant()
    as_json = json.dumps(mail(tenant))
    as_php = phpserialize.dumps(mail(tenant)).decode("utf-8")
    for encoded in (as_json, as_php):
        answer = send(server, tenant, {"email": encoded})
        assert answer.status_code == 200, answer.text
        assert answer.json()["result"] is True


def test_form_encoded_send_as_old_php_client_does(server: RunningServer) -> None:
    tenant = server.tenant()
    encoded = phpserialize.dumps(mail(tenant)).decode("utf-8")
    with server.client() as http:
        answer = http.post("/smtp/emails", headers=tenant.auth, data={"email": encoded})
    assert answer.status_code == 200, answer.text


def test_template_send_naming_no_stored_template_is_template_not_found(
    server: RunningServer,
) -> None:
    tenant = server.tenant()
    payload = mail(
        tenant, html=None, text=None, template={"id": 123456, "variables": {"name": "George"}}
    )
    answer = send(server, tenant, {"email": payload})
    assert answer.status_code == 422
    assert answer.json() == {"error_code": 31, "message": "Template not found"}


def test_send_from_an_account_without_smtp_is_refused(server: RunningServer) -> None:
    tenant = server.tenant(activated=False)
    answer = send(server, tenant, {"email": mail(tenant)})
    assert answer.status_code == 422
    assert answer.json() == {
        "error_code": 400,
        "message": "No such SMTP user, you need to create SMTP account first",
    }


def test_sender_not_allowed_for_the_account_is_refused(server: RunningServer) -> None:
    tenant = server.tenant()
    payload = mail(tenant, **{"from": {"email": "someone-else@example.com"}})
    answer = send(server, tenant, {"email": payload})
    assert answer.status_code == 422
    assert answer.json() == {"error_code": 422, "message": "Sender is not valid"}


def test_another_tenants_sender_is_not_allowed(server: RunningServer) -> None:
    owner = server.tenant("owner", sender="owner@brand.example")
    intruder = server.tenant("intruder", sender="intruder@other.example")
    payload = mail(intruder, **{"from": {"email": owner.sender}})
    answer = send(server, intruder, {"email": payload})
    assert answer.status_code == 422
    assert answer.json()["message"] == "Sender is not valid"


VALIDATION_CASES: list[tuple[str, Any, int, int, str]] = [
    ("no email", None, 422, 422, "Argument email missing"),
    ("email garbage string", "not serialized", 422, 999, "Badly formed incoming data"),
    ("email a list", [1, 2], 422, 999, "Badly formed incoming data"),
    ("no from", {"from": None}, 422, 10, "Argument from.email missing"),
    ("from without email", {"from": {"name": "x"}}, 422, 10, "Argument from.email missing"),
    ("from bad email", {"from": {"email": "nope"}}, 422, 10, "Argument from.email is invalid"),
    ("from a list", {"from": [1]}, 422, 422, "Argument from is invalid"),
    ("no to", {"to": None}, 422, 11, "Argument email.to is invalid"),
    ("to bad email", {"to": [{"email": "bad@"}]}, 422, 11, "Argument email.to is invalid"),
    ("to a number", {"to": 5}, 422, 11, "Argument email.to is invalid"),
    # no SMTPUTF8 on the way out: a non-ASCII local part cannot be delivered
    (
        "to utf8 local part",
        {"to": [{"email": "ünï@example.org"}]},
        422,
        11,
        "Argument email.to is invalid",
    ),
    ("cc bad", {"cc": [{"email": "x"}]}, 422, 422, "Recipient email is invalid"),
    ("no subject", {"subject": None}, 422, 12, "Argument subject missing"),
    ("blank subject", {"subject": "   "}, 422, 12, "Argument subject missing"),
    ("no body", {"html": None, "text": None}, 422, 13, "Missed email body"),
    (
        "binary attachment not base64",
        {"attachments_binary": {"a.bin": "***not base64***"}},
        422,
        422,
        "Argument attachments_binary is invalid",
    ),
    (
        "binary attachments a list",
        {"attachments_binary": ["x"]},
        422,
        422,
        "Argument attachments_binary is invalid",
    ),
    (
        "template without id",
        {"template": {"variables": {"a": 1}}, "html": None, "text": None},
        422,
        10,
        "Argument template.id missing",
    ),
    ("template not an object", {"template": 5}, 422, 422, "Argument template is invalid"),
    (
        "variables a string",
        {"template": {"id": 1, "variables": "x"}},
        422,
        731,
        "Variables list passed in wrong format",
    ),
]


@pytest.mark.parametrize(
    ("change", "status", "code", "message"),
    [case[1:] for case in VALIDATION_CASES],
    ids=[case[0] for case in VALIDATION_CASES],
)
def test_validation_errors_use_sendpulse_codes(
    server: RunningServer, change: Any, status: int, code: int, message: str
) -> None:
    tenant = server.tenant()
    if change is None:
        payload: Any = {}
    elif isinstance(change, dict):
        payload = {"email": mail(tenant, **change)}
    else:
        payload = {"email": change}
    answer = send(server, tenant, payload)
    assert answer.status_code == status, answer.text
    assert answer.json() == {"error_code": code, "message": message}
    with server.client() as http:
        assert http.get("/smtp/emails/total", headers=tenant.auth).json() == {"total": 0}


def test_too_many_recipients_is_550(server: RunningServer) -> None:
    tenant = server.tenant()
    to = [{"email": f"r{i}@example.org"} for i in range(60)]
    bcc = [{"email": f"b{i}@example.org"} for i in range(41)]
    answer = send(server, tenant, {"email": mail(tenant, to=to, bcc=bcc)})
    assert answer.status_code == 422
    assert answer.json() == {"error_code": 550, "message": "5.5.3 Too many recipients"}


def test_message_over_the_size_limit_is_refused(server: RunningServer) -> None:
    tenant = server.tenant()
    big = base64.b64encode(b"x" * (26 * 1024 * 1024)).decode()
    answer = send(server, tenant, {"email": mail(tenant, attachments_binary={"big.bin": big})})
    assert answer.status_code == 422
    assert answer.json() == {"error_code": 422, "message": "Message size limit exceeded"}


def test_message_limit_is_a_setting(tmp_path: Any) -> None:
    from tests.support.server import running_server

    with running_server(
        f"sqlite:///{tmp_path / 'l.db'}", tmp_path, max_message_bytes=2000
    ) as small:
        tenant = small.tenant()
        blob = base64.b64encode(b"y" * 3000).decode()
        answer = send(small, tenant, {"email": mail(tenant, attachments_binary={"a.bin": blob})})
        ok = send(small, tenant, {"email": mail(tenant)})
    assert answer.json() == {"error_code": 422, "message": "Message size limit exceeded"}
    assert ok.status_code == 200


def test_html_with_ruby_style_newlines_in_base64_is_decoded(server: RunningServer) -> None:
    tenant = server.tenant()
    html = "<p>" + "Lorem ipsum dolor sit amet. " * 20 + "</p>"
    encoded = base64.encodebytes(html.encode()).decode()  # a newline every 76 characters
    answer = send(server, tenant, {"email": mail(tenant, html=encoded, text=None)})
    msg, _rows = stored(server, answer.json()["id"])
    assert msg.get_content().strip() == html
