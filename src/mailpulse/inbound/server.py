"""The bounce receiver's SMTP server (aiosmtpd), on its own port, in the process's event loop.

It accepts mail only for the addresses of the bounce domain that name something
(inbound/addresses.py: ``bounce+<token>``, ``unsubscribe+<token>``, ``fbl``) and refuses
every other recipient at RCPT with ``550 5.1.1`` — among them every address whose token does
not verify (a forged or altered token never gets as far as DATA, and is logged) — so it is no
relay. No AUTH is offered (aiosmtpd offers it only over TLS, which this server does not
speak), a message is at most :data:`MAX_REPORT_BYTES` (then ``552``), a message has at most
:data:`MAX_RECIPIENTS` recipients (then ``452``), a process serves at most
:data:`MAX_CONNECTIONS` connections at once (then ``421``) and an idle connection is closed
after :data:`IDLE_SECONDS`.

A message is answered ``250`` once what it means is committed (inbound/apply.py); while the
store is unavailable, ``451`` (the reporting server tries again later). A message that means
nothing (an out-of-office reply at a return path) is accepted and dropped, with a log line.
"""

from __future__ import annotations

import asyncio
import contextlib
import email
import email.policy
import logging
from collections.abc import Callable
from typing import Any, Final

from aiosmtpd.smtp import SMTP

from mailpulse.core.clock import Clock
from mailpulse.core.errors import StoreUnavailable
from mailpulse.inbound import apply, report
from mailpulse.inbound.addresses import Addresses, Target
from mailpulse.store.db import Database

log = logging.getLogger(__name__)

MAX_REPORT_BYTES: Final = 1024 * 1024
MAX_RECIPIENTS: Final = 10
MAX_CONNECTIONS: Final = 100
IDLE_SECONDS: Final = 60.0
STOP_SECONDS: Final = 2.0
TRY_LATER: Final = "451 4.3.0 Temporarily unable to accept the report, try again later"
#: aiosmtpd keeps what a session accepted on the envelope; the targets go beside it
_TARGETS = "mailpulse_targets"


class Handler:
    """aiosmtpd's handler: RCPT decides, DATA reads the report and applies it."""

    def __init__(self, db: Database, addresses: Addresses, clock: Clock) -> None:
        self.db = db
        self.addresses = addresses
        self.clock = clock

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        targets: list[Target] = getattr(envelope, _TARGETS, [])
        if len(targets) >= MAX_RECIPIENTS:
            return "452 4.5.3 Too many recipients"
        target = self.addresses.target(address)
        if target is None:
            log.info("bounce receiver: refused RCPT %s (no such address here)", _shown(address))
            return "550 5.1.1 No such recipient here"
        targets.append(target)
        setattr(envelope, _TARGETS, targets)
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(options)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        targets: list[Target] = getattr(envelope, _TARGETS, [])
        raw = envelope.original_content or envelope.content or b""
        raw = raw if isinstance(raw, bytes) else str(raw).encode("utf-8", "surrogateescape")
        mail_from = str(envelope.mail_from or "")
        try:
            message = await asyncio.to_thread(
                email.message_from_bytes, raw, policy=email.policy.compat32
            )
            actions = report.read(message, mail_from, targets, self.addresses)
            now = self.clock.now()
            lines = await self.db.write(lambda conn: apply.apply(conn, actions, now))
        except StoreUnavailable as exc:
            log.warning("bounce receiver: store unavailable (%s); report deferred", exc)
            return TRY_LATER
        except Exception:  # a bug: said, and the reporting server tries again later
            log.exception("bounce receiver: a report from %s failed", _shown(mail_from or "<>"))
            return TRY_LATER
        for line in lines:
            log.info("bounce receiver: %s", line)
        return "250 2.0.0 Report accepted"


def _shown(address: str) -> str:
    """An address for the log: its local part's first characters and its domain."""
    local, _, domain = address.strip("<>").rpartition("@")
    return f"{local[:16]}…@{domain}" if len(local) > 16 else f"{local}@{domain}"


class _Session(SMTP):
    """aiosmtpd's protocol, telling the receiver when its connection ends."""

    def __init__(self, *args: Any, on_lost: Callable[[], None], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._on_lost = on_lost

    def connection_lost(self, exc: Exception | None) -> None:
        try:
            super().connection_lost(exc)
        finally:
            self._on_lost()


class _Busy(asyncio.Protocol):
    """Past the connection limit: say so and hang up."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.WriteTransport)
        transport.write(b"421 4.3.2 Too many connections, try again later\r\n")
        transport.close()


class BounceReceiver:
    """The listening server; :meth:`start` binds, :meth:`stop` closes."""

    def __init__(
        self,
        db: Database,
        addresses: Addresses,
        clock: Clock,
        host: str,
        port: int,
    ) -> None:
        self.handler = Handler(db, addresses, clock)
        self.domain = addresses.domain
        self.host = host
        self.port = port
        self.connections = 0
        self._server: asyncio.base_events.Server | None = None

    def _protocol(self) -> asyncio.Protocol:
        if self.connections >= MAX_CONNECTIONS:
            return _Busy()
        self.connections += 1
        return _Session(
            self.handler,
            on_lost=self._lost,
            hostname=self.domain,
            ident="mailpulse bounce receiver",
            data_size_limit=MAX_REPORT_BYTES,
            enable_SMTPUTF8=True,
            decode_data=False,
            timeout=IDLE_SECONDS,
            loop=asyncio.get_running_loop(),
        )

    def _lost(self) -> None:
        self.connections -= 1

    async def start(self) -> None:
        """Bind and listen (raises OSError when the address cannot be had)."""
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(self._protocol, self.host, self.port)
        sockets = self._server.sockets
        if self.port == 0 and sockets:
            self.port = int(sockets[0].getsockname()[1])

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            # newer Pythons wait here for open sessions too: bounded (they are dropped)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._server.wait_closed(), timeout=STOP_SECONDS)
            self._server = None

    def where(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"smtp://{host}:{self.port} for {self.domain}"
