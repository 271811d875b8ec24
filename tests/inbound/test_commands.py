"""The bounce receiver as an operator runs it: beside the API and the workers in `serve` (one
receiver however many processes), alone with `mailpulse bounces`; each says where it listens."""

from __future__ import annotations

import os
import signal
import smtplib
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.ops.cli import clean_env, free_port, run
from tests.ops.test_startup import serve_until_healthy, stop

DOMAIN = "bounces.example.test"


def refuses_a_stranger(port: int) -> bool:
    """The receiver answers on ``port`` and refuses an address it does not have."""
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as smtp:
        smtp.ehlo()
        smtp.mail("")
        code, _ = smtp.rcpt(f"postmaster@{DOMAIN}")
        return code == 550


@pytest.mark.parametrize("processes", ["1", "2"])
def test_serve_runs_one_bounce_receiver_and_says_where(tmp_path: Path, processes: str) -> None:
    bounce_port = free_port()
    env = clean_env(
        tmp_path,
        processes=processes,
        http_port=str(free_port()),
        bounce_port=str(bounce_port),
        bounce_domain=DOMAIN,
        log_level="info",
    )
    process = serve_until_healthy(tmp_path, env)
    try:
        deadline = time.monotonic() + 30  # only to detect a hang
        while True:
            try:
                assert refuses_a_stranger(bounce_port)
                break
            except OSError:
                assert time.monotonic() < deadline, "the bounce receiver did not listen"
                time.sleep(0.2)
    finally:
        outcome = stop(process)
    lines = [line.split(None, 1)[1] for line in outcome.lines if line.startswith("INFO:")]
    where = f"smtp://127.0.0.1:{bounce_port}"
    assert f"bounces: {where} receives reports for {DOMAIN} (point its MX here, port 25)" in lines
    assert f"return path: bounce+<token>@{DOMAIN} (VERP)" in lines
    listening = [line for line in lines if line.startswith("bounce receiver: listening on")]
    assert listening == [f"bounce receiver: listening on {where} for {DOMAIN}"]


def test_serve_does_not_start_when_the_bounce_port_is_taken(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        env = clean_env(tmp_path, processes="2", http_port=str(free_port()), bounce_port=port)
        outcome = run(tmp_path, env, "serve", timeout=90)
    assert outcome.status == 3
    assert outcome.lines[-1] == (
        f"mailpulse: the bounce receiver cannot listen on smtp://127.0.0.1:{port}: "
        "Address already in use"
    )


def test_serve_can_leave_the_receiver_out(tmp_path: Path) -> None:
    bounce_port = free_port()
    env = clean_env(
        tmp_path,
        processes="1",
        http_port=str(free_port()),
        bounce_port=str(bounce_port),
        bounce_receiver="false",
        log_level="info",
    )
    outcome = stop(serve_until_healthy(tmp_path, env))
    assert "bounce receiver: listening" not in outcome.stderr
    with pytest.raises(OSError):
        refuses_a_stranger(bounce_port)


def test_the_bounces_command_runs_the_receiver_alone(tmp_path: Path) -> None:
    port = free_port()
    env = clean_env(tmp_path, bounce_domain=DOMAIN, log_level="info")
    log = tmp_path / "bounces.log"
    with log.open("w") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "mailpulse", "bounces", "--port", str(port)],
            env=env,
            cwd=tmp_path,
            stderr=stderr,
            text=True,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 60  # only to detect a hang
        while "listening on" not in log.read_text():
            assert process.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)
        assert refuses_a_stranger(port)
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    text = log.read_text()
    assert process.returncode == 0, text
    assert f"bounces: smtp://127.0.0.1:{port} receives reports for {DOMAIN}" in text
    assert f"bounce receiver: listening on smtp://127.0.0.1:{port} for {DOMAIN}" in text
