"""The account commands that cut off access, and the checks on a new account, in-process
against a real SQLite file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from mailpulse.cli import app
from mailpulse.core.auth import verify_secret
from mailpulse.store import accounts
from mailpulse.store.db import Database


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("MAILPULSE_DATABASE_URL", f"sqlite:///{tmp_path / 'cli.db'}")
    monkeypatch.setenv("MAILPULSE_DATA_DIR", str(tmp_path / "var"))
    monkeypatch.delenv("MAILPULSE_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def invoke(*args: str) -> Result:
    return CliRunner().invoke(app, list(args))


def run(*args: str) -> str:
    result = invoke(*args)
    assert result.exit_code == 0, result.output
    return result.output


def one_line_failure(result: Result) -> str:
    assert result.exit_code != 0
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    assert lines[0].startswith("mailpulse: "), lines[0]
    return lines[0].removeprefix("mailpulse: ")


def test_a_taken_account_name_is_refused_in_one_line(env: Path) -> None:
    run("account", "create", "--name", "acme")
    line = one_line_failure(invoke("account", "create", "--name", "acme", "--email", "a@b.io"))
    assert line == "an account named 'acme' exists already: choose another name"
    assert [a["name"] for a in json.loads(run("account", "list", "--json"))] == ["acme"]


@pytest.mark.parametrize("email", ["not-an-address", "a@", "two@at@signs.example", "a b@c.io"])
def test_a_bad_owner_email_is_refused_in_one_line(env: Path, email: str) -> None:
    line = one_line_failure(invoke("account", "create", "--name", "acme", "--email", email))
    assert line == f"not an email address: {email!r}"


def test_the_owner_email_is_stored_normalised(env: Path) -> None:
    run("account", "create", "--name", "acme", "--email", "Ops@ACME.Example")
    database = Database(f"sqlite:///{env / 'cli.db'}")
    found = database.read_sync(lambda conn: accounts.find_account(conn, "acme"))
    assert found is not None and found.email == "Ops@acme.example"


@pytest.mark.parametrize("name", ["", "   ", "12", "x" * 201, "tab\tname"])
def test_unusable_account_names_are_refused(env: Path, name: str) -> None:
    assert one_line_failure(invoke("account", "create", "--name", name)).startswith(
        "not an account name"
    )


def test_disable_and_enable_show_in_the_list(env: Path) -> None:
    run("account", "create", "--name", "acme")
    assert "within 2 s" in run("account", "disable", "acme")
    assert json.loads(run("account", "list", "--json"))[0]["status"] == "disabled"
    run("account", "enable", "acme")
    assert json.loads(run("account", "list", "--json"))[0]["status"] == "active"


def test_rotate_secret_prints_a_new_secret_stored_only_hashed(env: Path) -> None:
    created = json.loads(run("account", "create", "--name", "acme", "--json"))
    rotated = json.loads(run("account", "rotate-secret", "acme", "--json"))
    database = Database(f"sqlite:///{env / 'cli.db'}")
    stored = database.read_sync(lambda c: accounts.credentials_for(c, created["client_id"]))
    assert stored is not None
    assert rotated["client_id"] == created["client_id"]
    assert verify_secret(stored.secret_hash, rotated["client_secret"])
    assert not verify_secret(stored.secret_hash, created["client_secret"])
    assert rotated["client_secret"] not in stored.secret_hash
    assert stored.state.generation == 1


@pytest.mark.parametrize(
    "command", ["disable", "enable", "rotate-secret", "revoke-tokens", "activate"]
)
def test_commands_on_an_unknown_account_fail_in_one_line(env: Path, command: str) -> None:
    assert one_line_failure(invoke("account", command, "nobody")) == "no account 'nobody'"


def test_demo_recovers_when_its_credentials_file_is_lost(env: Path) -> None:
    run("demo")
    (env / "var" / "demo-credentials.json").unlink()
    run("demo")
    creds = json.loads((env / "var" / "demo-credentials.json").read_text())
    database = Database(f"sqlite:///{env / 'cli.db'}")
    stored = database.read_sync(lambda c: accounts.credentials_for(c, creds["client_id"]))
    assert stored is not None and verify_secret(stored.secret_hash, creds["client_secret"])
    assert [a["name"] for a in json.loads(run("account", "list", "--json"))] == ["demo"]
