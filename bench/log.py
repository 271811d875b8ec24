"""Email-log query times over millions of stored records, through the real HTTP API.

    .venv/bin/python bench/log.py --rows 200000
    .venv/bin/python bench/log.py --rows 10000000            # 10,000,000 + 2,000,000 records
    .venv/bin/python bench/log.py --rows 200000 --database-url postgresql://postgres@127.0.0.1:5432/test
    .venv/bin/python bench/log.py --rows 200000 --workdir /tmp/logbench   # keep it, measure again

Migrates a fresh database (an SQLite file in a temp dir, or a throwaway schema in the
PostgreSQL that --database-url names, dropped afterwards), creates the measured account and
another one, fills N deliveries for the first and N/5 for the second (bench/_logfill.py), and
only then starts `mailpulse serve`, as after a restart over a big log. Each query is then timed
through the HTTP API: "first" is the first request after a (re)start of the server, once all
its processes have finished starting (Server.settle); "again" is the first request after a
second restart, when the pages the query reads are in the OS page cache (so first − again is
what reading them from disk cost, and again − p50 what is left of the start itself); then p50
and p99 of 50 sequential requests. Nothing is asserted. The OS page cache is not dropped (the
machine is shared).
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import sqlite3
import statistics
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import psycopg
from _logfill import (  # type: ignore[import-not-found]
    SENDERS,
    build_recipient_index,
    drop_recipient_index,
    fill_postgres,
    fill_sqlite,
)
from _server import MAILPULSE, cli, free_port  # type: ignore[import-not-found]

Case = tuple[str, str, str, dict[str, Any]]


def cases(ids: list[str], one: str) -> list[Case]:
    recipient = "user123@rcpt.example"
    day = {"from": "2026-02-10", "to": "2026-02-10"}
    old_day = {"from": "2026-01-02", "to": "2026-01-02", "limit": 500}
    return [
        ("list, recipient", "GET", "/smtp/emails", {"params": {"recipient": recipient}}),
        ("list, no filter", "GET", "/smtp/emails", {}),
        ("list, limit 500", "GET", "/smtp/emails", {"params": {"limit": 500}}),
        ("list, offset 10000", "GET", "/smtp/emails", {"params": {"offset": 10000}}),
        ("list, sender", "GET", "/smtp/emails", {"params": {"sender": SENDERS[3]}}),
        ("list, one day", "GET", "/smtp/emails", {"params": day}),
        ("list, one day + sender", "GET", "/smtp/emails", {"params": day | {"sender": SENDERS[1]}}),
        (
            "list, recipient + sender",
            "GET",
            "/smtp/emails",
            {"params": {"recipient": recipient, "sender": SENDERS[0]}},
        ),
        ("list, old day, limit 500", "GET", "/smtp/emails", {"params": old_day}),
        ("one record", "GET", f"/smtp/emails/{one}", {}),
        ("info, 500 ids", "POST", "/smtp/emails/info", {"json": {"emails": ids[:500]}}),
        ("total", "GET", "/smtp/emails/total", {}),
    ]


class Server:
    """`mailpulse serve` on the prepared database, (re)started between queries."""

    def __init__(self, env: dict[str, str], workdir: Path) -> None:
        self.env, self.workdir = env, workdir
        self.url = f"http://127.0.0.1:{env['MAILPULSE_HTTP_PORT']}"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        try:
            self._start()
        except RuntimeError:  # e.g. the port was taken meanwhile (the machine is shared)
            self.env["MAILPULSE_HTTP_PORT"] = str(free_port())
            self.env["MAILPULSE_BOUNCE_PORT"] = str(free_port())
            self.url = f"http://127.0.0.1:{self.env['MAILPULSE_HTTP_PORT']}"
            self._start()

    def _start(self) -> None:
        self.process = subprocess.Popen([*MAILPULSE, "serve"], env=self.env, cwd=self.workdir)
        deadline = time.monotonic() + 120
        while True:
            try:
                httpx.get(f"{self.url}/health", timeout=1)
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    self.stop()
                    raise RuntimeError("server did not start") from None
                time.sleep(0.05)
        self.settle()

    def settle(self) -> None:
        """Wait until every process of the server has finished starting (no CPU used for
        0.3 s, 20 s at most): /health is answered by the first worker up, while the others
        may still be importing, and on 2 cores they would slow the request measured."""
        assert self.process is not None
        previous, quiet_since = -1, time.monotonic()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            used = sum(cpu_ticks(pid) for pid in tree(self.process.pid))
            if used != previous:
                previous, quiet_since = used, time.monotonic()
            elif time.monotonic() - quiet_since >= 0.3:
                return
            time.sleep(0.05)

    def cpu_seconds(self) -> float:
        """CPU used so far by the server's processes (user + system; the database server's
        own, on PostgreSQL, is not counted)."""
        assert self.process is not None
        ticks = sum(cpu_ticks(pid) for pid in tree(self.process.pid))
        return ticks / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
            self.process = None


def tree(pid: int) -> list[int]:
    """``pid`` and all its descendants."""
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        try:
            children = Path(f"/proc/{current}/task/{current}/children").read_text().split()
        except OSError:
            continue
        todo.extend(int(child) for child in children)
    return found


def cpu_ticks(pid: int) -> int:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0
    return int(fields[11]) + int(fields[12])  # utime + stime


def timed(http: httpx.Client, case: Case, repeat: int) -> list[float]:
    """The first request, then ``repeat`` more (ms)."""
    _, method, path, kwargs = case
    times = []
    for _ in range(repeat + 1):
        started = time.perf_counter()
        answer = http.request(method, path, **kwargs)
        times.append((time.perf_counter() - started) * 1000)
        answer.raise_for_status()
    return times


def prepare(workdir: Path, env: dict[str, str], rows: int, pg_url: str | None) -> dict[str, Any]:
    """Schema, two accounts, a sender, the fill. Returns what a later run needs (bench.json)."""
    cli(env, "migrate")
    bench = json.loads(cli(env, "account", "create", "--name", "bench", "--json"))
    other = json.loads(cli(env, "account", "create", "--name", "other", "--json"))
    cli(env, "sender", "add", "bench", "bench@example.com")
    started = time.perf_counter()
    if pg_url is None:
        path = str(workdir / "bench.db")
        db = sqlite3.connect(path, isolation_level=None)
        drop_recipient_index(db.execute)
        db.close()
        ids = fill_sqlite(path, bench["id"], rows, 1)
        fill_sqlite(path, other["id"], rows // 5, 2)
        db = sqlite3.connect(path, isolation_level=None)
        db.execute("PRAGMA cache_size=-262144")
        build_recipient_index(db.execute)
        db.close()
    else:
        with psycopg.connect(pg_url, autocommit=True) as pg:
            drop_recipient_index(pg.execute)
        ids = fill_postgres(pg_url, bench["id"], rows, 1)
        fill_postgres(pg_url, other["id"], rows // 5, 2)
        with psycopg.connect(pg_url, autocommit=True) as pg:
            pg.execute("SET maintenance_work_mem = '256MB'")
            build_recipient_index(pg.execute)
            # what autovacuum does after a bulk insert; done now for a settled state
            pg.execute("VACUUM (ANALYZE) deliveries")
            pg.execute("VACUUM (ANALYZE) messages")
    took = time.perf_counter() - started
    print(f"filled {rows:,} + {rows // 5:,} records in {took:.0f} s")
    state = {"bench": bench, "ids": ids[:500], "one": ids[len(ids) // 2], "rows": rows}
    (workdir / "bench.json").write_text(json.dumps(state))
    return state


def database_size(pg_url: str | None, workdir: Path) -> str:
    if pg_url is None:
        size = sum(p.stat().st_size for p in workdir.glob("bench.db*"))
    else:
        with psycopg.connect(pg_url) as db:
            size = db.execute(  # type: ignore[index]
                "SELECT sum(pg_total_relation_size(c.oid)) FROM pg_class c"
                " JOIN pg_namespace n ON n.oid = c.relnamespace"
                " WHERE n.nspname = current_schema() AND c.relkind = 'r'"
            ).fetchone()[0]
    return f"{int(size) / 2**30:.1f} GiB"


def run(workdir: Path, args: argparse.Namespace, schema: str | None) -> None:
    pg_url = None
    env = dict(os.environ)
    env.update(
        {
            "MAILPULSE_DATABASE_URL": f"sqlite:///{workdir / 'bench.db'}",
            "MAILPULSE_DATA_DIR": str(workdir / "var"),
            "MAILPULSE_HTTP_PORT": str(free_port()),
            "MAILPULSE_BOUNCE_PORT": str(free_port()),
            "MAILPULSE_LOG_LEVEL": "warning",
        }
    )
    if schema is not None:
        separator = "&" if "?" in args.database_url else "?"
        pg_url = f"{args.database_url}{separator}options={quote(f'-csearch_path={schema}')}"
        env["MAILPULSE_DATABASE_URL"] = pg_url
    saved = workdir / "bench.json"
    state = (
        json.loads(saved.read_text())
        if saved.exists()
        else prepare(workdir, env, args.rows, pg_url)
    )
    size = database_size(pg_url, workdir)
    print(f"{state['rows']:,} + {state['rows'] // 5:,} records, database {size}")
    if args.fill_only:
        return
    print(f"load average before: {os.getloadavg()[0]:.2f} (2 cores; other sessions share them)")
    server = Server(env, workdir)
    server.start()
    try:
        bench = state["bench"]
        answer = httpx.post(
            f"{server.url}/oauth/access_token",
            json={
                "grant_type": "client_credentials",
                "client_id": bench["client_id"],
                "client_secret": bench["client_secret"],
            },
        )
        answer.raise_for_status()
        headers = {"Authorization": f"Bearer {answer.json()['access_token']}"}
        print(
            f"{'query':28} {'first ms':>9} {'again ms':>9} {'p50 ms':>7} {'p99 ms':>7}"
            f" {'cpu ms':>7}"
        )
        chosen = [c for c in cases(state["ids"], state["one"]) if args.only in c[0]]
        for case in chosen:
            # The token stays valid across restarts: it is signed with the key kept in var/.
            server.stop()
            server.start()
            with httpx.Client(base_url=server.url, headers=headers, timeout=60) as http:
                [first] = timed(http, case, 0)  # (server.url is read after each start)
            server.stop()
            server.start()
            with httpx.Client(base_url=server.url, headers=headers, timeout=60) as http:
                [again] = timed(http, case, 0)
                used = server.cpu_seconds()
                times = timed(http, case, args.repeat - 1)
                cpu = (server.cpu_seconds() - used) * 1000 / args.repeat
            q = statistics.quantiles(times, n=100)
            print(
                f"{case[0]:28} {first:9.1f} {again:9.1f} {q[49]:7.1f} {q[98]:7.1f} {cpu:7.1f}",
                flush=True,
            )
    finally:
        server.stop()
    print(f"load average after: {os.getloadavg()[0]:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--rows", type=int, default=1_000_000, help="records of the measured account"
    )
    parser.add_argument("--repeat", type=int, default=50, help="timed requests after the first")
    parser.add_argument("--database-url", help="a PostgreSQL to fill a throwaway schema in")
    parser.add_argument("--workdir", type=Path, help="keep the database here; reuse it if filled")
    parser.add_argument("--only", default="", help="measure only the queries whose name has this")
    parser.add_argument(
        "--fill-only", action="store_true", help="fill (with --workdir) and measure nothing"
    )
    args = parser.parse_args()
    if args.workdir is not None:
        args.workdir.mkdir(parents=True, exist_ok=True)
        marker = args.workdir / "schema"
        schema = None
        if args.database_url:
            if not marker.exists():
                marker.write_text(f"mp_bench_{secrets.token_hex(6)}")
            schema = marker.read_text()
            _create_schema(args.database_url, schema)
        run(args.workdir, args, schema)
        return
    with tempfile.TemporaryDirectory() as tmp:
        schema = f"mp_bench_{secrets.token_hex(6)}" if args.database_url else None
        if schema is not None:
            _create_schema(args.database_url, schema)
        try:
            run(Path(tmp), args, schema)
        finally:
            if schema is not None:
                with psycopg.connect(args.database_url, autocommit=True) as db:
                    db.execute(f'DROP SCHEMA "{schema}" CASCADE')


def _create_schema(url: str, schema: str) -> None:
    with psycopg.connect(url, autocommit=True) as db:
        db.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')


if __name__ == "__main__":
    main()
