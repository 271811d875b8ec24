"""Signed tokens for everything that leaves the service and comes back: VERP return paths,
unsubscribe and resubscribe links, tracking links.

A token carries a few text fields and an HMAC-SHA256 over them, keyed per *purpose* (a token
made for an unsubscribe link is worthless as a bounce address or a click link). It is written
in lower-case base32 without padding, so it survives where case does not: receiving servers
and DSN generators may lower-case the local part of a return path, and URLs are safe too.

    payload-mac     e.g. "gqza-7bqsk3xmcmr5ya4ij2oqhu2aykbgcz3"

Verification is constant-time and bounded (a token longer than ``MAX_TOKEN`` is refused
before any decoding), and answers None for anything that does not verify: callers never learn
why. Fields must not contain the separator ``\\x1f``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from typing import Final

MAX_TOKEN: Final = 1024
_MAC_BYTES: Final = 15  # 120 bits: 24 base32 characters, no padding bits
_FIELD_SEPARATOR: Final = "\x1f"


def _b32(data: bytes) -> str:
    return base64.b32encode(data).decode("ascii").rstrip("=").lower()


def _unb32(text: str) -> bytes:
    padded = text.upper() + "=" * (-len(text) % 8)
    return base64.b32decode(padded)


class Signer:
    """Makes and checks tokens with one secret; see the module doc."""

    def __init__(self, secret: str | bytes) -> None:
        key = secret.encode("utf-8") if isinstance(secret, str) else secret
        if not key:
            raise ValueError("a signing secret must not be empty")
        self._secret = key
        self._keys: dict[str, bytes] = {}

    def _key(self, purpose: str) -> bytes:
        key = self._keys.get(purpose)
        if key is None:
            key = hmac.new(self._secret, b"mailpulse/" + purpose.encode(), hashlib.sha256).digest()
            self._keys[purpose] = key
        return key

    def _mac(self, purpose: str, payload: bytes) -> bytes:
        return hmac.new(self._key(purpose), payload, hashlib.sha256).digest()[:_MAC_BYTES]

    def sign(self, purpose: str, *fields: str) -> str:
        if any(_FIELD_SEPARATOR in f for f in fields):
            raise ValueError("a signed field must not contain \\x1f")
        payload = _FIELD_SEPARATOR.join(fields).encode("utf-8")
        return f"{_b32(payload)}-{_b32(self._mac(purpose, payload))}"

    def verify(self, purpose: str, token: str) -> tuple[str, ...] | None:
        """The fields of a token made by :meth:`sign` for ``purpose``; None if it is not one."""
        if not token or len(token) > MAX_TOKEN or not token.isascii():
            return None
        encoded, sep, mac = token.lower().rpartition("-")
        if not sep:
            return None
        try:
            payload = _unb32(encoded)
            given = _unb32(mac)
        except (binascii.Error, ValueError):
            return None
        if _b32(payload) != encoded or _b32(given) != mac:
            return None  # only the one canonical spelling of a token is accepted
        if not hmac.compare_digest(given, self._mac(purpose, payload)):
            return None
        try:
            return tuple(payload.decode("utf-8").split(_FIELD_SEPARATOR))
        except UnicodeDecodeError:
            return None
