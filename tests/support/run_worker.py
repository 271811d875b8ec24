"""Run one delivery worker until killed, for the crash tests (which SIGKILL it mid-session).

    python -m tests.support.run_worker DATABASE_URL DNS_PORT MX_PORT [OWNER]

OWNER defaults to "doomed-worker"; "auto" gives the worker the owner name of a real one
(host, pid, start), as ``mailpulse worker`` has. It prints its owner id (one line) once started.
"""

from __future__ import annotations

import asyncio
import sys

from mailpulse.config import Settings
from mailpulse.delivery.worker import DeliveryWorker
from mailpulse.store.db import Database


async def main(url: str, dns_port: int, mx_port: int, owner: str = "doomed-worker") -> None:
    settings = Settings(
        database_url=url,
        dns_nameservers=["127.0.0.1"],
        dns_port=dns_port,
        mx_port=mx_port,
        connect_timeout=5.0,
        command_timeout=60.0,
        lease_seconds=300,
        allow_private_mx=True,
        secret_key="test-secret-key-0123456789abcdef0123456789",
    )
    db = Database(url, synchronous="NORMAL")
    worker = DeliveryWorker(
        db, settings, owner=None if owner == "auto" else owner, poll_interval=0.05
    )
    print(worker.owner, flush=True)
    await worker.run(asyncio.Event())


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), *sys.argv[4:5]))
