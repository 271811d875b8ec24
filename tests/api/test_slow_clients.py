"""Slow and idle clients cannot hold the server: header, body and keep-alive timeouts, a header
size limit and a connection cap (api/server.py), in one process and in several."""

from __future__ import annotations

import asyncio
import contextlib
import json
import pickle
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from mailpulse.api.server import HttpLimits, LimitedHttpProtocol
from mailpulse.cli import server as cli_server
from tests.support.server import RunningServer, running_server

HANG = 30  # seconds: only to detect a hang, never a measure


def address(server: RunningServer) -> tuple[str, int]:
    url = urlsplit(server.url)
    assert url.hostname is not None and url.port is not None
    return url.hostname, url.port


async def closed_by_server(reader: asyncio.StreamReader) -> bytes:
    """Everything the server still sent before closing (b"" for a silent close)."""
    try:
        return await asyncio.wait_for(reader.read(), HANG)
    except ConnectionResetError:
        return b""


async def trickle(writer: asyncio.StreamWriter, head: bytes) -> None:
    """One header byte every 0.2 s, a head that would never end."""
    with contextlib.suppress(ConnectionError, OSError):
        for byte in head:
            writer.write(bytes([byte]))
            await writer.drain()
            await asyncio.sleep(0.2)


async def test_hundreds_of_slow_connections_do_not_hold_the_server(tmp_path: Path) -> None:
    with running_server(
        f"sqlite:///{tmp_path / 'api.db'}",
        tmp_path / "var",
        http_header_timeout=1.5,
        http_body_timeout=2.0,
    ) as server:
        tenant = server.tenant()
        host, port = address(server)
        idle = [await asyncio.open_connection(host, port) for _ in range(100)]
        slow_heads = [await asyncio.open_connection(host, port) for _ in range(100)]
        half_bodies = [await asyncio.open_connection(host, port) for _ in range(100)]
        head = b"GET /health HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"p" * 200 + b"\r\n\r\n"
        trickles = [asyncio.create_task(trickle(w, head)) for _, w in slow_heads]
        for _, writer in half_bodies:
            writer.write(
                b"POST /oauth/access_token HTTP/1.1\r\nHost: x\r\n"
                b"Content-Type: application/json\r\nContent-Length: 200\r\n\r\n"
                b'{"grant_type": '
            )
        await asyncio.gather(*(w.drain() for _, w in half_bodies))

        # With 300 slow connections open, an ordinary request is answered.
        answer = await asyncio.to_thread(
            httpx.get, f"{server.url}/smtp/emails/total", headers=tenant.auth, timeout=HANG
        )
        assert answer.status_code == 200

        # And each slow connection is closed by the server: the idle and trickling ones without
        # an answer, the half-sent bodies with a 408 in the SendPulse shape.
        silent = await asyncio.gather(*(closed_by_server(r) for r, _ in idle + slow_heads))
        assert set(silent) == {b""}
        timed_out = await asyncio.gather(*(closed_by_server(r) for r, _ in half_bodies))
        for answer_bytes in timed_out:
            status_line, _, rest = answer_bytes.partition(b"\r\n")
            assert status_line == b"HTTP/1.1 408 Request Timeout"
            assert json.loads(rest.partition(b"\r\n\r\n")[2]) == {
                "error_code": 408,
                "message": "Request body not received in time",
            }
        for task in trickles:
            task.cancel()
        for _, writer in idle + slow_heads + half_bodies:
            writer.close()


async def test_idle_keep_alive_connection_is_closed(tmp_path: Path) -> None:
    with running_server(
        f"sqlite:///{tmp_path / 'api.db'}", tmp_path / "var", http_keep_alive_timeout=0.5
    ) as server:
        reader, writer = await asyncio.open_connection(*address(server))
        writer.write(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        answer = await closed_by_server(reader)  # answered, then closed once idle
        assert answer.startswith(b"HTTP/1.1 200 OK")
        writer.close()


async def test_connection_answered_before_its_body_arrived_is_closed(
    server: RunningServer,
) -> None:
    # A 401 before the body: the client may not keep the connection by trickling the body.
    reader, writer = await asyncio.open_connection(*address(server))
    writer.write(
        b"POST /smtp/emails HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: 1000000\r\n\r\n{"
    )
    await writer.drain()
    body = asyncio.create_task(trickle(writer, b"x" * 999_999))  # each byte would renew keep-alive
    answer = await closed_by_server(reader)
    assert answer.startswith(b"HTTP/1.1 401 ")
    assert b"\r\nconnection: close\r\n" in answer.lower()  # said before it is done
    body.cancel()
    writer.close()


async def test_oversized_request_head_is_refused_with_431(server: RunningServer) -> None:
    reader, writer = await asyncio.open_connection(*address(server))
    writer.write(b"GET /health HTTP/1.1\r\nHost: x\r\n" + b"X-Pad: " + b"p" * 100_000 + b"\r\n")
    await writer.drain()
    answer = await closed_by_server(reader)
    status_line, _, rest = answer.partition(b"\r\n")
    assert status_line == b"HTTP/1.1 431 Request Header Fields Too Large"
    assert json.loads(rest.partition(b"\r\n\r\n")[2]) == {
        "error_code": 431,
        "message": "Request headers too large",
    }
    writer.close()


async def test_requests_beyond_the_connection_cap_get_503_in_sendpulse_shape(
    tmp_path: Path,
) -> None:
    with running_server(
        f"sqlite:///{tmp_path / 'api.db'}", tmp_path / "var", http_max_connections=3
    ) as server:
        held = [await asyncio.open_connection(*address(server)) for _ in range(3)]
        answer = await asyncio.to_thread(httpx.get, f"{server.url}/health", timeout=HANG)
        assert answer.status_code == 503
        assert answer.json()["error_code"] == 503
        for _, writer in held:
            writer.close()
        server.recorder.server_errors.clear()  # load shedding, not a server error of the app


@pytest.mark.parametrize("processes", [1, 2])
def test_serve_passes_the_limits_to_uvicorn_in_one_process_or_several(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, processes: int
) -> None:
    monkeypatch.setenv("MAILPULSE_DATABASE_URL", f"sqlite:///{tmp_path / 'cli.db'}")
    monkeypatch.setenv("MAILPULSE_DATA_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("MAILPULSE_PROCESSES", str(processes))
    monkeypatch.setenv("MAILPULSE_HTTP_HEADER_TIMEOUT", "7")
    monkeypatch.setenv("MAILPULSE_HTTP_KEEP_ALIVE_TIMEOUT", "3")
    monkeypatch.setenv("MAILPULSE_HTTP_MAX_CONNECTIONS", "123")
    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(
        "mailpulse.serving.run_http",
        lambda settings, options, *, deliver: calls.append(options),
    )

    cli_server.serve_http(None, None, deliver=False)

    # The same options go to uvicorn.Config whether one process serves or several.
    [options] = calls
    # The factory must reach worker processes, which are spawned: it pickles.
    protocol = pickle.loads(pickle.dumps(options["http"]))
    assert protocol.func is LimitedHttpProtocol
    assert protocol.keywords == {"limits": HttpLimits(header_timeout=7.0, max_header_bytes=65536)}
    assert options["timeout_keep_alive"] == 3.0
    assert options["limit_concurrency"] == 123
