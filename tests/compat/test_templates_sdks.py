"""The template calls of the real SendPulse SDKs against a real mailpulse server.

Which SDK calls what (compat §a.0, read from their sources in the venv and node_modules):

- aiosendpulse 0.0.6: ``email.template.create`` (POST /template, needs ``real_id`` as an int),
  ``.edit`` (POST /template/edit/{id}, body only), ``.get`` (GET /template/{id} with a ``{}``
  body, validated strictly: ``is_structured``, an object ``category_info``, a URL ``preview``,
  an ISO ``lang``, a datetime ``created``), and ``smtp.send_email(template=...)``.
- pysendpulse 0.1.8: only ``smtp_send_mail_with_template`` (``html`` and ``text`` null inside the
  JSON-string email); it has no template management calls.
- Node sendpulse-api 1.1.7: ``listEmailTemplates`` and ``getEmailTemplate`` (no create or edit),
  and ``smtpSendMail`` with a template (PHP-serialized ``email``), driven by ``node/templates.js``.
- sendpulse-sdk 1.0.0 has no template calls at all (its ``send_email`` sends html or text).
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from aiosendpulse import AioSendPulseClient
from aiosendpulse.types import CreateTemplateResult, Result, Template
from pysendpulse.pysendpulse import PySendPulse

from tests.compat.stored import EMAIL_ID, stored_email
from tests.compat.test_aiosendpulse import MemoryTokenStorage
from tests.support.server import RunningServer, Tenant

NODE_DIR = Path(__file__).parent / "node"
HTML = "<h1>Hello {{ name }}</h1><p>Your code: <b>{{ code }}</b></p>"


def aio_client(server: RunningServer, tenant: Tenant) -> AioSendPulseClient:
    client = AioSendPulseClient(
        tenant.client_id, tenant.client_secret, token_storage=MemoryTokenStorage()
    )
    client.base_url = httpx.URL(server.url)
    return client


def create_template(server: RunningServer, tenant: Tenant, html: str = HTML) -> int:
    with server.client() as http:
        answer = http.post(
            "/template",
            headers=tenant.auth,
            json={"body": base64.b64encode(html.encode()).decode(), "lang": "en"},
        )
    assert answer.status_code == 200, answer.text
    return int(answer.json()["real_id"])


# -- aiosendpulse -------------------------------------------------------------------------------


async def test_aiosendpulse_creates_edits_and_reads_a_template(server: RunningServer) -> None:
    tenant = server.tenant()
    async with aio_client(server, tenant) as client:
        created = await client.email.template.create(html=HTML, lang="en", name="Welcome")
        assert isinstance(created, CreateTemplateResult)
        assert created.result is True and isinstance(created.real_id, int)

        edited = await client.email.template.edit(created.real_id, html=HTML + "<p>v2</p>")
        assert isinstance(edited, Result) and edited.result is True

        template = await client.email.template.get(created.real_id)

    assert isinstance(template, Template)  # validated by the SDK's strict model
    assert template.id == str(created.real_id) and template.real_id == created.real_id
    assert template.name == "Welcome" and template.lang == "en"
    assert template.is_structured is False
    assert template.category_info.code == "my"
    assert isinstance(template.created, datetime)
    assert str(template.preview).startswith(server.url)
    body = template.model_extra["body"] if template.model_extra else None
    assert body is not None and base64.b64decode(body).decode() == HTML + "<p>v2</p>"


async def test_aiosendpulse_sends_with_a_template_and_the_values_are_escaped(
    server: RunningServer,
) -> None:
    tenant = server.tenant()
    async with aio_client(server, tenant) as client:
        created = await client.email.template.create(html=HTML, lang="en")
        result = await client.smtp.send_email(
            subject="Code for {{ name }}",
            sender={"name": "S", "email": tenant.sender},
            to=[{"name": "Anna", "email": "anna@example.com"}],
            template={"id": created.real_id, "variables": {"name": "Anna <A>", "code": "42"}},
        )

    assert result.result is True and isinstance(result.id, str) and EMAIL_ID.match(result.id)
    stored = stored_email(server, result.id)
    assert stored.message["Subject"] == "Code for Anna <A>"
    assert "<h1>Hello Anna &lt;A&gt;</h1><p>Your code: <b>42</b></p>" in (stored.html() or "")


async def test_aiosendpulse_unknown_template_raises_with_the_server_answer(
    server: RunningServer,
) -> None:
    tenant = server.tenant()
    async with aio_client(server, tenant) as client:
        with pytest.raises(httpx.HTTPStatusError) as raised:
            await client.email.template.get(999_999)
    assert raised.value.response.status_code == 404
    assert raised.value.response.json() == {"error_code": 290, "message": "Template not found"}


# -- pysendpulse --------------------------------------------------------------------------------


def test_pysendpulse_sends_with_a_template_by_string_id(
    server: RunningServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tenant = server.tenant()
    real_id = create_template(server, tenant)
    monkeypatch.setattr(PySendPulse, "_PySendPulse__api_url", server.url)
    client = PySendPulse(
        tenant.client_id, tenant.client_secret, storage_type="FILE", token_file_path=f"{tmp_path}/"
    )

    answer = client.smtp_send_mail_with_template(
        {
            "subject": "Hi {{ name }}",
            "template": {"id": str(real_id), "variables": {"name": "Bob & Co", "code": "7"}},
            "from": {"name": "S", "email": tenant.sender},
            "to": [{"name": "Bob", "email": "bob@example.org"}],
        }
    )

    assert answer["result"] is True and EMAIL_ID.match(answer["id"]), answer
    stored = stored_email(server, answer["id"])
    assert stored.message["Subject"] == "Hi Bob & Co"
    assert "Hello Bob &amp; Co" in (stored.html() or "")


# -- the Node SDK -------------------------------------------------------------------------------

node_present = pytest.mark.skipif(
    shutil.which("node") is None or not (NODE_DIR / "node_modules" / "sendpulse-api").is_dir(),
    reason="node or tests/compat/node/node_modules is missing: run `make test` (npm install)",
)


def drive_templates(
    server: RunningServer, tmp_path: Path, tenant: Tenant, template_id: int, email: Any = None
) -> dict[str, Any]:
    port = str(urlsplit(server.url).port)
    args = ["node", "templates.js", port, str(tmp_path / "tokens")]
    args += [tenant.client_id, tenant.client_secret, str(template_id)]
    if email is not None:
        args.append(json.dumps(email, ensure_ascii=False))
    env = {k: v for k, v in os.environ.items() if k != "DRIVE_GUARD_MS"}
    done = subprocess.run(
        args, cwd=NODE_DIR, capture_output=True, text=True, timeout=60, env=env, check=False
    )
    assert done.returncode == 0, (done.returncode, done.stdout, done.stderr)
    result = json.loads(done.stdout.strip())
    assert isinstance(result, dict)
    return result


@node_present
def test_node_lists_and_gets_templates_and_sends_with_one(
    server: RunningServer, tmp_path: Path
) -> None:
    tenant = server.tenant()
    real_id = create_template(server, tenant)
    email = {
        "subject": "Кодът за {{ name }}",
        "template": {"id": real_id, "variables": {"name": "Яна", "code": "<9>"}},
        "from": {"name": "Node", "email": tenant.sender},
        "to": [{"name": "Yana", "email": "yana@example.com"}],
    }

    result = drive_templates(server, tmp_path, tenant, real_id, email)

    assert [t["real_id"] for t in result["list"]] == [real_id]
    assert result["get"]["id"] == str(real_id)
    assert base64.b64decode(result["get"]["body"]).decode() == HTML
    assert [(r["method"], r["path"].split("?")[0], r["status"]) for r in result["requests"]][
        1:3
    ] == [
        ("GET", "/templates", 200),
        ("GET", f"/template/{real_id}", 200),
    ]
    send = result["send"]
    assert send["result"] is True and EMAIL_ID.match(send["id"]), send
    stored = stored_email(server, send["id"])
    assert stored.message["Subject"] == "Кодът за Яна"
    assert "Hello Яна</h1><p>Your code: <b>&lt;9&gt;</b>" in (stored.html() or "")
