"""Shared bench helpers: start `mailpulse serve` in a subprocess on a fresh database."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
MAILPULSE = [sys.executable, "-m", "mailpulse"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    url: str
    process: subprocess.Popen[bytes]
    env: dict[str, str]
    client_id: str
    client_secret: str
    sender: str

    def token(self) -> str:
        answer = httpx.post(
            f"{self.url}/oauth/access_token",
            json={
                "grant_type": "client_credentials",
                "client_id": self.client_id,
                "client_secret": self.client_secret,
            },
        )
        answer.raise_for_status()
        return str(answer.json()["access_token"])

    def rss_kb(self) -> int:
        """Peak resident set size of the server process (VmHWM)."""
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
        return 0


def cli(env: dict[str, str], *args: str) -> str:
    return subprocess.run(
        [*MAILPULSE, *args], env=env, check=True, capture_output=True, text=True
    ).stdout


@contextmanager
def serve(workdir: Path, command: str = "serve", **settings: str) -> Iterator[Server]:
    """``mailpulse COMMAND`` (serve: API and delivery; api: the API alone) on a fresh database."""
    port = free_port()
    env = dict(os.environ)
    env.update(
        {
            "MAILPULSE_DATABASE_URL": f"sqlite:///{workdir / 'bench.db'}",
            "MAILPULSE_DATA_DIR": str(workdir / "var"),
            "MAILPULSE_HTTP_PORT": str(port),
            "MAILPULSE_BOUNCE_PORT": str(free_port()),
            "MAILPULSE_LOG_LEVEL": "warning",
        }
    )
    env.update({f"MAILPULSE_{k.upper()}": v for k, v in settings.items()})
    account = json.loads(cli(env, "account", "create", "--name", "bench", "--json"))
    sender = "bench@example.com"
    cli(env, "sender", "add", "bench", sender)
    process = subprocess.Popen([*MAILPULSE, command], env=env, cwd=workdir)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            httpx.get(f"{url}/health", timeout=1)
            break
        except httpx.HTTPError:
            if time.monotonic() > deadline or process.poll() is not None:
                process.kill()
                raise RuntimeError("server did not start") from None
            time.sleep(0.1)
    try:
        yield Server(url, process, env, account["client_id"], account["client_secret"], sender)
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
