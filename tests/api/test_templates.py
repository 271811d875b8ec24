"""The template endpoints and template sends over real HTTP: what is stored, what is answered,
what is refused, and that tenants never see each other's templates."""

from __future__ import annotations

import base64
import re
from typing import Any

import httpx
import pytest

from tests.api.test_send import mail, send, stored
from tests.support.server import RunningServer, Tenant

DATE = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$")
FIELDS = {
    "id",
    "real_id",
    "lang",
    "name",
    "name_slug",
    "created",
    "full_description",
    "meta_description",
    "is_structure",
    "is_structured",
    "category",
    "category_info",
    "tags",
    "mark",
    "mark_count",
    "owner",
    "preview",
}


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def create(server: RunningServer, tenant: Tenant, html: str, **extra: Any) -> httpx.Response:
    with server.client() as http:
        return http.post("/template", headers=tenant.auth, json={"body": b64(html), **extra})


def created_id(server: RunningServer, tenant: Tenant, html: str, **extra: Any) -> int:
    answer = create(server, tenant, html, **extra)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["result"] is True and isinstance(body["real_id"], int)
    return int(body["real_id"])


def get(server: RunningServer, tenant: Tenant, path: str, **kwargs: Any) -> httpx.Response:
    with server.client() as http:
        return http.get(path, headers=tenant.auth, **kwargs)


# -- the endpoints ----------------------------------------------------------------------------


def test_a_created_template_is_read_back_with_every_field_of_compat_d(
    server: RunningServer,
) -> None:
    tenant = server.tenant()
    html = "<h1>Hello {{ name }}</h1><p>Счёт 🧾</p>"
    real_id = created_id(server, tenant, html, name="Welcome Mail", lang="en")

    answer = get(server, tenant, f"/template/{real_id}")

    assert answer.status_code == 200, answer.text
    template = answer.json()
    assert set(template) == FIELDS | {"body"}
    assert template["id"] == str(real_id) and template["real_id"] == real_id
    assert base64.b64decode(template["body"]).decode() == html
    assert template["name"] == "Welcome Mail" and template["name_slug"] == "welcome-mail"
    assert template["lang"] == "en" and template["owner"] == "me"
    assert template["is_structure"] is False and template["is_structured"] is False
    assert isinstance(template["category_info"], dict)
    assert {"id", "name", "code", "sort"} <= set(template["category_info"])
    assert DATE.match(template["created"])
    assert template["preview"].startswith(server.url + "/template/preview/")


def test_the_template_is_found_by_its_string_id_and_by_its_numeric_real_id(
    server: RunningServer,
) -> None:
    tenant = server.tenant()
    real_id = created_id(server, tenant, "<p>x</p>")
    for path in (f"/template/{real_id}", f"/template/{real_id:d}/"):
        assert get(server, tenant, path).json()["real_id"] == real_id


def test_a_template_without_a_name_gets_one_and_a_name_may_not_repeat(
    server: RunningServer,
) -> None:
    tenant = server.tenant()
    first = created_id(server, tenant, "<p>a</p>")
    second = created_id(server, tenant, "<p>b</p>")
    assert get(server, tenant, f"/template/{first}").json()["name"] == f"Template {first}"
    assert first != second

    created_id(server, tenant, "<p>c</p>", name="News")
    again = create(server, tenant, "<p>d</p>", name="News")
    assert again.status_code == 422
    assert again.json() == {"error_code": 573, "message": "Template with such name already exist"}


def test_the_list_pages_filters_by_language_and_carries_no_bodies(server: RunningServer) -> None:
    tenant = server.tenant()
    ids = [
        created_id(server, tenant, f"<p>{n}</p>", lang="de" if n % 2 else "en") for n in range(5)
    ]

    everything = get(server, tenant, "/templates").json()
    assert [t["real_id"] for t in everything] == ids
    assert all(set(t) == FIELDS for t in everything)
    page = get(server, tenant, "/templates", params={"limit": 2, "offset": 1}).json()
    assert [t["real_id"] for t in page] == ids[1:3]
    german = get(server, tenant, "/templates", params={"lang": "de"}).json()
    assert [t["real_id"] for t in german] == [ids[1], ids[3]]
    assert get(server, tenant, "/templates", params={"owner": "sendpulse"}).json() == []
    assert len(get(server, tenant, "/templates", params={"owner": "me"}).json()) == 5


