"""MX resolution against a real DNS server on loopback, and relay URLs."""

from __future__ import annotations

import random

import pytest

from mailpulse.config import Settings
from mailpulse.delivery.routing import (
    Candidate,
    Relay,
    Router,
    RoutingError,
    ascii_domain,
    parse_relay,
    refused_address,
)
from tests.delivery.helpers import make_settings
from tests.support.dnsserver import DnsServer
from tests.support.smtpsink import free_port


def router(dns: DnsServer, seed: int = 0, **settings: object) -> Router:
    return Router(make_settings(dns, 2525, **settings), rng=random.Random(seed))


async def test_mx_in_preference_order_ipv6_then_ipv4(dns: DnsServer) -> None:
    dns.set("example.test", ("MX", (20, "mx2.example.test")), ("MX", (10, "mx1.example.test")))
    dns.set("mx1.example.test", ("A", "127.0.0.11"), ("AAAA", "::1"))
    dns.set("mx2.example.test", ("A", "127.0.0.12"))
    got = await router(dns).route("Example.TEST")
    assert got == [
        Candidate("mx1.example.test", "::1", 2525),
        Candidate("mx1.example.test", "127.0.0.11", 2525),
        Candidate("mx2.example.test", "127.0.0.12", 2525),
    ]


async def test_equal_preferences_are_shuffled_by_the_injected_random(dns: DnsServer) -> None:
    hosts = [f"mx{i}.example.test" for i in range(6)]
    dns.set("example.test", *[("MX", (10, h)) for h in hosts], ("MX", (5, "first.example.test")))
    for i, host in enumerate([*hosts, "first.example.test"]):
        dns.set(host, ("A", f"127.0.1.{i + 1}"))
    orders = set()
    for seed in range(8):
        got = await router(dns, seed).route("example.test")
        assert got[0].host == "first.example.test"
        assert sorted(c.host for c in got[1:]) == hosts
        orders.add(tuple(c.host for c in got[1:]))
    assert len(orders) > 1
    # the same seed, the same order
    a = await router(dns, 3).route("example.test")
    b = await router(dns, 3).route("example.test")
    assert a == b


async def test_no_mx_falls_back_to_the_domains_addresses(dns: DnsServer) -> None:
    dns.set("plain.test", ("A", "127.0.0.9"), ("TXT", "v=spf1 -all"))
    assert await router(dns).route("plain.test") == [Candidate("plain.test", "127.0.0.9", 2525)]


async def test_source_addresses_restrict_the_families(dns: DnsServer) -> None:
    dns.set("example.test", ("AAAA", "::1"), ("A", "127.0.0.9"))
    got = await router(dns, source_addresses=["127.0.0.1"]).route("example.test")
    assert [c.ip for c in got] == ["127.0.0.9"]


@pytest.mark.parametrize(
    ("records", "permanent", "subcode"),
    [
        (None, True, "5.1.2"),  # NXDOMAIN
        ([("MX", (0, "."))], True, "5.1.10"),  # null MX
        ([("TXT", "nothing")], True, "5.1.2"),  # exists, no MX, no address
        ([("MX", (10, "nowhere.example.test"))], False, "4.4.3"),  # MX host has no address
    ],
)
async def test_routing_failures(
    dns: DnsServer, records: list[tuple[str, object]] | None, permanent: bool, subcode: str
) -> None:
    if records is not None:
        dns.set("example.test", *records)
    with pytest.raises(RoutingError) as info:
        await router(dns).route("example.test")
    assert (info.value.permanent, info.value.subcode) == (permanent, subcode)


async def test_null_mx_beside_real_mx_is_ignored(dns: DnsServer) -> None:
    dns.set("example.test", ("MX", (0, ".")), ("MX", (10, "mx.example.test")))
    dns.set("mx.example.test", ("A", "127.0.0.2"))
    assert [c.ip for c in await router(dns).route("example.test")] == ["127.0.0.2"]


async def test_dns_timeout_is_temporary() -> None:
    silent = DnsServer()
    silent.port = free_port()  # nothing answers there
    r = Router(make_settings(silent, 25, connect_timeout=0.3), rng=random.Random(0))
    with pytest.raises(RoutingError) as info:
        await r.route("example.test")
    assert not info.value.permanent


async def test_relay_mode_sends_everything_to_one_host(dns: DnsServer) -> None:
    r = router(dns, relay="smtps://u%40x:p@relay.test:2465")
    assert r.destination("a.test") == r.destination("b.test") == "relay"
    assert await r.route("anything.test") == [
        Candidate("relay.test", "relay.test", 2465, True, "u@x", "p", verify_tls=True)
    ]


