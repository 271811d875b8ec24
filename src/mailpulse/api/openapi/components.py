"""Shared parts of the OpenAPI document: the error shapes, the bearer scheme, the answers every
SendPulse endpoint can give, and helpers that spell a request body in the three encodings.

Why one module: a status that every endpoint can answer (401 for a bad token, 413 for a body
over the endpoint's limit, 503 when the store is down) is described once, so an endpoint that
is added later inherits the same answer by naming it, and a change of shape is one edit.
"""

from __future__ import annotations

from typing import Any

JSON = "application/json"
FORM = "application/x-www-form-urlencoded"
MULTIPART = "multipart/form-data"

Schema = dict[str, Any]

BEARER: Schema = {
    "type": "http",
    "scheme": "bearer",
    "description": (
        "An access token from `POST /oauth/access_token` (valid for an hour) or a static API "
        "key (`mpk_…`, made with `mailpulse key create`). A missing, malformed (Python's "
        "`Bearer b'…'` included), foreign, revoked or expired credential gets 401 "
        '`{"error_code": 401, "message": "Unauthorized!"}` with `WWW-Authenticate: Bearer`; '
        "never `invalid_client`, so the SDKs fetch a new token and retry."
    ),
}
SECURED: list[dict[str, list[str]]] = [{"bearerAuth": []}]

ERROR: Schema = {
    "type": "object",
    "description": "The SendPulse error shape. `error_code` is a legacy SendPulse number or "
    "the HTTP status.",
    "required": ["error_code", "message"],
    "additionalProperties": False,
    "properties": {
        "error_code": {"type": "integer"},
        "message": {"type": "string"},
    },
}

OAUTH_ERROR: Schema = {
    "type": "object",
    "description": "The token endpoint's error: OAuth 2 fields (league/oauth2-server style) "
    "plus SendPulse's `message` and `error_code`.",
    "required": ["error", "error_description", "message", "error_code"],
    "additionalProperties": False,
    "properties": {
        "error": {
            "type": "string",
            "enum": ["invalid_request", "unsupported_grant_type", "invalid_client"],
        },
        "error_description": {"type": "string"},
        "message": {"type": "string"},
        "error_code": {"type": "integer"},
    },
}

TOKEN_THROTTLED: Schema = {
    "type": "object",
    "description": "The token endpoint's 429: the OAuth error fields plus `is_error: 1`, the "
    "Node SDK's own error marker (without it the SDK takes the answer for a token).",
    "required": ["error", "error_description", "message", "error_code", "is_error"],
    "additionalProperties": False,
    "properties": {
        "error": {"type": "string", "enum": ["too_many_requests"]},
        "error_description": {"type": "string"},
        "message": {"type": "string"},
        "error_code": {"type": "integer", "enum": [429]},
        "is_error": {"type": "integer", "enum": [1]},
    },
}

SCHEMAS: dict[str, Schema] = {
    "Error": ERROR,
    "OAuthError": OAUTH_ERROR,
    "TokenThrottled": TOKEN_THROTTLED,
}


def ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def json_content(schema: Schema) -> dict[str, Any]:
    return {JSON: {"schema": schema}}


def answer(description: str, schema: Schema, headers: dict[str, Any] | None = None) -> Schema:
    """One response: a description and a JSON body (and headers when it has some)."""
    response: Schema = {"description": description, "content": json_content(schema)}
    if headers:
        response["headers"] = headers
    return response


def error(description: str) -> Schema:
    return answer(description, ref("Error"))


RETRY_AFTER: Schema = {
    "description": "Seconds to wait before trying again.",
    "required": True,
    "schema": {"type": "integer", "minimum": 0},
}

# Answers shared by endpoints; an operation lists the ones it can give with `responses_for`.
RESPONSES: dict[str, Schema] = {
    "Unauthorized": answer(
        "No valid bearer credential: 401 / 401 `Unauthorized!`.",
        ref("Error"),
        headers={
            "WWW-Authenticate": {
                "description": "Always `Bearer`.",
                "required": True,
                "schema": {"type": "string", "const": "Bearer"},
            }
        },
    ),
    "TooLarge": error(
        "The body is larger than this endpoint can legitimately carry (refused while it "
        "streams in): 413 in the SendPulse shape."
    ),
    "StoreUnavailable": answer(
        "The store cannot be reached right now: 503 in the SendPulse shape. Nothing was "
        "written; the request may be repeated.",
        ref("Error"),
        headers={"Retry-After": {**RETRY_AFTER, "required": False}},
    ),
}

STATUS_REFS = {"401": "Unauthorized", "413": "TooLarge", "503": "StoreUnavailable"}


def responses_for(own: dict[str, Schema], *shared: str) -> dict[str, Schema]:
    """An operation's responses: its own, then the shared ones named by status."""
    out = dict(own)
    for status in shared:
        out[status] = {"$ref": f"#/components/responses/{STATUS_REFS[status]}"}
    return dict(sorted(out.items()))


def body_in_every_encoding(
    json_schema: Schema, form_schema: Schema, description: str, example: Any = None
) -> Schema:
    """A request body that real clients send as JSON, as a form, or as multipart form data.

    In a form the structured parameters are strings (JSON text or PHP ``serialize()``), so the
    form schema is given separately.
    """
    json_media: Schema = {"schema": json_schema}
    if example is not None:
        json_media["example"] = example
    return {
        "required": True,
        "description": description,
        "content": {
            JSON: json_media,
            FORM: {"schema": form_schema},
            MULTIPART: {"schema": form_schema},
        },
    }


NOT_SET: Schema = {
    "enum": [None, "", [], {}],
    "description": 'null, "", [] or {}: "not set" (compat §h.8; Go sends null, n8n empty '
    "objects, PHP empty arrays).",
}


def or_not_set(schema: Schema) -> Schema:
    """``schema``, or one of the values the clients send for "not set"."""
    return {"anyOf": [schema, NOT_SET]}


BADLY_FORMED_TEXT = (
    "422 / 999 `Badly formed incoming data`: a body or query that is not decodable JSON, form or "
    "multipart data (invalid UTF-8 included)."
)


# -- shared by the listing endpoints (the email log, bounces, templates) --------------------------

INT64 = 2**63 - 1

#: a limit or an offset: an integer a database can bind, or empty for "not set"
COUNT: Schema = {"anyOf": [{"type": "integer", "minimum": 0, "maximum": INT64}, {"const": ""}]}

DATE_TIME: Schema = {
    "type": "string",
    "pattern": r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$",
    "description": "`YYYY-MM-DD HH:MM:SS`, UTC.",
}


def query_param(name: str, schema: Schema, description: str) -> Schema:
    """An optional query parameter."""
    return {
        "name": name,
        "in": "query",
        "required": False,
        "schema": schema,
        "description": description,
    }
