"""Who holds a claim on the queue, and whether that process still lives.

A lease owner reads ``host:pid:start:token``: the host name, the process id, the process's
start time (Linux ``/proc/<pid>/stat``, in clock ticks since boot; "" elsewhere) and a random
token. A worker starting on a host looks at the claims held by owners of the same host and
frees those whose process is gone — or whose pid now belongs to a process that started at
another time — so that mail a killed server had claimed is sent again within seconds of the
restart instead of when the lease runs out. Claims of other hosts are never judged from here:
they come back when their (short, renewed while alive) leases run out.

Host names must therefore be unique among the workers sharing one database (they are, for
machines, containers and pods by default).
"""

from __future__ import annotations

import hashlib
import os
import socket
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from mailpulse.core.ids import new_token

HOST_CHARS: Final = 30


@dataclass(frozen=True, slots=True)
class Owner:
    host: str
    pid: int
    start: str


def host_label(hostname: str | None = None) -> str:
    """This host's name as it appears in lease owners (at most 30 characters, no colons)."""
    name = (hostname if hostname is not None else socket.gethostname()).replace(":", "_")
    if len(name) <= HOST_CHARS:
        return name
    digest = hashlib.sha1(name.encode(), usedforsecurity=False).hexdigest()[:8]
    return f"{name[: HOST_CHARS - 9]}~{digest}"


def _stat(pid: int) -> tuple[str, str] | None:
    """Process ``pid``'s state letter and start time (clock ticks since boot), if known."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as handle:
            stat = handle.read()
    except OSError:
        return None
    # the command name (field 2) is in parentheses and may hold spaces: split after it
    fields = stat[stat.rfind(")") + 2 :].split()
    return (fields[0], fields[19]) if len(fields) > 19 else None


def process_start(pid: int) -> str:
    """When process ``pid`` started (clock ticks since boot), or "" when that is unknown."""
    stat = _stat(pid)
    return stat[1] if stat else ""


def new_owner(host: str | None = None, pid: int | None = None) -> str:
    pid = os.getpid() if pid is None else pid
    return f"{host_label(host)}:{pid}:{process_start(pid)}:{new_token(6)}"


def parse_owner(owner: str) -> Owner | None:
    parts = owner.split(":")
    if len(parts) != 4 or not parts[1].isdigit():
        return None
    return Owner(parts[0], int(parts[1]), parts[2])


def process_alive(pid: int, start: str) -> bool:
    """True while process ``pid`` exists and (when known) is the one that started at ``start``."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # it exists, under another user
    stat = _stat(pid)
    if stat is None:
        return True  # no /proc: the pid exists, and that is all we can tell
    state, started = stat
    return state not in ("Z", "X") and (not start or started == start)


def dead_here(
    owner: str,
    host: str,
    alive: Callable[[int, str], bool] = process_alive,
) -> bool:
    """True when ``owner`` is a process of ``host`` (this host) that no longer runs."""
    parsed = parse_owner(owner)
    if parsed is None or parsed.host != host:
        return False
    return not alive(parsed.pid, parsed.start)
