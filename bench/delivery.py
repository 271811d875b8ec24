"""End-to-end throughput: accept over the HTTP API, deliver through relay mode to smtp-sink.

    .venv/bin/python bench/delivery.py                          # 20,000 messages, 32 clients
    .venv/bin/python bench/delivery.py --messages 5000 --postfix
    .venv/bin/python bench/delivery.py --only postfix --messages 5000
    .venv/bin/python bench/delivery.py --synchronous NORMAL --profile /tmp/mailpulse.spy

mailpulse side: ``mailpulse serve`` on a fresh SQLite database (``MAILPULSE_RELAY`` pointing
at Postfix's ``smtp-sink`` on 127.0.0.1) takes N messages (an HTML body of ``--size`` bytes,
base64 in the JSON, a subject and one To recipient) from ``--concurrency`` keep-alive
connections. The load generator is plain asyncio streams with pre-encoded requests, so that
on a 2-core machine the server, not the client, is what gets measured.

Postfix side (``--postfix``): a private Postfix instance (its own config directory, queue and
data directory under a temp dir, smtpd on a high loopback port, ``relayhost`` = a second
smtp-sink) takes the very same message bytes mailpulse stored, over SMTP from the same number
of concurrent clients (EHLO once per connection, then MAIL/RCPT/DATA, pipelined).

Printed per side: accepted/s, delivered/s (first accept to last delivery at the sink, and
first to last delivery at the sink), p50/p99 accept latency, p50/p99 accept-to-delivered
latency (mailpulse: ``send_date - created_at`` of the delivered rows; Postfix: ``delay=`` of
the ``status=sent`` log lines), peak memory, CPU used; then the ratio mailpulse/Postfix.
Nothing is asserted. Installs the ``postfix`` Debian package when ``smtp-sink`` is missing.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import os
import re
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path

from _server import free_port, serve  # type: ignore[import-not-found]

LOOPBACK = "127.0.0.1"
SINK_BIN = "/usr/sbin/smtp-sink"
POSTFIX_BIN = "/usr/sbin/postfix"
PYSPY = Path(sys.executable).parent / "py-spy"
CLK_TCK = os.sysconf("SC_CLK_TCK")
SENDER = "bench@example.com"


# -- helpers --------------------------------------------------------------------------------------
def ensure_postfix() -> None:
    """smtp-sink and postfix come with Debian's postfix package; install it when missing."""
    if Path(SINK_BIN).exists() and Path(POSTFIX_BIN).exists():
        return
    if os.geteuid() != 0:
        sys.exit("smtp-sink is missing: run `apt-get install postfix` as root")
    print("installing Debian's postfix package (for smtp-sink and postfix) ...", flush=True)
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env, timeout=600)
    subprocess.run(
        ["apt-get", "install", "-y", "-qq", "postfix"],
        check=True,
        env=env,
        timeout=900,
        stdout=subprocess.DEVNULL,
    )


def wait_port(port: int, deadline: float, what: str) -> None:
    while True:
        try:
            with socket.create_connection((LOOPBACK, port), timeout=1):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{what} is not listening on {LOOPBACK}:{port}") from None
            time.sleep(0.05)


def quantile_ms(values: Sequence[float], q: int) -> float:
    """The q-th percentile of values given in seconds, in milliseconds."""
    if not values:
        return float("nan")
    if len(values) == 1:
        return values[0] * 1000
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1] * 1000


def proc_cpu_seconds(pid: int) -> float:
    """User + system CPU of one process so far (0 when it is gone)."""
    return proc_cpu_seconds_path(Path(f"/proc/{pid}/stat"))


def thread_cpu_seconds(pid: int) -> dict[int, float]:
    """User + system CPU of each thread of a process so far, by thread id."""
    out: dict[int, float] = {}
    with contextlib.suppress(OSError):
        for entry in os.scandir(f"/proc/{pid}/task"):
            out[int(entry.name)] = proc_cpu_seconds_path(Path(entry.path) / "stat")
    return out


def proc_cpu_seconds_path(path: Path) -> float:
    try:
        fields = path.read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def busy_share(before: tuple[float, float], after: tuple[float, float]) -> float:
    return (after[0] - before[0]) / max(after[1] - before[1], 1.0)


def idle_load() -> float:
    """How busy the machine is with nothing of ours running (other sessions share it)."""
    before = machine_busy()
    time.sleep(1.0)
    return busy_share(before, machine_busy())


