"""An SMTP sink on a loopback address (aiosmtpd, in its own thread) that records what it gets.

    with SmtpSink("127.0.0.2", port, behaviour={"bad@example.test": "550"}) as sink:
        ...
        sink.messages   # [Received(mail_from, rcpt_tos, data, session_id), ...]
        sink.connections

Behaviour per recipient (at RCPT TO unless said otherwise), default "250":

    "250"     accept
    "421"     421 4.3.2 and close the connection
    "451"     451 4.3.0 temporary failure
    "452"     452 4.2.2 mailbox full (temporary)
    "550"     550 5.1.1 user unknown
    "drop"    close the connection without a reply
    "data554" accept the recipient, then answer DATA with 554 5.7.1 (spam)
    "stall"   accept the recipient and the DATA content, then never answer (until the sink
              stops or ``unstall()``)
    "NNN …"   any other full reply ("550 5.7.1 blocked using Spamhaus") is answered verbatim

``implicit_tls=True`` speaks TLS from the first byte (smtps) with ``tls_context`` instead of
offering STARTTLS. ``smtputf8=False`` makes the sink not offer SMTPUTF8. ``data_delay``
(seconds) makes every DATA take that long before it is answered (the message is kept even
when the client is gone by then: a server that got the final dot has it).

``sender_behaviour`` does the same for MAIL FROM addresses ("550" → 550 5.7.1 sender rejected).
With ``tls_context`` the sink offers STARTTLS (see :func:`self_signed_context`); each
``Received`` says whether it came over TLS.

``data`` is exactly the bytes received after DATA, with the dot-stuffing undone (aiosmtpd keeps
the CRLF line endings and the final CRLF).
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import subprocess
import threading
import time
from dataclasses import dataclass
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword


@dataclass(frozen=True)
class Received:
    mail_from: str
    rcpt_tos: tuple[str, ...]
    data: bytes
    session_id: int
    peer: str
    tls: bool = False


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def self_signed_context(directory: str) -> ssl.SSLContext:
    """A server TLS context with a throwaway self-signed certificate (made with openssl)."""
    cert, key = f"{directory}/cert.pem", f"{directory}/key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=mx.example.test",
            "-keyout",
            key,
            "-out",
            cert,
        ],
        check=True,
        capture_output=True,
    )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return context


class _Handler:
    def __init__(self, sink: SmtpSink) -> None:
        self.sink = sink

    async def handle_EHLO(
        self, server: Any, session: Any, envelope: Any, hostname: str, responses: list[str]
    ) -> list[str]:
        session.host_name = hostname
        with self.sink.lock:
            self.sink.connections += 1
            self.sink.ehlo_names.append(hostname)
        return responses

    async def handle_MAIL(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        behaviour = self.sink.sender_behaviour.get(address, "250")
        if behaviour == "550":
            return "550 5.7.1 Sender address rejected: not allowed"
        if behaviour == "451":
            return "451 4.3.0 Sender temporarily rejected"
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 2.1.0 OK"

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        behaviour = self.sink.behaviour.get(address, "250")
        with self.sink.lock:
            self.sink.rcpt_seen.append(address)
        if behaviour == "421":
            transport = server.transport  # say it, then go away
            asyncio.get_running_loop().call_later(0.05, transport.close)
            return "421 4.3.2 Service shutting down, closing transmission channel"
        if behaviour == "451":
            return "451 4.3.0 Temporary local problem, try again later"
        if behaviour == "452":
            return "452 4.2.2 Mailbox full"
        if behaviour == "550":
            return f"550 5.1.1 <{address}>: Recipient address rejected: User unknown"
        if behaviour == "drop":
            server.transport.abort()
            return "421 dropped"  # never reaches the client
        if behaviour[:3].isdigit() and behaviour[3:4] == " ":
            return behaviour
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        behaviours = {self.sink.behaviour.get(r, "250") for r in envelope.rcpt_tos}
        if "data554" in behaviours:
            return "554 5.7.1 Message rejected as spam"
        if self.sink.data_delay:
            await asyncio.sleep(self.sink.data_delay)
        if "stall" in behaviours:
            with self.sink.lock:
                self.sink.stalled += 1
            while not self.sink.unstalled.is_set():
                await asyncio.sleep(0.02)
            if server.transport is None or server.transport.is_closing():
                return "451 4.3.0 gave up"
        with self.sink.lock:
            self.sink.messages.append(
                Received(
                    envelope.mail_from,
                    tuple(envelope.rcpt_tos),
                    bytes(envelope.original_content),
                    id(session),
                    str(session.peer[0]) if session.peer else "",
                    session.ssl is not None,
                )
            )
        return "250 2.0.0 Ok: queued as X"


class _Controller(Controller):  # type: ignore[misc]
    def __init__(self, sink: SmtpSink, **kwargs: Any) -> None:
        self.sink = sink
        super().__init__(_Handler(sink), **kwargs)

    def factory(self) -> SMTP:
        return SMTP(self.handler, **self.SMTP_kwargs)


class SmtpSink:
    def __init__(
        self,
        host: str = "127.0.0.2",
        port: int | None = None,
        *,
        behaviour: dict[str, str] | None = None,
        sender_behaviour: dict[str, str] | None = None,
        credentials: tuple[str, str] | None = None,
        tls_context: ssl.SSLContext | None = None,
        data_delay: float = 0.0,
        smtputf8: bool = True,
        implicit_tls: bool = False,
    ) -> None:
        self.host = host
        self.data_delay = data_delay
        self.smtputf8 = smtputf8
        self.implicit_tls = implicit_tls
        self.port = port or free_port(host)
        self.behaviour: dict[str, str] = dict(behaviour or {})
        self.sender_behaviour: dict[str, str] = dict(sender_behaviour or {})
        self.credentials = credentials
        self.tls_context = tls_context
        self.lock = threading.Lock()
        self.messages: list[Received] = []
        self.rcpt_seen: list[str] = []
        self.ehlo_names: list[str] = []
        self.connections = 0
        self.stalled = 0
        self.unstalled = threading.Event()
        self.auth_attempts: list[tuple[str, str]] = []
        self._controller: _Controller | None = None

    def _authenticate(
        self, server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
    ) -> AuthResult:
        if not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False)
        login = auth_data.login.decode()
        password = auth_data.password.decode()
        with self.lock:
            self.auth_attempts.append((login, password))
        return AuthResult(success=(login, password) == self.credentials, handled=False)

    def start(self) -> SmtpSink:
        kwargs: dict[str, Any] = {
            "hostname": self.host,
            "port": self.port,
            "enable_SMTPUTF8": self.smtputf8,
        }
        if self.credentials is not None:
            kwargs.update(
                authenticator=self._authenticate, auth_required=True, auth_require_tls=False
            )
        if self.tls_context is not None and self.implicit_tls:
            kwargs["ssl_context"] = self.tls_context  # TLS from the first byte (smtps)
        elif self.tls_context is not None:
            kwargs["tls_context"] = self.tls_context  # offers STARTTLS
        self._controller = _Controller(self, **kwargs)
        self._controller.start()
        # The controller's own readiness probe said EHLO? It does not, but be sure.
        time.sleep(0)
        with self.lock:
            self.connections = 0
            self.ehlo_names.clear()
        return self

    def stop(self) -> None:
        self.unstalled.set()
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def unstall(self) -> None:
        self.unstalled.set()

    def received_by(self, recipient: str) -> list[Received]:
        with self.lock:
            return [m for m in self.messages if recipient in m.rcpt_tos]

    def wait_for(self, predicate: Any, timeout: float = 10.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return True
            time.sleep(0.02)
        return False

    def __enter__(self) -> SmtpSink:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
