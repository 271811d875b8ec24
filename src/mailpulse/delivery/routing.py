"""Where mail for a domain goes: its MX hosts (RFC 5321 §5.1), or the configured relay.

MX mode asks DNS (dnspython's async resolver, pointed at ``dns_nameservers``:``dns_port``
when configured) and returns the (host, ip) pairs to try, in order: MX preference ascending,
equal preferences shuffled, each host's IPv6 then IPv4 addresses. No MX record means the
domain itself is the host (its A/AAAA); a domain that does not exist, or publishes a null MX
(RFC 7505), cannot receive mail at all: that is a permanent :class:`RoutingError`. DNS trouble
(timeouts, SERVFAIL) is a temporary one.

Relay mode (``relay = smtp://[user:pass@]host:port`` or ``smtps://`` for implicit TLS) sends
every domain to that one host.
"""

from __future__ import annotations

import asyncio
import ipaddress
import random
from dataclasses import dataclass
from typing import Final
from urllib.parse import unquote, urlsplit

import dns.asyncresolver
import dns.exception
import dns.name
import dns.rdatatype
import dns.resolver

from mailpulse.config import Settings

MAX_CANDIDATES: Final = 10
RELAY_DESTINATION: Final = "relay"


@dataclass(frozen=True, slots=True)
class Candidate:
    """One address to try for a destination."""

    host: str  # the MX host name (or relay host), for the attempt record and TLS SNI
    ip: str  # what to connect to: an IP in MX mode, the relay's host as configured otherwise
    port: int
    implicit_tls: bool = False
    username: str | None = None
    password: str | None = None


@dataclass(frozen=True, slots=True)
class Relay:
    host: str
    port: int
    implicit_tls: bool
    username: str | None
    password: str | None


class RoutingError(Exception):
    """No host to try. ``permanent`` failures bounce; the others defer."""

    def __init__(self, permanent: bool, subcode: str, text: str) -> None:
        super().__init__(text)
        self.permanent = permanent
        self.subcode = subcode
        self.text = text


def parse_relay(url: str) -> Relay | None:
    """``smtp://[user:pass@]host[:port]`` (port 25) or ``smtps://…`` (port 465); "" is None."""
    if not url:
        return None
    parts = urlsplit(url)
    if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
        raise ValueError(f"relay must be smtp://[user:pass@]host:port or smtps://…, not {url!r}")
    implicit_tls = parts.scheme == "smtps"
    return Relay(
        host=parts.hostname,
        port=parts.port or (465 if implicit_tls else 25),
        implicit_tls=implicit_tls,
        username=unquote(parts.username) if parts.username is not None else None,
        password=unquote(parts.password) if parts.password is not None else None,
    )


def make_resolver(settings: Settings) -> dns.asyncresolver.Resolver:
    if settings.dns_nameservers:
        resolver = dns.asyncresolver.Resolver(configure=False)
        resolver.nameservers = list(settings.dns_nameservers)
        resolver.port = settings.dns_port
    else:
        resolver = dns.asyncresolver.Resolver()
    resolver.lifetime = min(10.0, settings.connect_timeout)
    resolver.timeout = min(3.0, resolver.lifetime)
    resolver.cache = dns.resolver.LRUCache(10_000)
    return resolver


def _family(ip: str) -> int:
    return ipaddress.ip_address(ip).version


class Router:
    """Turns a recipient domain into the candidates to try."""

    def __init__(
        self,
        settings: Settings,
        *,
        rng: random.Random | None = None,
        resolver: dns.asyncresolver.Resolver | None = None,
    ) -> None:
        self.relay = parse_relay(settings.relay)
        self.port = settings.mx_port
        self._rng = rng or random.Random()
        self._resolver = resolver or make_resolver(settings)
        families = {_family(ip) for ip in settings.source_addresses}
        self._families = families or {4, 6}

    def destination(self, domain: str) -> str:
        """The key under which deliveries share sessions: the domain, or the relay."""
        return RELAY_DESTINATION if self.relay else domain.lower()

    async def route(self, domain: str) -> list[Candidate]:
        relay = self.relay
        if relay is not None:
            return [
                Candidate(
                    relay.host,
                    relay.host,
                    relay.port,
                    relay.implicit_tls,
                    relay.username,
                    relay.password,
                )
            ]
        return await self._mx_route(domain.lower().rstrip("."))

    async def _mx_route(self, domain: str) -> list[Candidate]:
        try:
            answer = await self._resolver.resolve(domain, "MX", raise_on_no_answer=False)
        except dns.resolver.NXDOMAIN:
            text = f"domain {domain} does not exist (NXDOMAIN)"
            raise RoutingError(True, "5.1.2", text) from None
        except dns.exception.DNSException as exc:
            text = f"DNS lookup of MX for {domain} failed: {exc}"
            raise RoutingError(False, "4.4.3", text) from None
        records = [(int(r.preference), r.exchange) for r in answer] if answer.rrset else []
        if records:
            if all(exchange == dns.name.root for _, exchange in records):
                raise RoutingError(
                    True, "5.1.10", f"domain {domain} accepts no mail (null MX, RFC 7505)"
                )
            hosts = self._order(
                [
                    (pref, exchange.to_text(omit_final_dot=True).lower())
                    for pref, exchange in records
                    if exchange != dns.name.root
                ]
            )
            implicit = False
        else:
            hosts = [domain]
            implicit = True
        candidates: list[Candidate] = []
        for host, ips in zip(
            hosts, await asyncio.gather(*(self._addresses(h) for h in hosts)), strict=True
        ):
            candidates.extend(Candidate(host, ip, self.port) for ip in ips)
        if not candidates:
            if implicit:
                raise RoutingError(
                    True, "5.1.2", f"domain {domain} has no MX and no address records"
                )
            raise RoutingError(False, "4.4.3", f"no address for the MX hosts of {domain}")
        return candidates[:MAX_CANDIDATES]

    def _order(self, records: list[tuple[int, str]]) -> list[str]:
        by_pref: dict[int, list[str]] = {}
        for pref, host in records:
            by_pref.setdefault(pref, []).append(host)
        ordered: list[str] = []
        for pref in sorted(by_pref):
            group = by_pref[pref]
            self._rng.shuffle(group)
            ordered.extend(h for h in group if h not in ordered)
        return ordered

    async def _addresses(self, host: str) -> list[str]:
        """The host's IPv6 then IPv4 addresses (those we have a source address for)."""
        try:
            ipaddress.ip_address(host)
        except ValueError:
            pass
        else:
            return [host] if _family(host) in self._families else []
        wanted = [(6, "AAAA"), (4, "A")]
        lookups = [self._lookup(host, rdtype) for fam, rdtype in wanted if fam in self._families]
        found: list[str] = []
        for ips in await asyncio.gather(*lookups):
            found.extend(ips)
        return found

    async def _lookup(self, host: str, rdtype: str) -> list[str]:
        try:
            answer = await self._resolver.resolve(host, rdtype, raise_on_no_answer=False)
        except dns.exception.DNSException:
            return []
        return [r.to_text() for r in answer] if answer.rrset else []
