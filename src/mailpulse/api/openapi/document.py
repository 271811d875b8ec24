"""Assembles the OpenAPI 3.1 document from the per-resource fragments.

Why assembled rather than generated: the SendPulse endpoints are plain Starlette routes and
what the clients put on the wire (JSON strings in JSON, PHP ``serialize()``, forms) is no
Pydantic model, so the document is written by hand, one fragment per resource beside its
routes. A new resource adds its module to ``FRAGMENTS``; ``tests/api/test_openapi.py`` fails
until every routed (path, method) is documented here and every documented one is routed.
"""

from __future__ import annotations

import functools
from types import ModuleType
from typing import Any

import orjson

from mailpulse import __version__
from mailpulse.api.openapi import (
    bounces,
    components,
    email_log,
    emails,
    health,
    oauth,
    resubscribe,
    templates,
    unsubscribe,
)

# One module per resource, each with PATHS and SCHEMAS. Order is the order of the docs page.
FRAGMENTS: tuple[ModuleType, ...] = (
    oauth,
    emails,
    email_log,
    templates,
    bounces,
    unsubscribe,
    resubscribe,
    health,
)

_DESCRIPTION = """\
The official SendPulse SDKs work against it by changing only their base URL.

Every answer is JSON. Success is HTTP 200; a refusal is `{"error_code": <int>, "message":
"<text>"}` with a 4xx status (the token endpoint adds the OAuth fields `error` and
`error_description`). Bad input never gets a 5xx. Repeated and trailing slashes in paths are
ignored; an unknown path is 404 and a method a path does not serve is 405 with `Allow`, both in
the SendPulse shape.

Get a token with `POST /oauth/access_token`, then press **Authorize** and paste it (or a
static API key).
"""

_TAGS = [
    {"name": "Authentication", "description": "Client credentials for a bearer token."},
    {"name": "Email", "description": "Sending."},
    {"name": "Email log", "description": "What was sent, per recipient."},
    {
        "name": "Resubscribe",
        "description": "Asking a suppressed address to receive mail again, and the pages of "
        "the link it follows.",
    },
    {"name": "Bounces", "description": "Recipients whose mail failed for good."},
    {
        "name": "Unsubscribes",
        "description": "The unsubscribe list, and the public pages of List-Unsubscribe links.",
    },
    {"name": "Templates", "description": "Stored templates a send fills with its variables."},
    {"name": "Service", "description": "mailpulse's own endpoints (not SendPulse's)."},
]


def merge_paths(fragments: tuple[ModuleType, ...]) -> dict[str, Any]:
    """The fragments' paths in one map; two fragments may share a path, never a method."""
    paths: dict[str, dict[str, Any]] = {}
    for fragment in fragments:
        for path, operations in fragment.PATHS.items():
            merged = paths.setdefault(path, {})
            clash = merged.keys() & operations.keys()
            if clash:
                raise ValueError(f"{path}: {sorted(clash)} documented twice")
            merged.update(operations)
    return paths


def build(fragments: tuple[ModuleType, ...] = FRAGMENTS) -> dict[str, Any]:
    """The whole document, a fresh dict each call."""
    schemas: dict[str, Any] = dict(components.SCHEMAS)
    for fragment in fragments:
        clash = schemas.keys() & fragment.SCHEMAS.keys()
        if clash:
            raise ValueError(f"schemas {sorted(clash)} defined twice")
        schemas.update(fragment.SCHEMAS)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "mailpulse",
            "version": __version__,
            "summary": "The SendPulse SMTP-service REST API, self-hosted.",
            "description": _DESCRIPTION,
            "license": {"name": "MIT", "identifier": "MIT"},
        },
        "tags": _TAGS,
        "security": components.SECURED,
        "paths": merge_paths(fragments),
        "components": {
            "schemas": dict(sorted(schemas.items())),
            "responses": components.RESPONSES,
            "securitySchemes": {"bearerAuth": components.BEARER},
        },
    }


@functools.cache
def encoded() -> bytes:
    """The document as served: built and encoded once per process."""
    return orjson.dumps(build())
