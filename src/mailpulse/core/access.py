"""Who may use the API right now: one decision per request, from one short-lived cache.

Every authenticated request and every send asks the same questions, and the answers change
only when an operator acts. So they are kept for ``auth_cache_seconds`` (core/ttlcache.py):

    static key hash    → the account that owns it (revoked and unknown keys → None)
    account id         → AccountState: API status, credential generation, SMTP activated
    (account, sender)  → whether that sender is one of the account's active senders

A request whose answers are cached authenticates without touching the store; a miss reads it
once (and concurrent misses for one key share that read). Whatever an operator does —
disable an account, revoke a key, rotate a secret, revoke all tokens, deactivate SMTP or a
sender — reaches every request within that window, and never later.

A signed token names its account and the credential generation it was issued at; the account
lets it in only while it is active and still at that generation. A static key lets its
account in while the key is unrevoked and the account active; rotating the secret or revoking
tokens does not touch static keys (they are separate credentials, revoked one by one).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from mailpulse.core.auth import TokenSigner, hash_api_key, looks_like_api_key
from mailpulse.core.clock import Clock
from mailpulse.core.ttlcache import TtlCache

ACTIVE = "active"
DISABLED = "disabled"
ACCOUNT_STATUSES = (ACTIVE, DISABLED)


@dataclass(frozen=True)
class AccountState:
    status: str
    generation: int
    smtp_activated: bool

    @property
    def active(self) -> bool:
        return self.status == ACTIVE


class AccessStore(Protocol):
    """What access decisions read from storage (implemented in store/gateway.py)."""

    async def account_state(self, account_id: int) -> AccountState | None: ...

    async def key_owner(self, key_hash: str) -> tuple[int, AccountState] | None:
        """The account of an unrevoked key, with its state (one read fills both caches)."""
        ...

    async def sender_allowed(self, account_id: int, sender: str) -> bool: ...


class AccessControl:
    def __init__(
        self,
        store: AccessStore,
        signer: TokenSigner,
        clock: Clock,
        cache_seconds: float = 2.0,
        *,
        max_entries: int = 10_000,
    ) -> None:
        self._store = store
        self._signer = signer
        self._clock = clock
        self.cache_seconds = cache_seconds
        self._accounts: TtlCache[int, AccountState] = TtlCache(
            clock, cache_seconds, max_entries=max_entries
        )
        self._keys: TtlCache[str, int] = TtlCache(clock, cache_seconds, max_entries=max_entries)
        self._senders: TtlCache[tuple[int, str], bool] = TtlCache(
            clock, cache_seconds, max_entries=max_entries
        )

    async def authenticate(self, credential: str) -> int | None:
        """The account a bearer credential (token or static key) lets in, or None."""
        if looks_like_api_key(credential):
            key_hash = hash_api_key(credential)
            account_id = await self._keys.get(key_hash, lambda: self._load_key(key_hash))
            if account_id is None:
                return None
            state = await self.account_state(account_id)
            return account_id if state is not None and state.active else None
        claims = self._signer.verify(credential, self._clock.now())
        if claims is None:
            return None
        state = await self.account_state(claims.account_id)
        if state is None or not state.active or state.generation != claims.generation:
            return None
        return claims.account_id

    async def account_state(self, account_id: int) -> AccountState | None:
        return await self._accounts.get(account_id, lambda: self._store.account_state(account_id))

    async def sender_check(self, account_id: int, sender: str) -> tuple[bool, bool]:
        """(the account may send: active and SMTP-activated, ``sender`` is one of its active
        senders) — the submit pipeline's question, answered from the same cache."""
        state = await self.account_state(account_id)
        activated = state is not None and state.active and state.smtp_activated
        key = (account_id, sender.lower())
        allowed = await self._senders.get(key, lambda: self._load_sender(key))
        return activated, bool(allowed)

    async def _load_key(self, key_hash: str) -> int | None:
        found = await self._store.key_owner(key_hash)
        if found is None:
            return None
        account_id, state = found
        self._accounts.put(account_id, state)
        return account_id

    async def _load_sender(self, key: tuple[int, str]) -> bool:
        return await self._store.sender_allowed(*key)
