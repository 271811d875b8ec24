"""How long claiming one batch of deliveries takes with a big queue.

    .venv/bin/python bench/claim.py                       # SQLite file under /tmp, 1,000,000 rows
    .venv/bin/python bench/claim.py --url postgresql://postgres@127.0.0.1:5432/test
    .venv/bin/python bench/claim.py --rows 200000 --batches 100 --batch-size 200

Fills a freshly migrated database (on PostgreSQL: a throwaway schema) with N queued, due
deliveries spread over 1,000 domains, then claims batches one after another the way a worker
does — through ``Database.write`` (the writer thread, its transaction and COMMIT included) —
and prints the claim query plan and the time per batch (p50, p90, p99, max). The target is
under 10 ms per batch of 200 with 1,000,000 queued. Nothing here is asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import statistics
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path
from urllib.parse import quote

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from mailpulse.delivery.queue import _CLAIM, claim
from mailpulse.store import migrate
from mailpulse.store.db import Database
from mailpulse.store.engine import is_sqlite, normalise_url
from mailpulse.store.tables import accounts, messages

NOW = datetime(2030, 1, 1, 12, 0, 0)
DOMAINS = 1000
MESSAGES = 1000


def _delivery_rows(n: int) -> list[tuple[object, ...]]:
    out = []
    for i in range(n):
        created = NOW - timedelta(seconds=n - i)  # oldest first, all due
        out.append(
            (
                f"b{i:013d}",
                1,
                (i % MESSAGES) + 1,
                f"user{i}@domain{i % DOMAINS}.test",
                f"domain{i % DOMAINS}.test",
                "bench@mailpulse.test",
                "queued",
                created,
                created,
            )
        )
    return out


COLUMNS = (
    "public_id, account_id, message_id, recipient, recipient_domain, sender, status,"
    " created_at, updated_at"
)


def fill(db: Database, n: int) -> None:
    raw = b"Subject: bench\r\n\r\n" + b"x" * 2000 + b"\r\n"

    def base(conn: sa.Connection) -> None:
        conn.execute(
            sa.insert(accounts).values(
                id=1, name="bench", client_id="bench", client_secret_hash="x", created_at=NOW
            )
        )
        conn.execute(
            sa.insert(messages),
            [
                {
                    "id": i + 1,
                    "account_id": 1,
                    "envelope_from": "bench@mailpulse.test",
                    "sender": "bench@mailpulse.test",
                    "total_size": len(raw),
                    "raw": raw,
                    "created_at": NOW,
                }
                for i in range(MESSAGES)
            ],
        )

    db.write_sync(base)
    chunk = 100_000
    for start in range(0, n, chunk):
        rows = _delivery_rows(min(chunk, n - start))
        rows = [(f"b{start + i:013d}", *r[1:]) for i, r in enumerate(rows)]
        # next_attempt_at/created_at stay strictly increasing across chunks
        shift = timedelta(seconds=start)
        rows = [(*r[:7], r[7] + shift, r[8] + shift) for r in rows]

        def insert(conn: sa.Connection, rows: list[tuple[object, ...]] = rows) -> None:
            if conn.dialect.name == "postgresql":
                dbapi = conn.connection.dbapi_connection
                assert dbapi is not None
                with (
                    dbapi.cursor() as cur,
                    cur.copy(  # type: ignore[attr-defined]
                        f"COPY deliveries ({COLUMNS}) FROM STDIN"
                    ) as copy,
                ):
                    for row in rows:
                        copy.write_row(row)
            else:
                marks = ", ".join("?" * 9)
                cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
                cursor.executemany(f"INSERT INTO deliveries ({COLUMNS}) VALUES ({marks})", rows)

        db.write_sync(insert)
        print(f"  filled {start + len(rows):,}", flush=True)
    # (each queued delivery was put in delivery_queue by the database's insert trigger)
    if db.dialect == "postgresql":
        db.write_sync(lambda conn: conn.exec_driver_sql("ANALYZE deliveries"))
        db.write_sync(lambda conn: conn.exec_driver_sql("ANALYZE delivery_queue"))
    else:
        db.write_sync(lambda conn: conn.exec_driver_sql("ANALYZE"))


def plan(db: Database, batch: int) -> str:
    """The engine's plan for the very statement ``claim`` runs (not executed)."""

    def explain(conn: sa.Connection) -> str:
        sqlite = conn.dialect.name == "sqlite"
        compiled = _CLAIM[not sqlite].compile(dialect=conn.dialect)
        values = compiled.construct_params(
            {"now": NOW, "until": NOW + timedelta(seconds=300), "owner": "x", "limit": batch}
        )
        if sqlite:  # qmark parameters, datetimes as SQLAlchemy stores them
            args: object = tuple(
                v.strftime("%Y-%m-%d %H:%M:%S.%f") if isinstance(v, datetime) else v
                for v in (values[name] for name in compiled.positiontup or ())
            )
            rows = conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {compiled}", args)  # type: ignore[arg-type]
            return "\n".join(str(r[-1]) for r in rows)
        rows = conn.exec_driver_sql(f"EXPLAIN {compiled}", values)
        return "\n".join(str(r[0]) for r in rows)

    return db.read_sync(explain)


