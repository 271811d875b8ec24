"""The retry schedule: exponential with jitter, capped; and the retry window. No sleeping."""

from __future__ import annotations

import random
from datetime import datetime, timedelta

import pytest

from mailpulse.delivery.backoff import RetryPolicy, expired, next_attempt_at, retry_delay


class Fixed:
    def __init__(self, value: float) -> None:
        self.value = value

    def random(self) -> float:
        return self.value


def test_first_retry_is_about_a_minute() -> None:
    assert retry_delay(1, Fixed(0.5)) == timedelta(seconds=60)
    assert retry_delay(1, Fixed(0.0)) == timedelta(seconds=48)
    assert retry_delay(1, Fixed(0.999999)) < timedelta(seconds=72.01)


def test_delays_double_then_cap_at_an_hour() -> None:
    delays = [retry_delay(n, Fixed(0.5)).total_seconds() for n in range(1, 12)]
    assert delays[:6] == [60, 120, 240, 480, 960, 1920]
    assert delays[6:] == [3600] * 5
    assert retry_delay(10_000, Fixed(0.999)) == timedelta(hours=1)  # jitter never exceeds cap


def test_jitter_spreads_retries() -> None:
    rng = random.Random(7)
    delays = {retry_delay(3, rng) for _ in range(50)}
    assert len(delays) > 40
    assert all(timedelta(seconds=192) <= d <= timedelta(seconds=288) for d in delays)


def test_next_attempt_at_adds_to_now() -> None:
    now = datetime(2030, 1, 1)
    assert next_attempt_at(2, now, Fixed(0.5)) == now + timedelta(minutes=2)


@pytest.mark.parametrize(
    ("age", "window", "result"),
    [
        (timedelta(days=4, hours=23), timedelta(days=5), False),
        (timedelta(days=5), timedelta(days=5), True),
        (timedelta(days=6), timedelta(days=5), True),
        (timedelta(minutes=2), timedelta(minutes=1), True),
    ],
)
def test_expired(age: timedelta, window: timedelta, result: bool) -> None:
    created = datetime(2030, 1, 1)
    assert expired(created, created + age, window) is result


def test_default_window_is_five_days() -> None:
    created = datetime(2030, 1, 1)
    assert not expired(created, created + timedelta(days=4))
    assert expired(created, created + timedelta(days=5))
    policy = RetryPolicy(rng=Fixed(0.5))
    assert policy.window == timedelta(days=5)
    assert policy.next_attempt_at(1, created) == created + timedelta(minutes=1)
