"""The pure access parts: the short-lived cache, access decisions and the failure limiter,
driven by a clock the tests move (no sleeping)."""

from __future__ import annotations

import asyncio
from datetime import datetime

import pytest

from mailpulse.core.access import ACTIVE, DISABLED, AccessControl, AccountState
from mailpulse.core.auth import TokenSigner, hash_api_key
from mailpulse.core.clock import FixedClock
from mailpulse.core.ratelimit import FailureLimiter, TokenThrottle
from mailpulse.core.ttlcache import TtlCache

T0 = datetime(2026, 12, 1, 9, 0, 0)


# -- TtlCache ---------------------------------------------------------------------------------
def test_cached_answer_is_reused_within_the_window_and_reloaded_after() -> None:
    clock = FixedClock(T0)
    cache: TtlCache[str, int] = TtlCache(clock, 2.0)
    loads: list[str] = []

    async def get(value: int) -> int | None:
        async def load() -> int:
            loads.append("x")
            return value

        return await cache.get("k", load)

    assert asyncio.run(get(1)) == 1
    clock.advance(seconds=1.99)
    assert asyncio.run(get(2)) == 1
    clock.advance(seconds=0.02)
    assert asyncio.run(get(3)) == 3
    assert len(loads) == 2


def test_concurrent_misses_for_one_key_share_one_load() -> None:
    cache: TtlCache[str, int] = TtlCache(FixedClock(T0), 2.0)
    loads = 0

    async def scenario() -> list[int | None]:
        gate = asyncio.Event()

        async def load() -> int:
            nonlocal loads
            loads += 1
            await gate.wait()
            return 7

        waiters = [asyncio.ensure_future(cache.get("k", load)) for _ in range(50)]
        await asyncio.sleep(0)
        gate.set()
        return await asyncio.gather(*waiters)

    assert asyncio.run(scenario()) == [7] * 50
    assert loads == 1


def test_a_cancelled_waiter_does_not_cancel_the_shared_load() -> None:
    cache: TtlCache[str, int] = TtlCache(FixedClock(T0), 2.0)

    async def scenario() -> int | None:
        gate = asyncio.Event()

        async def load() -> int:
            await gate.wait()
            return 5

        first = asyncio.ensure_future(cache.get("k", load))
        second = asyncio.ensure_future(cache.get("k", load))
        await asyncio.sleep(0)
        first.cancel()
        gate.set()
        return await second

    assert asyncio.run(scenario()) == 5


def test_a_failed_load_is_not_cached() -> None:
    cache: TtlCache[str, int] = TtlCache(FixedClock(T0), 2.0)

    async def failing() -> int:
        raise RuntimeError("store down")

    async def working() -> int:
        return 1

    async def scenario() -> int | None:
        with pytest.raises(RuntimeError, match="store down"):
            await cache.get("k", failing)
        return await cache.get("k", working)

    assert asyncio.run(scenario()) == 1


def test_cache_is_bounded_and_negative_answers_cannot_evict_real_ones() -> None:
    clock = FixedClock(T0)
    cache: TtlCache[str, int] = TtlCache(clock, 2.0, max_entries=3, max_negative_entries=2)
    for n in range(3):
        cache.put(f"real{n}", n)
    for n in range(1000):
        cache.put(f"bogus{n}", None)
    assert len(cache) == 5
    assert [cache.lookup(f"real{n}") for n in range(3)] == [(True, 0), (True, 1), (True, 2)]
    assert cache.lookup("bogus999") == (True, None)
    assert cache.lookup("bogus0") == (False, None)
    cache.put("real3", 3)  # least recently used real entry goes
    assert cache.lookup("real0") == (False, None)


def test_a_clock_stepping_back_does_not_stretch_the_window() -> None:
    clock = FixedClock(T0)
    cache: TtlCache[str, int] = TtlCache(clock, 2.0)
    cache.put("k", 1)
    clock.advance(seconds=-60)
    assert cache.lookup("k") == (False, None)


# -- AccessControl ----------------------------------------------------------------------------
class MemoryAccessStore:
    def __init__(self) -> None:
        self.states: dict[int, AccountState] = {}
        self.keys: dict[str, int] = {}
        self.senders: set[tuple[int, str]] = set()
        self.reads = 0

    async def account_state(self, account_id: int) -> AccountState | None:
        self.reads += 1
        return self.states.get(account_id)

    async def key_owner(self, key_hash: str) -> tuple[int, AccountState] | None:
        self.reads += 1
        account_id = self.keys.get(key_hash)
        return None if account_id is None else (account_id, self.states[account_id])

    async def sender_allowed(self, account_id: int, sender: str) -> bool:
        self.reads += 1
        return (account_id, sender) in self.senders


