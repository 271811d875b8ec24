"""The OpenAPI fragment of ``api/oauth.py``: ``POST /oauth/access_token``.

Kept beside the route it describes (same module name) so a change to one is reviewed with the
other; ``tests/api/test_openapi.py`` fails when the two disagree on paths and methods, and the
schemathesis run in ``tests/fuzz/`` fails when they disagree on bodies and answers.
"""

from __future__ import annotations

from mailpulse.api.openapi.components import (
    BADLY_FORMED_TEXT,
    RETRY_AFTER,
    Schema,
    answer,
    body_in_every_encoding,
    error,
    ref,
    responses_for,
)

_CREDENTIALS: Schema = {
    "type": "object",
    "required": ["grant_type", "client_id", "client_secret"],
    "properties": {
        "grant_type": {"type": "string", "const": "client_credentials"},
        "client_id": {"type": "string", "minLength": 1, "description": "The API ID."},
        "client_secret": {"type": "string", "minLength": 1, "description": "The API Secret."},
    },
}

TOKEN: Schema = {
    "type": "object",
    "required": ["access_token", "token_type", "expires_in"],
    "additionalProperties": False,
    "properties": {
        "access_token": {"type": "string", "description": "A signed token (HS256)."},
        "token_type": {"type": "string", "const": "Bearer"},
        "expires_in": {
            "type": "integer",
            "description": "Seconds the token stays valid (3600 unless configured).",
        },
    },
}

PATHS: dict[str, Schema] = {
    "/oauth/access_token": {
        "post": {
            "operationId": "getAccessToken",
            "tags": ["Authentication"],
            "summary": "Exchange the API ID and secret for a bearer token",
            "description": (
                "Client credentials in, a one-hour bearer token out. No token is needed on this "
                "call. Real clients send the parameters as JSON (Python, Node, PHP 2, Go), as a "
                "form (PHP 1, C#, Ruby, Java, n8n) or as multipart form data (MCP); parameters "
                "in the query string are merged under the body's. Wrong credentials are a 401 "
                "whose `error` is exactly `invalid_client`: the Node SDK stops retrying only "
                "on that. Failed attempts are rate-limited per client IP and per client_id "
                "(429 with Retry-After); successful ones are not slowed."
            ),
            "security": [],
            "requestBody": body_in_every_encoding(
                _CREDENTIALS,
                _CREDENTIALS,
                "`grant_type=client_credentials`, `client_id`, `client_secret`.",
                example={
                    "grant_type": "client_credentials",
                    "client_id": "your-api-id",
                    "client_secret": "your-api-secret",
                },
            ),
            "responses": responses_for(
                {
                    "200": answer("A fresh token.", ref("Token")),
                    "400": answer(
                        "A parameter is missing (`invalid_request`, error_code 400) or "
                        "`grant_type` is not `client_credentials` "
                        "(`unsupported_grant_type`, error_code 400).",
                        ref("OAuthError"),
                    ),
                    "401": answer(
                        "Unknown client_id or wrong secret: `invalid_client`, error_code 1, "
                        "`Client authentication failed.`",
                        ref("OAuthError"),
                    ),
                    "422": error(BADLY_FORMED_TEXT),
                    "429": answer(
                        "Too many failed token requests from this IP or for this client_id.",
                        ref("TokenThrottled"),
                        headers={"Retry-After": RETRY_AFTER},
                    ),
                },
                "413",
                "503",
            ),
        }
    }
}

SCHEMAS: dict[str, Schema] = {"Token": TOKEN}