def machine_busy() -> tuple[float, float]:
    """(busy, total) jiffies of all CPUs, from /proc/stat."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]
    return float(sum(values) - idle), float(sum(values))


def process_tree(pid: int) -> list[int]:
    """pid and all its descendants (a server with `processes` > 1 has worker children)."""
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, ValueError, IndexError):
            stat = Path(entry.path, "stat").read_text()
            children.setdefault(int(stat.rsplit(")", 1)[1].split()[1]), []).append(int(entry.name))
    tree, todo = [], [pid]
    while todo:
        current = todo.pop()
        tree.append(current)
        todo.extend(children.get(current, []))
    return tree


def tree_cpu(pids: Sequence[int]) -> tuple[float, float]:
    """(all threads, main threads) CPU seconds of the given processes."""
    every = sum(proc_cpu_seconds(p) for p in pids)
    main = sum(thread_cpu_seconds(p).get(p, 0.0) for p in pids)
    return every, main


def vm_hwm_kb(pid: int) -> int:
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def html_body(size: int) -> bytes:
    text = "<p>" + "Lorem ipsum dolor sit amet, consectetur adipiscing. " * (size // 50 + 2)
    return (text[: max(size - 4, 0)] + "</p>").encode()


def recipient(n: int) -> str:
    return f"rcpt{n}@bench.example"


# -- the sink --------------------------------------------------------------------------------------
class Sink:
    """Postfix's smtp-sink on loopback; counts messages ("." received) as it prints them (-c)."""

    _COUNT = re.compile(rb"mesg=(\d+)")

    def __init__(self, workdir: Path, name: str, port: int | None = None) -> None:
        self.port = port or free_port()
        self.count = 0
        self.first: float | None = None  # perf_counter() of the first message seen
        self.last: float | None = None  # ... and of the latest
        self._target = 0
        self._reached = threading.Event()
        self._lock = threading.Lock()
        self._stderr = open(workdir / f"{name}-sink.err", "wb")  # noqa: SIM115
        args = [SINK_BIN, "-c", "-4"]
        if os.geteuid() == 0:
            args += ["-u", "nobody"]  # required as root: it drops privileges after bind()
        # -m: allow many sessions at once; backlog 1024.
        args += ["-m", "1024", f"{LOOPBACK}:{self.port}", "1024"]
        self.process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=self._stderr)
        self._reader = threading.Thread(target=self._read, name=f"sink-{name}", daemon=True)
        self._reader.start()
        wait_port(self.port, time.monotonic() + 10, "smtp-sink")

    def _read(self) -> None:
        assert self.process.stdout is not None
        fd = self.process.stdout.fileno()
        tail = b""
        while True:
            chunk = os.read(fd, 65536)
            if not chunk:
                return
            now = time.perf_counter()
            found = self._COUNT.findall(tail + chunk)
            tail = chunk[-40:]
            if not found:
                continue
            count = int(found[-1])
            with self._lock:
                if count > self.count:
                    if self.first is None:
                        self.first = now
                    self.last = now
                    self.count = count
                if self._target and self.count >= self._target:
                    self._reached.set()

    def expect(self, target: int) -> None:
        with self._lock:
            self._target = target
            if self.count >= target:
                self._reached.set()

    def wait(self, timeout: float, server: subprocess.Popen[bytes] | None = None) -> bool:
        """Until the expected count is reached (True), the time is up, or the server died."""
        deadline = time.monotonic() + timeout
        while not self._reached.wait(0.5):
            if server is not None and server.poll() is not None:
                raise RuntimeError(
                    f"the server (pid {server.pid}) exited with {server.returncode} after the"
                    f" sink saw {self.count} messages"
                )
            if time.monotonic() > deadline:
                return False
        return True

    def cpu_seconds(self) -> float:
        return proc_cpu_seconds(self.process.pid)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
        self._reader.join(timeout=5)
        self._stderr.close()


