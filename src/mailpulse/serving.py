"""Running the HTTP server in one or several processes, and telling the operator about it.

Why not ``uvicorn.run``: with several processes, uvicorn's supervisor returns normally (exit
status 0) when a process fails to start, and restarts forever a process that fails while the
app is built; either way a service manager (systemd, Kubernetes) never learns that the service
is down. Here a process that dies before it ever served is a start-up failure: the others are
stopped and :func:`run_http` raises :class:`StartupFailed`, which the command line turns into
one line and exit status 3 (what uvicorn's single process uses). A process that dies after it
has served is replaced, as before.

Also here: the logging set-up shared by the server processes and ``mailpulse worker`` (the
``mailpulse`` loggers print beside uvicorn's, at ``log_level``), and the start-up lines that
say which database, which delivery mode, how many processes and which address.
"""

from __future__ import annotations

import copy
import logging
import logging.config
import os
import socket
import sys
from typing import Any
from urllib.parse import urlsplit

import uvicorn
from starlette.applications import Starlette
from uvicorn.config import LOGGING_CONFIG
from uvicorn.supervisors.multiprocess import Multiprocess, Process

from mailpulse.config import ConfigError, Settings, load_settings
from mailpulse.failures import OperatorError
from mailpulse.store.engine import DatabaseUnavailable, safe_url

STARTUP_FAILURE = 3
DELIVER_ENV = "MAILPULSE_INTERNAL_DELIVER"
BOUNCES_ENV = "MAILPULSE_INTERNAL_BOUNCES"
PROCESS_APP = "mailpulse.serving:app_for_process"
log = logging.getLogger("mailpulse")


class StartupFailed(OperatorError):
    """A server process could not start; the message is one line for the operator."""

    exit_status = STARTUP_FAILURE


class StoppedOnFailure(OperatorError):
    """A part of the process ended unexpectedly (runtime.watchdog): exit non-zero, so that
    the supervisor restarts the process instead of leaving it alive and idle."""

    exit_status = 70


# -- logging -------------------------------------------------------------------------------------
def logging_config(level: str) -> dict[str, Any]:
    """uvicorn's logging configuration, with the ``mailpulse`` loggers printed beside it."""
    config = copy.deepcopy(LOGGING_CONFIG)
    # The mailpulse loggers exist before this runs (modules create them at import): left
    # enabled, or ``mailpulse worker`` would say nothing, outages included.
    config["disable_existing_loggers"] = False
    config["loggers"]["mailpulse"] = {
        "handlers": ["default"],
        "level": level.upper(),
        "propagate": False,
    }
    return config


def configure_logging(settings: Settings) -> None:
    logging.config.dictConfig(logging_config(settings.log_level))


# -- start-up lines ------------------------------------------------------------------------------
def delivery_mode(settings: Settings) -> str:
    """MX or relay, without credentials."""
    if not settings.relay:
        return f"direct to each recipient domain's MX hosts (port {settings.mx_port})"
    parts = urlsplit(settings.relay)
    default_port = 465 if parts.scheme == "smtps" else 25
    return f"through the relay {parts.scheme}://{parts.hostname}:{parts.port or default_port}"


def listen_url(settings: Settings) -> str:
    host = settings.http_host
    return (
        f"http://[{host}]:{settings.http_port}"
        if ":" in host
        else (f"http://{host}:{settings.http_port}")
    )


def bounce_listen_url(settings: Settings) -> str:
    host = settings.bounce_host
    host = f"[{host}]" if ":" in host else host
    return f"smtp://{host}:{settings.bounce_port}"


def runs_receiver(settings: Settings, *, http: bool, deliver: bool) -> bool:
    """``serve`` runs the bounce receiver unless told not to; ``api`` and ``worker`` never."""
    return http and deliver and settings.bounce_receiver


def startup_lines(settings: Settings, *, http: bool, deliver: bool) -> list[str]:
    lines = [f"database: {safe_url(settings.database_url)}"]
    if deliver:
        lines.append(f"delivery: {delivery_mode(settings)}")
        lines.append(f"return path: bounce+<token>@{settings.resolved_bounce_domain()} (VERP)")
    if runs_receiver(settings, http=http, deliver=deliver):
        lines.append(
            f"bounces: {bounce_listen_url(settings)} receives reports for "
            f"{settings.resolved_bounce_domain()} (point its MX here, port 25)"
        )
    if http:
        processes = settings.process_count()
        each = "the HTTP API and a delivery worker" if deliver else "the HTTP API"
        noun = "process" if processes == 1 else "processes"
        lines.append(f"processes: {processes} server {noun}, each running {each}")
        access = "on" if settings.access_log else "off"
        lines.append(f"serving: {listen_url(settings)} (access log {access})")
    else:
        lines.append(f"processes: 1 delivery worker, up to {settings.max_sessions} SMTP sessions")
    return lines


