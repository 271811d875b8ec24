"""One SMTP client session: connect, EHLO, STARTTLS, AUTH, then message after message.

:func:`open_session` tries the candidates in order until one greets us and completes EHLO
(and STARTTLS when offered or required, and AUTH when the relay has credentials).
:meth:`Session.send` runs one mail transaction — MAIL FROM, one RCPT TO per recipient, DATA
with the stored bytes exactly — and returns each recipient's reply:

* a reply to RCPT that is not 2xx belongs to that recipient alone;
* a reply to MAIL FROM or to DATA that is not 2xx belongs to every (remaining) recipient;
* a dropped connection or a timeout leaves every undecided recipient with no reply (code
  None), which classifies as deferred; the session is then dead.

After a failed transaction the session sends RSET so the next one starts clean; after a
successful DATA the transaction is already over (RFC 5321 §4.1.1.4), so no RSET is spent.

The message bytes are sent as stored (aiosmtplib only dot-stuffs, and turns lone CR or LF
into CRLF — stored messages are CRLF already); no trace header is added.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import ipaddress
import random
import ssl
from collections.abc import Sequence
from dataclasses import dataclass, field

import aiosmtplib
from aiosmtplib import SMTPException, SMTPResponseException, SMTPStatus

from mailpulse.config import Settings
from mailpulse.delivery.classify import parse_enhanced_status
from mailpulse.delivery.queue import ClaimedDelivery, StoredMessage
from mailpulse.delivery.routing import Candidate


@dataclass(frozen=True, slots=True)
class Reply:
    """What the server said; code None when it said nothing (refused, dropped, timed out)."""

    code: int | None
    subcode: str
    text: str

    @classmethod
    def of(cls, code: int, text: str) -> Reply:
        return cls(code, parse_enhanced_status(text), text)

    @classmethod
    def none(cls, text: str) -> Reply:
        return cls(None, "", text)


@dataclass(frozen=True, slots=True)
class Transaction:
    """One message to the recipients of one destination: one MAIL FROM … DATA."""

    message: StoredMessage
    deliveries: Sequence[ClaimedDelivery]


@dataclass(frozen=True, slots=True)
class SessionSettings:
    ehlo_name: str = "localhost"
    require_tls: bool = False
    connect_timeout: float = 30.0
    command_timeout: float = 60.0
    source_addresses: Sequence[str] = ()

    @classmethod
    def from_settings(cls, settings: Settings) -> SessionSettings:
        return cls(
            ehlo_name=settings.ehlo_name,
            require_tls=settings.require_tls,
            connect_timeout=settings.connect_timeout,
            command_timeout=settings.command_timeout,
            source_addresses=tuple(settings.source_addresses),
        )


class ConnectFailed(Exception):
    """No candidate would take a session; ``reply`` is the last one's answer.

    ``defer`` marks failures that must not bounce mail whatever the code (a relay refusing our
    credentials, TLS required but unavailable): the fault is ours, not the recipient's.
    """

    def __init__(self, reply: Reply, host: str, used_ip: str, *, defer: bool = False) -> None:
        super().__init__(reply.text)
        self.reply = reply
        self.host = host
        self.used_ip = used_ip
        self.defer = defer


@functools.cache
def _tls_context() -> ssl.SSLContext:
    """Opportunistic TLS checks no certificate, so no CA bundle is loaded (that took ~10 ms a
    connection); one context serves every session."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def _family(ip: str) -> int | None:
    try:
        return ipaddress.ip_address(ip).version
    except ValueError:
        return None