# -- results ---------------------------------------------------------------------------------------
@dataclass
class Result:
    name: str
    messages: int
    accepted: int = 0
    delivered: int = 0
    accept_seconds: float = 0.0  # first request sent to last reply
    total_seconds: float = 0.0  # first request sent to last message at the sink
    sink_seconds: float = 0.0  # first to last message at the sink
    drain_seconds: float = 0.0  # last accept to last message at the sink
    accept_latency: list[float] = field(default_factory=list)
    delivery_latency: list[float] = field(default_factory=list)
    memory_mb: float = 0.0
    memory_note: str = ""
    server_cpu: float = 0.0
    server_main_thread_cpu: float = 0.0
    client_cpu: float = 0.0
    sink_cpu: float = 0.0
    machine_busy: float = 0.0  # share of both cores busy over the run
    idle_busy: float = 0.0  # the same over one second before the run (other work on the box)
    message_bytes: float = 0.0
    notes: list[str] = field(default_factory=list)

    def rate(self, count: int, seconds: float) -> float:
        return count / seconds if seconds > 0 else float("nan")

    @property
    def accepted_per_s(self) -> float:
        return self.rate(self.accepted, self.accept_seconds)

    @property
    def delivered_per_s(self) -> float:
        return self.rate(self.delivered, self.total_seconds)

    @property
    def sink_per_s(self) -> float:
        return self.rate(self.delivered, self.sink_seconds)

    def server_cpu_text(self) -> str:
        if not self.server_cpu:
            return "-"
        share = self.server_main_thread_cpu / self.total_seconds if self.total_seconds else 0
        return (
            f"{self.server_cpu:.1f} s ({self.server_main_thread_cpu:.1f} s in event-loop "
            f"threads: {share * 100:.0f} % of one core over the run)"
        )

    def rows(self) -> list[tuple[str, str]]:
        return [
            ("messages accepted", f"{self.accepted:,} of {self.messages:,}"),
            ("messages delivered at the sink", f"{self.delivered:,}"),
            ("message size as delivered", f"{self.message_bytes:,.0f} B"),
            ("accepted/s", f"{self.accepted_per_s:,.0f}"),
            ("delivered/s, first accept to last delivery", f"{self.delivered_per_s:,.0f}"),
            ("delivered/s, first to last delivery", f"{self.sink_per_s:,.0f}"),
            ("backlog drained after last accept", f"{self.drain_seconds:.2f} s"),
            ("accept latency p50", f"{quantile_ms(self.accept_latency, 50):.1f} ms"),
            ("accept latency p99", f"{quantile_ms(self.accept_latency, 99):.1f} ms"),
            ("accept to delivered p50", f"{quantile_ms(self.delivery_latency, 50):.1f} ms"),
            ("accept to delivered p99", f"{quantile_ms(self.delivery_latency, 99):.1f} ms"),
            ("peak memory", f"{self.memory_mb:,.0f} MB {self.memory_note}".rstrip()),
            ("server CPU", self.server_cpu_text()),
            ("load generator CPU", f"{self.client_cpu:.1f} s"),
            ("smtp-sink CPU", f"{self.sink_cpu:.1f} s"),
            (
                "machine busy (all CPUs): run / 1 s before",
                f"{self.machine_busy * 100:.0f} % / {self.idle_busy * 100:.0f} %",
            ),
        ]


def print_result(result: Result) -> None:
    print(f"\n== {result.name}")
    for label, value in result.rows():
        print(f"  {label:<44} {value}")
    for note in result.notes:
        print(f"  note: {note}")


def print_comparison(mine: Result, theirs: Result) -> None:
    def ratio(a: float, b: float) -> str:
        return f"{a / b:.2f}" if b else "-"

    print("\n== mailpulse / Postfix")
    print(f"  {'':<30} {'mailpulse':>10} {'Postfix':>10} {'ratio':>7}")
    for label, a, b in (
        ("delivered/s (end to end)", mine.delivered_per_s, theirs.delivered_per_s),
        ("delivered/s (delivery phase)", mine.sink_per_s, theirs.sink_per_s),
        ("accepted/s", mine.accepted_per_s, theirs.accepted_per_s),
    ):
        print(f"  {label:<30} {a:>10,.0f} {b:>10,.0f} {ratio(a, b):>7}")
    latencies = (
        ("accept p99 (ms)", [r.accept_latency for r in (mine, theirs)]),
        ("accept->delivered p99 (ms)", [r.delivery_latency for r in (mine, theirs)]),
    )
    for label, (ours, postfix) in latencies:
        a, b = quantile_ms(ours, 99), quantile_ms(postfix, 99)
        print(f"  {label:<30} {a:>10,.1f} {b:>10,.1f} {ratio(a, b):>7}")


# -- the HTTP load ---------------------------------------------------------------------------------
def http_requests(
    port: int,
    token: str,
    sender: str,
    messages: int,
    size: int,
    to: Callable[[int], list[dict[str, str]]] | None = None,
    subject: str = "Bench message",
) -> list[bytes]:
    """Every request, encoded before the clock starts: message ``n`` goes to ``to(n)`` (by
    default one recipient, ``recipient(n)``)."""
    html = base64.b64encode(html_body(size)).decode()
    head = (
        f"POST /smtp/emails HTTP/1.1\r\nHost: {LOOPBACK}:{port}\r\n"
        f"Authorization: Bearer {token}\r\nContent-Type: application/json\r\n"
    ).encode()
    to = to or (lambda n: [{"name": "Rcpt", "email": recipient(n)}])
    requests = []
    for n in range(messages):
        body = json.dumps(
            {
                "email": {
                    "subject": f"{subject} {n}",
                    "html": html,
                    "from": {"name": "Bench", "email": sender},
                    "to": to(n),
                }
            },
            separators=(",", ":"),
        ).encode()
        requests.append(head + b"Content-Length: %d\r\n\r\n" % len(body) + body)
    return requests


