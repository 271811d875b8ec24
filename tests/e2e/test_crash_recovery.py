"""Mail in flight survives a kill -9 of the whole server, and is delivered soon after a restart.

The server delivers through a relay (an SMTP sink in this test process) that takes a moment
over each DATA, so that at the kill the workers hold claims on mail they are still sending.
It is SIGKILLed (its whole process group) mid-burst, started again, and every recipient of
every email answered ``{"result": true}`` must be delivered within 30 s of the restart (a
deadline to detect a failure, not a measure of speed: with the old 300 s leases nothing held
would come back in time). Delivery is at least once: the sink counts the duplicates, mail a
killed worker had handed over whose answer it never recorded.
"""

from __future__ import annotations

import os
import signal
import time
from collections import Counter
from pathlib import Path

import pytest
import sqlalchemy as sa

from mailpulse.store.db import Database
from mailpulse.store.tables import deliveries, delivery_queue
from tests.e2e.test_crash import burst_then_kill_9, seeded_account, start_server
from tests.support.databases import ENGINES, fresh_database_url
from tests.support.server import free_port
from tests.support.smtpsink import SmtpSink

RECOVERY_DEADLINE = 30.0


def recipients_of(db: Database, public_ids: set[str]) -> dict[str, str]:
    """Every recipient of the emails whose first recipient has one of ``public_ids``: status."""

    def query(conn: sa.Connection) -> dict[str, str]:
        first = deliveries.alias("first")
        message_ids = sa.select(first.c.message_id).where(first.c.public_id.in_(public_ids))
        rows = conn.execute(
            sa.select(deliveries.c.recipient, deliveries.c.status).where(
                deliveries.c.message_id.in_(message_ids)
            )
        )
        return {str(r.recipient): str(r.status) for r in rows}

    return db.read_sync(query)


def held_claims(db: Database) -> int:
    q = delivery_queue
    return int(
        db.read_sync(
            lambda c: c.execute(
                sa.select(sa.func.count()).where(q.c.lease_owner.is_not(None))
            ).scalar_one()
        )
    )


@pytest.mark.parametrize("engine", ENGINES)
def test_kill_9_of_the_whole_server_then_everything_accepted_is_delivered_after_restart(
    engine: str, tmp_path: Path
) -> None:
    with (
        fresh_database_url(engine, tmp_path) as url,
        SmtpSink("127.0.0.1", data_delay=0.1) as sink,
    ):
        db = Database(url)
        creds = seeded_account(db)
        port = free_port()
        env = dict(os.environ)
        env.update(
            {
                "MAILPULSE_DATABASE_URL": url,
                "MAILPULSE_DATA_DIR": str(tmp_path / "var"),
                "MAILPULSE_HTTP_PORT": str(port),
                "MAILPULSE_LOG_LEVEL": "warning",
                "MAILPULSE_PROCESSES": "2",
                "MAILPULSE_RELAY": f"smtp://127.0.0.1:{sink.port}",
                "MAILPULSE_SESSION_IDLE_SECONDS": "0.2",
            }
        )
        accepted, process = burst_then_kill_9(env, creds)
        assert process.returncode == -signal.SIGKILL
        assert len(accepted) >= 150
        wanted = recipients_of(db, accepted)
        assert len(wanted) == 3 * len(accepted)
        # the dead workers held claims on mail they were still sending: what must come back
        assert held_claims(db) > 0
        assert any(state != "delivered" for state in wanted.values())

        restarted = start_server(env)
        restart = time.monotonic()
        try:
            while True:
                wanted = recipients_of(db, accepted)
                if all(state == "delivered" for state in wanted.values()):
                    break
                late = sorted(r for r, s in wanted.items() if s != "delivered")
                assert time.monotonic() - restart < RECOVERY_DEADLINE, (
                    f"{len(late)} not delivered {RECOVERY_DEADLINE:g} s after the restart: "
                    f"{late[:5]}"
                )
                time.sleep(0.2)
        finally:
            os.killpg(restarted.pid, signal.SIGTERM)
            restarted.wait(timeout=30)
            db.close_sync()

        received = Counter(r for m in sink.messages for r in m.rcpt_tos if r in wanted)
        assert set(received) == set(wanted)  # every recipient reached the sink
        duplicates = sum(n - 1 for n in received.values())
        print(
            f"\n{engine}: {len(wanted)} deliveries accepted, {duplicates} duplicates at the sink "
            f"({100 * duplicates / len(wanted):.1f} %), "
            f"recovered in {time.monotonic() - restart:.1f} s"
        )
