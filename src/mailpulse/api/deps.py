"""Request-scoped helpers the endpoints share: the runtime, decoded params, the caller."""

from __future__ import annotations

from typing import Any

from fastapi import Request

from mailpulse.api import compat
from mailpulse.core import errors
from mailpulse.runtime import Runtime


def runtime(request: Request) -> Runtime:
    rt: Runtime = request.app.state.runtime
    return rt


async def read_body(request: Request, limit: int) -> bytes:
    """The body, refusing (without reading it all) one larger than any acceptable message."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise errors.MESSAGE_TOO_LARGE()
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise errors.MESSAGE_TOO_LARGE()
        chunks.append(chunk)
    return b"".join(chunks)


def body_limit(rt: Runtime) -> int:
    # base64 grows content by 4/3; JSON strings and PHP serialize add a little more.
    return rt.settings.max_message_bytes * 3 // 2 + 1024 * 1024


async def params(request: Request) -> dict[str, Any]:
    """Query string and body merged into one dict, whatever the client's encoding."""
    rt = runtime(request)
    body = await read_body(request, body_limit(rt))
    return compat.request_params(
        request.scope.get("query_string", b""), request.headers.get("content-type"), body
    )


async def account_id(request: Request) -> int:
    """The authenticated account: a signed access token, or a static API key, of an active
    account (and for a token, of the account's current credential generation). Else 401."""
    rt = runtime(request)
    header = request.headers.get("authorization", "")
    scheme, _, credential = header.partition(" ")
    credential = credential.strip()
    if scheme.lower() != "bearer" or not credential or credential.startswith("b'"):
        raise errors.UNAUTHORIZED()
    # Token or static key, checked against the account's state in the short-lived auth
    # cache (core/access.py): no store read once cached.
    found = await rt.access.authenticate(credential)
    if found is None:
        raise errors.UNAUTHORIZED()
    return found


def client_ip(request: Request) -> str:
    return request.client.host if request.client else ""