async def http_exchange(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes
) -> tuple[bytes, bytes]:
    """Send one pre-encoded request on a keep-alive connection; (response head, body)."""
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    at = head.lower().find(b"content-length:")
    if at < 0:
        raise RuntimeError(f"response without Content-Length: {head!r}")
    length = int(head[at + 15 : head.index(b"\r\n", at)])
    return head, await reader.readexactly(length)


async def http_connection(
    port: int, requests: list[bytes], turns: Iterator[int], latencies: list[float]
) -> int:
    """One keep-alive connection: send a request, read the status line and the body, repeat."""
    reader, writer = await asyncio.open_connection(LOOPBACK, port)
    done = 0
    try:
        for n in turns:
            started = time.perf_counter()
            head, body = await http_exchange(reader, writer, requests[n])
            latencies.append(time.perf_counter() - started)
            if head[9:12] != b"200":
                raise RuntimeError(f"request {n}: {head[:12]!r} {body[:300]!r}")
            done += 1
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
    return done


async def drive(connections: Sequence[asyncio.Future[int]], timeout: float) -> int:
    try:
        counts = await asyncio.wait_for(asyncio.gather(*connections), timeout)
    except TimeoutError:
        raise RuntimeError(f"load did not finish within {timeout:.0f} s") from None
    return sum(counts)


async def http_load(
    port: int, requests: list[bytes], concurrency: int, timeout: float
) -> tuple[int, list[float], float, float]:
    latencies: list[float] = []
    turns = iter(range(len(requests)))
    started = time.perf_counter()
    tasks = [
        asyncio.ensure_future(http_connection(port, requests, turns, latencies))
        for _ in range(concurrency)
    ]
    done = await drive(tasks, timeout)
    return done, latencies, started, time.perf_counter()


