"""PostgreSQL restarted in the middle of a burst of sends, with ``mailpulse api`` and
``mailpulse worker`` running against it (issue 13: the first send after the restart got a
500, the worker stayed alive and delivered nothing, then ignored SIGTERM).

Every send is answered result:true or 503 (never 500, never a hang); every email answered
true is delivered within 30 s of the server's return, nothing else is; both processes
survive, as does a ``mailpulse serve`` of two processes beside them. Then the server is
stopped again and SIGTERM stops all three within a few seconds (``STOP_SECONDS`` is the hang
detector).
"""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

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
from tests.outage.private_pg import private_postgres

pytestmark = pytest.mark.outage


def test_a_postgresql_restart_mid_burst_is_survived_and_sigterm_still_stops(
    tmp_path: Path,
) -> None:
    with private_postgres() as pg, relay_sink() as sink:
        creds = prepare_store(pg.url)
        env = environment(pg.url, tmp_path, sink.port, MAILPULSE_PROCESSES="1")
        api = start("api", env, tmp_path)
        worker = start("worker", env, tmp_path)
        # beside them, `serve` in two processes: it meets the same outages and SIGTERM
        serve_env = environment(pg.url, tmp_path, sink.port, MAILPULSE_PROCESSES="2")
        serve = start("serve", serve_env, tmp_path)
        base = f"http://127.0.0.1:{env['MAILPULSE_HTTP_PORT']}"
        try:
            sender = Sender(base, token(base, creds), clients=4, pause=0.02).start()
            deadline = time.monotonic() + 30
            # mid-burst, with the worker up and delivering
            while sender.count_accepted() < 30 or len(delivered(sink)) < 5:
                assert time.monotonic() < deadline and not sender.errors, sender.errors
                assert worker.alive(), worker.text()
                time.sleep(0.05)
            pg.stop()
            time.sleep(3)  # the outage: sends meet it
            pg.start()
            back = time.monotonic()
            time.sleep(3)
            sender.stop()
            answers = list(sender.answers) + sender.until_accepted(3)
            check_answers(answers)
            assert any(a.status == 503 for a in answers), "the outage was never met"
            wanted = {a.recipient for a in answers if accepted(a)}
            wait_delivered(sink, wanted, seconds=30 - (time.monotonic() - back) + 30)
            assert delivered(sink) == wanted, "delivered mail that was not answered true"
            assert api.alive() and worker.alive() and serve.alive()
            with httpx.Client(base_url=base, timeout=10) as http:
                deadline = time.monotonic() + 30
                while (ready := http.get("/health/ready")).status_code != 200:
                    assert time.monotonic() < deadline, ready.text
                    time.sleep(0.5)
            for proc in (api, worker):
                assert "store unavailable" in proc.text(), proc.name
                assert "store available again" in proc.text(), proc.name

            # stopped again: SIGTERM stops both within a few seconds whatever the store does
            pg.stop()
            with httpx.Client(base_url=base, timeout=10) as http:
                refused = http.post(
                    "/smtp/emails",
                    headers={"Authorization": f"Bearer {sender.bearer}"},
                    json={
                        "email": {
                            "subject": "x",
                            "text": "y",
                            "from": {"email": "s@example.com"},
                            "to": [{"email": "z@example.org"}],
                        }
                    },
                )
                assert refused.status_code == 503, refused.text
            for proc in (worker, api, serve):
                status, _took = proc.terminate_timed()
                assert status in (0, -15), f"{proc.name} exit {status}:\n{proc.text()[-3000:]}"
        finally:
            for proc in (api, worker, serve):
                proc.kill()
