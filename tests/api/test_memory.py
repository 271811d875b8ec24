"""Peak memory for one request stays within a small multiple of its body size.

A real ``mailpulse api`` process serves the requests; before each one its peak RSS is reset
(``/proc/PID/clear_refs``), after it the peak (VmHWM) is read: the growth is what the request
cost. glibc's malloc is told to give large blocks back to the system at once
(``MALLOC_MMAP_THRESHOLD_``), so one request's freed memory does not hide the next one's.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.support.server import free_port

MB = 1024 * 1024
pytestmark = pytest.mark.skipif(
    not Path("/proc/self/clear_refs").exists(), reason="needs Linux /proc to reset peak RSS"
)


@dataclass
class Served:
    pid: int
    port: int
    token: str
    sender: str

    def _status_kb(self, field: str) -> int:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
        raise AssertionError(field)

    def cost(self, request: bytes) -> tuple[bytes, int]:
        """The answer's head, and how far the server's RSS rose above its level before."""
        Path(f"/proc/{self.pid}/clear_refs").write_text("5")  # peak RSS := current RSS
        before = self._status_kb("VmRSS")
        answer = exchange(self.port, request)
        cost = (self._status_kb("VmHWM") - before) * 1024
        return answer, cost


def exchange(port: int, request: bytes) -> bytes:
    """Write the request from a thread (the server may answer and close before reading it all)
    and read the answer's head."""
    with socket.create_connection(("127.0.0.1", port), timeout=120) as sock:

        def write() -> None:
            with contextlib.suppress(OSError):  # answered and closed early: the point
                sock.sendall(request)

        writer = threading.Thread(target=write)
        writer.start()
        answer = b""
        while b"\r\n\r\n" not in answer:
            chunk = sock.recv(65536)
            if not chunk:
                break
            answer += chunk
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
        writer.join(timeout=120)
    return answer


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    workdir = tmp_path_factory.mktemp("memory")
    port = free_port()
    env = dict(os.environ)
    env.update(
        {
            "MAILPULSE_DATABASE_URL": f"sqlite:///{workdir / 'api.db'}",
            "MAILPULSE_DATA_DIR": str(workdir / "var"),
            "MAILPULSE_HTTP_PORT": str(port),
            "MAILPULSE_PROCESSES": "1",
            "MAILPULSE_LOG_LEVEL": "warning",
            "MALLOC_MMAP_THRESHOLD_": "131072",
        }
    )
    mailpulse = [sys.executable, "-m", "mailpulse"]

    def cli(*args: str) -> str:
        done = subprocess.run([*mailpulse, *args], env=env, check=True, capture_output=True)
        return done.stdout.decode()

    account = json.loads(cli("account", "create", "--name", "mem", "--json"))
    sender = "mem@example.com"
    cli("sender", "add", "mem", sender)
    process = subprocess.Popen([*mailpulse, "api"], env=env, cwd=workdir)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(f"http://127.0.0.1:{port}/health", timeout=1)
                break
            except httpx.HTTPError:
                assert time.monotonic() < deadline and process.poll() is None, "no server"
                time.sleep(0.1)
        token = httpx.post(
            f"http://127.0.0.1:{port}/oauth/access_token",
            json={
                "grant_type": "client_credentials",
                "client_id": account["client_id"],
                "client_secret": account["client_secret"],
            },
        ).json()["access_token"]
        yield Served(process.pid, port, token, sender)
    finally:
        process.terminate()
        process.wait(timeout=30)


def post(path: str, body: bytes, content_type: str, token: str = "") -> bytes:
    auth = f"Authorization: Bearer {token}\r\n" if token else ""
    return (
        f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: {content_type}\r\n{auth}"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body


def many_small_values(size: int) -> bytes:
    """About ``size`` bytes of ``[{},{},…]``: the costliest JSON per byte to parse (~25x)."""
    return b'{"client_id": [' + b"{}," * (size // 3) + b'{}], "grant_type": "x"}'


def test_37_mb_json_to_the_token_endpoint_is_refused_cheaply(served: Served) -> None:
    request = post("/oauth/access_token", many_small_values(37 * MB), "application/json")
    answer, cost = served.cost(request)
    assert answer.startswith(b"HTTP/1.1 413 ")
    assert cost < 4 * MB, cost


def test_large_json_without_content_length_to_the_token_endpoint_is_refused_cheaply(
    served: Served,
) -> None:
    body = many_small_values(8 * MB)
    step = 16384
    chunks = b"".join(
        b"%x\r\n%s\r\n" % (len(body[i : i + step]), body[i : i + step])
        for i in range(0, len(body), step)
    )
    request = (
        b"POST /oauth/access_token HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n" + chunks + b"0\r\n\r\n"
    )
    answer, cost = served.cost(request)
    assert answer.startswith(b"HTTP/1.1 413 ")
    assert cost < 4 * MB, cost


def test_form_with_millions_of_fields_costs_a_small_multiple_of_its_size(served: Served) -> None:
    body = b"&".join([b"a=1"] * 3_000_000)  # 12 MB
    request = post("/smtp/emails", body, "application/x-www-form-urlencoded", served.token)
    answer, cost = served.cost(request)
    assert answer.startswith(b"HTTP/1.1 413 ")
    assert cost < 3 * len(body), (cost, len(body))


def test_million_recipients_cost_a_small_multiple_of_their_size(served: Served) -> None:
    recipients = b",".join(b'{"email":"u%d@example.org"}' % i for i in range(1_000_000))
    body = b'{"email":{"subject":"s","text":"t","to":[' + recipients + b"]}}"
    answer, cost = served.cost(post("/smtp/emails", body, "application/json", served.token))
    assert answer.startswith(b"HTTP/1.1 413 ")
    assert cost < 3 * len(body), (cost, len(body))


def test_legitimate_large_send_costs_a_small_multiple_of_its_size(served: Served) -> None:
    email = {
        "subject": "a large one",
        "html": base64.b64encode(b"<p>" + b"x" * MB + b"</p>").decode(),
        "from": {"email": served.sender},
        "to": [{"email": "rcpt@example.org"}],
        "attachments_binary": {"data.bin": base64.b64encode(os.urandom(6 * MB)).decode()},
    }
    body = json.dumps({"email": email}).encode()
    answer, cost = served.cost(post("/smtp/emails", body, "application/json", served.token))
    assert answer.startswith(b"HTTP/1.1 200 "), answer
    # About 5x here: the body as read (twice while its chunks are joined), the parsed strings,
    # the decoded attachment and the composed message.
    assert cost < 8 * len(body), (cost, len(body))


def test_bracketed_form_at_the_field_limit_costs_a_small_multiple_of_its_size(
    served: Served,
) -> None:
    # 9,999 fields (under the field limit), each 31 bracket groups deep (under the depth limit)
    # with long keys: ~30 MB whose 310,000 groups are counted, not built, before the refusal.
    key = b"k" * 95
    brackets = (b"%5B" + key + b"%5D") * 31
    body = b"&".join(b"e" + str(i).encode() + brackets + b"=1" for i in range(9_999))
    request = post("/smtp/emails", body, "application/x-www-form-urlencoded", served.token)
    answer, cost = served.cost(request)
    assert answer.startswith(b"HTTP/1.1 413 "), answer
    # About 4x, the same as a plain form of this size measured beside it (the body as read, its
    # text, parse_qsl's copies of the names): counting the bracket groups adds nothing.
    assert cost < 5 * len(body), (cost, len(body))
