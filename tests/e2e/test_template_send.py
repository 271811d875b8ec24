"""A template send over real sockets: POST /template, then a send naming it with variables →
store → MX lookup on a loopback DNS server → SMTP to an aiosmtpd sink. The message the sink
receives carries the filled template: variables HTML-escaped in the HTML part, unescaped in the
subject, and a text part made from the filled HTML (auto_plain_text)."""

from __future__ import annotations

import base64
import email
import email.policy
from email.message import EmailMessage
from pathlib import Path

import pytest

from tests.api.test_send import mail, send
from tests.e2e.test_send_and_deliver import wait_for_records
from tests.support.databases import ENGINES, fresh_database_url
from tests.support.dnsserver import DnsServer
from tests.support.server import running_server
from tests.support.smtpsink import SmtpSink, free_port

TEMPLATE = (
    "<html><body><h1>Hello {{ name }}</h1>"
    "{% if items %}<ul>{% for item in items %}<li>{{ item }}</li>{% endfor %}</ul>{% endif %}"
    "<p>{{ note }}</p><p>{{ not_given }}</p></body></html>"
)


@pytest.mark.parametrize("engine", ENGINES)
def test_a_template_send_reaches_the_receiver_filled_and_escaped(
    engine: str, tmp_path: Path
) -> None:
    port = free_port("127.0.0.2")
    with (
        DnsServer() as dns,
        SmtpSink("127.0.0.2", port) as sink,
        fresh_database_url(engine, tmp_path) as url,
    ):
        dns.set("example.org", ("MX", (10, "mx.example.org")))
        dns.set("mx.example.org", ("A", "127.0.0.2"))
        with running_server(
            url,
            tmp_path / "var",
            deliver=True,
            dns_nameservers=["127.0.0.1"],
            dns_port=dns.port,
            mx_port=port,
            allow_private_mx=True,
        ) as server:
            tenant = server.tenant()
            with server.client() as http:
                created = http.post(
                    "/template",
                    headers=tenant.auth,
                    json={"name": "Order", "body": base64.b64encode(TEMPLATE.encode()).decode()},
                ).json()
            variables = {
                "name": "Rita <script>alert('x')</script>",
                "items": ["Tea & Cake", "<b>Scones</b>"],
                "note": "\"quoted\" & 'single'",
            }
            payload = mail(
                tenant,
                html=None,
                text=None,
                subject="Your order, {{ name }}",
                auto_plain_text=True,
                to=[{"email": "rita@example.org"}],
                template={"id": created["real_id"], "variables": variables},
            )
            answer = send(server, tenant, {"email": payload})
            assert answer.status_code == 200, answer.text
            records = wait_for_records(server, tenant, [answer.json()["id"]])

    assert [r["status"] for r in records] == ["delivered"]
    assert len(sink.messages) == 1
    received = email.message_from_bytes(sink.messages[0].data, policy=email.policy.default)
    assert isinstance(received, EmailMessage)
    assert received["Subject"] == "Your order, Rita <script>alert('x')</script>"
    html_part = received.get_body(preferencelist=("html",))
    assert html_part is not None
    html = str(html_part.get_content())
    assert "<h1>Hello Rita &lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;</h1>" in html
    assert "<li>Tea &amp; Cake</li><li>&lt;b&gt;Scones&lt;/b&gt;</li>" in html
    assert "<p>&#34;quoted&#34; &amp; &#39;single&#39;</p><p></p>" in html
    assert "<script>" not in html
    text_part = received.get_body(preferencelist=("plain",))
    assert text_part is not None
    text = str(text_part.get_content())
    assert "Hello Rita <script>alert('x')</script>" in text
    assert "Tea & Cake" in text and "<b>Scones</b>" in text
