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

Addresses go out with their domains as IDNA A-labels. An address whose local part is not
ASCII needs SMTPUTF8; to a server without it, that recipient alone bounces (553 5.6.7).

TLS. MX hosts: STARTTLS whenever offered, the certificate not verified (opportunistic TLS,
RFC 7435 — there is no name to verify an MX against without DANE or MTA-STS); a broken
handshake is retried in the clear unless ``require_tls``. The relay: its certificate chain
and host name are verified (``relay_tls_verify``, against ``relay_ca_file`` or the system
store and certifi); a failed verification defers the mail and is never retried in the clear.
Credentials are sent only over a verified TLS connection, or to a relay on loopback
(:func:`auth_refusal`); otherwise the session is refused and the mail deferred.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import ipaddress
import logging
import random
import ssl
from collections.abc import Sequence
from dataclasses import dataclass, field

import aiosmtplib
from aiosmtplib import SMTPException, SMTPResponseException, SMTPStatus

from mailpulse.config import Settings
from mailpulse.delivery.classify import parse_enhanced_status
from mailpulse.delivery.queue import ClaimedDelivery, StoredMessage
from mailpulse.delivery.routing import Candidate, ascii_domain

log = logging.getLogger(__name__)


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


@functools.cache
def _verifying_context(ca_file: str) -> ssl.SSLContext:
    """Chain and host name checked: against ``ca_file``, or the system store plus certifi."""
    if ca_file:
        return ssl.create_default_context(cafile=ca_file)
    context = ssl.create_default_context()
    try:
        import certifi
    except ImportError:  # certifi is optional: the system store alone
        return context
    context.load_verify_locations(cafile=certifi.where())
    return context


