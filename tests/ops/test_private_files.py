"""The database, its -wal and -shm files, the data directory, the signing key and the demo
credentials are the service user's alone (0600 / 0700) whatever the umask, and processes that
start at once agree on one signing key."""

from __future__ import annotations

import json
import multiprocessing
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from mailpulse.config import Settings
from mailpulse.store.db import Database
from tests.ops.cli import clean_env, run

# Opens the database the way the server does and, while its connection is open (so the -wal
# and -shm files exist), reports the mode of every file it and the signing key left behind.
PROBE = """
import json, os, stat, sys
from pathlib import Path
from mailpulse.config import Settings
from mailpulse.store.db import Database
work = Path(sys.argv[1])
settings = Settings(database_url=f"sqlite:///{work / 'var' / 'mailpulse.db'}",
                    data_dir=work / 'var')
settings.resolved_secret_key()
db = Database(settings.database_url)
with db.engine.connect() as conn:
    conn.exec_driver_sql("CREATE TABLE probe (x INTEGER)")
    conn.exec_driver_sql("INSERT INTO probe VALUES (1)")
    conn.commit()
    found = {p.name: oct(stat.S_IMODE(p.stat().st_mode)) for p in (work / 'var').iterdir()}
    found["var"] = oct(stat.S_IMODE((work / 'var').stat().st_mode))
print(json.dumps(found))
"""


@pytest.mark.parametrize("umask", [0o022, 0o000])
def test_every_file_is_private_whatever_the_umask(tmp_path: Path, umask: int) -> None:
    env = clean_env(tmp_path)
    probe = subprocess.run(
        [sys.executable, "-c", PROBE, str(tmp_path)],
        env=env,
        umask=umask,
        capture_output=True,
        text=True,
        check=True,
    )
    modes = json.loads(probe.stdout)
    assert modes == {
        "var": "0o700",
        "secret.key": "0o600",
        "mailpulse.db": "0o600",
        "mailpulse.db-wal": "0o600",
        "mailpulse.db-shm": "0o600",
    }
    demo = subprocess.run(
        [sys.executable, "-m", "mailpulse", "demo"],
        env=env,
        cwd=tmp_path,
        umask=umask,
        capture_output=True,
        text=True,
    )
    assert demo.returncode == 0, demo.stderr
    for path, mode in [
        (tmp_path / "var", 0o700),
        (tmp_path / "var" / "demo-credentials.json", 0o600),
        (tmp_path / "var" / "mailpulse.db", 0o600),
        (tmp_path / "var" / "mailpulse.db.write-lock", 0o600),
    ]:
        if path.exists():
            assert stat.S_IMODE(path.stat().st_mode) == mode, path


def test_files_left_open_by_an_earlier_version_are_tightened(tmp_path: Path) -> None:
    var = tmp_path / "var"
    var.mkdir(mode=0o755)
    var.chmod(0o755)
    (var / "mailpulse.db").touch()
    (var / "mailpulse.db").chmod(0o644)
    (var / "secret.key").write_text("an-old-key")
    (var / "secret.key").chmod(0o644)
    outcome = run(tmp_path, clean_env(tmp_path), "migrate")
    assert outcome.status == 0, outcome.stderr
    assert Settings(data_dir=var).resolved_secret_key() == "an-old-key"
    assert stat.S_IMODE(var.stat().st_mode) == 0o700
    assert stat.S_IMODE((var / "mailpulse.db").stat().st_mode) == 0o600
    assert stat.S_IMODE((var / "secret.key").stat().st_mode) == 0o600


def test_a_database_in_a_new_directory_gets_a_private_directory(tmp_path: Path) -> None:
    Database(f"sqlite:///{tmp_path / 'new' / 'deeper' / 'mail.db'}").close_sync()
    assert stat.S_IMODE((tmp_path / "new" / "deeper").stat().st_mode) == 0o700
    assert stat.S_IMODE((tmp_path / "new" / "deeper" / "mail.db").stat().st_mode) == 0o600


def _key_after(barrier: multiprocessing.synchronize.Barrier, data_dir: str) -> str:
    barrier.wait()
    return Settings(data_dir=Path(data_dir)).resolved_secret_key()


def _race(
    barrier: multiprocessing.synchronize.Barrier,
    data_dir: str,
    results: multiprocessing.Queue[str],
) -> None:
    try:
        results.put(_key_after(barrier, data_dir))
    except Exception as exc:
        results.put(f"error: {exc!r}")


def test_processes_starting_at_once_agree_on_one_signing_key(tmp_path: Path) -> None:
    context = multiprocessing.get_context("fork")
    racers = 6
    for round_ in range(8):
        data_dir = tmp_path / f"round{round_}" / "var"
        barrier = context.Barrier(racers)
        results: multiprocessing.Queue[str] = context.Queue()
        processes = [
            context.Process(target=_race, args=(barrier, str(data_dir), results))
            for _ in range(racers)
        ]
        for process in processes:
            process.start()
        keys = [results.get(timeout=60) for _ in processes]
        for process in processes:
            process.join(timeout=60)
        assert len(set(keys)) == 1, keys
        assert keys[0] == (data_dir / "secret.key").read_text()
        assert len(keys[0]) >= 32
        assert sorted(p.name for p in data_dir.iterdir()) == ["secret.key"]  # no temp left
