"""The HTTP server's protocol limits: slow and idle clients cannot hold the server.

uvicorn closes an idle keep-alive connection (``timeout_keep_alive``) and answers 503 beyond a
number of connections and requests (``limit_concurrency``), but it waits forever for a request
head: a client that connects and sends nothing, or one header byte a second, holds a connection
(and its memory) for as long as it likes, and a head of any size is buffered. So this module
runs uvicorn's httptools protocol with two additions:

- a **header timeout**: a request's line and headers must be complete within
  ``http_header_timeout`` seconds of the connection being made (or of the first byte of a later
  request on a kept-alive connection), else the connection is closed;
- a **header size limit**: more than ``http_max_header_bytes`` before the head is complete is
  answered 431 and the connection closed;
- a request answered before its body was all received (a 401 before the body, a 413) gets
  ``Connection: close``, and the connection is closed rather than kept to swallow the rest.

The body timeout is the app's (``api/deps.py``, a 408 in the SendPulse shape), and uvicorn's
503 beyond ``limit_concurrency`` is given the SendPulse shape too. :func:`uvicorn_options` is
what ``mailpulse serve`` / ``api`` pass to uvicorn, in one process or in several.
"""

from __future__ import annotations

import functools
from asyncio import TimerHandle
from dataclasses import dataclass
from typing import Any

from starlette.types import Receive, Scope, Send
from uvicorn.protocols.http.flow_control import service_unavailable
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from mailpulse.config import Settings


@dataclass(frozen=True)
class HttpLimits:
    header_timeout: float = 10.0
    max_header_bytes: int = 64 * 1024


def _raw_response(status: int, reason: str, error_code: int, message: str) -> bytes:
    body = b'{"error_code":%d,"message":"%s"}' % (error_code, message.encode("ascii"))
    return b"".join(
        [
            b"HTTP/1.1 %d %s\r\n" % (status, reason.encode("ascii")),
            b"content-type: application/json\r\n",
            b"content-length: %d\r\n" % len(body),
            b"connection: close\r\n\r\n",
            body,
        ]
    )


_HEADERS_TOO_LARGE = _raw_response(
    431, "Request Header Fields Too Large", 431, "Request headers too large"
)


async def _over_capacity(scope: Scope, receive: Receive, send: Send) -> None:
    """uvicorn's 503 beyond ``limit_concurrency``, in the SendPulse shape."""
    body = b'{"error_code":503,"message":"Server busy: too many connections, try again"}'
    await send(
        {
            "type": "http.response.start",
            "status": 503,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode("ascii")),
                (b"connection", b"close"),
                (b"retry-after", b"1"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body, "more_body": False})


class LimitedHttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a header timeout and a header size limit.

    It hooks uvicorn 0.54's protocol at its documented asyncio callbacks and at the parser
    callbacks it already implements (``on_message_begin``, ``on_headers_complete``), and at
    ``_start_asgi_task`` to swap the 503 app and to close after an early answer;
    tests/api/test_slow_clients.py checks each.
    """

    def __init__(self, *args: Any, limits: HttpLimits = HttpLimits(), **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.limits = limits
        self.head_timer: TimerHandle | None = None
        self.in_head = False
        self.head_bytes = 0

    # -- the head timer: armed at connect and when a request begins, cancelled when its head
    #    is complete or the connection goes.
    def _arm_head_timer(self) -> None:
        if self.head_timer is None:
            self.head_timer = self.loop.call_later(self.limits.header_timeout, self._head_timed_out)

    def _cancel_head_timer(self) -> None:
        if self.head_timer is not None:
            self.head_timer.cancel()
            self.head_timer = None

    def _head_timed_out(self) -> None:
        self.head_timer = None
        if not self.transport.is_closing():
            self.transport.close()

    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)
        self._arm_head_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_head_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self.in_head:
            # Counted after feeding so that a head completed in this chunk (followed by a
            # large body) is not refused; the parser buffers at most one chunk too many.
            self.head_bytes += len(data)
            if self.head_bytes > self.limits.max_header_bytes and not self.transport.is_closing():
                self._cancel_head_timer()
                self.transport.write(_HEADERS_TOO_LARGE)
                self.transport.close()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self.in_head = True
        self.head_bytes = 0
        self._arm_head_timer()

    def on_headers_complete(self) -> None:
        self.in_head = False
        self._cancel_head_timer()
        super().on_headers_complete()

    def _start_asgi_task(self, cycle: Any, app: Any) -> None:
        if app is service_unavailable:
            app = _over_capacity
        super()._start_asgi_task(cycle, _closing_if_answered_early(app, cycle))


def _closing_if_answered_early(app: Any, cycle: Any) -> Any:
    """An answer that starts before the request's body has all arrived (a 401, 404 or 413 that
    did not read it) says ``Connection: close`` and closes the connection after it: otherwise
    the rest of the body would be read and dropped for as long as the client cares to trickle
    it, each byte putting off the keep-alive timeout. (Closing without saying so would make
    the client's next request on the connection fail.)"""

    async def guarded(scope: Scope, receive: Receive, send: Send) -> None:
        async def guarded_send(message: Any) -> None:
            if message["type"] == "http.response.start" and cycle.more_body:
                cycle.keep_alive = False  # uvicorn adds "connection: close" and closes after
            await send(message)

        await app(scope, receive, guarded_send)

    return guarded


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    """The uvicorn.run / uvicorn.Config options that carry the HTTP limits.

    The protocol factory is a ``functools.partial`` of a module-level class, so it pickles into
    the worker processes of a multi-process server.
    """
    limits = HttpLimits(
        header_timeout=settings.http_header_timeout,
        max_header_bytes=settings.http_max_header_bytes,
    )
    return {
        "http": functools.partial(LimitedHttpProtocol, limits=limits),
        "timeout_keep_alive": settings.http_keep_alive_timeout,
        "limit_concurrency": settings.http_max_connections,
    }