def test_parse_relay() -> None:
    assert parse_relay("") is None
    assert parse_relay("smtp://relay.test") == Relay("relay.test", 25, False, None, None)
    assert parse_relay("smtps://relay.test") == Relay("relay.test", 465, True, None, None)
    assert parse_relay("smtp://a:b@127.0.0.1:2525") == Relay("127.0.0.1", 2525, False, "a", "b")
    with pytest.raises(ValueError):
        parse_relay("http://relay.test")


# -- MX answers that point inside: refused unless allow_private_mx ----------------------------
@pytest.mark.parametrize(
    ("ip", "kind"),
    [
        ("127.0.0.2", "loopback"),
        ("::1", "loopback"),
        ("::ffff:127.0.0.1", "loopback"),
        ("10.1.2.3", "private"),
        ("172.16.0.1", "private"),
        ("192.168.1.1", "private"),
        ("fd12:3456::1", "private"),
        ("169.254.169.254", "link-local"),
        ("fe80::1", "link-local"),
        ("0.0.0.0", "unspecified"),
        ("::", "unspecified"),
        ("224.0.0.1", "multicast"),
        ("ff02::1", "multicast"),
        ("100.64.0.1", "non-global"),
    ],
)
def test_non_global_addresses_are_refused_as_mx_targets(ip: str, kind: str) -> None:
    assert refused_address(ip) == kind


def test_this_hosts_own_addresses_are_refused_and_public_ones_allowed() -> None:
    assert refused_address("203.0.114.7") is None
    assert refused_address("2a00:1450:4001::1b") is None
    assert refused_address("203.0.114.7", own={"203.0.114.7"}) == "this host's own"


async def test_mx_on_loopback_bounces_with_the_reason_unless_allowed(dns: DnsServer) -> None:
    dns.set("example.test", ("MX", (10, "mx.example.test")))
    dns.set("mx.example.test", ("A", "127.0.0.2"), ("AAAA", "fd00::25"))
    with pytest.raises(RoutingError) as refused:
        await router(dns, allow_private_mx=False).route("example.test")
    assert refused.value.permanent and refused.value.subcode == "5.4.4"
    assert refused.value.text == (
        "refused to deliver to the MX of example.test: "
        "mx.example.test [fd00::25] is a private address; "
        "mx.example.test [127.0.0.2] is a loopback address"
    )
    allowed = await router(dns, allow_private_mx=True).route("example.test")
    assert [c.ip for c in allowed] == ["fd00::25", "127.0.0.2"]


async def test_private_answers_are_dropped_and_public_ones_kept(dns: DnsServer) -> None:
    dns.set("example.test", ("MX", (10, "inside.example.test")), ("MX", (20, "out.example.test")))
    dns.set("inside.example.test", ("A", "192.168.0.25"))
    dns.set("out.example.test", ("A", "203.0.114.25"))
    got = await router(dns, allow_private_mx=False).route("example.test")
    assert got == [Candidate("out.example.test", "203.0.114.25", 2525)]


async def test_a_domain_without_mx_whose_address_is_private_bounces(dns: DnsServer) -> None:
    dns.set("bare.test", ("A", "10.0.0.1"))
    with pytest.raises(RoutingError, match=r"bare.test \[10.0.0.1\] is a private address"):
        await router(dns, allow_private_mx=False).route("bare.test")


def test_private_mx_is_refused_by_default() -> None:
    assert Settings().allow_private_mx is False


# -- internationalised domains ---------------------------------------------------------------
async def test_unicode_domains_are_looked_up_as_a_labels(dns: DnsServer) -> None:
    dns.set("xn--bcher-kva.test", ("MX", (10, "mx.xn--bcher-kva.test")))
    dns.set("mx.xn--bcher-kva.test", ("A", "127.0.0.9"))
    r = router(dns)
    assert r.destination("BÜCHER.test") == "xn--bcher-kva.test"
    assert await r.route("bücher.test") == [Candidate("mx.xn--bcher-kva.test", "127.0.0.9", 2525)]
    assert ascii_domain("Bücher.Test.") == "xn--bcher-kva.test"
    with pytest.raises(RoutingError) as bad:
        await r.route("a\u200db.test")  # a joiner where IDNA allows none
    assert bad.value.permanent and bad.value.subcode == "5.1.2"
