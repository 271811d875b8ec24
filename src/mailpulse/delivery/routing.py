"""Where mail for a domain goes: its MX hosts (RFC 5321 §5.1), or the configured relay.

MX mode asks DNS (dnspython's async resolver, pointed at ``dns_nameservers``:``dns_port``
when configured) and returns the (host, ip) pairs to try, in order: MX preference ascending,
equal preferences shuffled, each host's IPv6 then IPv4 addresses. No MX record means the
domain itself is the host (its A/AAAA); a domain that does not exist, or publishes a null MX
(RFC 7505), cannot receive mail at all: that is a permanent :class:`RoutingError`. DNS trouble
(timeouts, SERVFAIL) is a temporary one.

Relay mode (``relay = smtp://[user:pass@]host:port`` or ``smtps://`` for implicit TLS) sends
every domain to that one host; its certificate is verified (``relay_tls_verify``).

Domains are looked up as IDNA A-labels (UTS #46), whatever form they were stored in.

MX answers are DNS data that anyone can publish: an MX (or A/AAAA) pointing at loopback,
private (RFC 1918, ULA), link-local, unspecified, multicast or other non-global addresses, or
at this host's own addresses, would turn the service into a probe of its own network. Such
addresses are dropped unless ``allow_private_mx`` is set; a domain left without any other
candidate bounces with a reason saying so.
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import random
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final
from urllib.parse import unquote, urlsplit

import dns.asyncresolver
import dns.exception
import dns.name
import dns.rdatatype
import dns.resolver
import idna

from mailpulse.config import Settings
from mailpulse.delivery.classify import BAD_DOMAIN, POLICY

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
    verify_tls: bool = False  # the relay: check its certificate and host name
    ca_file: str = ""  # … against this bundle ("" = the system store and certifi)


@dataclass(frozen=True, slots=True)
class Relay:
    host: str
    port: int
    implicit_tls: bool
    username: str | None
    password: str | None


class RoutingError(Exception):
    """No host to try. ``permanent`` failures bounce; the others defer.

    ``category`` is a permanent failure's bounce category (delivery/classify.py): the
    domain's own fault (``bad_domain``: it does not exist, publishes a null MX, has no
    address) suppresses the address; our refusal of its MX hosts (``policy``) does not.
    """

    def __init__(
        self, permanent: bool, subcode: str, text: str, category: str = BAD_DOMAIN
    ) -> None:
        super().__init__(text)
        self.permanent = permanent
        self.subcode = subcode
        self.text = text
        self.category = category


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


def ascii_domain(domain: str) -> str:
    """The domain as IDNA A-labels (UTS #46 mapping), lower case; ValueError if it has none."""
    domain = domain.strip().rstrip(".").lower()
    if domain.isascii():
        return domain
    try:
        return idna.encode(domain, uts46=True).decode("ascii")
    except idna.IDNAError as exc:
        raise ValueError(f"{domain!r} is not a valid internationalised domain: {exc}") from None


def refused_address(ip: str, own: Iterable[str] = ()) -> str | None:
    """Why ``ip`` may not be an MX target (``None``: it may): not global, or one of ours."""
    address = ipaddress.ip_address(ip)
    mapped = getattr(address, "ipv4_mapped", None)
    if mapped is not None:
        address = mapped
    for kind in ("loopback", "unspecified", "link_local", "multicast", "private", "reserved"):
        if getattr(address, f"is_{kind}"):
            return kind.replace("_", "-")
    if not address.is_global:
        return "non-global"
    if str(address) in own:
        return "this host's own"
    return None


@functools.cache
def own_addresses() -> frozenset[str]:
    """This host's addresses as its own name resolves (looked up once per process)."""
    found: set[str] = set()
    for name in {socket.gethostname(), socket.getfqdn()}:
        try:
            infos = socket.getaddrinfo(name, None)
        except OSError:
            continue
        found.update(str(info[4][0]).split("%")[0] for info in infos)
    return frozenset(found)


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
        self.verify_relay = settings.relay_tls_verify
        self.relay_ca_file = settings.relay_ca_file
        self.allow_private = settings.allow_private_mx
        # looked up now, at start-up, not in the middle of a delivery
        sources = frozenset(settings.source_addresses)
        self._own = sources if self.allow_private else own_addresses() | sources

    def destination(self, domain: str) -> str:
        """The key under which deliveries share sessions: the domain, or the relay."""
        if self.relay:
            return RELAY_DESTINATION
        try:
            return ascii_domain(domain)
        except ValueError:
            return domain.lower()  # route() says why it cannot be delivered

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
                    verify_tls=self.verify_relay,
                    ca_file=self.relay_ca_file,
                )
            ]
        try:
            name = ascii_domain(domain)
        except ValueError as exc:
            raise RoutingError(True, "5.1.2", str(exc)) from None
        candidates = await self._mx_route(name)
        if self.allow_private:
            return candidates
        return self._public(name, candidates)

    def _public(self, domain: str, candidates: list[Candidate]) -> list[Candidate]:
        own = self._own
        allowed: list[Candidate] = []
        refused: list[str] = []
        for candidate in candidates:
            reason = refused_address(candidate.ip, own)
            if reason is None:
                allowed.append(candidate)
            else:
                refused.append(f"{candidate.host} [{candidate.ip}] is a {reason} address")
        if not allowed:
            text = f"refused to deliver to the MX of {domain}: " + "; ".join(refused)
            # Our own rule (``allow_private_mx``), not proof the domain takes no mail.
            raise RoutingError(True, "5.4.4", text, POLICY)
        return allowed

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
