"""Start-up: a server that cannot start exits non-zero whatever the number of processes (so a
service manager restarts it or reports it), and one that can says what it runs on."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from mailpulse.config import Settings
from mailpulse.serving import startup_lines
from tests.ops.cli import FAILING_CHILD, Outcome, clean_env, free_port, run

STARTUP_FAILURE = 3


def failing_children_env(tmp_path: Path, mode: str) -> dict[str, str]:
    env = clean_env(tmp_path, processes="2", http_port=str(free_port()))
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(FAILING_CHILD), env.get("PYTHONPATH")]))
    env["MAILPULSE_TEST_FAIL_CHILD"] = mode
    return env


def test_serve_exits_non_zero_when_its_processes_cannot_build_the_app(tmp_path: Path) -> None:
    # uvicorn's own supervisor restarted such processes forever (the timeout would fire)
    outcome = run(tmp_path, failing_children_env(tmp_path, "app"), "serve", timeout=90)
    assert outcome.status == STARTUP_FAILURE
    assert "failed to start" in outcome.lines[-1]
    assert outcome.lines[-1].startswith("mailpulse: server process ")


def test_serve_exits_non_zero_when_its_processes_fail_at_start_up(tmp_path: Path) -> None:
    # uvicorn's own supervisor stopped, then returned normally: exit status 0
    outcome = run(tmp_path, failing_children_env(tmp_path, "lifespan"), "serve", timeout=90)
    assert outcome.status == STARTUP_FAILURE
    assert outcome.lines[-1].startswith("mailpulse: server process ")


def test_serve_exits_non_zero_when_the_port_is_taken(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        for processes in ("1", "2"):
            env = clean_env(tmp_path, processes=processes, http_port=port)
            outcome = run(tmp_path, env, "serve", timeout=90)
            assert outcome.status != 0, processes
            assert "address already in use" in outcome.stderr.lower()


def test_serve_exits_non_zero_when_the_database_is_unreachable(tmp_path: Path) -> None:
    url = f"postgresql://postgres@127.0.0.1:{free_port()}/mailpulse"
    outcome = run(tmp_path, clean_env(tmp_path, processes="2", database_url=url), "serve")
    assert outcome.status == 69
    assert len(outcome.lines) == 1


def serve_until_healthy(
    tmp_path: Path, env: dict[str, str], command: str = "serve"
) -> subprocess.Popen[str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "mailpulse", command],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,  # uvicorn's access log
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # so a failure can kill the server processes too
    )
    url = f"http://127.0.0.1:{env['MAILPULSE_HTTP_PORT']}/health"
    deadline = time.monotonic() + 60  # only to detect a hang
    while True:
        try:
            httpx.get(url, timeout=1)
            return process
        except httpx.HTTPError:
            if time.monotonic() > deadline or process.poll() is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                raise AssertionError(f"server did not start: {process.communicate()[1]}") from None
            time.sleep(0.2)


def stop(process: subprocess.Popen[str]) -> Outcome:
    """SIGTERM, as a service manager stops it. A single uvicorn process shuts down cleanly and
    then re-raises the signal (status -SIGTERM); the supervisor of several exits 0."""
    process.send_signal(signal.SIGTERM)
    try:
        stdout, stderr = process.communicate(timeout=60)  # only to detect a hang
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        raise
    return Outcome(process.returncode, stdout or "", stderr)


def test_serve_says_which_database_delivery_processes_and_address(tmp_path: Path) -> None:
    port = str(free_port())
    env = clean_env(
        tmp_path,
        processes="2",
        http_port=port,
        log_level="info",
        relay="smtp://mailer:hunter2@127.0.0.1:2525",
    )
    outcome = stop(serve_until_healthy(tmp_path, env))
    assert outcome.status == 0  # a clean stop is still a success
    lines = [line.split(None, 1)[1] for line in outcome.lines if line.startswith("INFO:")]
    assert f"database: sqlite:///{tmp_path / 'var' / 'mailpulse.db'}" in lines
    assert "delivery: through the relay smtp://127.0.0.1:2525" in lines
    assert "processes: 2 server processes, each running the HTTP API and a delivery worker" in lines
    assert f"serving: http://127.0.0.1:{port} (access log off)" in lines
    assert "hunter2" not in outcome.stderr and "mailer" not in outcome.stderr
    assert "GET /health" not in outcome.stdout + outcome.stderr


def test_the_access_log_can_be_switched_on(tmp_path: Path) -> None:
    port = str(free_port())
    env = clean_env(tmp_path, processes="1", http_port=port, log_level="info", access_log="true")
    process = serve_until_healthy(tmp_path, env, "api")
    httpx.get(f"http://127.0.0.1:{port}/smtp/emails")
    outcome = stop(process)
    assert outcome.status in (0, -signal.SIGTERM)
    assert f"serving: http://127.0.0.1:{port} (access log on)" in outcome.stderr
    assert '"GET /health HTTP/1.1" 200' in outcome.stdout
    assert '"GET /smtp/emails HTTP/1.1" 401' in outcome.stdout


def test_the_worker_says_what_it_runs_on(tmp_path: Path) -> None:
    env = clean_env(tmp_path, log_level="info", mx_port="2525")
    log = tmp_path / "worker.log"
    with log.open("w") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "mailpulse", "worker"],
            env=env,
            cwd=tmp_path,
            stderr=stderr,
            text=True,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 60  # only to detect a hang
        while "processes:" not in log.read_text():
            assert process.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    text = log.read_text()
    assert process.returncode == 0, text
    assert "database: sqlite:///" in text
    assert "delivery: direct to each recipient domain's MX hosts (port 2525)" in text
    assert "processes: 1 delivery worker, up to 50 SMTP sessions" in text


def test_the_database_line_hides_the_password() -> None:
    settings = Settings(database_url="postgresql://mp:hunter2@db.internal:5432/mailpulse")
    lines = startup_lines(settings, http=True, deliver=False)
    assert lines[0] == "database: postgresql://mp:***@db.internal:5432/mailpulse"
    assert not any("delivery" in line for line in lines)
    assert "hunter2" not in " ".join(lines)
