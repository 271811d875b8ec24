"""POST /oauth/access_token: client credentials in, a one-hour bearer token out.

Accepts JSON, form-urlencoded and multipart bodies (compat §b). Wrong credentials are a 401
whose ``error`` is ``invalid_client`` — the Node SDK stops retrying only on exactly that.
"""

from __future__ import annotations

import asyncio

from starlette.requests import Request
from starlette.responses import Response

from mailpulse.api.deps import params, public, runtime, small_body
from mailpulse.api.json import JSONResponse
from mailpulse.core.auth import verify_secret
from mailpulse.store import accounts


def oauth_error(status: int, error: str, description: str, code: int) -> Response:
    body = {
        "error": error,
        "error_description": description,
        "message": description,
        "error_code": code,
    }
    return JSONResponse(body, status_code=status)


async def access_token(request: Request) -> Response:
    rt = runtime(request)
    body = await params(request)
    grant_type = body.get("grant_type")
    client_id = body.get("client_id")
    client_secret = body.get("client_secret")
    if not grant_type:
        return oauth_error(
            400, "invalid_request", 'The request is missing the "grant_type" parameter.', 400
        )
    if grant_type != "client_credentials":
        return oauth_error(
            400,
            "unsupported_grant_type",
            "The authorization grant type is not supported by the authorization server.",
            400,
        )
    for name, value in (("client_id", client_id), ("client_secret", client_secret)):
        if not isinstance(value, str) or not value:
            return oauth_error(
                400, "invalid_request", f'The request is missing the "{name}" parameter.', 400
            )
    assert isinstance(client_id, str) and isinstance(client_secret, str)
    found = await rt.db.read(lambda conn: accounts.secret_hash_for(conn, client_id))
    stored = None if found is None else found[1]
    # Argon2 is slow on purpose: keep it off the event loop.
    if not await asyncio.to_thread(verify_secret, stored, client_secret) or found is None:
        return oauth_error(401, "invalid_client", "Client authentication failed.", 1)
    token = rt.signer.issue(found[0], rt.clock.now())
    return JSONResponse(
        {"access_token": token.access_token, "token_type": "Bearer", "expires_in": token.expires_in}
    )


# Anyone may call it, so its body limit is the small one (a few parameters).
ROUTES = [public("/oauth/access_token", access_token, body=small_body)]
