"""The commands that run the service: migrate, serve, api, worker and bounces."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING, Annotated, Any

import typer

from mailpulse.cli.common import migrated
from mailpulse.config import Settings, load_settings
from mailpulse.store import migrate

if TYPE_CHECKING:
    from mailpulse.runtime import Runtime


def migrate_command() -> None:
    """Create or upgrade the database schema."""
    settings = load_settings()
    db = migrated(settings)
    typer.echo(f"database at revision {migrate.current_revision(db.engine)}")
    db.close_sync()


HostOption = Annotated[str | None, typer.Option(help="listen address")]
PortOption = Annotated[int | None, typer.Option(help="listen port")]


def serve(host: HostOption = None, port: PortOption = None) -> None:
    """Run everything: the HTTP API, a delivery worker and the bounce receiver."""
    serve_http(host, port, deliver=True)


def api(host: HostOption = None, port: PortOption = None) -> None:
    """Run the HTTP API alone (pair it with `mailpulse worker` processes on PostgreSQL)."""
    serve_http(host, port, deliver=False)


def worker() -> None:
    """Run a delivery worker alone; run any number of them against PostgreSQL."""
    from mailpulse.runtime import running_worker
    from mailpulse.serving import announce, configure_logging

    settings = load_settings()
    configure_logging(settings)
    migrated(settings).close_sync()
    _run_until_stopped(
        settings, lambda: announce(settings, http=False, deliver=True), running_worker
    )


def bounces(
    host: Annotated[str | None, typer.Option(help="listen address (MAILPULSE_BOUNCE_HOST)")] = None,
    port: Annotated[int | None, typer.Option(help="listen port (MAILPULSE_BOUNCE_PORT)")] = None,
) -> None:
    """Run the bounce receiver alone: DSNs, complaints and unsubscribe mail, over SMTP."""
    from mailpulse.runtime import running_receiver
    from mailpulse.serving import announce_bounces, check_bounce_address, configure_logging

    overrides: dict[str, Any] = {}
    if host is not None:
        overrides["bounce_host"] = host
    if port is not None:
        overrides["bounce_port"] = port
    settings = load_settings(**overrides)
    configure_logging(settings)
    migrated(settings).close_sync()
    check_bounce_address(settings)
    _run_until_stopped(settings, lambda: announce_bounces(settings), running_receiver)


def _run_until_stopped(
    settings: Settings,
    announce: Callable[[], None],
    service: Callable[[Runtime], AbstractAsyncContextManager[object]],
) -> None:
    """Run one service of the runtime (a delivery worker, the bounce receiver) under the
    watchdog until SIGINT or SIGTERM; a process the watchdog stopped exits non-zero."""
    import asyncio
    import signal

    from mailpulse.runtime import Fatal, build_runtime, watched
    from mailpulse.serving import StoppedOnFailure

    runtime = build_runtime(settings)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        announce()
        runtime.db.start()
        try:
            async with service(runtime), watched(runtime):
                await stop.wait()
        finally:
            await runtime.db.close()

    asyncio.run(main())
    if Fatal.reason is not None:
        raise StoppedOnFailure(f"stopped: {Fatal.reason}")


def serve_http(host: str | None, port: int | None, *, deliver: bool) -> None:
    from mailpulse.api.server import uvicorn_options
    from mailpulse.serving import announce, configure_logging, run_http

    overrides: dict[str, Any] = {}
    if host is not None:
        overrides["http_host"] = host
    if port is not None:
        overrides["http_port"] = port
    settings = load_settings(**overrides)
    configure_logging(settings)
    migrated(settings).close_sync()
    settings.resolved_secret_key()  # generated here once, before the processes start
    options: dict[str, Any] = {
        "host": settings.http_host,
        "port": settings.http_port,
        "log_level": settings.log_level,
        "access_log": settings.access_log,
        "loop": "uvloop",
        # httptools with a header timeout and size limit, keep-alive timeout, connection cap
        **uvicorn_options(settings),
        # SIGTERM stops the server within seconds even with requests waiting on the store
        "timeout_graceful_shutdown": 5,
    }
    announce(settings, http=True, deliver=deliver)
    run_http(settings, options, deliver=deliver)
