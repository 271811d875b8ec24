"""Running the real ``mailpulse`` command in a subprocess, as an operator would."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

FAILING_CHILD = Path(__file__).parent / "failing_child"


@dataclass
class Outcome:
    status: int
    stdout: str
    stderr: str

    @property
    def lines(self) -> list[str]:
        return [line for line in self.stderr.splitlines() if line.strip()]


def clean_env(workdir: Path, **settings: str) -> dict[str, str]:
    """The test process's environment without any MAILPULSE_* variable, plus ``settings``
    (names without the prefix) and a database and data directory under ``workdir``."""
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("MAILPULSE_")}
    env["MAILPULSE_DATABASE_URL"] = f"sqlite:///{workdir / 'var' / 'mailpulse.db'}"
    env["MAILPULSE_DATA_DIR"] = str(workdir / "var")
    env["MAILPULSE_LOG_LEVEL"] = "warning"
    # `serve` runs the bounce receiver: never on the default port, which another run may hold
    env["MAILPULSE_BOUNCE_PORT"] = str(free_port())
    env.update({f"MAILPULSE_{k.upper()}": v for k, v in settings.items()})
    return env


class Hung(AssertionError):
    """The command neither finished nor failed (uvicorn's supervisor used to restart a
    process that failed to start forever)."""


def run(workdir: Path, env: dict[str, str], *args: str, timeout: float = 60) -> Outcome:
    """Run ``mailpulse *args``; the timeout only detects a hang, and then the whole process
    group (server processes included) is killed, so a hang fails the test instead of
    blocking it."""
    process = subprocess.Popen(
        [sys.executable, "-m", "mailpulse", *args],
        env=env,
        cwd=workdir,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        stdout, stderr = process.communicate()
        raise Hung(f"mailpulse {' '.join(args)} hung; it said: {stderr[-2000:]}") from None
    return Outcome(process.returncode, stdout, stderr)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def closed_port() -> int:
    """A loopback port nobody listens on (bound and released: nothing else takes it that fast
    on a test machine)."""
    return free_port()
