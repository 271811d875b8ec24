"""The OpenAPI fragment of ``api/templates.py``: the stored templates and their preview link.

Kept beside the routes it describes. The template object is exact: every field of compat §d in
the types the Go SDK and aiosendpulse decode, none added (``api.templates._shape``).
"""

from __future__ import annotations

from typing import Any

from mailpulse.api.openapi.components import (
    BADLY_FORMED_TEXT,
    COUNT,
    DATE_TIME,
    SECURED,
    Schema,
    answer,
    body_in_every_encoding,
    error,
    or_not_set,
    query_param,
    ref,
    responses_for,
)

_CATEGORY: Schema = {
    "type": "object",
    "description": "Always an object (aiosendpulse refuses SendPulse's `[]`).",
    "additionalProperties": False,
    "required": ["id", "name", "meta_description", "full_description", "code", "sort"],
    "properties": {
        "id": {"type": "integer"},
        "name": {"type": "string"},
        "meta_description": {"type": "string"},
        "full_description": {"type": "string"},
        "code": {"type": "string"},
        "sort": {"type": "integer"},
    },
}

_TEMPLATE_FIELDS: dict[str, Schema] = {
    "id": {"type": "string", "description": "The `real_id` as a string."},
    "real_id": {"type": "integer"},
    "lang": {"type": "string", "pattern": "^[a-z]{2}$", "description": "ISO 639-1."},
    "name": {"type": "string", "description": "As given, or `Template <id>`."},
    "name_slug": {"type": "string"},
    "created": DATE_TIME,
    "full_description": {"type": "string"},
    "meta_description": {"type": "string"},
    "is_structure": {"type": "boolean", "description": "SendPulse's key; always false."},
    "is_structured": {"type": "boolean", "description": "aiosendpulse's spelling; the same."},
    "category": {"type": "string"},
    "category_info": _CATEGORY,
    "tags": {"type": "object", "additionalProperties": {"type": "string"}},
    "mark": {"type": "string"},
    "mark_count": {"type": "integer"},
    "owner": {"type": "string", "enum": ["me"]},
    "preview": {
        "type": "string",
        "format": "uri",
        "description": "A link that shows the stored HTML without a credential (signed, "
        "unguessable; see `GET /template/preview/{token}`).",
    },
}


def _template(description: str, **more: Schema) -> Schema:
    fields = {**_TEMPLATE_FIELDS, **more}
    return {
        "type": "object",
        "description": description,
        "additionalProperties": False,
        "required": list(fields),
        "properties": fields,
    }


_LANG: Schema = {
    "type": "string",
    "pattern": "^[A-Za-z]{2}$",
    "description": "A two-letter language code; SendPulse's `ua` is kept as ISO's `uk`.",
}
_BODY: Schema = {
    "type": "string",
    "minLength": 1,
    "description": "The HTML, base64-encoded (the markup itself is accepted too). At most "
    "`max_template_bytes` (1 MB) decoded; it must be a template the renderer accepts.",
}
_NAME: Schema = {"type": "string", "maxLength": 200}


def _write_body(*, with_name: bool, description: str) -> Schema:
    json_props: dict[str, Schema] = {"body": _BODY, "lang": or_not_set(_LANG)}
    form_props: dict[str, Schema] = {"body": _BODY, "lang": {"anyOf": [_LANG, {"const": ""}]}}
    if with_name:
        json_props["name"] = or_not_set(_NAME)
        form_props["name"] = _NAME
    return body_in_every_encoding(
        {"type": "object", "required": ["body"], "properties": json_props},
        {"type": "object", "required": ["body"], "properties": form_props},
        description,
        example={"name": "Welcome", "body": "PHA+SGVsbG8ge3sgbmFtZSB9fTwvcD4=", "lang": "en"},
    )


_WRITE_REFUSALS = (
    "422 / 422 `Argument body missing`, `Argument body is invalid string` (neither base64 of "
    "UTF-8 nor markup), `Argument body is too large`, `Argument body is invalid template: "
    "<why>`, `Argument name must be string`, `Argument name is invalid`, `Argument lang must be "
    "string`, `Argument lang is invalid`; 422 / 999 for a NUL character. " + BADLY_FORMED_TEXT
)

_ID = {
    "name": "template_id",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "pattern": r"^[^/]+$"},
    "description": "The template's `id` or `real_id` (the same number).",
}


_RESULT: Schema = {
    "type": "object",
    "required": ["result"],
    "additionalProperties": False,
    "properties": {"result": {"type": "boolean", "const": True}},
}

