"""The store as the submit pipeline sees it (core.submit.SubmitStore), over a Database."""

from __future__ import annotations

import time
from collections.abc import Callable

from mailpulse.core.model import NewMessage
from mailpulse.store import accounts, emails
from mailpulse.store.db import Database


class SqlSubmitStore:
    """``sender_check`` answers are kept for ``cache_seconds``: every send asks it, and the
    answer changes only when an operator (de)activates an account or a sender, which then
    takes effect within that time."""

    def __init__(
        self,
        db: Database,
        cache_seconds: float = 2.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.db = db
        self._cache_seconds = cache_seconds
        self._monotonic = monotonic
        self._checked: dict[tuple[int, str], tuple[float, tuple[bool, bool]]] = {}

    async def sender_check(self, account_id: int, sender: str) -> tuple[bool, bool]:
        key = (account_id, sender.lower())
        now = self._monotonic()
        cached = self._checked.get(key)
        if cached is not None and cached[0] > now:
            return cached[1]
        answer = await self._sender_check(account_id, key[1])
        if len(self._checked) > 10_000:
            self._checked.clear()
        self._checked[key] = (now + self._cache_seconds, answer)
        return answer

    async def _sender_check(self, account_id: int, sender: str) -> tuple[bool, bool]:
        return await self.db.read(lambda conn: accounts.sender_check(conn, account_id, sender))

    async def template_exists(self, account_id: int, template_id: str) -> bool:
        # Stored templates arrive with the templates issue; until then no id names one.
        return False

    async def save(self, message: NewMessage) -> None:
        await self.db.write(lambda conn: emails.insert_message(conn, message))