def _candidate_tls(candidate: Candidate) -> ssl.SSLContext:
    return _verifying_context(candidate.ca_file) if candidate.verify_tls else _tls_context()


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback IP literals (a name's DNS answer is not trusted)."""
    if host.lower().rstrip(".") == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def auth_refusal(host: str, *, tls: bool, verified: bool) -> str | None:
    """Why credentials must not be sent to relay ``host`` on this connection; None if they may.

    They may over TLS whose certificate and host name were verified, or to a relay on
    loopback (the traffic never leaves the machine); never in the clear or over unverified
    TLS to anywhere else.
    """
    if verified and tls:
        return None
    if is_loopback(host):
        return None
    if not tls:
        return (
            f"refusing to send credentials to relay {host} in the clear "
            "(it offers no STARTTLS and is not on loopback)"
        )
    return (
        f"refusing to send credentials to relay {host} over TLS whose certificate was not "
        "verified (relay_tls_verify is off and the relay is not on loopback)"
    )


def wire_address(address: str, smtputf8: bool) -> bytes | None:
    """The address as sent in MAIL/RCPT: domain as A-labels; None when it cannot be sent
    (a non-ASCII local part to a server without SMTPUTF8, or an invalid domain)."""
    if address.isascii():
        return address.encode("ascii")
    local, _, domain = address.rpartition("@")
    try:
        domain = ascii_domain(domain)
    except ValueError:
        return None
    if local.isascii():
        return f"{local}@{domain}".encode("ascii")
    return f"{local}@{domain}".encode() if smtputf8 else None


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
            sender = tx.message.envelope_from
            wire: dict[int, bytes | None] = {}
            if sender.isascii() and all(d.recipient.isascii() for d in tx.deliveries):
                mail_from: bytes | None = sender.encode("ascii")
            else:
                utf8 = smtp.supports_extension("smtputf8")
                mail_from = wire_address(sender, utf8)
                wire = {d.id: wire_address(d.recipient, utf8) for d in tx.deliveries}
                encoded = [mail_from, *wire.values()]
                if utf8 and any(w is not None and not w.isascii() for w in encoded):
                    options.append("SMTPUTF8")
            if mail_from is None:
                reply = _unsendable(sender, self.host)
                return {d.id: reply for d in tx.deliveries}
            # MAIL and RCPT go out through execute_command: the addresses were validated on
            # the way in, and aiosmtplib's mail()/rcpt() would parse each one again.
            extra = [option.encode("ascii") for option in options]
            response = await smtp.execute_command(b"MAIL", b"FROM:<" + mail_from + b">", *extra)
            if response.code != SMTPStatus.completed:
                self._needs_reset = True
                reply = Reply.of(response.code, response.message)
                return {d.id: reply for d in tx.deliveries}
            accepted: list[ClaimedDelivery] = []
            for delivery in tx.deliveries:
                address = wire[delivery.id] if wire else delivery.recipient.encode("ascii")
                if address is None:  # this recipient alone cannot be sent to this server
                    replies[delivery.id] = _unsendable(delivery.recipient, self.host)
                    continue
                response = await smtp.execute_command(b"RCPT", b"TO:<" + address + b">")
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


def _unsendable(address: str, host: str) -> Reply:
    text = (
        f"5.6.7 {address} cannot be sent to {host}: a non-ASCII local part needs SMTPUTF8, "
        "which it does not offer (or the domain is not valid IDNA)"
    )
    return Reply(553, "5.6.7", text)


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


def _deferral(candidate: Candidate, used_ip: str, subcode: str, text: str) -> ConnectFailed:
    return ConnectFailed(Reply(None, subcode, text), candidate.host, used_ip, defer=True)


async def _connect_one(
    candidate: Candidate, config: SessionSettings, rng: random.Random, *, tls: bool
) -> Session:
    source = _source_for(candidate.ip, config.source_addresses, rng)
    context = _candidate_tls(candidate)
    smtp = aiosmtplib.SMTP(
        hostname=candidate.ip,
        port=candidate.port,
        local_hostname=config.ehlo_name,
        source_address=(source, 0) if source else None,
        timeout=config.command_timeout,
        use_tls=candidate.implicit_tls,
        start_tls=False,
        validate_certs=candidate.verify_tls,
        tls_context=context,
    )
    used_ip = source or ""
    secure = candidate.implicit_tls
    try:
        await smtp.connect(timeout=config.connect_timeout)
        sockname = smtp.get_transport_info("sockname")
        if sockname:
            used_ip = str(sockname[0])
        await smtp.ehlo()
        if tls and not candidate.implicit_tls and smtp.supports_extension("starttls"):
            await smtp.starttls(server_hostname=candidate.host, tls_context=context)
            await smtp.ehlo()
            secure = True
        elif config.require_tls and not candidate.implicit_tls:
            raise _deferral(
                candidate,
                used_ip,
                "4.7.10",
                f"{candidate.host} does not offer STARTTLS (TLS required)",
            )
        if candidate.username is not None:
            refusal = auth_refusal(candidate.host, tls=secure, verified=candidate.verify_tls)
            if refusal is not None:
                log.warning("relay %s: %s; mail deferred", candidate.host, refusal)
                raise _deferral(candidate, used_ip, "4.7.0", refusal)
            try:
                await _authenticate(smtp, candidate.username, candidate.password or "")
            except SMTPResponseException as exc:
                raise ConnectFailed(
                    Reply.of(exc.code, exc.message), candidate.host, used_ip, defer=True
                ) from None
            except SMTPException as exc:
                raise _deferral(
                    candidate, used_ip, "", f"AUTH with {candidate.host} failed: {exc}"
                ) from None
    except ConnectFailed:
        smtp.close()
        raise
    except SMTPResponseException as exc:
        smtp.close()
        raise ConnectFailed(Reply.of(exc.code, exc.message), candidate.host, used_ip) from None
    except (SMTPException, OSError, TimeoutError, ssl.SSLError) as exc:
        smtp.close()
        if candidate.verify_tls and _tls_failure(exc):
            # never retried in the clear: a relay that fails verification may be an impostor
            text = f"TLS with relay {candidate.host} failed verification: {_describe(exc)}"
            log.warning("%s; mail deferred", text)
            raise _deferral(candidate, used_ip, "4.7.5", text) from None
        raise ConnectFailed(
            Reply.none(f"connect to {candidate.host} [{candidate.ip}]: {_describe(exc)}"),
            candidate.host,
            used_ip,
        ) from None
    return Session(smtp, candidate, used_ip, config.command_timeout)


def _tls_failure(exc: BaseException) -> bool:
    """True when ``exc`` (or what caused it) is a TLS error, e.g. a failed verification."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLError) or "certificate" in str(seen).lower():
            return True
        seen = seen.__cause__ or seen.__context__
    return False


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