PATHS: dict[str, Any] = {
    "/templates": {
        "get": {
            "operationId": "listTemplates",
            "tags": ["Templates"],
            "summary": "The account's templates, oldest first (without bodies)",
            "description": "`owner=sendpulse` lists nothing (there are no system templates "
            "here); any other owner lists the account's own. Parameters may also come as "
            "pysendpulse's URL-quoted JSON query or as a JSON body on the GET (Node SDK).",
            "security": SECURED,
            "parameters": [
                query_param(
                    "limit",
                    COUNT,
                    "Templates per page: default 100 (also for 0), at most "
                    "100 (larger is cut to 100).",
                ),
                query_param("offset", COUNT, "Templates to skip."),
                query_param(
                    "lang", {"anyOf": [_LANG, {"const": ""}]}, "Only templates in this language."
                ),
                query_param("owner", {"type": "string"}, "`me` (the default) or `sendpulse`."),
                query_param(
                    "only_active", {"type": "string"}, "Accepted; every template is active."
                ),
            ],
            "responses": responses_for(
                {
                    "200": answer(
                        "A page of templates.", {"type": "array", "items": ref("Template")}
                    ),
                    "422": error(
                        "422 / 422 `Argument limit is invalid` (or offset, lang). "
                        + BADLY_FORMED_TEXT
                    ),
                },
                "401",
                "413",
                "503",
            ),
        }
    },
    "/template": {
        "post": {
            "operationId": "createTemplate",
            "tags": ["Templates"],
            "summary": "Store a template",
            "description": "Placeholders are `{{ name }}` (Jinja2 syntax, sandboxed: `{% if %}`, "
            "`{% for %}` and a few filters; no includes). Names are unique per account.",
            "security": SECURED,
            "requestBody": _write_body(with_name=True, description="`body`, and `name`, `lang`."),
            "responses": responses_for(
                {
                    "200": answer(
                        "Stored.",
                        {
                            "type": "object",
                            "required": ["result", "real_id"],
                            "additionalProperties": False,
                            "properties": {
                                "result": {"type": "boolean", "const": True},
                                "real_id": {"type": "integer"},
                            },
                        },
                    ),
                    "422": error(
                        "422 / 573 `Template with such name already exist`; " + _WRITE_REFUSALS
                    ),
                },
                "401",
                "413",
                "503",
            ),
        }
    },
    "/template/{template_id}": {
        "get": {
            "operationId": "getTemplate",
            "tags": ["Templates"],
            "summary": "One template, with its body",
            "security": SECURED,
            "parameters": [_ID],
            "responses": responses_for(
                {
                    "200": answer("The template.", ref("TemplateWithBody")),
                    "404": error("404 / 290 `Template not found` (or another account's)."),
                    "422": error(BADLY_FORMED_TEXT),
                },
                "401",
                "413",
                "503",
            ),
        },
        "delete": {
            "operationId": "deleteTemplate",
            "tags": ["Templates"],
            "summary": "Delete a template (mailpulse's own: SendPulse has no such call)",
            "security": SECURED,
            "parameters": [_ID],
            "responses": responses_for(
                {
                    "200": answer("Deleted.", _RESULT),
                    "404": error("404 / 31 `Template not found` (or another account's)."),
                    "422": error(BADLY_FORMED_TEXT),
                },
                "401",
                "413",
                "503",
            ),
        },
    },
    "/template/edit/{template_id}": {
        "post": {
            "operationId": "editTemplate",
            "tags": ["Templates"],
            "summary": "Replace a template's body (and language)",
            "security": SECURED,
            "parameters": [_ID],
            "requestBody": _write_body(with_name=False, description="`body`, and `lang`."),
            "responses": responses_for(
                {
                    "200": answer("Changed.", _RESULT),
                    "404": error("404 / 31 `Template not found` (or another account's)."),
                    "422": error(_WRITE_REFUSALS),
                },
                "401",
                "413",
                "503",
            ),
        }
    },
    "/template/preview/{token}": {
        "get": {
            "operationId": "previewTemplate",
            "tags": ["Templates"],
            "summary": "A template's stored HTML, for a browser (the `preview` link)",
            "description": "No credential: the link carries a token signed for the template. "
            "Served under `Content-Security-Policy: sandbox` (no script runs).",
            "security": [],
            "parameters": [
                {
                    "name": "token",
                    "in": "path",
                    "required": True,
                    "schema": {"type": "string", "pattern": r"^[^/]+$"},
                }
            ],
            "responses": responses_for(
                {
                    "200": {
                        "description": "The HTML as stored (placeholders unfilled).",
                        "content": {"text/html": {"schema": {"type": "string"}}},
                    },
                    "404": error(
                        "404 / 404 `Not found`: not a valid link, or the template is gone."
                    ),
                    "422": error(BADLY_FORMED_TEXT),
                },
                "413",
                "503",
            ),
        }
    },
}

SCHEMAS: dict[str, Schema] = {
    "Template": _template("A stored template, as listed."),
    "TemplateWithBody": _template(
        "A stored template with its HTML.",
        body={"type": "string", "description": "The HTML, base64."},
    ),
}
