"""An operator's mistake costs one readable line on stderr and a non-zero exit status, for
every command: the real CLI in a subprocess, as an operator runs it."""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.ops.cli import Outcome, clean_env, closed_port, run
from tests.support.databases import PG_SKIP_REASON, pg_base_url

COMMANDS = [
    ("serve",),
    ("api",),
    ("worker",),
    ("migrate",),
    ("account", "create", "--name", "acme"),
]
EXIT_CONFIG, EXIT_UNAVAILABLE = 78, 69


def assert_one_line(outcome_lines: list[str], *fragments: str) -> None:
    assert len(outcome_lines) == 1, outcome_lines
    line = outcome_lines[0]
    assert line.startswith("mailpulse: ")
    assert "Traceback" not in line
    for fragment in fragments:
        assert fragment in line, line


def run_every_command(tmp_path: Path, env: dict[str, str]) -> dict[tuple[str, ...], Outcome]:
    """Each command, run at once (they are independent processes; this keeps the test short)."""
    with ThreadPoolExecutor(max_workers=4) as pool:
        outcomes = pool.map(lambda command: run(tmp_path, env, *command), COMMANDS)
        return dict(zip(COMMANDS, outcomes, strict=True))


def test_a_malformed_value_is_one_line_naming_the_setting_for_every_command(
    tmp_path: Path,
) -> None:
    outcomes = run_every_command(tmp_path, clean_env(tmp_path, http_port="abc"))
    for command, outcome in outcomes.items():
        assert outcome.status == EXIT_CONFIG, command
        assert_one_line(outcome.lines, "MAILPULSE_HTTP_PORT", "valid integer", "'abc'")


def test_an_unreachable_postgresql_is_one_line_for_every_command(tmp_path: Path) -> None:
    url = f"postgresql://mailpulse:hunter2@127.0.0.1:{closed_port()}/mailpulse"
    outcomes = run_every_command(tmp_path, clean_env(tmp_path, database_url=url))
    for command, outcome in outcomes.items():
        assert outcome.status == EXIT_UNAVAILABLE, command
        assert_one_line(outcome.lines, "cannot use the database", "127.0.0.1", "refused")
        assert "hunter2" not in outcome.stderr
        assert "mailpulse:***@127.0.0.1" in outcome.stderr


@pytest.mark.parametrize(
    ("settings", "fragments"),
    [
        ({"dns_nameservers": "notjson"}, ["MAILPULSE_DNS_NAMESERVERS", "not valid JSON"]),
        ({"database_url": "garbage"}, ["MAILPULSE_DATABASE_URL", "not a database URL"]),
    ],
)
def test_a_wrong_setting_is_one_line_naming_it(
    tmp_path: Path, settings: dict[str, str], fragments: list[str]
) -> None:
    outcome = run(tmp_path, clean_env(tmp_path, **settings), "serve")
    assert outcome.status == EXIT_CONFIG
    assert_one_line(outcome.lines, "configuration error", *fragments)


@pytest.mark.skipif(pg_base_url() is None, reason=PG_SKIP_REASON)
def test_a_missing_postgresql_database_is_one_line(tmp_path: Path) -> None:
    base = pg_base_url()
    assert base is not None
    url = re.sub(r"/[^/?]*(\?.*)?$", "/does_not_exist", base)
    outcome = run(tmp_path, clean_env(tmp_path, database_url=url), "serve")
    assert outcome.status == EXIT_UNAVAILABLE
    assert_one_line(outcome.lines, "cannot use the database", 'database "does_not_exist"')


def test_an_unknown_key_in_the_config_file_is_an_error(tmp_path: Path) -> None:
    config = tmp_path / "mailpulse.toml"
    config.write_text('http_port = 8001\nrealy = "smtp://relay.example"\n')
    outcome = run(tmp_path, clean_env(tmp_path, config=str(config)), "migrate")
    assert outcome.status == EXIT_CONFIG
    assert_one_line(outcome.lines, "unknown setting 'realy'", str(config), "did you mean relay?")


def test_the_default_config_file_is_checked_too(tmp_path: Path) -> None:
    (tmp_path / "mailpulse.toml").write_text("http_port = 'abc'\n")
    outcome = run(tmp_path, clean_env(tmp_path), "migrate")
    assert outcome.status == EXIT_CONFIG
    assert_one_line(outcome.lines, "http_port in mailpulse.toml", "valid integer")


def test_a_malformed_config_file_is_one_line(tmp_path: Path) -> None:
    config = tmp_path / "mailpulse.toml"
    config.write_text("http_port = \n")
    outcome = run(tmp_path, clean_env(tmp_path, config=str(config)), "migrate")
    assert outcome.status == EXIT_CONFIG
    assert_one_line(outcome.lines, str(config), "not valid TOML")


def test_a_missing_config_file_is_one_line(tmp_path: Path) -> None:
    outcome = run(tmp_path, clean_env(tmp_path, config=str(tmp_path / "nope.toml")), "migrate")
    assert outcome.status == EXIT_CONFIG
    assert_one_line(outcome.lines, "nope.toml", "does not exist")


def test_an_unknown_environment_variable_is_one_warning_not_an_error(tmp_path: Path) -> None:
    outcome = run(tmp_path, clean_env(tmp_path, http_prot="8001"), "migrate")
    assert outcome.status == 0
    assert_one_line(
        outcome.lines, "warning", "MAILPULSE_HTTP_PROT", "did you mean MAILPULSE_HTTP_PORT?"
    )


def test_an_unusable_sqlite_path_is_one_line(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    url = f"sqlite:///{blocker / 'mailpulse.db'}"
    outcome = run(tmp_path, clean_env(tmp_path, database_url=url), "migrate")
    assert outcome.status == EXIT_UNAVAILABLE
    assert_one_line(outcome.lines, "cannot use the database", str(blocker))


def test_a_good_configuration_passes(tmp_path: Path) -> None:
    config = tmp_path / "mailpulse.toml"
    config.write_text('relay = "smtp://relay.example:2525"\ndns_nameservers = ["127.0.0.1"]\n')
    outcome = run(tmp_path, clean_env(tmp_path, config=str(config)), "migrate")
    assert outcome.status == 0, outcome.stderr
    assert outcome.lines == []
