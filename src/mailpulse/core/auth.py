"""Credentials: client secrets and API keys are stored hashed; access tokens are signed.

- Client secrets are hashed with Argon2id (argon2-cffi); checking one is deliberately slow and
  happens only at the token endpoint.
- Static API keys (``mpk_…``, 32 random bytes) are looked up by their SHA-256: they carry enough
  entropy that a fast hash is safe, and the lookup is one indexed read.
- Access tokens are HS256 JWTs holding the account id, the account's credential generation
  (``gen``) and an expiry; the signature is verified with the signing key alone. Whether the
  account still lets that generation in is decided by ``core/access.py`` from a short-lived
  cache: rotating the secret or revoking the tokens moves the account to a new generation, and
  every token of an older one stops working. Tokens issued before generations existed carry
  none and count as generation 0, the generation every account starts with.
"""

from __future__ import annotations

import functools
import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

API_KEY_PREFIX = "mpk_"
_hasher = PasswordHasher()
# Verified against when the client id is unknown, so both paths cost the same time.
_DUMMY_HASH = _hasher.hash("mailpulse-dummy-secret")


def new_client_id() -> str:
    return secrets.token_hex(16)


def new_client_secret() -> str:
    return secrets.token_hex(16)


def hash_secret(secret: str) -> str:
    return _hasher.hash(secret)


def verify_secret(stored_hash: str | None, secret: str) -> bool:
    try:
        return _hasher.verify(stored_hash or _DUMMY_HASH, secret) and stored_hash is not None
    except (VerificationError, InvalidHashError):
        return False


def new_api_key() -> str:
    return API_KEY_PREFIX + secrets.token_urlsafe(32)


def hash_api_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def looks_like_api_key(value: str) -> bool:
    return value.startswith(API_KEY_PREFIX)


@dataclass(frozen=True)
class TokenClaims:
    account_id: int
    generation: int


@dataclass(frozen=True)
class IssuedToken:
    access_token: str
    expires_in: int


class TokenSigner:
    """Issues and verifies access tokens with one HMAC key."""

    algorithm = "HS256"

    def __init__(self, key: str, ttl_seconds: int = 3600) -> None:
        self._key = key
        self.ttl_seconds = ttl_seconds
        # A client sends the same token for an hour: check its signature once.
        self._decode = functools.lru_cache(maxsize=4096)(self._decode_uncached)

    def issue(self, account_id: int, now: datetime, generation: int = 0) -> IssuedToken:
        issued = now.replace(tzinfo=UTC)
        claims = {
            "sub": str(account_id),
            "gen": generation,
            "iat": issued,
            "exp": issued + timedelta(seconds=self.ttl_seconds),
            "jti": secrets.token_hex(8),
        }
        return IssuedToken(jwt.encode(claims, self._key, self.algorithm), self.ttl_seconds)

    def verify(self, token: str, now: datetime) -> TokenClaims | None:
        """Whom the token was issued to (account and generation), or None when it is bad or
        expired. The account's current state is not this method's business."""
        decoded = self._decode(token)
        if decoded is None or decoded[1] <= now:
            return None
        return decoded[0]

    def _decode_uncached(self, token: str) -> tuple[TokenClaims, datetime] | None:
        try:
            claims = jwt.decode(
                token,
                self._key,
                algorithms=[self.algorithm],
                options={"require": ["exp", "sub"], "verify_exp": False},
            )
            expires = datetime.fromtimestamp(int(claims["exp"]), UTC).replace(tzinfo=None)
            generation = claims.get("gen", 0)
            if not isinstance(generation, int) or isinstance(generation, bool):
                return None
            return TokenClaims(int(claims["sub"]), generation), expires
        except (jwt.PyJWTError, ValueError, TypeError, KeyError, OverflowError, OSError):
            return None
