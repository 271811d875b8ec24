"""Queries for an account's stored templates (table ``templates``, see tables.py).

Every statement starts with the account id, so one tenant's templates are invisible to another:
an id of another account's template is "not found", exactly like an id that never existed.
Names are unique per account (``uq_templates_account_name``); a template stored without a name
has none (NULL), and any number of those may exist.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection

from mailpulse.store.tables import templates

#: the largest id a lookup binds (a database binds at most a signed 64-bit integer)
MAX_ID = 2**63 - 1


@dataclass(frozen=True)
class Template:
    id: int
    name: str | None
    lang: str
    body: str | None  # None when listed (the list does not carry bodies)
    created_at: datetime
    updated_at: datetime


def parse_id(value: object) -> int | None:
    """A template id as the API receives it (``"12"``, ``12``, ``" 12 "``), or None when it
    cannot name a template (not a whole number, or out of range)."""
    text = str(value).strip()
    if not text.isascii() or not text.isdigit() or len(text) > 19:
        return None
    number = int(text)
    return number if 0 < number <= MAX_ID else None


def _template(row: Any, *, with_body: bool) -> Template:
    m = row._mapping
    return Template(
        id=int(m["id"]),
        name=None if m["name"] is None else str(m["name"]),
        lang=str(m["lang"]),
        body=str(m["body"]) if with_body else None,
        created_at=m["created_at"],
        updated_at=m["updated_at"],
    )


_LISTED = [
    templates.c.id,
    templates.c.name,
    templates.c.lang,
    templates.c.created_at,
    templates.c.updated_at,
]


def create(
    conn: Connection, account_id: int, *, name: str | None, lang: str, body: str, now: datetime
) -> int | None:
    """Store a template; its id, or None when the account has a template of that name."""
    if name is not None and _named(conn, account_id, name) is not None:
        return None
    result = conn.execute(
        sa.insert(templates)
        .values(
            account_id=account_id, name=name, lang=lang, body=body, created_at=now, updated_at=now
        )
        .returning(templates.c.id)
    )
    return int(result.scalar_one())


def _named(conn: Connection, account_id: int, name: str) -> int | None:
    found = conn.execute(
        sa.select(templates.c.id).where(
            templates.c.account_id == account_id, templates.c.name == name
        )
    ).scalar()
    return None if found is None else int(found)


def get(conn: Connection, account_id: int, template_id: int) -> Template | None:
    row = conn.execute(
        sa.select(*_LISTED, templates.c.body).where(
            templates.c.account_id == account_id, templates.c.id == template_id
        )
    ).first()
    return None if row is None else _template(row, with_body=True)


def body(conn: Connection, account_id: int, template_id: int) -> str | None:
    """Only the body, for a send."""
    found = conn.execute(
        sa.select(templates.c.body).where(
            templates.c.account_id == account_id, templates.c.id == template_id
        )
    ).scalar()
    return None if found is None else str(found)


def list_templates(
    conn: Connection, account_id: int, *, lang: str | None, limit: int, offset: int
) -> list[Template]:
    """A page of the account's templates, oldest first (ids grow), without their bodies."""
    query = sa.select(*_LISTED).where(templates.c.account_id == account_id)
    if lang is not None:
        query = query.where(templates.c.lang == lang)
    rows = conn.execute(query.order_by(templates.c.id).limit(limit).offset(offset))
    return [_template(row, with_body=False) for row in rows]


def edit(
    conn: Connection,
    account_id: int,
    template_id: int,
    *,
    body: str,
    lang: str | None,
    now: datetime,
) -> bool:
    """Replace a template's body (and its language, when given); False when there is none."""
    values: dict[str, object] = {"body": body, "updated_at": now}
    if lang is not None:
        values["lang"] = lang
    result = conn.execute(
        sa.update(templates)
        .where(templates.c.account_id == account_id, templates.c.id == template_id)
        .values(**values)
    )
    return result.rowcount > 0


def delete(conn: Connection, account_id: int, template_id: int) -> bool:
    result = conn.execute(
        sa.delete(templates).where(
            templates.c.account_id == account_id, templates.c.id == template_id
        )
    )
    return result.rowcount > 0
