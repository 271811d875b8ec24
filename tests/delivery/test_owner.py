"""Lease owners name host, process and its start, so a restart can recognise dead claims."""

from __future__ import annotations

import os
import subprocess
import sys

from mailpulse.delivery.owner import (
    dead_here,
    host_label,
    new_owner,
    parse_owner,
    process_alive,
    process_start,
)


def test_an_owner_names_this_host_this_process_and_its_start() -> None:
    owner = new_owner()
    parsed = parse_owner(owner)
    assert parsed is not None
    assert (parsed.host, parsed.pid, parsed.start) == (
        host_label(),
        os.getpid(),
        process_start(os.getpid()),
    )
    assert len(owner) <= 64
    assert owner != new_owner()  # a random token tells two workers of one process apart


def test_long_host_names_are_shortened_without_colliding() -> None:
    a = host_label("worker-" + "x" * 60 + ".a.example.net")
    b = host_label("worker-" + "x" * 60 + ".b.example.net")
    assert len(a) == len(b) == 30 and a != b
    assert host_label("db:1") == "db_1"


def test_only_dead_processes_of_this_host_are_dead_here() -> None:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    gone = f"{host_label()}:{child.pid}:{process_start(os.getpid())}:tok"
    me = f"{host_label()}:{os.getpid()}:{process_start(os.getpid())}:tok"
    assert dead_here(gone, host_label())
    assert not dead_here(me, host_label())
    assert not dead_here(gone.replace(host_label(), "elsewhere", 1), host_label())
    assert not dead_here("doomed-worker", host_label())  # not an owner we can judge


def test_a_reused_pid_is_a_different_process() -> None:
    start = process_start(os.getpid())
    assert process_alive(os.getpid(), start)
    if start:  # /proc is there: a pid with another start time is another process
        assert not process_alive(os.getpid(), str(int(start) + 1))
