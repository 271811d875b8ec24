"""The command line, run in-process against a real SQLite file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mailpulse.cli import app
from mailpulse.config import load_settings
from mailpulse.core.auth import hash_api_key, verify_secret
from mailpulse.store import accounts
from mailpulse.store.db import Database


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("MAILPULSE_DATABASE_URL", f"sqlite:///{tmp_path / 'cli.db'}")
    monkeypatch.setenv("MAILPULSE_DATA_DIR", str(tmp_path / "var"))
    monkeypatch.delenv("MAILPULSE_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def run(*args: str) -> str:
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def db(env: Path) -> Database:
    return Database(f"sqlite:///{env / 'cli.db'}")


def test_account_create_prints_a_secret_that_is_stored_only_hashed(env: Path) -> None:
    created = json.loads(run("account", "create", "--name", "acme", "--json"))
    database = db(env)
    stored = database.read_sync(lambda c: accounts.secret_hash_for(c, created["client_id"]))
    assert stored is not None and stored[1] != created["client_secret"]
    assert verify_secret(stored[1], created["client_secret"])
    listed = json.loads(run("account", "list", "--json"))
    assert [a["name"] for a in listed] == ["acme"]
    assert "client_secret" not in listed[0]


def test_account_activate_and_deactivate(env: Path) -> None:
    created = json.loads(run("account", "create", "--name", "acme", "--no-activate", "--json"))
    assert created["smtp_activated"] is False
    run("account", "activate", "acme")
    assert json.loads(run("account", "list", "--json"))[0]["smtp_activated"] is True
    run("account", "activate", str(created["id"]), "--off")
    assert json.loads(run("account", "list", "--json"))[0]["smtp_activated"] is False


def test_sender_add_and_list(env: Path) -> None:
    run("account", "create", "--name", "acme")
    run("sender", "add", "acme", "News@Acme.Example", "--name", "News")
    senders = json.loads(run("sender", "list", "acme", "--json"))
    assert senders == [{"email": "news@acme.example", "name": "News", "status": "active"}]
    bad = CliRunner().invoke(app, ["sender", "add", "acme", "not-an-address"])
    assert bad.exit_code == 2


def test_key_create_and_revoke(env: Path) -> None:
    account = json.loads(run("account", "create", "--name", "acme", "--json"))
    key = json.loads(run("key", "create", "acme", "--name", "ci", "--json"))
    database = db(env)
    found = database.read_sync(lambda c: accounts.account_for_key(c, hash_api_key(key["key"])))
    assert found == account["id"]
    run("key", "revoke", str(key["id"]))
    assert (
        database.read_sync(lambda c: accounts.account_for_key(c, hash_api_key(key["key"]))) is None
    )
    again = CliRunner().invoke(app, ["key", "revoke", str(key["id"])])
    assert again.exit_code == 2


def test_unknown_account_is_a_clear_error(env: Path) -> None:
    result = CliRunner().invoke(app, ["sender", "list", "nobody"])
    assert result.exit_code == 2
    assert "no account" in result.output


def test_demo_creates_the_account_once_and_prints_how_to_send(env: Path) -> None:
    first = run("demo")
    second = run("demo")
    creds = json.loads((env / "var" / "demo-credentials.json").read_text())
    assert creds["client_secret"] in first and creds["client_secret"] in second
    assert "curl" in first and "/smtp/emails" in first
    assert len(json.loads(run("account", "list", "--json"))) == 1
    assert (env / "var" / "demo-credentials.json").stat().st_mode & 0o077 == 0


def test_migrate_reports_the_revision(env: Path) -> None:
    from mailpulse.store.migrate import head_revision

    assert f"database at revision {head_revision()}" in run("migrate")


def test_settings_come_from_a_toml_file_and_the_environment_wins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "mailpulse.toml"
    config.write_text('max_recipients = 7\nhttp_port = 9000\nrelay = "smtp://relay.example:2525"\n')
    monkeypatch.setenv("MAILPULSE_CONFIG", str(config))
    monkeypatch.setenv("MAILPULSE_HTTP_PORT", "9100")
    settings = load_settings()
    assert settings.max_recipients == 7
    assert settings.relay == "smtp://relay.example:2525"
    assert settings.http_port == 9100


# -- the one top-level handler ---------------------------------------------------------------------
def _main_with(monkeypatch: pytest.MonkeyPatch, error: BaseException) -> int:
    from mailpulse import cli

    def failing() -> None:
        raise error

    monkeypatch.setattr(cli, "app", failing)
    with pytest.raises(SystemExit) as exited:
        cli.main()
    return int(exited.value.code or 0)


def test_an_operator_error_is_one_line_with_its_exit_status(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from mailpulse.config import ConfigError
    from mailpulse.store.engine import DatabaseUnavailable

    assert _main_with(monkeypatch, ConfigError("MAILPULSE_X: wrong")) == 78
    assert capsys.readouterr().err == "mailpulse: configuration error: MAILPULSE_X: wrong\n"
    assert _main_with(monkeypatch, DatabaseUnavailable("cannot use the database x")) == 69
    assert capsys.readouterr().err == "mailpulse: cannot use the database x\n"


def test_an_unexpected_error_is_one_line_unless_debugging(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("MAILPULSE_LOG_LEVEL", raising=False)
    assert _main_with(monkeypatch, RuntimeError("boom\nmore detail")) == 1
    err = capsys.readouterr().err
    assert err.splitlines() == [
        "mailpulse: unexpected error: RuntimeError: boom"
        " (MAILPULSE_LOG_LEVEL=debug shows the traceback)"
    ]
    monkeypatch.setenv("MAILPULSE_LOG_LEVEL", "debug")
    assert _main_with(monkeypatch, RuntimeError("boom")) == 1
    err = capsys.readouterr().err
    assert "Traceback (most recent call last)" in err
    assert err.splitlines()[-1] == "mailpulse: unexpected error: RuntimeError: boom"
