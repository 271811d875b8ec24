"""The published OpenAPI document and the docs page: true to the routes, valid, and offline.

The schemathesis run in tests/fuzz/ checks the answers against the document; these tests check
the document against the app's route table and the OpenAPI 3.1 specification, and that the
interactive docs page loads nothing from anywhere but this server.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urljoin, urlsplit

import jsonschema
from openapi_spec_validator import validate
from starlette.routing import Route

from mailpulse.api.openapi import build
from tests.api.test_send import mail, send
from tests.support.server import RunningServer

HTTP_METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}

# Routed but not part of the documented API: the document and its page themselves. HEAD is
# answered by every GET route implicitly and is not an operation of its own.
NOT_DOCUMENTED = {("GET", "/openapi.json"), ("GET", "/docs"), ("GET", "/docs/{}")}

_PARAM = re.compile(r"\{[^}]*\}")


def _shape(path: str) -> str:
    """The path with its parameter names erased: routes and document may name them apart."""
    return _PARAM.sub("{}", path)


def routed_operations(server: RunningServer) -> set[tuple[str, str]]:
    app: Any = server.recorder.app
    return {
        (method, _shape(route.path))
        for route in app.routes
        if isinstance(route, Route)
        for method in route.methods or ()
        if method != "HEAD"
    }


def documented_operations(document: dict[str, Any]) -> set[tuple[str, str]]:
    return {
        (method.upper(), _shape(path))
        for path, item in document["paths"].items()
        for method in item
        if method in HTTP_METHODS
    }


def test_every_routed_operation_is_documented_and_every_documented_one_is_routed(
    server: RunningServer,
) -> None:
    routed = routed_operations(server)
    documented = documented_operations(build())
    assert routed >= NOT_DOCUMENTED, "the exclusions name routes that no longer exist"
    assert routed - NOT_DOCUMENTED - documented == set(), "routed but not in api/openapi/"
    assert documented - routed == set(), "documented but not routed"
    assert ("POST", "/smtp/emails") in documented and ("GET", "/health") in documented


def test_the_served_document_is_valid_openapi_3_1_and_is_the_assembled_one(
    server: RunningServer,
) -> None:
    with server.client() as http:
        answer = http.get("/openapi.json")
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "application/json"
    document = answer.json()
    assert document["openapi"] == "3.1.0"
    validate(document)  # raises on anything the OpenAPI 3.1 schema does not allow
    assert document == build()


def test_every_operation_lists_the_shared_refusals_it_can_give() -> None:
    document = build()
    for path, item in document["paths"].items():
        for method, operation in item.items():
            statuses = set(operation["responses"])
            label = f"{method.upper()} {path}"
            if path in ("/health", "/health/live"):
                assert statuses == {"200"}, label
                continue
            if path == "/health/ready":
                assert statuses == {"200", "503"}, label
                continue
            if path.startswith("/resubscribe/"):
                # A public page of a signed link: HTML, no credential, no SendPulse refusals.
                assert statuses == {"200", "404", "410", "413", "503"}, label
                assert operation["security"] == [], label
                continue
            if path == "/unsubscribe/{token}":
                # The public one-click page: HTML, never decodes its body, so never a 422.
                assert statuses == {"200", "404", "413", "503"}, label
                assert operation["security"] == [], label
                continue
            # Every SendPulse endpoint reads a body (GETs too: the Node SDK sends one) and the
            # store, so each can refuse an oversized body and answer a store outage.
            assert {"200", "413", "422", "503"} <= statuses, label
            secured = operation.get("security", document["security"]) != []
            assert ("401" in statuses) == secured or path == "/oauth/access_token", label
    token = document["paths"]["/oauth/access_token"]["post"]["responses"]
    assert {"400", "401", "429"} <= set(token)
    assert token["429"]["headers"]["Retry-After"]["required"] is True


def test_a_real_log_record_matches_the_documented_record_exactly(server: RunningServer) -> None:
    tenant = server.tenant()
    sent = send(server, tenant, {"email": mail(tenant, to=[{"email": "rita@example.org"}])})
    assert sent.status_code == 200, sent.text
    with server.client() as http:
        listed = http.get("/smtp/emails", headers=tenant.auth).json()
        one = http.get(f"/smtp/emails/{sent.json()['id']}", headers=tenant.auth).json()
        total = http.get("/smtp/emails/total", headers=tenant.auth).json()
    document = build()
    components = document["components"]

    def check(instance: Any, schema: dict[str, Any]) -> None:
        jsonschema.Draft202012Validator({**schema, "components": components}).validate(instance)

    check(sent.json(), {"$ref": "#/components/schemas/SendResult"})
    check(one, {"$ref": "#/components/schemas/Record"})
    check(listed, {"type": "array", "items": {"$ref": "#/components/schemas/Record"}})
    count = document["paths"]["/smtp/emails/total"]["get"]["responses"]["200"]
    check(total, count["content"]["application/json"]["schema"])
    # Exact: every field the server sends is documented and required, and no other.
    assert set(one) == set(components["schemas"]["Record"]["required"])
    assert set(one) == set(components["schemas"]["Record"]["properties"])


def test_a_wrong_method_is_405_naming_every_method_the_path_serves(
    server: RunningServer,
) -> None:
    with server.client() as http:
        answer = http.delete("/smtp/emails")
        token = http.get("/oauth/access_token")
    assert answer.status_code == 405
    assert answer.headers["allow"] == "GET, HEAD, POST"
    assert answer.json() == {"error_code": 405, "message": "Method not allowed"}
    assert token.status_code == 405 and token.headers["allow"] == "POST"


class _References(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name in ("src", "href") and value:
                self.urls.append(value)


def test_the_docs_page_and_everything_it_loads_come_from_this_server(
    server: RunningServer,
) -> None:
    origin = urlsplit(server.url)
    with server.client() as http:
        page = http.get("/docs")
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/html")
        # The browser itself refuses anything from elsewhere.
        policy = page.headers["content-security-policy"]
        assert "default-src 'none'" in policy and "script-src 'self'" in policy
        assert "connect-src 'self'" in policy
        parser = _References()
        parser.feed(page.text)
        assert len(parser.urls) >= 3  # stylesheet, icon, Swagger UI, its initializer
        fetched: dict[str, str] = {}
        for reference in parser.urls:
            url = urlsplit(urljoin(server.url + "/docs", reference))
            assert (url.scheme, url.netloc) == (origin.scheme, origin.netloc), reference
            asset = http.get(url.path)
            assert asset.status_code == 200, reference
            assert asset.content, reference
            fetched[url.path] = asset.text if "png" not in url.path else ""
    stylesheet = fetched["/docs/swagger-ui.css"]
    for target in re.findall(r"url\(\s*['\"]?([^'\")]+)", stylesheet):
        assert target.startswith("data:"), target
    init = fetched["/docs/init.js"]
    assert 'url: "/openapi.json"' in init
    assert "validatorUrl: null" in init  # else it posts the document to validator.swagger.io
    assert "SwaggerUIBundle" in fetched["/docs/swagger-ui-bundle.js"]


def test_only_the_pages_assets_are_served_under_docs(server: RunningServer) -> None:
    with server.client() as http:
        for name in ("index.html", "swagger-initializer.js", "..%2F..%2Fpyproject.toml"):
            answer = http.get(f"/docs/{name}")
            assert answer.status_code == 404, name
            assert answer.json() == {"error_code": 404, "message": "Not found"}
