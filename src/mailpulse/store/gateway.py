"""The store as the core sees it: the submit pipeline's SubmitStore and access control's
AccessStore, over a Database.

Neither caches by itself: the answers of the account and sender checks are kept by
``core.access.AccessControl`` in the one short-lived auth cache, which the submit store asks
too — so deactivating an account or a sender reaches sending, tokens and static keys within
the same window (``auth_cache_seconds``).
"""

from __future__ import annotations

from sqlalchemy import Connection

from mailpulse.core.access import AccessControl, AccountState
from mailpulse.core.model import NewMessage
from mailpulse.core.submit import Hold
from mailpulse.store import accounts, emails, suppression
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


class SqlSubmitStore:
    def __init__(self, db: Database, access: AccessControl) -> None:
        self.db = db
        self.access = access

    async def sender_check(self, account_id: int, sender: str) -> tuple[bool, bool]:
        return await self.access.sender_check(account_id, sender)

    async def template_exists(self, account_id: int, template_id: str) -> bool:
        # Stored templates arrive with the templates issue; until then no id names one.
        return False

    async def save(self, message: NewMessage, hold: Hold) -> NewMessage:
        def job(conn: Connection) -> NewMessage:
            recipients = [d.recipient for d in message.deliveries]
            found = suppression.listed_among(conn, message.account_id, recipients)
            stored = hold(message, found) if found else message
            emails.insert_message(conn, stored)
            return stored

        return await self.db.write(job)
