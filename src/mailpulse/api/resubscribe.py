"""Resubscribe: ``POST /smtp/resubscribe`` and the pages of the link its confirmation carries.

``GET /resubscribe/<token>`` shows a page with a button and changes nothing, so that link
scanners and mail-client previews, which only GET, never take anyone off a list;
``POST /resubscribe/<token>`` (the button, or any POST) takes the address off the account's
suppression list. The pages are public, do constant work (one signature check, one indexed
read or one short transaction) and are never a redirect: a link that is not ours is 404, a
used or expired one is 410. They speak the language the confirmation was sent in.
"""

from __future__ import annotations

import html

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from mailpulse.api.deps import (
    authenticated,
    client_ip,
    link_page_body,
    params,
    public,
    read_body,
    resubscribe_body,
    runtime,
)
from mailpulse.api.json import JSONResponse
from mailpulse.core.errors import RETRY_AFTER_SECONDS, StoreUnavailable
from mailpulse.core.resubscribe import Link, LinkState
from mailpulse.mime import confirmation


async def resubscribe(request: Request, account: int) -> Response:
    body = await params(request)
    rt = runtime(request)
    public_id = await rt.resubscriber.resubscribe(account, body, client_ip(request))
    return JSONResponse({"result": True, "id": public_id})


async def link_page(request: Request) -> Response:
    """The link's landing page: what it would do, and a button to do it."""
    return await _page(request, follow=False)


async def follow_link(request: Request) -> Response:
    """The button: takes the address off the list (once, while the link is valid)."""
    return await _page(request, follow=True)


async def _page(request: Request, *, follow: bool) -> Response:
    rt = runtime(request)
    limit = link_page_body(rt.settings)
    await read_body(request, limit, rt.settings.http_body_timeout)  # nothing in it is used
    token = str(request.path_params["token"])
    try:
        if follow:
            found = await rt.resubscriber.follow_link(token)
        else:
            found = await rt.resubscriber.open_link(token)
    except StoreUnavailable:
        return _html(UNAVAILABLE, 503, headers={"Retry-After": str(RETRY_AFTER_SECONDS)})
    if found is None:
        return _html(NOT_FOUND, 404)
    link, state = found
    return _answer(link, state, follow=follow)


# -- the pages -----------------------------------------------------------------------------------
# Nothing but inline styles; the page's own form is the one place it may send anything.
CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; base-uri 'none'; "
    "frame-ancestors 'none'"
)
_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",  # the token is in the URL
    "X-Robots-Tag": "noindex, nofollow",
}
_LAYOUT = """<!DOCTYPE html>
<html lang="{lang}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex, nofollow">
<title>{title}</title>
</head>
<body style="font-family: Arial, Helvetica, sans-serif; line-height: 1.5; color: #222; \
max-width: 36em; margin: 3em auto; padding: 0 1em;">
<h1 style="font-size: 1.4em;">{title}</h1>
{body}
</body>
</html>
"""
_BUTTON = (
    '<form method="post"><button type="submit" style="padding: 10px 18px; font-size: 1em; '
    'background: #1a73e8; color: #fff; border: 0; border-radius: 4px; cursor: pointer;">'
    "{label}</button></form>"
)
NOT_FOUND = ("Link not valid", "This link is not valid.")
UNAVAILABLE = ("Try again", "This page is not available right now. Please try again in a moment.")


def _answer(link: Link, state: LinkState, *, follow: bool) -> Response:
    text = confirmation.page(link.lang, email=link.ref.email, sender=link.sender)
    if state is LinkState.USED:
        return _html((text.title, text.used), 410, lang=_html_lang(link.lang))
    if state is LinkState.EXPIRED:
        return _html((text.title, text.expired), 410, lang=_html_lang(link.lang))
    if follow:
        return _html((text.title, text.done), 200, lang=_html_lang(link.lang))
    button = _BUTTON.format(label=html.escape(text.button))
    return _html((text.title, text.question), 200, lang=_html_lang(link.lang), extra=button)


def _html_lang(lang: str) -> str:
    return "uk" if lang == "ua" else lang  # SendPulse's "ua" is ISO 639-1 "uk"


def _html(
    content: tuple[str, str],
    status: int,
    *,
    lang: str = "en",
    extra: str = "",
    headers: dict[str, str] | None = None,
) -> Response:
    title, message = content
    body = f"<p>{html.escape(message)}</p>\n{extra}".rstrip()
    page = _LAYOUT.format(lang=lang, title=html.escape(title), body=body)
    return HTMLResponse(page, status_code=status, headers={**_HEADERS, **(headers or {})})


ROUTES = [
    authenticated("/smtp/resubscribe", resubscribe, method="POST", body=resubscribe_body),
    public("/resubscribe/{token}", link_page, method="GET", body=link_page_body),
    public("/resubscribe/{token}", follow_link, method="POST", body=link_page_body),
]
