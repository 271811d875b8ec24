"""Connections killed from the server side: ``pg_terminate_backend`` on every backend of
the ``mailpulse serve`` processes (two of them), twice, in the middle of a burst of sends, on
the PostgreSQL that MAILPULSE_TEST_DATABASE_URL names. Sends and deliveries resume by
themselves: every answer is result:true or 503, everything answered true is delivered within
30 s, nothing else is.
"""

from __future__ import annotations

import secrets
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from mailpulse.store.engine import normalise_url
from tests.outage.harness import (
    Sender,
    accepted,
    check_answers,
    delivered,
    environment,
    prepare_store,
    relay_sink,
    start,
    token,
    wait_delivered,
)
from tests.support.databases import PG_SKIP_REASON, pg_base_url, pg_schema

pytestmark = [pytest.mark.outage, pytest.mark.postgres]


def terminate(admin: sa.Engine, application: str) -> int:
    with admin.connect() as conn:
        killed = conn.execute(
            sa.text(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE application_name = :name AND pid <> pg_backend_pid()"
            ),
            {"name": application},
        ).scalar_one()
    return int(killed)


def test_backends_terminated_from_the_server_side_are_survived(tmp_path: Path) -> None:
    base = pg_base_url()
    if base is None:
        pytest.skip(PG_SKIP_REASON)
    application = f"mailpulse_outage_{secrets.token_hex(4)}"
    admin = sa.create_engine(normalise_url(base), isolation_level="AUTOCOMMIT")
    with pg_schema(base, "mp_outage") as schema_url, relay_sink() as sink:
        url = f"{schema_url}&application_name={application}"
        creds = prepare_store(url)
        env = environment(url, tmp_path, sink.port, MAILPULSE_PROCESSES="2")
        server = start("serve", env, tmp_path)
        http_base = f"http://127.0.0.1:{env['MAILPULSE_HTTP_PORT']}"
        try:
            sender = Sender(http_base, token(http_base, creds), clients=4, pause=0.02).start()
            deadline = time.monotonic() + 30
            while sender.count_accepted() < 30 or len(delivered(sink)) < 5:
                assert time.monotonic() < deadline and not sender.errors, sender.errors
                time.sleep(0.05)
            killed = terminate(admin, application)
            time.sleep(1.5)
            killed += terminate(admin, application)
            time.sleep(1.5)
            sender.stop()
            assert killed > 0, "no backend of the server was found to terminate"
            answers = list(sender.answers) + sender.until_accepted(5)
            check_answers(answers)
            wanted = {a.recipient for a in answers if accepted(a)}
            wait_delivered(sink, wanted)
            assert delivered(sink) == wanted, "delivered mail that was not answered true"
            assert server.alive(), server.text()[-3000:]
            assert "store unavailable" in server.text()  # said, once per part
        finally:
            status, _ = server.terminate_timed()
            admin.dispose()
        assert status in (0, -15), server.text()[-3000:]
