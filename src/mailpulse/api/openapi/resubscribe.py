"""The OpenAPI fragment of ``api/resubscribe.py``: ``POST /smtp/resubscribe`` and the public
pages of the confirmation link (``GET`` / ``POST /resubscribe/{token}``)."""

from __future__ import annotations

from mailpulse.api.openapi.components import (
    SECURED,
    Schema,
    answer,
    body_in_every_encoding,
    error,
    or_not_set,
    ref,
    responses_for,
)
from mailpulse.core import resubscribe

_REFUSALS = "Refused; `error_code` and `message` are SendPulse's (compat §a.12):\n\n" + "\n".join(
    f"- {kind.error_code} `{kind.message}`" for kind in resubscribe.REFUSALS
)

_LANG = or_not_set(
    {
        "type": "string",
        "description": "The confirmation's language: "
        + ", ".join(f"`{code}`" for code in resubscribe.LANGUAGES)
        + " (any case; `uk` is taken for `ua`). Not set or any other text: `en`. A value "
        "that is not text is refused (`Argument lang must be string`).",
    }
)
_ADDRESS = {"type": "string", "description": "An email address."}
_BODY: Schema = {
    "type": "object",
    "required": ["email", "sender"],
    "properties": {
        "email": {
            **_ADDRESS,
            "description": "The address to ask: it must be on the account's suppression list.",
        },
        "sender": {
            **_ADDRESS,
            "description": "The confirmation's From: an active sender of the account.",
        },
        "lang": _LANG,
    },
}
_FORM_BODY: Schema = {
    "type": "object",
    "required": ["email", "sender"],
    "properties": {"email": _ADDRESS, "sender": _ADDRESS, "lang": {"type": "string"}},
}

_TOKEN = {
    "name": "token",
    "in": "path",
    "required": True,
    "description": "The signed token of the confirmation's link.",
    "schema": {"type": "string"},
}
HTML = "text/html"


def _page(description: str) -> Schema:
    return {"description": description, "content": {HTML: {"schema": {"type": "string"}}}}


_PAGE_ANSWERS: dict[str, Schema] = {
    "404": _page("Not a link this server made (or its resubscription is gone): a page saying so."),
    "410": _page("The link was used already, or is older than 7 days: a page saying so."),
    "413": {"$ref": "#/components/responses/TooLarge"},
    "503": {
        **_page("The store cannot be reached right now: a page asking to try again."),
        "headers": {
            "Retry-After": {
                "description": "Seconds to wait before trying again.",
                "required": True,
                "schema": {"type": "integer", "minimum": 0},
            }
        },
    },
}

PATHS: dict[str, Schema] = {
    "/smtp/resubscribe": {
        "post": {
            "operationId": "resubscribe",
            "tags": ["Resubscribe"],
            "summary": "Ask a suppressed address to resubscribe",
            "description": (
                "Mails the address a confirmation, in the language asked, from the given "
                "sender; its signed link (valid 7 days, usable once) takes the address off the "
                "account's suppression list when followed. The confirmation is queued and "
                "logged like a send; the answer carries its log id. At most 5 per account in "
                "any 24 hours; a refused request does not count."
            ),
            "security": SECURED,
            "requestBody": body_in_every_encoding(
                _BODY,
                _FORM_BODY,
                "`email`, `sender` and optionally `lang`.",
                example={"email": "rita@example.org", "sender": "sender@example.com", "lang": "en"},
            ),
            "responses": responses_for(
                {
                    "200": answer("Confirmation queued and committed.", ref("ResubscribeResult")),
                    "422": error(_REFUSALS),
                },
                "401",
                "413",
                "503",
            ),
        }
    },
    "/resubscribe/{token}": {
        "get": {
            "operationId": "resubscribePage",
            "tags": ["Resubscribe"],
            "summary": "The confirmation link's page (changes nothing)",
            "description": (
                "Public: the link in the confirmation email. Shows what following the link "
                "does and a button that POSTs to the same URL; a GET never changes anything, "
                "so link scanners cannot resubscribe anyone. In the confirmation's language."
            ),
            "security": [],
            "parameters": [_TOKEN],
            "responses": {
                "200": _page("The page with the confirm button."),
                **_PAGE_ANSWERS,
            },
        },
        "post": {
            "operationId": "resubscribeConfirm",
            "tags": ["Resubscribe"],
            "summary": "Follow the confirmation link: take the address off the list",
            "description": (
                "Public: the page's button. Takes the address off the account's suppression "
                "list and uses the link up. Any body is ignored."
            ),
            "security": [],
            "parameters": [_TOKEN],
            "responses": {
                "200": _page("Done: the address is off the list; a page saying so."),
                **_PAGE_ANSWERS,
            },
        },
    },
}

SCHEMAS: dict[str, Schema] = {
    "ResubscribeResult": {
        "type": "object",
        "required": ["result", "id"],
        "additionalProperties": False,
        "properties": {
            "result": {"type": "boolean", "const": True},
            "id": {"type": "string", "description": "The confirmation email's log id."},
        },
    },
}