def test_the_list_takes_at_most_100_per_page(server: RunningServer) -> None:
    tenant = server.tenant()
    for n in range(102):
        created_id(server, tenant, f"<p>{n}</p>")
    assert len(get(server, tenant, "/templates", params={"limit": 500}).json()) == 100
    assert len(get(server, tenant, "/templates", params={"offset": 100}).json()) == 2


def test_edit_replaces_the_body_and_language(server: RunningServer) -> None:
    tenant = server.tenant()
    real_id = created_id(server, tenant, "<p>old</p>", lang="en")
    with server.client() as http:
        answer = http.post(
            f"/template/edit/{real_id}",
            headers=tenant.auth,
            json={"body": b64("<p>new {{ x }}</p>"), "lang": "ua"},
        )
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"result": True}
    template = get(server, tenant, f"/template/{real_id}").json()
    assert base64.b64decode(template["body"]).decode() == "<p>new {{ x }}</p>"
    assert template["lang"] == "uk"  # SendPulse's "ua" as the ISO code aiosendpulse accepts


def test_delete_removes_the_template(server: RunningServer) -> None:
    tenant = server.tenant()
    real_id = created_id(server, tenant, "<p>bye</p>")
    with server.client() as http:
        assert http.delete(f"/template/{real_id}", headers=tenant.auth).json() == {"result": True}
        again = http.delete(f"/template/{real_id}", headers=tenant.auth)
    assert again.status_code == 404
    assert again.json() == {"error_code": 31, "message": "Template not found"}
    assert get(server, tenant, f"/template/{real_id}").status_code == 404


def test_tenants_never_see_each_others_templates(any_server: RunningServer) -> None:
    server = any_server  # on SQLite and on PostgreSQL
    alice = server.tenant("alice", sender="alice@example.com")
    bob = server.tenant("bob", sender="bob@example.com")
    alices = created_id(server, alice, "<p>Alice's secret</p>", name="Same name")
    created_id(server, bob, "<p>Bob's</p>", name="Same name")  # names are per account

    missing = get(server, bob, f"/template/{alices}")
    assert missing.status_code == 404
    assert missing.json() == {"error_code": 290, "message": "Template not found"}
    assert [t["real_id"] for t in get(server, bob, "/templates").json()] != [alices]
    assert alices not in [t["real_id"] for t in get(server, bob, "/templates").json()]
    with server.client() as http:
        edit = http.post(f"/template/edit/{alices}", headers=bob.auth, json={"body": b64("<p/>")})
        delete = http.delete(f"/template/{alices}", headers=bob.auth)
    assert edit.status_code == 404 and delete.status_code == 404
    sent = send(
        server,
        bob,
        {"email": mail(bob, html=None, text=None, template={"id": alices, "variables": {}})},
    )
    assert sent.json() == {"error_code": 31, "message": "Template not found"}
    assert b"Alice's secret" in base64.b64decode(
        get(server, alice, f"/template/{alices}").json()["body"]
    )


@pytest.mark.parametrize(
    ("body", "code", "message"),
    [
        ({}, 422, "Argument body missing"),
        ({"body": ""}, 422, "Argument body missing"),
        ({"body": 5}, 422, "Argument body is invalid string"),
        ({"body": "%%%not base64%%%"}, 422, "Argument body is invalid string"),
        ({"body": b64("<p>x</p>"), "name": 5}, 422, "Argument name must be string"),
        ({"body": b64("<p>x</p>"), "lang": 5}, 422, "Argument lang must be string"),
        ({"body": b64("<p>x</p>"), "lang": "english"}, 422, "Argument lang is invalid"),
        ({"body": b64("<p>{% include 'x' %}</p>")}, 422, None),
        ({"body": b64("<p>{{ unclosed </p>")}, 422, None),
        ({"body": b64("<p>\x00</p>")}, 999, None),
    ],
)
def test_create_refuses_bad_input(
    server: RunningServer, body: dict[str, Any], code: int, message: str | None
) -> None:
    tenant = server.tenant()
    with server.client() as http:
        answer = http.post("/template", headers=tenant.auth, json=body)
    assert answer.status_code == 422, answer.text
    assert answer.json()["error_code"] == code
    if message is not None:
        assert answer.json()["message"] == message


def test_a_template_invalid_for_the_renderer_says_why(server: RunningServer) -> None:
    tenant = server.tenant()
    answer = create(server, tenant, "<p>{% include 'secrets.html' %}</p>")
    assert answer.json()["message"].startswith("Argument body is invalid template: 'include'")


