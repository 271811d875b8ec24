"""The relay's certificate and host name are verified, and credentials never travel unprotected
to a relay off this machine. Real aiosmtpd relays with certificates made here by a throwaway CA.
"""

from __future__ import annotations

import random
import socket
import ssl
import subprocess
from pathlib import Path

import pytest

from mailpulse.core.clock import FixedClock
from mailpulse.delivery.session import auth_refusal, is_loopback
from mailpulse.delivery.worker import DeliveryWorker
from mailpulse.store.db import Database
from tests.delivery.helpers import RAW, delivery, make_settings, seed
from tests.support.dnsserver import DnsServer
from tests.support.smtpsink import SmtpSink

RELAY_IP = "127.0.0.6"


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """ca.pem, and relay.pem/relay.key (for IP 127.0.0.6) and other.pem/other.key (for
    127.0.0.7) signed by it."""
    d = tmp_path_factory.mktemp("pki")
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    _openssl(
        "req", "-x509", *ec, "-days", "2", "-subj", "/CN=mailpulse test CA",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        "-keyout", "ca.key", "-out", "ca.pem",
        cwd=d,
    )  # fmt: skip
    for name, ip in (("relay", RELAY_IP), ("other", "127.0.0.7")):
        _openssl("req", *ec, "-subj", f"/CN={name}", "-keyout", f"{name}.key",
                 "-out", f"{name}.csr", cwd=d)  # fmt: skip
        (d / f"{name}.ext").write_text(
            f"subjectAltName=IP:{ip}\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n"
        )
        _openssl(
            "x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
            "-CAcreateserial", "-days", "2", "-extfile", f"{name}.ext", "-out", f"{name}.pem",
            cwd=d,
        )  # fmt: skip
    return d


def server_context(pki: Path, name: str = "relay") -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(pki / f"{name}.pem", pki / f"{name}.key")
    return context


async def deliver(db: Database, dns: DnsServer, port: int, clock: FixedClock, **settings: object):
    worker = DeliveryWorker(
        db,
        make_settings(dns, port, **settings),
        clock=clock,
        owner="w-tls",
        rng=random.Random(1),
        poll_interval=0.05,
    )
    await worker.run_until_idle()


async def test_an_unverifiable_relay_gets_nothing_by_default(
    sdb: Database, dns: DnsServer, mx_port: int, clock: FixedClock, pki: Path
) -> None:
    seed(sdb, ["a@one.test"])
    with SmtpSink(RELAY_IP, mx_port, tls_context=server_context(pki)) as sink:
        await deliver(sdb, dns, mx_port, clock, relay=f"smtp://{RELAY_IP}:{mx_port}")
    assert sink.messages == []  # and no retry in the clear either
    row = delivery(sdb, "a@one.test")
    assert (row.status, row.attempts, row.smtp_answer_subcode) == ("deferred", 1, "4.7.5")
    assert row.smtp_answer_data.startswith(f"TLS with relay {RELAY_IP} failed verification")
    assert "CERTIFICATE_VERIFY_FAILED" in row.smtp_answer_data


async def test_a_relay_verified_with_the_configured_ca_bundle_gets_the_mail_and_credentials(
    sdb: Database, dns: DnsServer, mx_port: int, clock: FixedClock, pki: Path
) -> None:
    seed(sdb, ["a@one.test", "b@two.test"])
    with SmtpSink(
        RELAY_IP, mx_port, tls_context=server_context(pki), credentials=("relayuser", "secret")
    ) as sink:
        await deliver(
            sdb,
            dns,
            mx_port,
            clock,
            relay=f"smtp://relayuser:secret@{RELAY_IP}:{mx_port}",
            relay_ca_file=str(pki / "ca.pem"),
        )
    assert sink.auth_attempts == [("relayuser", "secret")]
    assert all(m.tls and m.data == RAW for m in sink.messages)
    assert sorted(r for m in sink.messages for r in m.rcpt_tos) == ["a@one.test", "b@two.test"]
    assert delivery(sdb, "a@one.test").status == "delivered"


async def test_the_relays_host_name_is_verified_too(
    sdb: Database, dns: DnsServer, mx_port: int, clock: FixedClock, pki: Path
) -> None:
    """A certificate from the trusted CA, but for another host: refused."""
    seed(sdb, ["a@one.test"])
    with SmtpSink(RELAY_IP, mx_port, tls_context=server_context(pki, "other")) as sink:
        await deliver(
            sdb,
            dns,
            mx_port,
            clock,
            relay=f"smtp://{RELAY_IP}:{mx_port}",
            relay_ca_file=str(pki / "ca.pem"),
        )
    assert sink.messages == []
    row = delivery(sdb, "a@one.test")
    assert row.status == "deferred"
    assert "mismatch" in row.smtp_answer_data


