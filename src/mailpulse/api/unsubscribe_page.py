"""The public one-click unsubscribe pages behind every List-Unsubscribe link (no login).

    GET  /unsubscribe/{token}   a small page with a button; unsubscribes nobody
    POST /unsubscribe/{token}   unsubscribes at once (RFC 8058 one-click, or the page's button)

Link scanners and previewers follow links with GET, so a GET must never unsubscribe: it only
shows the page, whose button POSTs to the same URL. A mail provider's one-click POST
(``List-Unsubscribe=One-Click``) and the button's POST do the same thing, so the body is not
read for meaning, only within its 1 KiB limit. A token that does not verify is a 404 page (never
a redirect, never a hint why). Work is constant: one token check, and for the POST one upsert
on the suppression list (``unsubscribe_by_link=1``). Everything shown is HTML-escaped, and the
pages forbid scripts, framing, caching and referrers.
"""

from __future__ import annotations

import html
import logging
from datetime import datetime
from typing import Final

import sqlalchemy as sa
from sqlalchemy import Connection
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from mailpulse.api.deps import body_of, page_body, public, runtime
from mailpulse.core import unsubscribe
from mailpulse.store import suppression
from mailpulse.store.suppression import Suppress
from mailpulse.store.tables import accounts

log = logging.getLogger(__name__)

HEADERS: Final = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "X-Robots-Tag": "noindex, nofollow",
}

_PAGE: Final = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex, nofollow">
<title>{title}</title>
<style>
body {{ font-family: system-ui, sans-serif; max-width: 32rem; margin: 4rem auto;
  padding: 0 1rem; color: #222; }}
button {{ font-size: 1rem; padding: .6rem 1.2rem; cursor: pointer; }}
</style>
</head>
<body>
<h1>{title}</h1>
{body}
</body>
</html>
"""


def page(title: str, body_html: str, status: int = 200) -> HTMLResponse:
    """A page; ``body_html`` is already escaped by the caller."""
    text = _PAGE.format(title=html.escape(title), body=body_html)
    return HTMLResponse(text, status_code=status, headers=HEADERS)


def not_found() -> HTMLResponse:
    return page(
        "Link not valid",
        "<p>This unsubscribe link is not valid. Please use the link from the message itself.</p>",
        404,
    )


async def confirm(request: Request) -> Response:
    """GET: the confirmation page; nothing is written."""
    await body_of(request)
    found = unsubscribe.read(runtime(request).links, str(request.path_params["token"]))
    if found is None:
        return not_found()
    return page(
        "Unsubscribe",
        f"<p>Stop sending mail to <strong>{html.escape(found.email)}</strong>?</p>\n"
        '<form method="post">\n'
        '<input type="hidden" name="List-Unsubscribe" value="One-Click">\n'
        '<button type="submit">Unsubscribe</button>\n'
        "</form>",
    )


def _unsubscribe(conn: Connection, found: unsubscribe.Unsubscribe, now: datetime) -> bool:
    """Put the address on the account's list; False if the account is gone."""
    exists = conn.execute(sa.select(accounts.c.id).where(accounts.c.id == found.account_id))
    if exists.first() is None:
        return False
    entry = Suppress(found.email, unsubscribe_by_link=True)
    suppression.add(conn, found.account_id, [entry], now)
    return True


async def one_click(request: Request) -> Response:
    """POST: unsubscribe at once (RFC 8058), then say so."""
    await body_of(request)
    rt = runtime(request)
    found = unsubscribe.read(rt.links, str(request.path_params["token"]))
    if found is None:
        return not_found()
    now = rt.clock.now()
    if not await rt.db.write(lambda conn: _unsubscribe(conn, found, now)):
        return not_found()
    log.info(
        "recipient unsubscribed by link, suppressing: account %d, delivery %s, %s",
        found.account_id,
        found.delivery,
        found.email,
    )
    return page(
        "Unsubscribed",
        f"<p><strong>{html.escape(found.email)}</strong> will get no more of these messages.</p>",
    )


ROUTES = [
    public("/unsubscribe/{token}", confirm, body=page_body, method="GET"),
    public("/unsubscribe/{token}", one_click, body=page_body, method="POST"),
]
