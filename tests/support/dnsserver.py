"""A small authoritative DNS server on loopback (UDP, a free port), serving a test's records.

    with DnsServer({"example.test": [("MX", (10, "mx.example.test"))],
                    "mx.example.test": [("A", "127.0.0.2")]}) as dns:
        settings = Settings(dns_nameservers=["127.0.0.1"], dns_port=dns.port)

Records are ``(type, value)``: MX ``(preference, host)`` (host "." is a null MX), A and AAAA an
address, TXT a string. Names are case-insensitive, without the final dot. A name with no
entry answers NXDOMAIN; a known name without records of the asked type answers NOERROR with
no answer (NODATA). ``records`` may be changed while the server runs.
"""

from __future__ import annotations

import threading
from typing import Any

from dnslib import AAAA, MX, QTYPE, RCODE, RR, TXT, A, DNSLabel
from dnslib.server import BaseResolver, DNSServer

Records = dict[str, list[tuple[str, Any]]]


class _QuietLogger:
    def __getattr__(self, name: str) -> Any:
        return lambda *args, **kwargs: None


class _Zone(BaseResolver):  # type: ignore[misc]
    def __init__(self, records: Records) -> None:
        self.records = records

    def resolve(self, request: Any, handler: Any) -> Any:
        reply = request.reply()
        qname = str(request.q.qname).rstrip(".").lower()
        qtype = QTYPE[request.q.qtype]
        entries = self.records.get(qname)
        if entries is None:
            reply.header.rcode = RCODE.NXDOMAIN
            return reply
        for rtype, value in entries:
            if rtype.upper() != qtype:
                continue
            if qtype == "MX":
                preference, host = value
                rdata: Any = MX(DNSLabel(host if host != "." else []), preference)
            elif qtype == "A":
                rdata = A(value)
            elif qtype == "AAAA":
                rdata = AAAA(value)
            elif qtype == "TXT":
                rdata = TXT(value)
            else:
                continue
            reply.add_answer(RR(request.q.qname, getattr(QTYPE, qtype), rdata=rdata, ttl=60))
        return reply


class DnsServer:
    def __init__(self, records: Records | None = None, host: str = "127.0.0.1") -> None:
        self.records: Records = {k.lower(): v for k, v in (records or {}).items()}
        self.host = host
        self._server: DNSServer | None = None
        self.port = 0

    def start(self) -> DnsServer:
        self._server = DNSServer(
            _Zone(self.records), address=self.host, port=0, logger=_QuietLogger()
        )
        self.port = self._server.server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server.server.server_close()
            self._server = None

    def set(self, name: str, *records: tuple[str, Any]) -> None:
        self.records[name.lower()] = list(records)

    def __enter__(self) -> DnsServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
