"""A worker killed mid-session loses nothing: once its lease has run out, another delivers."""

from __future__ import annotations

import asyncio
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


def start_worker(database_url: str, dns: DnsServer, mx_port: int) -> subprocess.Popen[str]:
    """A worker subprocess with a real owner name (host:pid:start:token)."""
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.support.run_worker",
            database_url,
            str(dns.port),
            str(mx_port),
            "auto",
        ],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        text=True,
    )


async def test_a_restarted_worker_frees_the_claims_of_its_dead_predecessor_at_once(
    database_url: str, dns: DnsServer, mx_port: int
) -> None:
    dns.set("example.test", ("MX", (10, "mx.example.test")))
    dns.set("mx.example.test", ("A", "127.0.0.2"))
    db = Database(database_url, synchronous="NORMAL")
    start = SystemClock().now()
    try:
        seed(db, ["victim@example.test"], created_at=start)
        with SmtpSink("127.0.0.2", mx_port, behaviour={"victim@example.test": "stall"}) as sink:
            proc = start_worker(database_url, dns, mx_port)
            try:
                assert proc.stdout is not None
                dead_owner = proc.stdout.readline().strip()
                assert dead_owner.split(":")[1] == str(proc.pid)
                assert sink.wait_for(lambda: sink.stalled == 1, timeout=20)
            finally:
                proc.send_signal(signal.SIGKILL)
                proc.wait(timeout=10)
            held = delivery(db, "victim@example.test")
            assert held.lease_owner == dead_owner
            assert held.lease_until > start + timedelta(seconds=60)  # run_worker leases 300 s
            sink.behaviour["victim@example.test"] = "250"
            sink.unstall()

            # A worker starting on this host a second later: the lease has not run out, but
            # its holder is dead, so the delivery is freed and sent now.
            settings = make_settings(dns, mx_port)
            soon = FixedClock(start + timedelta(seconds=1))
            await DeliveryWorker(db, settings, clock=soon).run_until_idle()
        row = delivery(db, "victim@example.test")
        assert (row.status, row.smtp_answer_code, row.lease_owner) == ("delivered", 250, None)
        # the dead worker's DATA had reached the sink: at least once, here twice
        assert len(sink.received_by("victim@example.test")) >= 1
    finally:
        db.close_sync()


async def test_a_live_worker_renews_its_claims_while_it_works_on_them(
    database_url: str, dns: DnsServer, mx_port: int
) -> None:
    """Short leases are safe: while a transaction takes longer than a lease, its holder keeps
    renewing it, so no other worker takes the delivery over."""
    dns.set("example.test", ("MX", (10, "mx.example.test")))
    dns.set("mx.example.test", ("A", "127.0.0.2"))
    db = Database(database_url, synchronous="NORMAL")
    try:
        seed(db, ["slow@example.test"], created_at=SystemClock().now())
        settings = make_settings(dns, mx_port, lease_seconds=3, command_timeout=30.0)
        with SmtpSink("127.0.0.2", mx_port, behaviour={"slow@example.test": "stall"}) as sink:
            live = DeliveryWorker(db, settings, owner="live", poll_interval=0.05)
            stop = asyncio.Event()
            task = asyncio.create_task(live.run(stop))
            try:
                assert await asyncio.to_thread(sink.wait_for, lambda: sink.stalled == 1, 20)
                first = delivery(db, "slow@example.test").lease_until

                def renewed() -> bool:
                    row = delivery(db, "slow@example.test")
                    return row.lease_owner == "live" and row.lease_until > first

                assert await asyncio.to_thread(sink.wait_for, renewed, 20)
                # past the first lease's end, another worker still finds nothing to claim
                while SystemClock().now() <= first:
                    await asyncio.sleep(0.1)
                other = DeliveryWorker(db, settings, owner="other", poll_interval=0.05)
                await other.run_until_idle()
                assert delivery(db, "slow@example.test").lease_owner == "live"
                sink.behaviour["slow@example.test"] = "250"
                sink.unstall()
                assert await asyncio.to_thread(
                    sink.wait_for,
                    lambda: delivery(db, "slow@example.test").status == "delivered",
                    20,
                )
            finally:
                stop.set()
                await task
        assert len(sink.received_by("slow@example.test")) == 1
        assert len(rows(db, delivery_attempts)) == 1
    finally:
        db.close_sync()
