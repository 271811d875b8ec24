"""The official Node SDK, npm ``sendpulse-api@1.1.7``, against a real mailpulse server.

``node/drive.js`` patches ``https.request`` to plain http on the server's loopback port (compat
Appendix Z), runs init → smtpSendMail → smtpListEmails → smtpGetEmailInfoById (plus the raw
total and info calls) and prints one JSON object. The SDK's wire quirks: the ``email`` object is
PHP-``serialize()``d with UTF-8 byte lengths (§h.2), list filters are a JSON body on a GET
(§h.6), and it stops on a token 401 only when ``error`` is ``invalid_client`` (§h.12).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.compat.stored import EMAIL_ID, PNG_1X1, assert_log_record, stored_email
from tests.support.server import RunningServer, Tenant

NODE_DIR = Path(__file__).parent / "node"
TIMEOUT = 60  # seconds; the driver's own guard stops it after 20

pytestmark = [
    pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed"),
    pytest.mark.skipif(
        not (NODE_DIR / "node_modules" / "sendpulse-api").is_dir(),
        reason="tests/compat/node/node_modules is missing: run `make test` (it runs npm install)",
    ),
]

# The driver's own inputs, in case the environment running the tests happens to set them.
DRIVER_ENV = {
    "MAILPULSE_PORT",
    "TOKEN_STORAGE",
    "SENDPULSE_ID",
    "SENDPULSE_SECRET",
    "MAILPULSE_EMAIL",
    "MAILPULSE_LIST_RECIPIENT",
    "DRIVE_GUARD_MS",
}

SUBJECT = 'Отчёт из Node 🚀 "в кавычках"'


def node_email(sender: str) -> dict[str, Any]:
    return {
        "html": "<h1>Привет</h1><p>from Node 👋</p>",
        "text": "Привет from Node",
        "subject": SUBJECT,
        "from": {"name": "Node Отправитель", "email": sender},
        "to": [{"name": "Anna", "email": "anna@example.com"}, {"email": "bob@example.org"}],
        "cc": [{"name": "Carol", "email": "carol@example.com"}],
        "bcc": [{"name": "Dave", "email": "dave@example.net"}],
        "attachments": {"notes.txt": "строка 1\nline 2", "заметки 📎.txt": "ok"},
        "attachments_binary": {"pixel.png": base64.b64encode(PNG_1X1).decode()},
    }


def drive(
    server: RunningServer,
    storage: Path,
    tenant: Tenant,
    *,
    secret: str | None = None,
    email: dict[str, Any] | None = None,
    list_recipient: str | None = None,
) -> dict[str, Any]:
    """Run the driver for ``tenant`` (with ``secret`` instead of its own, if given)."""
    port = str(urlsplit(server.url).port)
    secret = tenant.client_secret if secret is None else secret
    args = ["node", "drive.js", port, str(storage), tenant.client_id, secret]
    if email is not None:
        args.append(json.dumps(email, ensure_ascii=False))
    env = {k: v for k, v in os.environ.items() if k not in DRIVER_ENV}
    if list_recipient:
        env["MAILPULSE_LIST_RECIPIENT"] = list_recipient
    done = subprocess.run(
        args, cwd=NODE_DIR, capture_output=True, text=True, timeout=TIMEOUT, env=env, check=False
    )
    assert done.returncode == 0, (done.returncode, done.stdout, done.stderr)
    lines = done.stdout.strip().splitlines()
    assert len(lines) == 1, done.stdout
    result = json.loads(lines[0])
    assert isinstance(result, dict)
    return result


def steps(result: dict[str, Any]) -> list[tuple[str, str, int]]:
    return [(r["method"], r["path"], r["status"]) for r in result["requests"]]


def token_file(storage: Path, tenant: Tenant) -> Path:
    return storage / hashlib.md5(f"{tenant.client_id}::{tenant.client_secret}".encode()).hexdigest()


def test_send_list_and_info_return_what_the_sdk_expects(
    server: RunningServer, tmp_path: Path
) -> None:
    tenant = server.tenant()
    storage = tmp_path / "node-tokens"

    result = drive(server, storage, tenant, email=node_email(tenant.sender))

    assert "token" in result["init"]
    assert token_file(storage, tenant).read_text() == result["init"]["token"]

    send = result["send"]
    assert send["result"] is True and EMAIL_ID.match(send["id"]), send
    message_id = send["id"]

    listed = result["list"]
    assert isinstance(listed, list) and listed, listed
    for record in listed:
        assert_log_record(record)
    assert [(r["id"], r["recipient"]) for r in listed] == [(message_id, "anna@example.com")]

    info = result["info"]
    assert_log_record(info)
    assert (info["id"], info["recipient"], info["subject"]) == (
        message_id,
        "anna@example.com",
        SUBJECT,
    )
    assert info["sender"] == tenant.sender

    assert result["total"] == {"total": 4}  # one record per recipient: 2 To, 1 Cc, 1 Bcc
    assert [r["id"] for r in result["info_many"]] == [message_id]

    assert steps(result) == [
        ("POST", "/oauth/access_token", 200),
        ("POST", "/smtp/emails", 200),
        ("GET", "/smtp/emails", 200),
        ("GET", f"/smtp/emails/{message_id}", 200),
        ("GET", "/smtp/emails/total", 200),
        ("POST", "/smtp/emails/info", 200),
    ]


def test_php_serialized_send_is_stored_with_cc_without_bcc_and_its_attachments(
    server: RunningServer, tmp_path: Path
) -> None:
    tenant = server.tenant()

    result = drive(server, tmp_path / "t", tenant, email=node_email(tenant.sender))

    stored = stored_email(server, result["send"]["id"])
    assert stored.ids["anna@example.com"] == result["send"]["id"]
    assert stored.recipients == {
        "anna@example.com": "to",
        "bob@example.org": "to",
        "carol@example.com": "cc",
        "dave@example.net": "bcc",
    }
    msg = stored.message
    assert msg["Subject"] == SUBJECT
    assert msg["From"].addresses[0].display_name == "Node Отправитель"
    assert stored.header_addresses("From") == [tenant.sender]
    assert stored.header_addresses("To") == ["anna@example.com", "bob@example.org"]
    assert stored.header_addresses("Cc") == ["carol@example.com"]
    assert "Bcc" not in msg
    assert b"dave@example.net" not in stored.raw
    assert "<p>from Node 👋</p>" in (stored.html() or "")
    assert "Привет from Node" in (stored.text() or "")
    assert stored.attachments() == {
        "notes.txt": "строка 1\nline 2".encode(),
        "заметки 📎.txt": b"ok",
        "pixel.png": PNG_1X1,
    }


def test_list_with_a_cc_recipient_filter_returns_only_that_recipient(
    server: RunningServer, tmp_path: Path
) -> None:
    tenant = server.tenant()

    result = drive(
        server,
        tmp_path / "t",
        tenant,
        email=node_email(tenant.sender),
        list_recipient="carol@example.com",
    )

    carol_id = stored_email(server, result["send"]["id"]).ids["carol@example.com"]
    assert [(r["id"], r["recipient"], r["subject"]) for r in result["list"]] == [
        (carol_id, "carol@example.com", SUBJECT)
    ]


def test_cached_token_from_an_earlier_run_is_reused_without_a_token_request(
    server: RunningServer, tmp_path: Path
) -> None:
    tenant = server.tenant()
    storage = tmp_path / "t"
    storage.mkdir()
    token_file(storage, tenant).write_text(tenant.token)

    result = drive(server, storage, tenant, email=node_email(tenant.sender))

    assert result["init"] == {"token": tenant.token}
    assert result["send"]["result"] is True
    assert ("POST", "/oauth/access_token", 200) not in steps(result)


def test_rejected_cached_token_gets_401_then_a_new_token_and_the_send_succeeds(
    server: RunningServer, tmp_path: Path
) -> None:
    tenant = server.tenant()
    storage = tmp_path / "t"
    storage.mkdir()
    token_file(storage, tenant).write_text("token-from-another-server")

    result = drive(server, storage, tenant, email=node_email(tenant.sender))

    assert result["send"]["result"] is True and EMAIL_ID.match(result["send"]["id"])
    assert steps(result)[:3] == [
        ("POST", "/smtp/emails", 401),
        ("POST", "/oauth/access_token", 200),
        ("POST", "/smtp/emails", 200),
    ]
    assert token_file(storage, tenant).read_text() != "token-from-another-server"


def test_wrong_credentials_stop_the_sdk_with_invalid_credentials(
    server: RunningServer, tmp_path: Path
) -> None:
    tenant = server.tenant()

    result = drive(
        server, tmp_path / "t", tenant, secret="wrong-secret", email=node_email(tenant.sender)
    )

    assert result["init"] == {"is_error": 1, "message": "Invalid credentials"}
    assert "timeout" not in result
    assert steps(result) == [("POST", "/oauth/access_token", 401)]
