"""Injected identifiers.

Email ids have SendPulse's form ``^[0-9a-z]{6}-[0-9a-z]{6}-[0-9a-z]{2}$`` (the Exim layout seen in
the API document). They are drawn at random (about 72 bits), not counted, so an id never
reveals how much mail this or another tenant sends.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable

ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz"

IdFactory = Callable[[], str]


_SPACE = 36**14  # about 2**72


def new_email_id() -> str:
    """One draw from the operating system's CSPRNG, written as 14 base-36 digits."""
    n = secrets.randbelow(_SPACE)
    digits = []
    for _ in range(14):
        n, r = divmod(n, 36)
        digits.append(ALPHABET[r])
    return f"{''.join(digits[:6])}-{''.join(digits[6:12])}-{''.join(digits[12:])}"


def new_token(nbytes: int = 32) -> str:
    return secrets.token_urlsafe(nbytes)
