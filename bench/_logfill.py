"""Filling the email log for bench/log.py: N deliveries of one account, fast, on either engine.

The rows look like the log of a busy tenant: spread evenly over 90 days, one message per ten
deliveries (2 KB of stored bytes each), 50,000 recipients and 5 senders, all delivered. SQLite
is filled with the sqlite3 module (executemany, a commit every 200,000 rows, no WAL or fsync
while the server is not running yet), PostgreSQL with COPY. On SQLite the triggers of the
schema run for every row, as they do for accepted mail; on PostgreSQL the log_counts trigger
is switched off during the COPY and the rows copied are then added to the account's count in
one statement (one COPY of millions of rows updating one counter row would build a version
chain that long).
"""

from __future__ import annotations

import random
import sqlite3
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta

import psycopg

START = datetime(2026, 1, 1)
DAYS = 90
SENDERS = [f"sender{i}@bench.example" for i in range(5)]
RECIPIENTS = 50_000
RAW = b"Subject: bench\r\n\r\n" + b"x" * 2000
CHUNK = 200_000
# Random inserts into this one index are what makes a big fill slow (50,000 recipients all
# over the B-tree); it is dropped before the fill and built after it, as a restore would.
RECIPIENT_INDEX = "ix_deliveries_account_recipient"
CREATE_RECIPIENT_INDEX = (
    f"CREATE INDEX {RECIPIENT_INDEX} ON deliveries (account_id, recipient, created_at)"
)

DELIVERY_COLUMNS = (
    "public_id, account_id, message_id, recipient, recipient_domain, sender, status,"
    " created_at, updated_at, send_date, smtp_answer_code, smtp_answer_subcode"
)
MESSAGE_COLUMNS = (
    "id, account_id, source, envelope_from, sender, subject, message_id_header, total_size,"
    " sender_ip, raw, created_at"
)


def public_id(account: int, i: int, rng: random.Random) -> str:
    digits = f"{account:02d}{i:010d}"
    return f"{digits[:6]}-{digits[6:12]}-{rng.randrange(36**2):02d}"[:16]


def messages(account: int, first: int, count: int) -> Iterator[tuple[object, ...]]:
    for i in range(count):
        sender = SENDERS[i % 5]
        yield (first + i, account, "api", sender, sender, f"Subject {i}", "", len(RAW),
               "127.0.0.1", RAW, START)  # fmt: skip


def deliveries(
    account: int, first_message: int, rows: int, rng: random.Random, ids: list[str]
) -> Iterator[tuple[object, ...]]:
    span = DAYS * 86400
    for i in range(rows):
        created = START + timedelta(seconds=span * i / rows)
        pid = public_id(account, i, rng)
        ids.append(pid)
        recipient = f"user{rng.randrange(RECIPIENTS)}@rcpt.example"
        sender = SENDERS[(i // 10) % 5]
        yield (pid, account, first_message + i // 10, recipient, "rcpt.example", sender,
               "delivered", created, created, created, 250, "2.0.0")  # fmt: skip


def fill_sqlite(path: str, account: int, rows: int, seed: int) -> list[str]:
    """Insert ``rows`` deliveries for ``account``; returns their public ids, oldest first."""
    rng = random.Random(seed)
    db = sqlite3.connect(path, timeout=60, isolation_level=None)
    # A bulk load into a database nobody else has open yet: pages written once, straight into
    # the file (no WAL to checkpoint), no fsync; WAL again at the end, as the server uses it.
    db.execute("PRAGMA journal_mode=MEMORY")
    db.execute("PRAGMA synchronous=OFF")
    db.execute("PRAGMA cache_size=-262144")  # 256 MB
    first = db.execute("SELECT coalesce(max(id), 0) FROM messages").fetchone()[0] + 1
    stamp = "%Y-%m-%d %H:%M:%S.%f"
    db.execute("BEGIN")
    db.executemany(
        f"INSERT INTO messages ({MESSAGE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        ((*m[:-1], START.strftime(stamp)) for m in messages(account, first, max(1, rows // 10))),
    )
    db.execute("COMMIT")
    ids: list[str] = []
    batch: list[tuple[object, ...]] = []
    insert = f"INSERT INTO deliveries ({DELIVERY_COLUMNS}) VALUES ({', '.join('?' * 12)})"
    for row in deliveries(account, first, rows, rng, ids):
        at = row[7].strftime(stamp)  # type: ignore[attr-defined]
        batch.append((*row[:7], at, at, at, *row[10:]))
        if len(batch) == CHUNK:
            db.execute("BEGIN")
            db.executemany(insert, batch)
            db.execute("COMMIT")
            batch = []
    db.execute("BEGIN")
    db.executemany(insert, batch)
    db.execute("COMMIT")
    db.execute("PRAGMA journal_mode=WAL")
    db.close()
    return ids


def fill_postgres(url: str, account: int, rows: int, seed: int) -> list[str]:
    """The same rows with COPY (``url`` is a libpq URL, its search_path set in options)."""
    rng = random.Random(seed)
    ids: list[str] = []
    with psycopg.connect(url) as db:
        first = db.execute("SELECT coalesce(max(id), 0) FROM messages").fetchone()[0] + 1  # type: ignore[index]
        with db.cursor().copy(f"COPY messages ({MESSAGE_COLUMNS}) FROM STDIN") as copy:
            for m in messages(account, first, max(1, rows // 10)):
                copy.write_row(m)
        db.execute(f"SELECT setval(pg_get_serial_sequence('messages', 'id'), {first + rows})")
        db.commit()
        db.execute("ALTER TABLE deliveries DISABLE TRIGGER deliveries_count")
        db.commit()
        source = deliveries(account, first, rows, rng, ids)
        done = False
        while not done:
            with db.cursor().copy(f"COPY deliveries ({DELIVERY_COLUMNS}) FROM STDIN") as copy:
                for n, row in enumerate(source, start=1):
                    copy.write_row(row)
                    if n == CHUNK:
                        break
                else:
                    done = True
            db.commit()
        db.execute("ALTER TABLE deliveries ENABLE TRIGGER deliveries_count")
        db.execute(
            "INSERT INTO log_counts (account_id, stripe, total) VALUES (%s, 0, %s) "
            "ON CONFLICT (account_id, stripe) DO UPDATE SET total = log_counts.total + %s",
            (account, rows, rows),
        )
        db.commit()
    return ids


def drop_recipient_index(execute: Callable[[str], object]) -> None:
    execute(f"DROP INDEX {RECIPIENT_INDEX}")


def build_recipient_index(execute: Callable[[str], object]) -> None:
    execute(CREATE_RECIPIENT_INDEX)