# -- the SMTP load ---------------------------------------------------------------------------------
async def smtp_reply(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    lines = []
    while True:
        line = await reader.readline()
        if not line:
            raise RuntimeError("SMTP server closed the connection")
        lines.append(line)
        if line[3:4] != b"-":
            return int(line[:3]), b"".join(lines)


async def smtp_connection(
    port: int,
    envelopes: list[bytes],
    contents: list[bytes],
    turns: Iterator[int],
    latencies: list[float],
) -> int:
    """EHLO once, then MAIL/RCPT/DATA pipelined, then the message; repeat; QUIT."""
    reader, writer = await asyncio.open_connection(LOOPBACK, port)
    done = 0
    try:
        code, text = await smtp_reply(reader)
        if code != 220:
            raise RuntimeError(f"greeting {text!r}")
        writer.write(b"EHLO bench.localdomain\r\n")
        code, text = await smtp_reply(reader)
        if code != 250 or b"PIPELINING" not in text.upper():
            raise RuntimeError(f"EHLO {text!r}")
        for n in turns:
            started = time.perf_counter()
            writer.write(envelopes[n])
            for expected in (250, 250, 354):
                code, text = await smtp_reply(reader)
                if code != expected:
                    raise RuntimeError(f"message {n}: {text!r}")
            writer.write(contents[n])
            code, text = await smtp_reply(reader)
            latencies.append(time.perf_counter() - started)
            if code != 250:
                raise RuntimeError(f"message {n} after DATA: {text!r}")
            done += 1
        writer.write(b"QUIT\r\n")
        await smtp_reply(reader)
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
    return done


async def smtp_load(
    port: int, envelopes: list[bytes], contents: list[bytes], concurrency: int, timeout: float
) -> tuple[int, list[float], float, float]:
    latencies: list[float] = []
    turns = iter(range(len(envelopes)))
    started = time.perf_counter()
    tasks = [
        asyncio.ensure_future(smtp_connection(port, envelopes, contents, turns, latencies))
        for _ in range(concurrency)
    ]
    done = await drive(tasks, timeout)
    return done, latencies, started, time.perf_counter()


def smtp_data(raw: bytes) -> bytes:
    """A message as sent after DATA: CRLF lines, dot-stuffed, then the lone dot."""
    lines = raw.replace(b"\r\n", b"\n").split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    stuffed = [b"." + line if line.startswith(b".") else line for line in lines]
    return b"\r\n".join(stuffed) + b"\r\n.\r\n"


def composed_messages(messages: int, size: int) -> list[tuple[str, bytes]]:
    """Messages shaped like mailpulse's (one quoted-printable HTML part), for a Postfix-only run."""
    html = html_body(size).decode()
    out = []
    for n in range(messages):
        msg = EmailMessage()
        msg["Date"] = formatdate()
        msg["From"] = f"Bench <{SENDER}>"
        msg["To"] = f"Rcpt <{recipient(n)}>"
        msg["Subject"] = f"Bench message {n}"
        msg["Message-ID"] = make_msgid(domain="bench.localdomain")
        msg.set_content(html, subtype="html", cte="quoted-printable")
        out.append((recipient(n), msg.as_bytes(policy=msg.policy.clone(linesep="\r\n"))))
    return out


# -- the mailpulse side ----------------------------------------------------------------------------
def read_db(path: Path) -> tuple[Counter[str], list[float], list[tuple[str, bytes]]]:
    """Status counts, accept->delivered latencies, and (recipient, raw message) per delivery."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
    try:
        statuses: Counter[str] = Counter(
            {s: c for s, c in conn.execute("SELECT status, count(*) FROM deliveries GROUP BY 1")}
        )
        latencies = [
            (datetime.fromisoformat(sent) - datetime.fromisoformat(created)).total_seconds()
            for created, sent in conn.execute(
                "SELECT created_at, send_date FROM deliveries"
                " WHERE status = 'delivered' AND send_date IS NOT NULL"
            )
        ]
        stored = [
            (str(rcpt), bytes(raw))
            for rcpt, raw in conn.execute(
                "SELECT d.recipient, m.raw FROM deliveries d JOIN messages m"
                " ON m.id = d.message_id ORDER BY d.id"
            )
        ]
    finally:
        conn.close()
    return statuses, latencies, stored


def count_delivered(path: Path) -> int:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
    try:
        row = conn.execute("SELECT count(*) FROM deliveries WHERE status = 'delivered'").fetchone()
        return int(row[0])
    finally:
        conn.close()


def start_profile(pid: int, out: Path, seconds: int, gil: bool) -> subprocess.Popen[bytes] | None:
    if not PYSPY.exists():
        print(f"no {PYSPY}: `.venv/bin/pip install py-spy` to profile", file=sys.stderr)
        return None
    args = [str(PYSPY), "record", "-p", str(pid), "-d", str(seconds), "-f", "raw", "-o", str(out)]
    if gil:
        args.insert(2, "--gil")
    args.insert(2, "--subprocesses")  # for a server with `processes` > 1
    return subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


#: Frames every stack passes through (entry points, ASGI middleware, routing, thread
#: bootstrap): left out of the inclusive list so that the frames doing the work show.
PLUMBING = (
    "<frozen runpy>",
    "typer/",
    "uvicorn/",
    "asyncio/runners.py",
    "mailpulse/__main__.py",
    "mailpulse/cli.py",
    "mailpulse/api/app.py",
    "threading.py",
    "concurrent/futures/thread.py",
    "starlette/middleware",
    "starlette/applications.py",
    "starlette/_exception_handler.py",
    "starlette/routing.py",
    "fastapi/applications.py",
    "fastapi/telemetry",
    "fastapi/middleware",
    "fastapi/routing.py",
)


def summarise_profile(path: Path, top: int = 30) -> None:
    """A py-spy raw (collapsed) profile: samples per thread, top frames inclusive and self."""
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    threads: Counter[str] = Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        total += count
        frames = stack.split(";")
        process = ""
        if frames[0].startswith("process "):  # py-spy --subprocesses: 'process PID:"cmd"'
            process = frames.pop(0).split(":", 1)[0] + ", "
        if not frames:
            continue
        if any("runpy" in f or "spawn_main" in f for f in frames[:3]):
            threads[process + "main thread (event loop)"] += count
        else:
            work = [f for f in frames if not any(p in f for p in PLUMBING)]
            threads[process + "other thread: " + (work[0] if work else frames[0])[:80]] += count
        for frame in set(frames):
            if not any(p in frame for p in PLUMBING):
                inclusive[frame] += count
        own[frames[-1]] += count
    if not total:
        print(f"profile {path}: no samples")
        return
    print(f"\n== profile {path}: {total} samples")
    for name, count in threads.most_common(6):
        print(f"  {100 * count / total:5.1f} %  {name}")
    print("  -- top frames, inclusive (entry points and ASGI middleware left out)")
    for frame, count in inclusive.most_common(top):
        print(f"  {100 * count / total:5.1f} %  {frame[:140]}")
    print("  -- top frames, self")
    for frame, count in own.most_common(12):
        print(f"  {100 * count / total:5.1f} %  {frame[:140]}")


def run_mailpulse(
    args: argparse.Namespace, workdir: Path
) -> tuple[Result, list[tuple[str, bytes]]]:
    extra = "".join(f", {item}" for item in args.set)
    result = Result(f"mailpulse (SQLite synchronous={args.synchronous}{extra})", args.messages)
    sink = Sink(workdir, "mailpulse")
    settings = {"relay": f"smtp://{LOOPBACK}:{sink.port}", "sqlite_synchronous": args.synchronous}
    for item in args.set:
        key, _, value = item.partition("=")
        settings[key.lower()] = value
    dbdir = workdir / "mailpulse"
    dbdir.mkdir()
    profiler: subprocess.Popen[bytes] | None = None
    try:
        with serve(dbdir, **settings) as server:
            pid = server.process.pid
            token = server.token()
            port = int(server.url.rsplit(":", 1)[1])
            requests = http_requests(port, token, server.sender, args.messages, args.size)
            sink.expect(args.messages)
            result.idle_busy = idle_load()
            busy0 = machine_busy()
            cpu0 = time.process_time()
            tree = process_tree(pid)
            cpu_before = tree_cpu(tree)
            if args.profile:
                profiler = start_profile(pid, args.profile, args.profile_seconds, args.profile_gil)
            done, latencies, started, finished = asyncio.run(
                http_load(port, requests, args.concurrency, args.timeout)
            )
            result.client_cpu = time.process_time() - cpu0
            del requests
            if not sink.wait(args.timeout, server.process):
                result.notes.append(
                    f"timed out: the sink saw {sink.count} of {args.messages} messages"
                )
            busy1 = machine_busy()
            cpu_after = tree_cpu(tree)
            result.server_cpu = cpu_after[0] - cpu_before[0]
            result.server_main_thread_cpu = cpu_after[1] - cpu_before[1]
            result.sink_cpu = sink.cpu_seconds()
            result.accepted = done
            result.accept_latency = latencies
            result.accept_seconds = finished - started
            result.delivered = sink.count
            last = sink.last or finished
            result.total_seconds = last - started
            result.sink_seconds = last - (sink.first or last)
            result.drain_seconds = max(0.0, last - finished)
            result.machine_busy = busy_share(busy0, busy1)
            # The recorder commits results a moment after the sink's 250: wait for the rows.
            deadline = time.monotonic() + 60
            while count_delivered(dbdir / "bench.db") < sink.count and time.monotonic() < deadline:
                time.sleep(0.2)
            if profiler is not None:
                try:
                    _, err = profiler.communicate(timeout=args.profile_seconds + 60)
                except subprocess.TimeoutExpired:
                    profiler.kill()
                    _, err = profiler.communicate()
                if profiler.returncode:
                    print(f"py-spy failed: {err.decode(errors='replace')}", file=sys.stderr)
                profiler = None
            # Read before the server is stopped.
            result.memory_mb = sum(vm_hwm_kb(p) for p in tree) / 1024
            result.memory_note = (
                "(VmHWM of the server process)"
                if len(tree) == 1
                else f"(sum of VmHWM of the {len(tree)} server processes)"
            )
    finally:
        if profiler is not None and profiler.poll() is None:
            profiler.kill()
            profiler.wait()
        sink.stop()
    statuses, delivery_latency, stored = read_db(dbdir / "bench.db")
    result.delivery_latency = delivery_latency
    if stored:
        result.message_bytes = statistics.fmean(len(raw) for _, raw in stored)
    result.notes.append(
        "deliveries by status: " + ", ".join(f"{k}={v}" for k, v in statuses.items())
    )
    return result, stored


# -- the Postfix side ------------------------------------------------------------------------------
MASTER_CF = """\
{listen} inet n - n - - smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
local     unix  -       n       n       -       -       local
virtual   unix  -       n       n       -       -       virtual
lmtp      unix  -       -       n       -       -       lmtp
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
"""

MAIN_CF = """\
# A private relay instance for bench/delivery.py: everything not named here is Postfix's
# default (fsync of queue files, process limits, destination concurrency, connection cache).
compatibility_level = 3.6
queue_directory = {root}/spool
data_directory = {root}/data
myhostname = bench.localdomain
mydomain = localdomain
myorigin = $myhostname
inet_interfaces = {loopback}
inet_protocols = ipv4
mydestination =
local_recipient_maps =
alias_maps =
alias_database =
mynetworks = 127.0.0.0/8
smtpd_relay_restrictions = permit_mynetworks, reject
relayhost = [{loopback}]:{sink_port}
biff = no
"""
LOG_CF = """\
maillog_file = {maillog}
maillog_file_prefixes = {root}
"""


class PrivatePostfix:
    """A Postfix instance of our own: `postfix -c DIR start-fg`, a child of this process."""

    def __init__(self, root: Path, sink_port: int, log: bool, extra: Sequence[str] = ()) -> None:
        self.root = root
        self.config = root / "etc"
        self.port = free_port()
        self.maillog = root / "maillog"
        # The postfix user must reach the queue: the temp dirs above are root's own, 0700.
        root.parent.chmod(0o711)
        root.mkdir(mode=0o755)
        self.config.mkdir()
        (root / "spool").mkdir()
        main_cf = MAIN_CF.format(root=root, loopback=LOOPBACK, sink_port=sink_port)
        if log:
            main_cf += LOG_CF.format(root=root, maillog=self.maillog)
        for item in extra:
            key, _, value = item.partition("=")
            main_cf += f"{key.strip()} = {value.strip()}\n"
        (self.config / "main.cf").write_text(main_cf)
        (self.config / "master.cf").write_text(MASTER_CF.format(listen=f"{LOOPBACK}:{self.port}"))
        self._out = open(root / "master.out", "wb")  # noqa: SIM115
        self.process: subprocess.Popen[bytes] | None = None

    def _postfix(self, *command: str, timeout: float = 60) -> None:
        subprocess.run(
            [POSTFIX_BIN, "-c", str(self.config), *command],
            check=True,
            timeout=timeout,
            stdout=self._out,
            stderr=self._out,
        )

    def start(self) -> None:
        self._postfix("check")
        self.process = subprocess.Popen(
            [POSTFIX_BIN, "-c", str(self.config), "start-fg"],
            stdout=self._out,
            stderr=self._out,
        )
        try:
            wait_port(self.port, time.monotonic() + 30, "postfix smtpd")
        except RuntimeError:
            self.stop()
            raise RuntimeError(f"postfix did not start; see {self.root / 'master.out'}") from None

    def master_pid(self) -> int | None:
        with contextlib.suppress(OSError, ValueError):
            return int((self.root / "spool" / "pid" / "master.pid").read_text().split()[0])
        return None

    def pss_mb(self) -> float:
        """Proportional set size of the master and its children (every Postfix daemon)."""
        master = self.master_pid()
        if master is None:
            return 0.0
        total = 0
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit():
                continue
            pid = int(entry.name)
            try:
                stat = Path(f"/proc/{pid}/stat").read_text()
                ppid = int(stat.rsplit(")", 1)[1].split()[1])
                if pid != master and ppid != master:
                    continue
                for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                    if line.startswith("Pss:"):
                        total += int(line.split()[1])
                        break
            except (OSError, ValueError, IndexError):
                continue
        return total / 1024

    def stop(self) -> None:
        if self.process is None:
            self._out.close()
            return
        with contextlib.suppress(subprocess.SubprocessError, OSError):
            self._postfix("stop", timeout=30)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(subprocess.SubprocessError, OSError):
                self._postfix("abort", timeout=30)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self.process = None
        self._out.close()


_SENT = re.compile(r" delay=([\d.]+),.* status=sent ")


def postfix_delays(maillog: Path) -> list[float]:
    if not maillog.exists():
        return []
    return [float(m.group(1)) for m in map(_SENT.search, maillog.open()) if m]


def run_postfix(args: argparse.Namespace, workdir: Path, stored: list[tuple[str, bytes]]) -> Result:
    result = Result("Postfix 3.7 (Debian), private instance, relay to smtp-sink", args.messages)
    if args.postfix_set:
        result.notes.append("main.cf overrides: " + ", ".join(args.postfix_set))
    messages = stored[: args.messages] or composed_messages(args.messages, args.size)
    if not stored:
        result.notes.append("messages composed by the standard library (no mailpulse run)")
    envelopes = [
        f"MAIL FROM:<{SENDER}>\r\nRCPT TO:<{rcpt}>\r\nDATA\r\n".encode() for rcpt, _ in messages
    ]
    contents = [smtp_data(raw) for _, raw in messages]
    result.message_bytes = statistics.fmean(len(raw) for _, raw in messages)
    del messages
    sink = Sink(workdir, "postfix")
    try:
        postfix = PrivatePostfix(
            workdir / "postfix", sink.port, log=not args.postfix_no_log, extra=args.postfix_set
        )
    except BaseException:
        sink.stop()
        raise
    peak = [0.0]
    sampling = threading.Event()

    def sample() -> None:
        while not sampling.wait(1.0):
            peak[0] = max(peak[0], postfix.pss_mb())

    sampler = threading.Thread(target=sample, name="postfix-pss", daemon=True)
    try:
        postfix.start()
        sink.expect(len(envelopes))
        sampler.start()
        result.idle_busy = idle_load()
        busy0 = machine_busy()
        cpu0 = time.process_time()
        done, latencies, started, finished = asyncio.run(
            smtp_load(postfix.port, envelopes, contents, args.concurrency, args.timeout)
        )
        result.client_cpu = time.process_time() - cpu0
        if not sink.wait(args.timeout, postfix.process):
            result.notes.append(f"timed out: the sink saw {sink.count} of {len(envelopes)}")
        busy1 = machine_busy()
        result.sink_cpu = sink.cpu_seconds()
        result.accepted = done
        result.accept_latency = latencies
        result.accept_seconds = finished - started
        result.delivered = sink.count
        last = sink.last or finished
        result.total_seconds = last - started
        result.sink_seconds = last - (sink.first or last)
        result.drain_seconds = max(0.0, last - finished)
        result.machine_busy = busy_share(busy0, busy1)
        time.sleep(1.0)  # let the last log lines reach postlogd
    finally:
        sampling.set()
        if sampler.is_alive():
            sampler.join(timeout=10)
        postfix.stop()
        sink.stop()
    result.memory_mb = peak[0]
    result.memory_note = "(sum of PSS of all Postfix processes, sampled every second)"
    result.delivery_latency = postfix_delays(postfix.maillog)
    if args.postfix_no_log:
        result.notes.append("logging off: no accept-to-delivered latencies")
    else:
        result.notes.append(
            "accept-to-delivered = the delay= of each status=sent log line (10 ms resolution)"
        )
    return result


# -- main ------------------------------------------------------------------------------------------
def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--concurrency", type=int, default=32, help="client connections")
    parser.add_argument("--size", type=int, default=2048, help="HTML bytes per message")
    parser.add_argument(
        "--synchronous", default="FULL", choices=["FULL", "NORMAL"], help="SQLite synchronous"
    )
    parser.add_argument(
        "--postfix", action="store_true", help="run the same load through Postfix too"
    )
    parser.add_argument(
        "--only", choices=["mailpulse", "postfix"], help="run one side alone (postfix implies it)"
    )
    parser.add_argument(
        "--postfix-no-log",
        action="store_true",
        help="no maillog_file for Postfix (it then has no latency figures)",
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra mailpulse setting, e.g. --set sessions_per_destination=20",
    )
    parser.add_argument(
        "--postfix-set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra main.cf line for Postfix, e.g. --postfix-set in_flow_delay=0",
    )
    parser.add_argument("--timeout", type=float, default=900, help="seconds per phase at most")
    parser.add_argument("--profile", type=Path, help="py-spy raw profile of the server to FILE")
    parser.add_argument("--profile-seconds", type=int, default=10)
    parser.add_argument(
        "--profile-all-threads",
        dest="profile_gil",
        action="store_false",
        help="sample every thread (default: --gil, only the thread holding the GIL)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the temp dir, print its path")
    args = parser.parse_args()

    # A SIGTERM (e.g. from `timeout`) unwinds like Ctrl-C, so every finally: block stops what
    # it started.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    ensure_postfix()
    with_mailpulse = args.only != "postfix"
    with_postfix = args.postfix or args.only == "postfix"
    print(
        f"{args.messages:,} messages ({args.size} B of HTML), {args.concurrency} connections, "
        f"{os.cpu_count()} CPUs, {time.strftime('%Y-%m-%d %H:%M')}",
        flush=True,
    )
    workdir = Path(tempfile.mkdtemp(prefix="bench-delivery-"))
    try:
        mine: Result | None = None
        stored: list[tuple[str, bytes]] = []
        if with_mailpulse:
            mine, stored = run_mailpulse(args, workdir)
            print_result(mine)
            if args.profile and args.profile.exists():
                summarise_profile(args.profile)
        if with_postfix:
            theirs = run_postfix(args, workdir, stored)
            print_result(theirs)
            if mine is not None:
                print_comparison(mine, theirs)
    finally:
        if args.keep:
            print(f"\nkept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