def _describe(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {text}" if text != type(exc).__name__ else text


@dataclass
class Session:
    smtp: aiosmtplib.SMTP
    candidate: Candidate
    used_ip: str
    command_timeout: float
    sent: int = 0
    alive: bool = True
    _needs_reset: bool = field(default=False, repr=False)

    @property
    def host(self) -> str:
        return self.candidate.host

    async def send(self, tx: Transaction) -> dict[int, Reply]:
        """Run one transaction; return the reply for each delivery id."""
        replies: dict[int, Reply] = {}
        smtp = self.smtp
        self.sent += 1
        try:
            if self._needs_reset:
                await smtp.rset()
                self._needs_reset = False
            options: list[str] = []
            raw = tx.message.raw
            if smtp.supports_extension("size"):
                options.append(f"SIZE={len(raw)}")
            if smtp.supports_extension("8bitmime") and not raw.isascii():
                options.append("BODY=8BITMIME")
            addresses = [tx.message.envelope_from, *(d.recipient for d in tx.deliveries)]
            encoding = "ascii"
            if not all(a.isascii() for a in addresses) and smtp.supports_extension("smtputf8"):
                options.append("SMTPUTF8")
                encoding = "utf-8"
            # MAIL and RCPT go out through execute_command: the addresses were validated on
            # the way in, and aiosmtplib's mail()/rcpt() would parse each one again.
            extra = [option.encode("ascii") for option in options]
            response = await smtp.execute_command(
                b"MAIL", b"FROM:<" + tx.message.envelope_from.encode(encoding) + b">", *extra
            )
            if response.code != SMTPStatus.completed:
                self._needs_reset = True
                reply = Reply.of(response.code, response.message)
                return {d.id: reply for d in tx.deliveries}
            accepted: list[ClaimedDelivery] = []
            for delivery in tx.deliveries:
                response = await smtp.execute_command(
                    b"RCPT", b"TO:<" + delivery.recipient.encode(encoding) + b">"
                )
                if response.code in (SMTPStatus.completed, SMTPStatus.will_forward):
                    accepted.append(delivery)
                else:
                    replies[delivery.id] = Reply.of(response.code, response.message)
            if not accepted:
                self._needs_reset = True
                return replies
            try:
                response = await smtp.data(raw)
            except aiosmtplib.SMTPDataError as exc:
                self._needs_reset = True
                reply = Reply.of(exc.code, exc.message)
            else:
                reply = Reply.of(response.code, response.message)
            for delivery in accepted:
                replies[delivery.id] = reply
            return replies
        except (SMTPException, OSError, TimeoutError) as exc:
            self.alive = False
            smtp.close()
            last = next((r for r in replies.values() if r.code == 421), None)
            text = f"connection to {self.host} [{self.candidate.ip}] lost: {_describe(exc)}"
            if last is not None:
                text = f"{text} (after: {last.code} {last.text})"
            lost = Reply.none(text)
            for delivery in tx.deliveries:
                replies.setdefault(delivery.id, lost)
            # A recipient accepted at RCPT was not delivered without DATA: defer it too.
            return {
                d.id: (replies[d.id] if replies[d.id].code not in range(200, 300) else lost)
                for d in tx.deliveries
            }
        finally:
            if not smtp.is_connected:
                self.alive = False

    async def close(self) -> None:
        if self.alive and self.smtp.is_connected:
            with contextlib.suppress(SMTPException, OSError, TimeoutError):
                await asyncio.wait_for(self.smtp.quit(), timeout=min(5.0, self.command_timeout))
        self.smtp.close()
        self.alive = False


def _source_for(ip: str, sources: Sequence[str], rng: random.Random) -> str | None:
    family = _family(ip)
    usable = [s for s in sources if family is None or _family(s) == family]
    return rng.choice(usable) if usable else None


async def _authenticate(smtp: aiosmtplib.SMTP, username: str, password: str) -> None:
    """AUTH PLAIN, or LOGIN, when offered (one try: a refusal is an answer, not a cue to
    try the next mechanism); otherwise whatever aiosmtplib finds."""
    methods = smtp.server_auth_methods
    if "plain" in methods:
        await smtp.auth_plain(username, password)
    elif "login" in methods:
        await smtp.auth_login(username, password)
    else:
        await smtp.login(username, password)


async def _connect_one(
    candidate: Candidate, config: SessionSettings, rng: random.Random, *, tls: bool
) -> Session:
    source = _source_for(candidate.ip, config.source_addresses, rng)
    smtp = aiosmtplib.SMTP(
        hostname=candidate.ip,
        port=candidate.port,
        local_hostname=config.ehlo_name,
        source_address=(source, 0) if source else None,
        timeout=config.command_timeout,
        use_tls=candidate.implicit_tls,
        start_tls=False,
        validate_certs=False,
        tls_context=_tls_context(),
    )
    used_ip = source or ""
    try:
        await smtp.connect(timeout=config.connect_timeout)
        sockname = smtp.get_transport_info("sockname")
        if sockname:
            used_ip = str(sockname[0])
        await smtp.ehlo()
        if tls and not candidate.implicit_tls and smtp.supports_extension("starttls"):
            await smtp.starttls(server_hostname=candidate.host, tls_context=_tls_context())
            await smtp.ehlo()
        elif config.require_tls and not candidate.implicit_tls:
            raise ConnectFailed(
                Reply(None, "4.7.10", f"{candidate.host} does not offer STARTTLS (TLS required)"),
                candidate.host,
                used_ip,
                defer=True,
            )
        if candidate.username is not None:
            try:
                await _authenticate(smtp, candidate.username, candidate.password or "")
            except SMTPResponseException as exc:
                raise ConnectFailed(
                    Reply.of(exc.code, exc.message), candidate.host, used_ip, defer=True
                ) from None
            except SMTPException as exc:
                raise ConnectFailed(
                    Reply.none(f"AUTH with {candidate.host} failed: {exc}"),
                    candidate.host,
                    used_ip,
                    defer=True,
                ) from None
    except ConnectFailed:
        smtp.close()
        raise
    except SMTPResponseException as exc:
        smtp.close()
        raise ConnectFailed(Reply.of(exc.code, exc.message), candidate.host, used_ip) from None
    except (SMTPException, OSError, TimeoutError, ssl.SSLError) as exc:
        smtp.close()
        raise ConnectFailed(
            Reply.none(f"connect to {candidate.host} [{candidate.ip}]: {_describe(exc)}"),
            candidate.host,
            used_ip,
        ) from None
    return Session(smtp, candidate, used_ip, config.command_timeout)


async def open_session(
    candidates: Sequence[Candidate], config: SessionSettings, rng: random.Random | None = None
) -> Session:
    """A ready session with the first candidate that takes one; else :class:`ConnectFailed`."""
    rng = rng or random.Random()
    failure: ConnectFailed | None = None
    for candidate in candidates:
        try:
            return await _connect_one(candidate, config, rng, tls=True)
        except ConnectFailed as exc:
            failure = exc
            # Opportunistic TLS that broke (handshake failure): try once more in the clear.
            if exc.reply.code is None and not exc.defer and not config.require_tls:
                tls_broke = "SSL" in exc.reply.text or "TLS" in exc.reply.text
                if tls_broke and not candidate.implicit_tls:
                    try:
                        return await _connect_one(candidate, config, rng, tls=False)
                    except ConnectFailed as again:
                        failure = again
    if failure is None:
        raise ConnectFailed(Reply(None, "4.4.3", "no host to connect to"), "", "")
    raise failure
