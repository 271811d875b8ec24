"""Injected time: the service asks a Clock, tests hand it a fixed or stepping one."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC).replace(tzinfo=None)


class FixedClock:
    """A clock for tests: stands still until moved."""

    def __init__(self, at: datetime) -> None:
        self._at = at

    def now(self) -> datetime:
        return self._at

    def advance(self, **delta: float) -> None:
        self._at = self._at + timedelta(**delta)


def format_date(value: datetime | None) -> str | None:
    """SendPulse's date form: ``YYYY-MM-DD HH:MM:SS`` in UTC."""
    return None if value is None else value.strftime("%Y-%m-%d %H:%M:%S")