def test_a_body_over_the_template_size_setting_is_refused(tmp_path: Any) -> None:
    from tests.support.server import running_server

    with running_server(
        f"sqlite:///{tmp_path / 'small.db'}", tmp_path / "var", max_template_bytes=1000
    ) as server:
        tenant = server.tenant()
        assert create(server, tenant, "<p>" + "x" * 900 + "</p>").status_code == 200
        too_large = create(server, tenant, "<p>" + "x" * 1000 + "</p>")
        assert too_large.json() == {"error_code": 422, "message": "Argument body is too large"}
        with server.client() as http:  # and its own HTTP body limit: 1.5 × + 8 KB
            huge = http.post("/template", headers=tenant.auth, json={"body": "x" * 20_000})
        assert huge.status_code == 413


def test_the_html_may_come_as_markup_and_as_a_form(server: RunningServer) -> None:
    tenant = server.tenant()
    with server.client() as http:
        raw = http.post("/template", headers=tenant.auth, json={"body": "<p>raw</p>"})
        form = http.post(
            "/template", headers=tenant.auth, data={"body": b64("<p>form</p>"), "name": "F"}
        )
    for answer, html in ((raw, "<p>raw</p>"), (form, "<p>form</p>")):
        assert answer.status_code == 200, answer.text
        got = get(server, tenant, f"/template/{answer.json()['real_id']}").json()
        assert base64.b64decode(got["body"]).decode() == html


def test_unknown_ids_are_not_found(server: RunningServer) -> None:
    tenant = server.tenant()
    for path in ("/template/999999", "/template/abc", "/template/99999999999999999999999"):
        answer = get(server, tenant, path)
        assert answer.status_code == 404
        assert answer.json() == {"error_code": 290, "message": "Template not found"}
    with server.client() as http:
        edit = http.post("/template/edit/abc", headers=tenant.auth, json={"body": b64("<p/>")})
    assert edit.json() == {"error_code": 31, "message": "Template not found"}


def test_every_template_endpoint_needs_a_credential(server: RunningServer) -> None:
    with server.client() as http:
        for method, path in (
            ("GET", "/templates"),
            ("GET", "/template/1"),
            ("POST", "/template"),
            ("POST", "/template/edit/1"),
            ("DELETE", "/template/1"),
        ):
            answer = http.request(method, path)
            assert answer.status_code == 401, (method, path)


def test_the_preview_link_serves_the_html_sandboxed_without_a_credential(
    server: RunningServer,
) -> None:
    tenant = server.tenant()
    html = "<p>Look {{ name }}</p><script>alert(1)</script>"
    real_id = created_id(server, tenant, html)
    link = get(server, tenant, f"/template/{real_id}").json()["preview"]

    with server.client() as http:
        page = http.get(link)
        forged = http.get(link[:-3] + ("aaa" if not link.endswith("aaa") else "bbb"))
        other = http.get(f"{server.url}/template/preview/{real_id}")
    assert page.status_code == 200
    assert page.text == html
    assert page.headers["content-type"].startswith("text/html")
    assert "sandbox" in page.headers["content-security-policy"]
    assert "script-src" not in page.headers["content-security-policy"]
    assert forged.status_code == 404 and other.status_code == 404


# -- template sends ---------------------------------------------------------------------------


def test_a_template_send_fills_placeholders_and_escapes_values_in_html(
    server: RunningServer,
) -> None:
    tenant = server.tenant()
    real_id = created_id(
        server, tenant, "<p>Hello {{ name }}, code {{code}}.{{ missing }}</p>", name="Hi"
    )
    payload = mail(
        tenant,
        html=None,
        text=None,
        subject="For {{ name }}",
        template={"id": str(real_id), "variables": {"name": "<b>Ann & Co</b>", "code": 123456}},
    )
    answer = send(server, tenant, {"email": payload})
    assert answer.status_code == 200, answer.text

    message, _ = stored(server, answer.json()["id"])
    html = message.get_body(preferencelist=("html",))
    assert html is not None
    assert (
        html.get_content().strip() == "<p>Hello &lt;b&gt;Ann &amp; Co&lt;/b&gt;, code 123456.</p>"
    )
    assert message["Subject"] == "For <b>Ann & Co</b>"  # the subject is not HTML