def announce_bounces(settings: Settings) -> None:
    """The start-up lines of ``mailpulse bounces``."""
    log.info("database: %s", safe_url(settings.database_url))
    log.info(
        "bounces: %s receives reports for %s (point its MX here, port 25)",
        bounce_listen_url(settings),
        settings.resolved_bounce_domain(),
    )


def announce(settings: Settings, *, http: bool, deliver: bool) -> None:
    for line in startup_lines(settings, http=http, deliver=deliver):
        log.info(line)


def check_bounce_address(settings: Settings) -> None:
    """Raise :class:`StartupFailed` when the bounce receiver's address cannot be had."""
    host, port = settings.bounce_host, settings.bounce_port
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        family, kind, proto, _, address = infos[0]
        with socket.socket(family, kind, proto) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(address)
    except OSError as exc:
        raise StartupFailed(
            f"the bounce receiver cannot listen on {bounce_listen_url(settings)}: "
            f"{exc.strerror or exc}"
        ) from None


# -- the server processes ------------------------------------------------------------------------
def app_for_process() -> Starlette:
    """The app of one of several server processes: settings from the environment (the parent
    has checked them, so they are not warned about again), delivery on for ``serve``."""
    from mailpulse.api.app import create_app
    from mailpulse.runtime import build_runtime

    try:
        runtime = build_runtime(load_settings(warn=False))
    except (ConfigError, DatabaseUnavailable) as exc:
        log.error("%s", exc)
        sys.exit(STARTUP_FAILURE)
    return create_app(
        runtime,
        deliver=os.environ.get(DELIVER_ENV) == "1",
        exit_on_fatal=True,
        bounces=os.environ.get(BOUNCES_ENV, ""),
    )


class _Supervisor(Multiprocess):
    """uvicorn's supervisor, except that a process dying before it ever served stops all."""

    def __init__(self, config: uvicorn.Config, sockets: list[Any]) -> None:
        super().__init__(config, sockets)
        self.failed: str | None = None
        self._served: set[int] = set()

    def keep_subprocess_alive(self) -> None:
        if self.should_exit.is_set():
            return
        timeout = self.config.timeout_worker_healthcheck
        for index, process in enumerate(self.processes):
            if process.process.is_alive():
                if process.is_ready(timeout=timeout):
                    self._served.add(process.pid or 0)
                    continue
                if process.ping(timeout=timeout):
                    continue  # alive, still starting
            # dead, or hung (answers no health check): kill it, then decide
            process.kill()
            process.join()
            if process.pid not in self._served:
                self.failed = (
                    f"server process {process.pid} failed to start (exit status "
                    f"{process.exitcode}); stopped all {len(self.processes)} processes"
                )
                log.error("%s", self.failed)
                self.should_exit.set()
                return
            log.warning("server process %s died; starting another", process.pid)
            replacement = Process(self.config, self.sockets)
            replacement.start()
            self.processes[index] = replacement


def run_http(settings: Settings, options: dict[str, Any], *, deliver: bool) -> None:
    """Serve until stopped; raise :class:`StartupFailed` if any process could not start."""
    processes = settings.process_count()
    options = {"log_config": logging_config(settings.log_level), **options}
    receiver = runs_receiver(settings, http=True, deliver=deliver)
    if receiver:  # one line now rather than a traceback from a process later
        check_bounce_address(settings)
    if processes == 1:
        from mailpulse.api.app import create_app
        from mailpulse.runtime import build_runtime

        server = uvicorn.Server(
            uvicorn.Config(
                create_app(
                    build_runtime(settings),
                    deliver=deliver,
                    exit_on_fatal=True,
                    bounces="own" if receiver else "",
                ),
                **options,
            )
        )
        server.run()
        if not server.started:
            raise StartupFailed("the server did not start (the reason is above)")
        return
    # Each process builds its own runtime from the same settings (the environment).
    os.environ[DELIVER_ENV] = "1" if deliver else "0"
    # The bounce receiver runs in whichever process binds its port first (checked above:
    # an address taken by another program stops the start).
    os.environ[BOUNCES_ENV] = "shared" if receiver else ""
    config = uvicorn.Config(PROCESS_APP, factory=True, workers=processes, **options)
    sock = config.bind_socket()  # in use or not allowed: one error line and exit status 1
    supervisor = _Supervisor(config, [sock])
    supervisor.run()
    if supervisor.failed:
        raise StartupFailed(supervisor.failed)
