"""Email-log query times over a million stored records, through the real HTTP API.

    .venv/bin/python bench/log.py                 # 1,000,000 records for the tenant measured
    .venv/bin/python bench/log.py --rows 200000

Starts `mailpulse serve` on a fresh SQLite file, fills it (with sqlite3 directly, while the
server runs, as concurrent writers would) with N deliveries for the measured account spread
over 90 days, 50,000 recipients and 5 senders, plus N/5 for another account, then times
GET /smtp/emails with each filter combination, GET /smtp/emails/total, GET /smtp/emails/{id}
and POST /smtp/emails/info: the first (cold) request, then p50 and p99 of 50 sequential ones.
The target is under 50 ms for listing with filters. Nothing here is asserted.
"""

from __future__ import annotations

import argparse
import random
import sqlite3
import statistics
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

import httpx
from _server import serve  # type: ignore[import-not-found]

START = datetime(2026, 1, 1)
DAYS = 90
SENDERS = [f"sender{i}@bench.example" for i in range(5)]


def fill(path: Path, account: int, rows: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    db = sqlite3.connect(path, timeout=60)
    db.execute("PRAGMA journal_mode=WAL")
    cur = db.cursor()
    raw = b"Subject: bench\r\n\r\n" + b"x" * 2000
    messages = max(1, rows // 10)
    first_message = (cur.execute("SELECT coalesce(max(id), 0) FROM messages").fetchone()[0]) + 1
    stamp = START.strftime("%Y-%m-%d %H:%M:%S.000000")
    cur.executemany(
        "INSERT INTO messages (id, account_id, source, envelope_from, sender, subject,"
        " message_id_header, total_size, sender_ip, raw, created_at)"
        " VALUES (?, ?, 'api', ?, ?, ?, '', ?, '127.0.0.1', ?, ?)",
        [
            (
                first_message + i,
                account,
                SENDERS[i % 5],
                SENDERS[i % 5],
                f"Subject {i}",
                len(raw),
                raw,
                stamp,
            )
            for i in range(messages)
        ],
    )
    ids: list[str] = []
    span = DAYS * 86400
    batch: list[tuple[object, ...]] = []
    for i in range(rows):
        at = START + timedelta(seconds=span * i / rows)
        created = at.strftime("%Y-%m-%d %H:%M:%S.%f")
        message = first_message + i // 10
        public_id = f"{account:02d}{i:010d}"
        public_id = f"{public_id[:6]}-{public_id[6:12]}-{rng.randrange(36**2):02d}"[:16]
        ids.append(public_id)
        batch.append(
            (
                public_id,
                account,
                message,
                f"user{rng.randrange(50_000)}@rcpt.example",
                "rcpt.example",
                SENDERS[(i // 10) % 5],
                "delivered",
                created,
                created,
                created,
                250,
                "2.0.0",
            )
        )
        if len(batch) == 100_000:
            _insert(cur, batch)
            batch = []
    _insert(cur, batch)
    db.commit()
    db.execute("ANALYZE")
    db.close()
    return ids


def _insert(cur: sqlite3.Cursor, batch: list[tuple[object, ...]]) -> None:
    cur.executemany(
        "INSERT INTO deliveries (public_id, account_id, message_id, recipient, recipient_domain,"
        " sender, status, created_at, updated_at, send_date, smtp_answer_code,"
        " smtp_answer_subcode) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        batch,
    )


def timed(
    http: httpx.Client, method: str, path: str, **kwargs: object
) -> tuple[float, float, float]:
    """The first (cold: pages not yet in SQLite's cache) request, then p50 and p99 of 50."""
    started = time.perf_counter()
    http.request(method, path, **kwargs).raise_for_status()  # type: ignore[arg-type]
    cold = (time.perf_counter() - started) * 1000
    times = []
    for _ in range(50):
        started = time.perf_counter()
        answer = http.request(method, path, **kwargs)  # type: ignore[arg-type]
        times.append((time.perf_counter() - started) * 1000)
        answer.raise_for_status()
    q = statistics.quantiles(times, n=100)
    return cold, q[49], q[98]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, serve(Path(tmp)) as server:
        started = time.perf_counter()
        ids = fill(Path(tmp) / "bench.db", 1, args.rows, 1)
        fill(Path(tmp) / "bench.db", 2, args.rows // 5, 2)
        took = time.perf_counter() - started
        print(f"filled {args.rows:,} + {args.rows // 5:,} records in {took:.0f} s")
        headers = {"Authorization": f"Bearer {server.token()}"}
        one = ids[len(ids) // 2]
        recipient = "user123@rcpt.example"
        day = {"from": "2026-02-10", "to": "2026-02-10"}
        cases: list[tuple[str, str, str, dict[str, object]]] = [
            ("list, no filter", "GET", "/smtp/emails", {}),
            ("list, limit 500", "GET", "/smtp/emails", {"params": {"limit": 500}}),
            ("list, offset 10000", "GET", "/smtp/emails", {"params": {"offset": 10000}}),
            ("list, recipient", "GET", "/smtp/emails", {"params": {"recipient": recipient}}),
            ("list, sender", "GET", "/smtp/emails", {"params": {"sender": SENDERS[3]}}),
            ("list, one day", "GET", "/smtp/emails", {"params": day}),
            (
                "list, one day + sender",
                "GET",
                "/smtp/emails",
                {"params": day | {"sender": SENDERS[1]}},
            ),
            (
                "list, recipient + sender",
                "GET",
                "/smtp/emails",
                {"params": {"recipient": recipient, "sender": SENDERS[0]}},
            ),
            (
                "list, old day, limit 500",
                "GET",
                "/smtp/emails",
                {"params": {"from": "2026-01-02", "to": "2026-01-02", "limit": 500}},
            ),
            ("one record", "GET", f"/smtp/emails/{one}", {}),
            ("info, 500 ids", "POST", "/smtp/emails/info", {"json": {"emails": ids[:500]}}),
            ("total", "GET", "/smtp/emails/total", {}),
        ]
        with httpx.Client(base_url=server.url, headers=headers, timeout=60) as http:
            print(f"{'query':32} {'cold ms':>8} {'p50 ms':>8} {'p99 ms':>8}")
            for name, method, path, kwargs in cases:
                cold, p50, p99 = timed(http, method, path, **kwargs)
                print(f"{name:32} {cold:8.1f} {p50:8.1f} {p99:8.1f}")


if __name__ == "__main__":
    main()
