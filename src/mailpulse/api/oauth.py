"""POST /oauth/access_token: client credentials in, a one-hour bearer token out.

Accepts JSON, form-urlencoded and multipart bodies (compat §b). Wrong credentials are a 401
whose ``error`` is ``invalid_client`` — the Node SDK stops retrying only on exactly that. A
disabled account is refused the same way. Failed requests are counted per client IP and per
client_id (core/ratelimit.py); past the limit the answer is 429 with Retry-After, in the same
error shape, before the secret is even checked.
"""

from __future__ import annotations

import asyncio
import logging

from starlette.requests import Request
from starlette.responses import Response

from mailpulse.api.deps import client_ip, params, public, runtime, small_body
from mailpulse.api.json import JSONResponse
from mailpulse.core.auth import verify_secret
from mailpulse.store import accounts

log = logging.getLogger("mailpulse.auth")


def oauth_error(status: int, error: str, description: str, code: int) -> Response:
    body = {
        "error": error,
        "error_description": description,
        "message": description,
        "error_code": code,
    }
    return JSONResponse(body, status_code=status)


def too_many_failures(retry_after: int) -> Response:
    """429 in the token endpoint's error shape. ``is_error: 1`` is the Node SDK's own error
    marker: without it the SDK takes any non-401 answer for a token, writes ``undefined`` to
    its token file and crashes the application; with it, the SDK hands this answer back."""
    description = f"Too many failed token requests; retry after {retry_after} seconds."
    body = {
        "error": "too_many_requests",
        "error_description": description,
        "message": description,
        "error_code": 429,
        "is_error": 1,
    }
    return JSONResponse(body, status_code=429, headers={"Retry-After": str(retry_after)})


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
    ip = client_ip(request)
    throttle = rt.token_throttle
    wait = throttle.retry_after(ip, client_id)
    if wait is not None:
        return too_many_failures(wait)
    found = await rt.db.read(lambda conn: accounts.credentials_for(conn, client_id))
    stored = None if found is None else found.secret_hash
    # Argon2 is slow and memory-hard on purpose: off the event loop, a few at a time.
    async with rt.secret_checks:
        verified = await asyncio.to_thread(verify_secret, stored, client_secret)
    if not verified or found is None or not found.state.active:
        for blocked in throttle.failed(ip, client_id):
            log.warning("token requests refused for %s: too many failures", blocked)
        return oauth_error(401, "invalid_client", "Client authentication failed.", 1)
    token = rt.signer.issue(found.account_id, rt.clock.now(), found.state.generation)
    return JSONResponse(
        {"access_token": token.access_token, "token_type": "Bearer", "expires_in": token.expires_in}
    )


# Anyone may call it, so its body limit is the small one (a few parameters).
ROUTES = [public("/oauth/access_token", access_token, body=small_body)]
