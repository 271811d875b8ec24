"""The ``mailpulse`` command line: serve, migrate, accounts, senders and API keys.

:func:`main` is the one entry point (``mailpulse`` and ``python -m mailpulse``): whatever the
command, an operator's mistake (a wrong setting, a database that cannot be reached, a server
that cannot start) ends as one line on stderr and a non-zero exit status, never a traceback.
Exit statuses (see failures.py): 78 a setting is wrong (restarting will not help), 69 the
database is unavailable, 3 a server process failed to start, 70 a part of a running process
(its delivery worker, its database writer) ended unexpectedly, 1 anything unexpected, 2 a
wrong command line (click's own), 130 interrupted.
"""

from __future__ import annotations

import os
import sys
import traceback

import typer

from mailpulse.cli import server
from mailpulse.cli.accounts import account_app
from mailpulse.cli.common import fail
from mailpulse.cli.demo import demo
from mailpulse.cli.keys import key_app
from mailpulse.cli.senders import sender_app
from mailpulse.config import ConfigError
from mailpulse.failures import OperatorError

app = typer.Typer(help="mailpulse: the SendPulse SMTP API, self-hosted.", no_args_is_help=True)
app.command("migrate")(server.migrate_command)
app.command()(server.serve)
app.command()(server.api)
app.command()(server.worker)
app.command()(server.bounces)
app.command()(demo)
app.add_typer(account_app, name="account")
app.add_typer(sender_app, name="sender")
app.add_typer(key_app, name="key")


def main() -> None:
    """Run the command line; turn every operator's mistake into one line and an exit status."""
    try:
        app()
    except OperatorError as exc:
        prefix = "configuration error: " if isinstance(exc, ConfigError) else ""
        fail(f"{prefix}{exc}", exc.exit_status)
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as exc:
        debug = os.environ.get("MAILPULSE_LOG_LEVEL", "").lower() in ("debug", "trace")
        if debug:
            traceback.print_exc()
        hint = "" if debug else " (MAILPULSE_LOG_LEVEL=debug shows the traceback)"
        first = (str(exc).strip().splitlines() or [""])[0]
        fail(f"unexpected error: {type(exc).__name__}: {first}{hint}", 1)
