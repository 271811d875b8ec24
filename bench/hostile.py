"""Hostile requests against a real `mailpulse serve`: what each costs the server, and how a
normal request fares meanwhile (issue 6).

    .venv/bin/python bench/hostile.py
    .venv/bin/python bench/hostile.py --repeat 4 --slow 300 --only token-37mb,slow-clients

For each case: the requests are sent (``--repeat`` of them at once), while a prober sends
``GET /smtp/emails/total`` with a token every 50 ms on its own connection. Printed per case:
the answers' statuses, how long the case took, the server's peak RSS growth (VmHWM reset through
``/proc/PID/clear_refs`` before the case, compared with VmRSS then), and the prober's request
count, median and worst latency. One server process (``MAILPULSE_PROCESSES=1``), so that its
RSS is the whole server's. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import socket
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from _server import Server, serve  # type: ignore[import-not-found]

MB = 1024 * 1024


@dataclass
class Result:
    name: str
    statuses: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    rss_growth_mb: float = 0.0
    probes: list[float] = field(default_factory=list)
    note: str = ""


# -- the hostile bodies --------------------------------------------------------------------------
def post(path: str, body: bytes, content_type: str, token: str = "") -> bytes:
    auth = f"Authorization: Bearer {token}\r\n" if token else ""
    return (
        f"POST {path} HTTP/1.1\r\nHost: bench\r\nContent-Type: {content_type}\r\n{auth}"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body


def token_37mb(_server: Server, _token: str) -> bytes:
    body = b'{"client_id": [' + b'{"a": 1},' * (37 * MB // 9) + b'{}], "grant_type": "x"}'
    return post("/oauth/access_token", body, "application/json")


def token_form_fields(_server: Server, _token: str) -> bytes:
    return post(
        "/oauth/access_token", b"&".join([b"a=1"] * 3_000_000), "application/x-www-form-urlencoded"
    )


def send_form_fields(_server: Server, token: str) -> bytes:
    body = b"&".join([b"a=1"] * 3_000_000)
    return post("/smtp/emails", body, "application/x-www-form-urlencoded", token)


def send_36mb_object(server: Server, token: str) -> bytes:
    # 36 MB: within the send's body limit (38.5 MB by default), so it is read and counted.
    variables = b",".join(b'"v%d": {"x": [1, 2]}' % i for i in range(36 * MB // 24))
    body = (
        b'{"email": {"subject": "s", "text": "t", "from": {"email": "%s"},'
        b' "to": [{"email": "r@example.org"}], "template": {"variables": {%s}}}}'
    ) % (server.sender.encode(), variables)
    return post("/smtp/emails", body, "application/json", token)


def send_37mb_text(server: Server, token: str) -> bytes:
    email = {
        "subject": "s",
        "text": "Lorem ipsum, dolor sit amet. " * (37 * MB // 29),
        "from": {"email": server.sender},
        "to": [{"email": "r@example.org"}],
    }
    return post("/smtp/emails", json.dumps({"email": email}).encode(), "application/json", token)


def send_million_recipients(_server: Server, token: str) -> bytes:
    recipients = b",".join(b'{"email":"u%d@example.org"}' % i for i in range(1_000_000))
    body = b'{"email":{"subject":"s","text":"t","to":[' + recipients + b"]}}"
    return post("/smtp/emails", body, "application/json", token)


def send_deep(_server: Server, token: str) -> bytes:
    nested = b'{"a":' * 490 + b"1" + b"}" * 490
    body = b'{"email": {"subject": "s", "text": "t", "template": ' + nested + b"}}"
    return post("/smtp/emails", body, "application/json", token)


def send_very_deep(_server: Server, token: str) -> bytes:
    return post("/smtp/emails", b'{"email": ' + b"[" * 10 * MB + b"}", "application/json", token)


def send_legit_large(server: Server, token: str) -> bytes:
    import base64

    email = {
        "subject": "a legitimate 18 MB attachment",
        "text": "see attached",
        "from": {"email": server.sender},
        "to": [{"email": "r@example.org"}],
        "attachments_binary": {"data.bin": base64.b64encode(os.urandom(18 * MB)).decode()},
    }
    return post("/smtp/emails", json.dumps({"email": email}).encode(), "application/json", token)


CASES: dict[str, Callable[[Server, str], bytes]] = {
    "token-37mb": token_37mb,
    "token-form-3M-fields": token_form_fields,
    "send-form-3M-fields": send_form_fields,
    "send-36mb-object": send_36mb_object,
    "send-37mb-text": send_37mb_text,
    "send-1M-recipients": send_million_recipients,
    "send-490-deep": send_deep,
    "send-10M-deep": send_very_deep,
    "send-legit-24mb": send_legit_large,
}


# -- measuring -----------------------------------------------------------------------------------
def exchange(port: int, request: bytes) -> str:
    """Send one request (from a thread, so an early answer is read) and return its status."""
    with socket.create_connection(("127.0.0.1", port), timeout=300) as sock:

        def write() -> None:
            with contextlib.suppress(OSError):
                sock.sendall(request)

        writer = threading.Thread(target=write)
        writer.start()
        answer = b""
        try:
            while b"\r\n" not in answer:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                answer += chunk
        except OSError as exc:
            return type(exc).__name__
        finally:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            writer.join()
    parts = answer.split(b" ", 2)
    return parts[1].decode() if len(parts) > 1 else "closed"


class Prober:
    """A normal authenticated request every 50 ms on its own connection, timed."""

    def __init__(self, url: str, token: str) -> None:
        self.url, self.token = url, token
        self.latencies: list[float] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self) -> None:
        headers = {"Authorization": f"Bearer {self.token}"}
        with httpx.Client(base_url=self.url, headers=headers, timeout=120) as http:
            while not self.stop.is_set():
                started = time.perf_counter()
                try:
                    http.get("/smtp/emails/total").raise_for_status()
                    self.latencies.append(time.perf_counter() - started)
                except httpx.HTTPError:
                    self.latencies.append(float("inf"))
                self.stop.wait(0.05)

    def __enter__(self) -> Prober:
        self.thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop.set()
        self.thread.join()


def status_kb(pid: int, name: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(name + ":"):
            return int(line.split()[1])
    return 0


def measure(server: Server, token: str, name: str, action: Callable[[], dict[str, int]]) -> Result:
    pid = server.process.pid
    time.sleep(0.5)  # let the previous case's memory go back
    Path(f"/proc/{pid}/clear_refs").write_text("5")
    before = status_kb(pid, "VmRSS")
    result = Result(name)
    with Prober(server.url, token) as prober:
        time.sleep(0.3)
        started = time.perf_counter()
        result.statuses = action()
        result.seconds = time.perf_counter() - started
        time.sleep(0.3)
    result.rss_growth_mb = (status_kb(pid, "VmHWM") - before) / 1024
    result.probes = prober.latencies
    return result


def body_case(server: Server, token: str, name: str, repeat: int) -> Result:
    request = CASES[name](server, token)
    port = int(server.url.rsplit(":", 1)[1])

    def action() -> dict[str, int]:
        statuses: list[str] = []
        threads = [
            threading.Thread(target=lambda: statuses.append(exchange(port, request)))
            for _ in range(repeat)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return {status: statuses.count(status) for status in sorted(set(statuses))}

    result = measure(server, token, name, action)
    result.note = f"{len(request) / MB:.1f} MB × {repeat}"
    return result


def slow_clients(server: Server, token: str, count: int, hold: float) -> Result:
    host, port = "127.0.0.1", int(server.url.rsplit(":", 1)[1])

    async def hold_them() -> dict[str, int]:
        third = count // 3
        conns = [await asyncio.open_connection(host, port) for _ in range(count)]
        kinds = ["idle"] * third + ["trickle"] * third + ["half-body"] * (count - 2 * third)
        head = b"GET /health HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"p" * 1000 + b"\r\n\r\n"

        async def behave(kind: str, reader: asyncio.StreamReader, w: asyncio.StreamWriter) -> str:
            with contextlib.suppress(OSError):
                if kind == "half-body":
                    w.write(
                        b"POST /oauth/access_token HTTP/1.1\r\nHost: x\r\n"
                        b"Content-Length: 1000\r\n\r\n{"
                    )
                elif kind == "trickle":
                    for byte in head:
                        if reader.at_eof():
                            break
                        w.write(bytes([byte]))
                        await w.drain()
                        await asyncio.sleep(1.0)
            try:
                data = await asyncio.wait_for(reader.read(), hold)
            except (TimeoutError, OSError):
                return f"{kind}: still open"
            status = data.split(b" ", 2)[1].decode() if data else "closed"
            return f"{kind}: {status}"

        outcomes = await asyncio.gather(
            *(behave(kind, r, w) for kind, (r, w) in zip(kinds, conns, strict=True))
        )
        for _, writer in conns:
            writer.close()
        return {outcome: outcomes.count(outcome) for outcome in sorted(set(outcomes))}

    result = measure(server, token, "slow-clients", lambda: asyncio.run(hold_them()))
    result.note = f"{count} connections, up to {hold:.0f} s"
    return result


def report(results: list[Result]) -> None:
    print()
    print(
        "| case | sent | answers | took s | server RSS growth MB | probes | probe p50 ms "
        "| probe max ms |"
    )
    print("| --- | --- | --- | ---: | ---: | ---: | ---: | ---: |")
    for r in results:
        finite = [p for p in r.probes if p != float("inf")]
        p50 = statistics.median(finite) * 1000 if finite else float("nan")
        worst = max(r.probes) * 1000 if r.probes else float("nan")
        answers = ", ".join(f"{s}×{n}" for s, n in r.statuses.items())
        print(
            f"| {r.name} | {r.note} | {answers} | {r.seconds:.2f} | {r.rss_growth_mb:.0f} | "
            f"{len(r.probes)} | {p50:.1f} | {worst:.0f} |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=4, help="hostile requests at once per case")
    parser.add_argument("--slow", type=int, default=300, help="slow connections held")
    parser.add_argument("--only", default="", help="comma-separated case names")
    parser.add_argument("--set", action="append", default=[], help="extra setting key=value")
    args = parser.parse_args()
    names = [*CASES, "slow-clients"]
    if args.only:
        names = [n for n in names if n in args.only.split(",")]
    settings = {"processes": "1"} | dict(item.split("=", 1) for item in args.set)
    # Large blocks straight from and back to the system, so that one case's freed memory does
    # not hide the next case's growth (glibc otherwise keeps raising its mmap threshold).
    os.environ.setdefault("MALLOC_MMAP_THRESHOLD_", "131072")
    with (
        tempfile.TemporaryDirectory(prefix="mailpulse-hostile-") as tmp,
        serve(Path(tmp), **settings) as server,
    ):
        token = server.token()
        print(f"server pid {server.process.pid}, RSS {status_kb(server.process.pid, 'VmRSS')} kB")
        results = []
        for name in names:
            if name == "slow-clients":
                timeouts = (
                    settings.get("http_header_timeout", "10"),
                    settings.get("http_body_timeout", "60"),
                )
                hold = max(float(t) for t in timeouts) + 15
                results.append(slow_clients(server, token, args.slow, hold))
            else:
                results.append(body_case(server, token, name, args.repeat))
            print(f"done: {name}", flush=True)
        report(results)


if __name__ == "__main__":
    main()
