"""Request-scoped helpers the endpoints share: the runtime, decoded params, the caller.

Bounded work per request is structural here: every route is built by :func:`public` or
:func:`authenticated`, which names the endpoint's body limit (sized to what the endpoint can
legitimately carry) and, for an authenticated one, checks the caller before a single byte of
the body is read. The body is refused on its Content-Length, and counted while it streams in.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route

from mailpulse.api import compat
from mailpulse.config import Settings
from mailpulse.core import errors
from mailpulse.runtime import Runtime

BodyLimit = Callable[[Settings], int]
_LIMIT_KEY = "mailpulse.body_limit"


def runtime(request: Request) -> Runtime:
    rt: Runtime = request.app.state.runtime
    return rt


# -- body limits, one per endpoint ---------------------------------------------------------------
def small_body(settings: Settings) -> int:
    """The token endpoint and the log queries: a few parameters."""
    return settings.http_small_body_bytes


def info_body(settings: Settings) -> int:
    """``/smtp/emails/info``: ``max_info_ids`` ids of 16 characters, as JSON, PHP ``serialize()``
    or URL-encoded JSON in a form (up to ~100 bytes each), plus the small-body allowance."""
    return settings.max_info_ids * 128 + settings.http_small_body_bytes


def unsubscribe_body(settings: Settings) -> int:
    """POST / DELETE ``/smtp/unsubscribe``: 2 KiB per address of ``max_unsubscribe_emails``
    (an address of up to 320 characters and a comment of up to 1,024 ASCII characters, as JSON
    inside a JSON string or PHP ``serialize()`` in a form), plus the small-body allowance."""
    return settings.max_unsubscribe_emails * 2048 + settings.http_small_body_bytes


def page_body(settings: Settings) -> int:
    """The public one-click unsubscribe page: RFC 8058's ``List-Unsubscribe=One-Click`` or the
    page's own form; nothing in it is read. 1 KiB."""
    return 1024


def send_body(settings: Settings) -> int:
    """A send: the message-size limit plus encoding overhead (base64 grows content by 4/3; JSON
    strings, form encoding and PHP serialize add a little more)."""
    return settings.max_message_bytes * 3 // 2 + 1024 * 1024


def resubscribe_body(settings: Settings) -> int:
    """``/smtp/resubscribe``: three short parameters (two addresses and a language code)."""
    return settings.http_small_body_bytes


LINK_PAGE_BODY = 1024


def link_page_body(_settings: Settings) -> int:
    """A public link page (``/resubscribe/<token>``): its button's form posts no fields."""
    return LINK_PAGE_BODY


def template_body(settings: Settings) -> int:
    """``POST /template`` and ``/template/edit``: a body of ``max_template_bytes`` as base64
    (4/3) in JSON or a form (URL-encoding ``+``, ``/`` and ``=`` adds a little), plus a name
    and a language."""
    return settings.max_template_bytes * 3 // 2 + settings.http_small_body_bytes


# -- routes --------------------------------------------------------------------------------------
def public(
    path: str,
    handler: Callable[[Request], Awaitable[Response]],
    *,
    body: BodyLimit,
    method: str = "POST",
) -> Route:
    """A route anyone may call (the token endpoint, the pages of signed links, a template's
    preview link): its body limit
    must be small."""

    async def endpoint(request: Request) -> Response:
        request.scope[_LIMIT_KEY] = body(runtime(request).settings)
        return await handler(request)

    return Route(path, endpoint, methods=[method])


async def body_of(request: Request) -> bytes:
    """The raw body, within the route's limit (see :func:`params` for decoded ones)."""
    settings = runtime(request).settings
    limit = request.scope.get(_LIMIT_KEY) or small_body(settings)
    return await read_body(request, limit, settings.http_body_timeout)


def authenticated(
    path: str,
    handler: Callable[[Request, int], Awaitable[Response]],
    *,
    method: str,
    body: BodyLimit,
) -> Route:
    """A route for an account: the caller is authenticated before its body is read."""

    async def endpoint(request: Request) -> Response:
        account = await account_id(request)
        request.scope[_LIMIT_KEY] = body(runtime(request).settings)
        return await handler(request, account)

    return Route(path, endpoint, methods=[method])


async def read_body(request: Request, limit: int, timeout: float) -> bytes:
    """The body, refused (413) on its Content-Length or as soon as more than ``limit`` bytes
    arrived, and (408) when it has not all arrived within ``timeout`` seconds."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isascii() and declared.isdigit() and int(declared) > limit:
        raise errors.BODY_TOO_LARGE()
    chunks: list[bytes] = []
    size = 0
    try:
        async with asyncio.timeout(timeout):
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    raise errors.BODY_TOO_LARGE()
                chunks.append(chunk)
    except TimeoutError:
        raise errors.BODY_TIMEOUT() from None
    except ClientDisconnect:
        raise errors.BODY_TIMEOUT() from None  # nobody is left to read the answer
    return b"".join(chunks)


def shape(settings: Settings) -> compat.Shape:
    return compat.Shape(max_items=settings.http_max_body_items)


async def params(request: Request) -> dict[str, Any]:
    """Query string and body merged into one dict, whatever the client's encoding.

    The body limit is the route's (see :func:`public` / :func:`authenticated`); a route built
    some other way gets the small one.
    """
    settings = runtime(request).settings
    limit = request.scope.get(_LIMIT_KEY) or small_body(settings)
    body = await read_body(request, limit, settings.http_body_timeout)
    return compat.request_params(
        request.scope.get("query_string", b""),
        request.headers.get("content-type"),
        body,
        shape(settings),
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
