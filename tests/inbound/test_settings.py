"""The bounce receiver's settings: the bounce domain follows the host name unless set."""

from __future__ import annotations

import socket

from mailpulse.config import Settings


def test_the_bounce_domain_defaults_to_the_hostname_setting_then_the_fqdn() -> None:
    assert Settings(bounce_domain="Bounces.Example.COM.").resolved_bounce_domain() == (
        "bounces.example.com"
    )
    assert Settings(hostname="mail.example.com").resolved_bounce_domain() == "mail.example.com"
    assert Settings().resolved_bounce_domain() == (socket.getfqdn() or "mailpulse.local").lower()


def test_the_receiver_listens_on_loopback_2526_and_serve_runs_it_by_default() -> None:
    settings = Settings()
    assert (settings.bounce_host, settings.bounce_port, settings.bounce_receiver) == (
        "127.0.0.1",
        2526,
        True,
    )
