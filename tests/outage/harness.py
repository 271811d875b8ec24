"""What the outage tests share: a migrated store with one account, the ``mailpulse``
processes under test (real commands, own process groups, their logs kept), a relay sink, and
a sender that records every answer of a burst of sends.

The invariant every outage test checks (issue 13): each send is answered ``{"result": true}``
or a 503 in the SendPulse shape with Retry-After (never a 500, never a hang), every email
answered true reaches the sink within 30 s of the store's return, and nothing else does.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa

from mailpulse.cli.accounts import create_account
from mailpulse.store import accounts, migrate
from mailpulse.store.db import Database
from tests.support.server import free_port
from tests.support.smtpsink import SmtpSink

SENDER = "s@example.com"
#: A send that takes longer than this is a hang (not a speed requirement).
HANG_SECONDS = 30.0
DELIVERY_SECONDS = 30.0  # after the store is back (issue 13)
STOP_SECONDS = 15.0  # SIGTERM to exit: a hang detector, "a few seconds" is what is expected


def prepare_store(url: str) -> dict[str, Any]:
    """Migrate, create an account with an active sender; returns its credentials."""
    db = Database(url)
    migrate.upgrade(db.engine)
    creds = create_account(db, "outage", SENDER, True)
    now = db.read_sync(lambda c: c.execute(sa.select(sa.func.current_timestamp())).scalar())
    db.write_sync(
        lambda c: accounts.add_sender(
            c, account_id=int(creds["id"]), email=SENDER, name="", now=now, status="active"
        )
    )
    db.close_sync()
    return creds


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def alive(self) -> bool:
        return self.popen.poll() is None

    def terminate_timed(self) -> tuple[int, float]:
        """SIGTERM; (exit status, seconds it took), SIGKILL past STOP_SECONDS."""
        start = time.monotonic()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, signal.SIGTERM)
        try:
            status = self.popen.wait(timeout=STOP_SECONDS)
        except subprocess.TimeoutExpired:
            os.killpg(self.popen.pid, signal.SIGKILL)
            self.popen.wait()
            return -signal.SIGKILL, time.monotonic() - start
        return status, time.monotonic() - start

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, signal.SIGKILL)
        self.popen.wait()


def environment(url: str, tmp_path: Path, relay_port: int, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "MAILPULSE_DATABASE_URL": url,
            "MAILPULSE_DATA_DIR": str(tmp_path / "var"),
            "MAILPULSE_HTTP_PORT": str(free_port()),
            "MAILPULSE_BOUNCE_PORT": str(free_port()),
            "MAILPULSE_LOG_LEVEL": "warning",
            "MAILPULSE_RELAY": f"smtp://127.0.0.1:{relay_port}",
            "MAILPULSE_SECRET_KEY": "outage-test-secret-key-0123456789abcdef",
        }
    )
    env.update(extra)
    return env


def start(command: str, env: dict[str, str], tmp_path: Path, *, wait: bool = True) -> Proc:
    """``mailpulse <command>`` in its own process group; waits for /health/live when it
    serves (unless ``wait`` is false)."""
    log = tmp_path / f"{command}-{time.monotonic_ns()}.log"
    with log.open("wb") as out:
        popen = subprocess.Popen(
            [sys.executable, "-m", "mailpulse", command],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    proc = Proc(command, popen, log)
    if wait and command in ("serve", "api"):
        url = f"http://127.0.0.1:{env['MAILPULSE_HTTP_PORT']}/health/live"
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(url, timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or not proc.alive():
                proc.kill()
                raise RuntimeError(f"{command} did not start:\n{proc.text()}")
            time.sleep(0.1)
    return proc


def token(base: str, creds: dict[str, Any]) -> str:
    answer = httpx.post(
        f"{base}/oauth/access_token",
        json={
            "grant_type": "client_credentials",
            "client_id": creds["client_id"],
            "client_secret": creds["client_secret"],
        },
        timeout=HANG_SECONDS,
    )
    assert answer.status_code == 200, answer.text
    return str(answer.json()["access_token"])


@dataclass
class Answer:
    recipient: str
    status: int
    body: Any
    retry_after: str | None


@dataclass
class Sender:
    """Sends one email after another (one recipient each, unique) from ``clients`` threads
    while running; records every answer. An exception (a timeout: a hang) is kept and
    re-raised by :meth:`stop`."""

    base: str
    bearer: str
    clients: int = 2
    pause: float = 0.05
    answers: list[Answer] = field(default_factory=list)
    errors: list[BaseException] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _count: int = 0

    def send_one(self, http: httpx.Client) -> Answer:
        with self._lock:
            self._count += 1
            recipient = f"r{self._count}@example.org"
        payload = {
            "email": {
                "subject": "outage",
                "text": "hello",
                "from": {"name": "S", "email": SENDER},
                "to": [{"email": recipient}],
            }
        }
        reply = http.post("/smtp/emails", json=payload)
        try:
            body: Any = reply.json()
        except ValueError:
            body = reply.text
        answer = Answer(recipient, reply.status_code, body, reply.headers.get("retry-after"))
        with self._lock:
            self.answers.append(answer)
        return answer

    def client(self) -> httpx.Client:
        return httpx.Client(
            base_url=self.base,
            headers={"Authorization": f"Bearer {self.bearer}"},
            timeout=HANG_SECONDS,
        )

    def _loop(self) -> None:
        try:
            with self.client() as http:
                while not self._stop.is_set():
                    self.send_one(http)
                    time.sleep(self.pause)
        except BaseException as exc:
            self.errors.append(exc)

    def start(self) -> Sender:
        for _ in range(self.clients):
            thread = threading.Thread(target=self._loop, daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(HANG_SECONDS + 5)
        if self.errors:
            raise self.errors[0]

    def until_accepted(self, count: int, timeout: float = 60.0) -> list[Answer]:
        """Send (one client) until ``count`` more are accepted; returns every answer."""
        got: list[Answer] = []
        deadline = time.monotonic() + timeout
        with self.client() as http:
            while sum(1 for a in got if accepted(a)) < count:
                assert time.monotonic() < deadline, f"not accepted again: {got[-3:]}"
                got.append(self.send_one(http))
                if not accepted(got[-1]):
                    time.sleep(0.2)
        return got

    def count_accepted(self) -> int:
        with self._lock:
            return sum(1 for a in self.answers if accepted(a))


def accepted(answer: Answer) -> bool:
    return (
        answer.status == 200 and isinstance(answer.body, dict) and answer.body.get("result") is True
    )


def check_answers(answers: list[Answer]) -> None:
    """Each answer is result:true or a 503 in the SendPulse shape with Retry-After."""
    for answer in answers:
        if accepted(answer):
            continue
        assert answer.status == 503, answer
        assert answer.body.get("error_code") == 503 and answer.body.get("message"), answer
        assert answer.retry_after is not None and answer.retry_after.isdigit(), answer


def delivered(sink: SmtpSink) -> set[str]:
    with sink.lock:
        return {rcpt for message in sink.messages for rcpt in message.rcpt_tos}


def wait_delivered(sink: SmtpSink, wanted: set[str], seconds: float = DELIVERY_SECONDS) -> None:
    deadline = time.monotonic() + seconds
    while not wanted <= delivered(sink):
        if time.monotonic() > deadline:
            missing = sorted(wanted - delivered(sink))
            raise AssertionError(f"{len(missing)} accepted emails not delivered: {missing[:10]}")
        time.sleep(0.2)


@contextlib.contextmanager
def relay_sink() -> Iterator[SmtpSink]:
    sink = SmtpSink("127.0.0.1").start()
    try:
        yield sink
    finally:
        sink.stop()