def _access() -> tuple[AccessControl, MemoryAccessStore, FixedClock, TokenSigner]:
    clock = FixedClock(T0)
    store = MemoryAccessStore()
    signer = TokenSigner("s" * 40)
    store.states[1] = AccountState(ACTIVE, 0, True)
    store.keys[hash_api_key("mpk_good")] = 1
    return AccessControl(store, signer, clock, cache_seconds=2.0), store, clock, signer


def test_once_cached_a_key_and_a_token_authenticate_without_store_reads() -> None:
    access, store, clock, signer = _access()
    token = signer.issue(1, clock.now()).access_token

    async def many() -> list[int | None]:
        return [await access.authenticate(c) for c in ["mpk_good", token] * 100]

    assert asyncio.run(many()) == [1] * 200
    # one key read (which also fills the account's state), nothing else
    assert store.reads == 1


def test_disabling_the_account_refuses_its_tokens_and_keys_after_the_window() -> None:
    access, store, clock, signer = _access()
    token = signer.issue(1, clock.now()).access_token
    assert asyncio.run(access.authenticate(token)) == 1
    store.states[1] = AccountState(DISABLED, 0, True)
    clock.advance(seconds=2)
    assert asyncio.run(access.authenticate(token)) is None
    assert asyncio.run(access.authenticate("mpk_good")) is None
    assert asyncio.run(access.sender_check(1, "a@b.example"))[0] is False


def test_tokens_of_an_older_credential_generation_are_refused() -> None:
    access, store, clock, signer = _access()
    old = signer.issue(1, clock.now(), generation=0).access_token
    store.states[1] = AccountState(ACTIVE, 1, True)
    clock.advance(seconds=2)
    new = signer.issue(1, clock.now(), generation=1).access_token
    assert asyncio.run(access.authenticate(old)) is None
    assert asyncio.run(access.authenticate(new)) == 1
    # static keys are separate credentials: a new generation leaves them alone
    assert asyncio.run(access.authenticate("mpk_good")) == 1


def test_a_bogus_key_asked_again_and_again_reads_the_store_once_per_window() -> None:
    access, store, clock, _signer = _access()

    async def many() -> list[int | None]:
        return [await access.authenticate("mpk_bogus") for _ in range(100)]

    assert asyncio.run(many()) == [None] * 100
    assert store.reads == 1
    clock.advance(seconds=2)
    asyncio.run(many())
    assert store.reads == 2


# -- the token endpoint's failure limits ------------------------------------------------------
def test_failures_beyond_the_limit_block_until_the_oldest_leaves_the_window() -> None:
    clock = FixedClock(T0)
    limiter = FailureLimiter(clock, limit=3, window_seconds=60)
    assert [limiter.record_failure("ip") for _ in range(2)] == [False, False]
    assert limiter.retry_after("ip") is None
    clock.advance(seconds=10)
    assert limiter.record_failure("ip") is True
    assert limiter.retry_after("ip") == 50
    clock.advance(seconds=49.5)
    assert limiter.retry_after("ip") == 1
    clock.advance(seconds=0.5)
    assert limiter.retry_after("ip") is None
    assert limiter.retry_after("other") is None


def test_limiter_memory_is_bounded() -> None:
    clock = FixedClock(T0)
    limiter = FailureLimiter(clock, limit=5, window_seconds=60, max_keys=100)
    for n in range(10_000):
        limiter.record_failure(f"10.0.{n // 256}.{n % 256}")
    for _ in range(50):
        limiter.record_failure("same")
    assert len(limiter) == 100
    assert len(limiter._failures["same"]) == 5


def test_a_zero_limit_never_blocks() -> None:
    limiter = FailureLimiter(FixedClock(T0), limit=0, window_seconds=60)
    for _ in range(100):
        limiter.record_failure("ip")
    assert limiter.retry_after("ip") is None


def test_throttle_blocks_by_client_id_across_ips_and_by_ip_across_client_ids() -> None:
    clock = FixedClock(T0)
    throttle = TokenThrottle(clock, per_ip=10, per_client=5, window_seconds=60)
    for n in range(5):
        throttle.failed(f"10.0.0.{n}", "victim")
    assert throttle.retry_after("10.9.9.9", "victim") == 60
    assert throttle.retry_after("10.9.9.9", "someone-else") is None
    for n in range(10):
        throttle.failed("10.1.1.1", f"guess{n}")
    assert throttle.retry_after("10.1.1.1", "anyone") == 60