async def time_claims(db: Database, batches: int, size: int) -> tuple[list[float], list[float]]:
    """Per batch: the whole round trip through the writer (COMMIT included), and the time
    spent in ``claim`` itself (select + update, inside the transaction)."""
    total: list[float] = []
    inner: list[float] = []
    for i in range(batches):
        owner = f"bench-{i % 4}"

        def job(conn: sa.Connection, owner: str = owner) -> int:
            start = time.perf_counter()
            got = claim(conn, NOW, owner, size, 300)
            inner.append((time.perf_counter() - start) * 1000)
            return len(got)

        start = time.perf_counter()
        got = await db.write(job)
        total.append((time.perf_counter() - start) * 1000)
        assert got == size, got
    return total, inner


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--url", default="", help="database URL (default: a new SQLite file)")
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--batches", type=int, default=200)
    parser.add_argument("--batch-size", type=int, default=200)
    parser.add_argument(
        "--synchronous", default="FULL", help="SQLite PRAGMA synchronous (FULL: durable)"
    )
    args = parser.parse_args()

    schema = None
    url = args.url
    tmp = None
    if not url:
        tmp = tempfile.TemporaryDirectory(prefix="mailpulse-bench-")
        url = f"sqlite:///{tmp.name}/claim.db"
    elif not is_sqlite(url):
        schema = f"bench_claim_{secrets.token_hex(4)}"
        admin = sa.create_engine(normalise_url(url), isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
        url = f"{url}{'&' if '?' in url else '?'}options={quote(f'-csearch_path={schema}')}"
    db = Database(url, synchronous=args.synchronous)
    try:
        migrate.upgrade(db.engine)
        started = time.perf_counter()
        fill(db, args.rows)
        print(f"filled {args.rows:,} queued deliveries in {time.perf_counter() - started:.1f} s")
        print(f"claim plan ({db.dialect}):\n{plan(db, args.batch_size)}")
        total, inner = asyncio.run(time_claims(db, args.batches, args.batch_size))
        for label, timings in (("with COMMIT", total), ("claim() alone", inner)):
            warm = timings[5:] if len(timings) > 10 else timings
            print(
                f"{db.dialect} {label}: batch of {args.batch_size} with {args.rows:,} queued, "
                f"{len(warm)} batches: p50 {statistics.median(warm):.2f} ms, "
                f"p90 {pct(warm, 90):.2f} ms, p99 {pct(warm, 99):.2f} ms, "
                f"max {max(warm):.2f} ms"
            )
    finally:
        db.close_sync()
        if schema is not None:
            admin = sa.create_engine(normalise_url(args.url), isolation_level="AUTOCOMMIT")
            with admin.connect() as conn:
                conn.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')
            admin.dispose()
        if tmp is not None:
            tmp.cleanup()


if __name__ == "__main__":
    main()
