"""What an operator can fix: failures that end a command with one line and an exit status.

Each kind lives beside the code that detects it (a wrong setting in config.py, a database that
cannot be used in store/engine.py, a server that could not start in serving.py); the command line
catches this base class once, prints the message and exits with the status. The statuses follow
sysexits where one fits, so a service manager can tell "fix the configuration" (78: restarting
will not help) from "the database is down" (69: restarting later may).
"""

from __future__ import annotations


class OperatorError(Exception):
    """A failure the operator can fix; ``str()`` is the one line they see."""

    exit_status = 1
