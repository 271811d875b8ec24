"""store/templates.py on each engine: what is stored, found, listed, changed and removed, and
that every query is the account's own."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection

from mailpulse.store import templates
from mailpulse.store.db import Database
from tests.store.test_store import make_account

NOW = datetime(2026, 12, 2, 12, 0, 0)
LATER = datetime(2026, 12, 2, 13, 0, 0)


def test_templates_are_stored_found_listed_changed_and_removed_per_account(db: Database) -> None:
    alice = make_account(db, "alice")
    bob = make_account(db, "bob")

    def story(c: Connection) -> None:
        first = templates.create(c, alice, name="News", lang="en", body="<p>1 ✓</p>", now=NOW)
        second = templates.create(c, alice, name=None, lang="de", body="<p>2</p>", now=NOW)
        third = templates.create(c, alice, name=None, lang="en", body="<p>3</p>", now=NOW)
        bobs = templates.create(c, bob, name="News", lang="en", body="<p>bob</p>", now=NOW)
        assert None not in (first, second, third, bobs)
        assert templates.create(c, alice, name="News", lang="en", body="x", now=NOW) is None
        assert first is not None and second is not None and bobs is not None

        found = templates.get(c, alice, first)
        assert found is not None and found.body == "<p>1 ✓</p>" and found.name == "News"
        assert found.created_at == NOW
        assert templates.get(c, bob, first) is None
        assert templates.body(c, bob, first) is None
        assert templates.body(c, alice, second) == "<p>2</p>"

        listed = templates.list_templates(c, alice, lang=None, limit=10, offset=0)
        assert [t.id for t in listed] == [first, second, third]
        assert all(t.body is None for t in listed)
        assert [
            t.id for t in templates.list_templates(c, alice, lang="de", limit=10, offset=0)
        ] == [second]
        assert [t.id for t in templates.list_templates(c, alice, lang=None, limit=1, offset=1)] == [
            second
        ]

        assert not templates.edit(c, bob, first, body="<p>stolen</p>", lang=None, now=LATER)
        assert templates.edit(c, alice, first, body="<p>new</p>", lang="fr", now=LATER)
        changed = templates.get(c, alice, first)
        assert changed is not None and changed.body == "<p>new</p>" and changed.lang == "fr"
        assert changed.updated_at == LATER and changed.created_at == NOW

        assert not templates.delete(c, bob, first)
        assert templates.delete(c, alice, first)
        assert templates.get(c, alice, first) is None
        assert templates.get(c, bob, bobs) is not None

    db.write_sync(story)


def test_ids_that_cannot_name_a_template_are_none() -> None:
    assert templates.parse_id("12") == 12
    assert templates.parse_id(" 12 ") == 12
    assert templates.parse_id(12) == 12
    for bad in ("", "0", "-1", "1.5", "abc", "١٢", str(2**63), "9" * 40):
        assert templates.parse_id(bad) is None, bad
