"""Injected identifiers.

Email ids have SendPulse's form ``^[0-9a-z]{6}-[0-9a-z]{6}-[0-9a-z]{2}$`` (the Exim layout seen in
the API document). They are drawn at random (about 72 bits), not counted, so an id never
reveals how much mail this or another tenant sends.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable

ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz"
EMAIL_ID_RE = re.compile(r"^[0-9a-z]{6}-[0-9a-z]{6}-[0-9a-z]{2}$")

IdFactory = Callable[[], str]


def _chunk(n: int) -> str:
    return "".join(secrets.choice(ALPHABET) for _ in range(n))


def new_email_id() -> str:
    return f"{_chunk(6)}-{_chunk(6)}-{_chunk(2)}"


def is_email_id(value: str) -> bool:
    return bool(EMAIL_ID_RE.match(value))


def new_token(nbytes: int = 32) -> str:
    return secrets.token_urlsafe(nbytes)
