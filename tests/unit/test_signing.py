"""Signed tokens (core/signing.py): round trip, per-purpose keys, tampering, case folding."""

from __future__ import annotations

from mailpulse.core.signing import MAX_TOKEN, Signer


def test_a_token_verifies_to_its_fields() -> None:
    signer = Signer("secret")
    token = signer.sign("unsubscribe", "42", "Ann@Example.com", "abc123")
    assert signer.verify("unsubscribe", token) == ("42", "Ann@Example.com", "abc123")


def test_a_token_for_one_purpose_is_refused_for_another() -> None:
    signer = Signer("secret")
    assert signer.verify("click", signer.sign("bounce", "1")) is None


def test_another_secret_refuses_the_token() -> None:
    assert Signer("other").verify("bounce", Signer("secret").sign("bounce", "1")) is None


def test_tampered_payload_or_mac_is_refused() -> None:
    signer = Signer("secret")
    token = signer.sign("bounce", "1")
    payload, mac = token.split("-")
    forged = signer.sign("bounce", "2").split("-")[0]
    assert signer.verify("bounce", f"{forged}-{mac}") is None
    flipped = "b" if mac[-1] == "a" else "a"
    assert signer.verify("bounce", f"{payload}-{mac[:-1]}{flipped}") is None
    assert signer.verify("bounce", payload) is None


def test_a_lower_or_upper_cased_token_still_verifies() -> None:
    """Receiving servers may change the case of a return path's local part."""
    signer = Signer("secret")
    token = signer.sign("bounce", "17")
    assert token == token.lower()
    assert signer.verify("bounce", token.upper()) == ("17",)


def test_garbage_and_oversized_tokens_are_refused() -> None:
    signer = Signer("secret")
    for junk in ("", "-", "abc", "!!-!!", "é-é", "a" * (MAX_TOKEN + 1), "zz-zz"):
        assert signer.verify("bounce", junk) is None


def test_every_character_of_the_mac_matters() -> None:
    signer = Signer("secret")
    token = signer.sign("bounce", "1")
    payload, mac = token.split("-")
    for i in range(len(mac)):
        other = "b" if mac[i] == "a" else "a"
        assert signer.verify("bounce", f"{payload}-{mac[:i]}{other}{mac[i + 1 :]}") is None
