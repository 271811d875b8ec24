"""Nothing accepted is lost: SIGKILL the server in the middle of a burst of sends, restart,
and find every email that was answered ``{"result": true}`` stored with its deliveries queued
(``queued``, or ``deferred`` when the worker already tried the unreachable relay)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from mailpulse.cli.accounts import create_account
from mailpulse.core.status import PENDING
from mailpulse.store import accounts, migrate
from mailpulse.store.db import Database
from mailpulse.store.tables import deliveries, messages
from tests.api.test_send import mail
from tests.support.databases import ENGINES, fresh_database_url
from tests.support.server import Tenant, free_port


def start_server(env: dict[str, str]) -> subprocess.Popen[bytes]:
    # its own process group, so SIGKILL reaches every server process at once
    process = subprocess.Popen(
        [sys.executable, "-m", "mailpulse", "serve"], env=env, start_new_session=True
    )
    url = f"http://127.0.0.1:{env['MAILPULSE_HTTP_PORT']}/health"
    deadline = time.monotonic() + 30
    while True:
        try:
            httpx.get(url, timeout=1)
            return process
        except httpx.HTTPError:
            if time.monotonic() > deadline or process.poll() is not None:
                process.kill()
                raise RuntimeError("server did not start") from None
            time.sleep(0.05)


async def burst(url: str, token: str, tenant: Tenant, process: subprocess.Popen[bytes]) -> set[str]:
    """Send from 16 clients; SIGKILL the server once 150 sends were accepted. Returns the ids
    the server answered with result:true (each with three recipients)."""
    accepted: set[str] = set()
    killed = asyncio.Event()
    headers = {"Authorization": f"Bearer {token}"}

    async def client(n: int) -> None:
        async with httpx.AsyncClient(base_url=url, headers=headers, timeout=10) as http:
            for i in range(1000):
                if killed.is_set():
                    return
                payload: dict[str, Any] = mail(
                    tenant,
                    to=[{"email": f"c{n}-{i}@example.org"}],
                    cc=[{"email": f"cc{n}-{i}@example.org"}],
                    bcc=[{"email": f"bcc{n}-{i}@example.org"}],
                )
                try:
                    answer = await http.post("/smtp/emails", json={"email": payload})
                except httpx.HTTPError:
                    return
                if answer.status_code == 200 and answer.json().get("result") is True:
                    accepted.add(answer.json()["id"])
                    if len(accepted) >= 150 and not killed.is_set():
                        killed.set()
                        os.killpg(process.pid, signal.SIGKILL)

    await asyncio.gather(*(client(n) for n in range(16)))
    return accepted


def seeded_account(db: Database) -> dict[str, str | int | bool]:
    """Migrate, then an activated account "crash" with the active sender s@example.com."""
    migrate.upgrade(db.engine)
    creds = create_account(db, "crash", "s@example.com", True)
    now = db.read_sync(lambda c: c.execute(sa.select(sa.func.current_timestamp())).scalar())
    db.write_sync(
        lambda c: accounts.add_sender(
            c,
            account_id=int(creds["id"]),
            email="s@example.com",
            name="",
            now=now,
            status="active",
        )
    )
    return creds


def burst_then_kill_9(
    env: dict[str, str], creds: dict[str, str | int | bool]
) -> tuple[set[str], subprocess.Popen[bytes]]:
    """Start the server, send a burst, SIGKILL its whole process group mid-burst; the ids
    answered result:true, and the dead server process."""
    base = f"http://127.0.0.1:{env['MAILPULSE_HTTP_PORT']}"
    process = start_server(env)
    try:
        token = httpx.post(
            f"{base}/oauth/access_token",
            json={
                "grant_type": "client_credentials",
                "client_id": creds["client_id"],
                "client_secret": creds["client_secret"],
            },
        ).json()["access_token"]
        tenant = Tenant(int(creds["id"]), "", "", token, "s@example.com")
        accepted = asyncio.run(burst(base, token, tenant, process))
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    return accepted, process


@pytest.mark.parametrize("processes", [1, 2])
@pytest.mark.parametrize("engine", ENGINES)
def test_sigkill_mid_burst_loses_no_accepted_email(
    engine: str, processes: int, tmp_path: Path
) -> None:
    with fresh_database_url(engine, tmp_path) as url:
        db = Database(url)
        creds = seeded_account(db)
        port = free_port()
        env = dict(os.environ)
        env.update(
            {
                "MAILPULSE_DATABASE_URL": url,
                "MAILPULSE_DATA_DIR": str(tmp_path / "var"),
                "MAILPULSE_HTTP_PORT": str(port),
                "MAILPULSE_BOUNCE_PORT": str(free_port()),
                "MAILPULSE_LOG_LEVEL": "warning",
                "MAILPULSE_PROCESSES": str(processes),
                # the in-process worker finds nobody listening: deliveries stay in the queue
                "MAILPULSE_RELAY": f"smtp://127.0.0.1:{free_port()}",
            }
        )
        accepted, process = burst_then_kill_9(env, creds)
        assert process.returncode == -signal.SIGKILL
        assert len(accepted) >= 150

        def stored(conn: sa.Connection) -> dict[str, tuple[int, str, int]]:
            first = deliveries.alias("first")
            rows = conn.execute(
                sa.select(
                    first.c.public_id,
                    sa.select(sa.func.count())
                    .where(deliveries.c.message_id == first.c.message_id)
                    .scalar_subquery(),
                    first.c.status,
                    sa.select(sa.func.length(messages.c.raw))
                    .where(messages.c.id == first.c.message_id)
                    .scalar_subquery(),
                ).where(first.c.public_id.in_(sorted(accepted)))
            )
            return {r[0]: (int(r[1]), str(r[2]), int(r[3])) for r in rows}

        # a new process opens the database after the crash, as a restart would
        after = Database(url)
        found = after.read_sync(stored)
        after.close_sync()
        db.close_sync()
        assert set(found) == accepted
        assert all(
            count == 3 and state in PENDING and size > 0 for count, state, size in found.values()
        )
