"""The store as the submit pipeline sees it (core.submit.SubmitStore), over a Database."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy import Connection

from mailpulse.core.model import NewMessage
from mailpulse.store import emails
from mailpulse.store.db import Database
from mailpulse.store.tables import accounts, senders


class SqlSubmitStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def sender_check(self, account_id: int, sender: str) -> tuple[bool, bool]:
        def query(conn: Connection) -> tuple[bool, bool]:
            allowed = (
                sa.select(senders.c.id)
                .where(
                    senders.c.account_id == account_id,
                    senders.c.email == sender.lower(),
                    senders.c.status == "active",
                )
                .exists()
            )
            row = conn.execute(
                sa.select(accounts.c.smtp_activated, allowed).where(accounts.c.id == account_id)
            ).first()
            return (False, False) if row is None else (bool(row[0]), bool(row[1]))

        return await self.db.read(query)

    async def template_exists(self, account_id: int, template_id: str) -> bool:
        # Stored templates arrive with the templates issue; until then no id names one.
        return False

    async def save(self, message: NewMessage) -> None:
        await self.db.write(lambda conn: emails.insert_message(conn, message))
