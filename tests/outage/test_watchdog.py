"""A process whose delivery worker ended of a bug does not stay alive and idle: it says why on
one line and exits 70 (EX_SOFTWARE), so that its supervisor restarts it (issue 13: the worker
task had ended, the process kept serving and accepting mail nobody would deliver)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.outage.harness import STOP_SECONDS, environment, prepare_store, relay_sink, start

pytestmark = pytest.mark.outage

BROKEN = Path(__file__).parent / "broken_worker"


@pytest.mark.parametrize("command", ["worker", "serve"])
def test_a_process_whose_worker_died_of_a_bug_exits_70(tmp_path: Path, command: str) -> None:
    url = f"sqlite:///{tmp_path / 'mailpulse.db'}"
    prepare_store(url)
    with relay_sink() as sink:
        env = environment(url, tmp_path, sink.port, MAILPULSE_PROCESSES="1")
        env["MAILPULSE_TEST_BREAK_WORKER"] = "1"
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(BROKEN), env.get("PYTHONPATH")]))
        proc = start(command, env, tmp_path, wait=False)
        try:
            status = proc.popen.wait(timeout=STOP_SECONDS + 30)  # a hang detector
        except subprocess.TimeoutExpired:
            proc.kill()
            raise AssertionError(f"{command} stayed alive:\n{proc.text()}") from None
    assert status == 70, proc.text()
    assert "the delivery worker ended unexpectedly (RuntimeError: a bug in the claim loop)" in (
        proc.text()
    )
