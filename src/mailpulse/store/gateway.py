"""The store as the core sees it: the submit pipeline's SubmitStore and access control's
AccessStore, over a Database.

The answers of the account and sender checks are kept by ``core.access.AccessControl`` in the
one short-lived auth cache, which the submit store asks too — so deactivating an account or a
sender reaches sending, tokens and static keys within the same window (``auth_cache_seconds``).
Stored templates are kept for the same window in a small cache of their own (a template sent
again and again is read once per window); this process's template endpoints drop an entry
when they change it, other processes see a change within the window.
"""

from __future__ import annotations

from sqlalchemy import Connection

from mailpulse.core.access import AccessControl, AccountState
from mailpulse.core.clock import Clock, SystemClock
from mailpulse.core.model import NewMessage
from mailpulse.core.submit import Hold
from mailpulse.core.templates import StoredTemplate
from mailpulse.core.ttlcache import TtlCache
from mailpulse.store import accounts, emails, suppression, templates
from mailpulse.store.db import Database


class SqlAccessStore:
    """Uncached reads for ``core.access.AccessControl``; each is one indexed query."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def account_state(self, account_id: int) -> AccountState | None:
        return await self.db.read(lambda conn: accounts.account_state(conn, account_id))

    async def key_owner(self, key_hash: str) -> tuple[int, AccountState] | None:
        return await self.db.read(lambda conn: accounts.key_owner(conn, key_hash))

    async def sender_allowed(self, account_id: int, sender: str) -> bool:
        return await self.db.read(lambda conn: accounts.sender_allowed(conn, account_id, sender))


#: templates kept at once (bodies are up to ``max_template_bytes`` each)
TEMPLATE_CACHE_ENTRIES = 64


class SqlSubmitStore:
    def __init__(self, db: Database, access: AccessControl, clock: Clock | None = None) -> None:
        self.db = db
        self.access = access
        self._templates: TtlCache[tuple[int, int], StoredTemplate] = TtlCache(
            clock or SystemClock(),
            access.cache_seconds,
            max_entries=TEMPLATE_CACHE_ENTRIES,
            max_negative_entries=1024,
        )

    async def sender_check(self, account_id: int, sender: str) -> tuple[bool, bool]:
        return await self.access.sender_check(account_id, sender)

    async def template(self, account_id: int, template_id: str) -> StoredTemplate | None:
        real_id = templates.parse_id(template_id)
        if real_id is None:
            return None

        async def load() -> StoredTemplate | None:
            body = await self.db.read(lambda conn: templates.body(conn, account_id, real_id))
            return None if body is None else StoredTemplate(real_id=real_id, body=body)

        return await self._templates.get((account_id, real_id), load)

    def forget_template(self, account_id: int, real_id: int) -> None:
        """Drop a cached template (its endpoints call this when they change it)."""
        self._templates.forget((account_id, real_id))

    async def save(self, message: NewMessage, hold: Hold) -> NewMessage:
        def job(conn: Connection) -> NewMessage:
            recipients = [d.recipient for d in message.deliveries]
            found = suppression.listed_among(conn, message.account_id, recipients)
            stored = hold(message, found) if found else message
            emails.insert_message(conn, stored)
            return stored

        return await self.db.write(job)
