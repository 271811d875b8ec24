"""A real mailpulse HTTP server on a free loopback port, in a thread of the test process."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mailpulse.api.app import create_app
from mailpulse.api.server import uvicorn_options
from mailpulse.cli.accounts import create_account
from mailpulse.config import Settings
from mailpulse.core.auth import hash_api_key, new_api_key
from mailpulse.core.clock import Clock
from mailpulse.runtime import Runtime, build_runtime
from mailpulse.store import accounts, migrate


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


@dataclass
class Tenant:
    id: int
    client_id: str
    client_secret: str
    token: str
    sender: str

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


class StatusRecorder:
    """ASGI wrapper that remembers every response status, so a fixture can fail on any 5xx."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.server_errors: list[str] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def recording_send(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] >= 500:
                self.server_errors.append(f"{scope['method']} {scope['path']}: {message['status']}")
            await send(message)

        await self.app(scope, receive, recording_send)


@dataclass
class RunningServer:
    url: str
    runtime: Runtime
    recorder: StatusRecorder
    names: dict[str, int] = field(default_factory=dict)

    def client(self, **kwargs: Any) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=30, **kwargs)

    def tenant(
        self, name: str = "acme", sender: str = "sender@example.com", activated: bool = True
    ) -> Tenant:
        db = self.runtime.db
        # Account names are unique: a second tenant of the same name gets a numbered one.
        self.names[name] = self.names.get(name, 0) + 1
        if self.names[name] > 1:
            name = f"{name}-{self.names[name]}"
        creds = create_account(db, name, sender, activated)
        now = self.runtime.clock.now()
        db.write_sync(
            lambda conn: accounts.add_sender(
                conn,
                account_id=int(creds["id"]),
                email=sender,
                name=name,
                now=now,
                status="active",
            )
        )
        with self.client() as http:
            answer = http.post(
                "/oauth/access_token",
                json={
                    "grant_type": "client_credentials",
                    "client_id": creds["client_id"],
                    "client_secret": creds["client_secret"],
                },
            )
        answer.raise_for_status()
        return Tenant(
            id=int(creds["id"]),
            client_id=str(creds["client_id"]),
            client_secret=str(creds["client_secret"]),
            token=answer.json()["access_token"],
            sender=sender,
        )

    def api_key(self, tenant: Tenant) -> tuple[int, str]:
        key = new_api_key()
        now = self.runtime.clock.now()
        key_id = self.runtime.db.write_sync(
            lambda conn: accounts.create_api_key(
                conn, account_id=tenant.id, name="t", key_hash=hash_api_key(key), hint="", now=now
            )
        )
        return key_id, key


@contextmanager
def running_server(
    database_url: str,
    data_dir: Path,
    clock: Clock | None = None,
    *,
    deliver: bool = False,
    bounces: str = "",
    **settings: Any,
) -> Iterator[RunningServer]:
    port = free_port()
    settings.setdefault("secret_key", "test-secret-key-0123456789abcdef0123456789")
    config = Settings(database_url=database_url, data_dir=data_dir, http_port=port, **settings)
    runtime = build_runtime(config, clock=clock)
    migrate.upgrade(runtime.db.engine)
    recorder = StatusRecorder(create_app(runtime, deliver=deliver, bounces=bounces))
    server = uvicorn.Server(
        uvicorn.Config(
            recorder,
            host="127.0.0.1",
            port=port,
            log_level="warning",
            lifespan="on",
            **uvicorn_options(config),  # the production protocol limits
        )
    )
    thread = threading.Thread(target=lambda: asyncio.run(server.serve()), daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("test server did not start")
        time.sleep(0.02)
    try:
        yield RunningServer(url=f"http://127.0.0.1:{port}", runtime=runtime, recorder=recorder)
    finally:
        server.should_exit = True
        thread.join(timeout=20)
    # No request of any test, however malformed, may be answered with a 5xx.
    assert not recorder.server_errors, recorder.server_errors
