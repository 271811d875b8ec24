"""A worker killed mid-session loses nothing: once its lease has run out, another delivers."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

from mailpulse.core.clock import FixedClock, SystemClock
from mailpulse.delivery.worker import DeliveryWorker
from mailpulse.store.db import Database
from mailpulse.store.tables import delivery_attempts
from tests.delivery.helpers import RAW, delivery, make_settings, rows, seed
from tests.support.dnsserver import DnsServer
from tests.support.smtpsink import SmtpSink

ROOT = Path(__file__).resolve().parents[2]


async def test_killed_worker_mid_data_then_delivery_after_lease(
    database_url: str, dns: DnsServer, mx_port: int
) -> None:
    dns.set("example.test", ("MX", (10, "mx.example.test")))
    dns.set("mx.example.test", ("A", "127.0.0.2"))
    db = Database(database_url, synchronous="NORMAL")
    start = SystemClock().now()
    try:
        seed(db, ["victim@example.test"], created_at=start)
        with SmtpSink("127.0.0.2", mx_port, behaviour={"victim@example.test": "stall"}) as sink:
            proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "tests.support.run_worker",
                    database_url,
                    str(dns.port),
                    str(mx_port),
                ],
                cwd=ROOT,
                env={**os.environ, "PYTHONPATH": str(ROOT)},
                stdout=subprocess.PIPE,
                text=True,
            )
            try:
                assert proc.stdout is not None
                assert proc.stdout.readline().strip() == "doomed-worker"
                # the subprocess is now stuck waiting for the reply to its DATA
                assert sink.wait_for(lambda: sink.stalled == 1, timeout=20)
            finally:
                proc.send_signal(signal.SIGKILL)
                proc.wait(timeout=10)
            assert proc.returncode == -signal.SIGKILL

            held = delivery(db, "victim@example.test")
            assert (held.status, held.lease_owner) == ("queued", "doomed-worker")
            assert held.lease_until is not None and held.lease_until > start
            sink.behaviour["victim@example.test"] = "250"
            sink.unstall()

            settings = make_settings(dns, mx_port)
            # While the lease lasts, another worker leaves the delivery alone...
            early = FixedClock(start + timedelta(seconds=10))
            await DeliveryWorker(db, settings, clock=early, owner="w2").run_until_idle()
            assert delivery(db, "victim@example.test").lease_owner == "doomed-worker"
            assert sink.messages == []
            # ...and once it has run out, delivers it.
            late = FixedClock(held.lease_until + timedelta(seconds=1))
            await DeliveryWorker(db, settings, clock=late, owner="w3").run_until_idle()
        row = delivery(db, "victim@example.test")
        assert (row.status, row.smtp_answer_code, row.lease_owner) == ("delivered", 250, None)
        assert [m.data for m in sink.messages] == [RAW]
        assert len(rows(db, delivery_attempts)) == 1  # the killed attempt left no record
    finally:
        db.close_sync()