@pytest.mark.parametrize("trusted", [False, True])
async def test_an_implicit_tls_relay_is_verified_too(
    sdb: Database, dns: DnsServer, mx_port: int, clock: FixedClock, pki: Path, trusted: bool
) -> None:
    seed(sdb, ["a@one.test"])
    ca = {"relay_ca_file": str(pki / "ca.pem")} if trusted else {}
    context = server_context(pki)
    with SmtpSink(RELAY_IP, mx_port, tls_context=context, implicit_tls=True) as sink:
        await deliver(sdb, dns, mx_port, clock, relay=f"smtps://{RELAY_IP}:{mx_port}", **ca)
    row = delivery(sdb, "a@one.test")
    if trusted:
        assert row.status == "delivered" and len(sink.messages) == 1  # (aiosmtpd: tls unset)
    else:
        assert sink.messages == []
        assert (row.status, row.smtp_answer_subcode) == ("deferred", "4.7.5")
        assert "CERTIFICATE_VERIFY_FAILED" in row.smtp_answer_data


async def test_the_opt_out_accepts_a_self_signed_relay(
    sdb: Database, dns: DnsServer, mx_port: int, clock: FixedClock, pki: Path
) -> None:
    seed(sdb, ["a@one.test"])
    with SmtpSink(RELAY_IP, mx_port, tls_context=server_context(pki)) as sink:
        await deliver(
            sdb, dns, mx_port, clock, relay=f"smtp://{RELAY_IP}:{mx_port}", relay_tls_verify=False
        )
    assert [m.tls for m in sink.messages] == [True]
    assert delivery(sdb, "a@one.test").status == "delivered"


async def test_credentials_go_in_the_clear_to_a_loopback_relay_only(
    sdb: Database, dns: DnsServer, mx_port: int, clock: FixedClock
) -> None:
    """The relay offers no STARTTLS: on loopback the traffic never leaves the machine, so AUTH
    is allowed (the decision for other relays is :func:`auth_refusal`, tested below)."""
    seed(sdb, ["a@one.test"])
    with SmtpSink(RELAY_IP, mx_port, credentials=("u", "p")) as sink:
        await deliver(sdb, dns, mx_port, clock, relay=f"smtp://u:p@{RELAY_IP}:{mx_port}")
    assert sink.auth_attempts == [("u", "p")]
    assert [m.tls for m in sink.messages] == [False]


async def test_credentials_are_refused_to_a_relay_named_rather_than_on_loopback(
    sdb: Database, dns: DnsServer, mx_port: int, clock: FixedClock
) -> None:
    """End to end through the refusal: the relay is named by this machine's host name, which
    resolves to 127.0.0.1 here but is not a loopback literal (DNS answers are not trusted), and
    it offers no STARTTLS: no AUTH is sent, the mail is deferred with the reason."""
    name = socket.gethostname()
    try:
        ip = socket.gethostbyname(name)
    except OSError:
        pytest.skip("this machine's name does not resolve")
    if not ip.startswith("127.") or is_loopback(name):
        pytest.skip("this machine's name does not resolve to loopback")
    seed(sdb, ["a@one.test"])
    with SmtpSink(ip, mx_port, credentials=("u", "p")) as sink:
        await deliver(sdb, dns, mx_port, clock, relay=f"smtp://u:p@{name}:{mx_port}")
    assert sink.auth_attempts == [] and sink.messages == []
    row = delivery(sdb, "a@one.test")
    assert (row.status, row.smtp_answer_subcode) == ("deferred", "4.7.0")
    assert row.smtp_answer_data == (
        f"refusing to send credentials to relay {name} in the clear "
        "(it offers no STARTTLS and is not on loopback)"
    )


@pytest.mark.parametrize(
    ("host", "tls", "verified", "allowed"),
    [
        ("smtp.example.net", True, True, True),
        ("smtp.example.net", True, False, False),  # TLS, but anyone could have answered
        ("smtp.example.net", False, False, False),  # in the clear
        ("192.0.2.10", False, False, False),
        ("10.0.0.5", True, False, False),  # a private network is not this machine
        ("127.0.0.1", False, False, True),
        ("127.8.9.10", False, False, True),
        ("::1", False, False, True),
        ("localhost", False, False, True),
        ("localhost.", True, False, True),
        ("localhost.example.net", False, False, False),  # a name is not an address
    ],
)
def test_when_credentials_may_be_sent(host: str, tls: bool, verified: bool, allowed: bool) -> None:
    refusal = auth_refusal(host, tls=tls, verified=verified)
    assert (refusal is None) == allowed
    if refusal is not None:
        assert refusal.startswith(f"refusing to send credentials to relay {host}")
        assert ("in the clear" in refusal) == (not tls)


def test_loopback_means_loopback_literals_and_localhost() -> None:
    assert is_loopback("127.0.0.6") and is_loopback("[::1]") and is_loopback("LOCALHOST")
    assert not is_loopback("127.0.0.1.example.net") and not is_loopback("10.0.0.1")