def test_a_template_send_by_int_id_with_auto_plain_text_gets_a_text_part(
    server: RunningServer,
) -> None:
    tenant = server.tenant()
    real_id = created_id(server, tenant, "<h1>Hi {{ name }}</h1><p>Your <b>order</b></p>")
    payload = mail(
        tenant,
        html=None,
        text=None,
        auto_plain_text=True,
        template={"id": real_id, "variables": {"name": "Rita"}},
    )
    answer = send(server, tenant, {"email": payload})
    assert answer.status_code == 200, answer.text
    message, _ = stored(server, answer.json()["id"])
    text = message.get_body(preferencelist=("plain",))
    assert text is not None
    assert "Hi Rita" in text.get_content() and "<b>" not in text.get_content()


def test_a_text_beside_the_template_is_filled_unescaped(server: RunningServer) -> None:
    tenant = server.tenant()
    real_id = created_id(server, tenant, "<p>{{ a }}</p>")
    payload = mail(
        tenant, html=None, text="a={{ a }}", template={"id": real_id, "variables": {"a": "<&>"}}
    )
    message, _ = stored(server, send(server, tenant, {"email": payload}).json()["id"])
    text = message.get_body(preferencelist=("plain",))
    assert text is not None and text.get_content().strip() == "a=<&>"


def test_an_edit_reaches_the_next_send_at_once(server: RunningServer) -> None:
    tenant = server.tenant()
    real_id = created_id(server, tenant, "<p>first</p>")
    payload = mail(tenant, html=None, text=None, template={"id": real_id})
    first, _ = stored(server, send(server, tenant, {"email": payload}).json()["id"])
    with server.client() as http:
        http.post(
            f"/template/edit/{real_id}", headers=tenant.auth, json={"body": b64("<p>2nd</p>")}
        )
    second, _ = stored(server, send(server, tenant, {"email": payload}).json()["id"])
    assert "first" in str(first.get_body(preferencelist=("html",)).get_content())  # type: ignore[union-attr]
    assert "2nd" in str(second.get_body(preferencelist=("html",)).get_content())  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("html", "variables", "code", "message"),
    [
        ("<p>{{ x }}</p>", "not an object", 731, "Variables list passed in wrong format"),
        ("{{ content }}", {}, 32, "Template body is empty"),
        ("<p>{{ ''.__class__ }}</p>", {}, 422, None),
        (
            "{% for i in range(10000) %}{% for j in range(10000) %}{% endfor %}{% endfor %}",
            {},
            422,
            None,
        ),
        ("<p>{{ s * 100000000 }}</p>", {"s": "xx"}, 422, None),
    ],
)
def test_template_sends_refuse_what_cannot_be_rendered(
    server: RunningServer, html: str, variables: Any, code: int, message: str | None
) -> None:
    tenant = server.tenant()
    real_id = created_id(server, tenant, html)
    payload = mail(tenant, html=None, text=None, template={"id": real_id, "variables": variables})
    answer = send(server, tenant, {"email": payload})
    assert answer.status_code == 422, answer.text
    assert answer.json()["error_code"] == code
    if message is not None:
        assert answer.json()["message"] == message
    else:
        assert answer.json()["message"].startswith("Template could not be rendered: ")


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "/templates?offset=9223372036854775808", None),
        ("GET", "/templates?limit=-1", None),
        ("GET", "/templates?lang=%00e", None),
        ("GET", "/template/%00", None),
        ("GET", "/template/preview/%00", None),
        ("GET", "/template/preview/" + "a" * 5000, None),
        ("POST", "/template", {"body": "PHA+", "name": "a\x00b"}),
        ("POST", "/template", {"body": "PHA+", "lang": "e\x00"}),
        ("POST", "/template", {"body": {"nested": [1, 2]}}),
        ("POST", "/template", {"body": "{{ " + "(" * 3000 + "1" + ")" * 3000 + " }}<p>"}),
        ("POST", "/template/edit/1", {"body": "<p>{% for a in b recursive %}{% endfor %}</p>"}),
        ("DELETE", "/template/99999999999999999999", None),
    ],
)
def test_hostile_template_requests_are_4xx_in_the_sendpulse_shape(
    server: RunningServer, method: str, path: str, body: Any
) -> None:
    tenant = server.tenant()
    with server.client() as http:
        answer = http.request(method, path, headers=tenant.auth, json=body)
    assert 400 <= answer.status_code < 500, (answer.status_code, answer.text)
    assert isinstance(answer.json()["error_code"], int)
