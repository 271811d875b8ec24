"""What each kind of wrong setting says: one line naming the setting, where it came from and
what is wrong, never a secret. (In-process; test_operator_errors.py runs the real CLI.)"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from mailpulse.config import ConfigError, load_settings, unknown_variable_warnings


@pytest.fixture(autouse=True)
def clean(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in list(os.environ):
        if name.upper().startswith("MAILPULSE_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


@pytest.mark.parametrize(
    ("variable", "value", "fragments"),
    [
        ("HTTP_PORT", "abc", ["valid integer", "(got 'abc')"]),
        ("HTTP_PORT", "70000", ["less than or equal to 65535"]),
        ("DNS_NAMESERVERS", "notjson", ["not valid JSON", '["127.0.0.1"]']),
        ("DNS_NAMESERVERS", '["ns1"]', ["'ns1' is not an IP address"]),
        ("SOURCE_ADDRESSES", '["10.0.0.300"]', ["'10.0.0.300' is not an IP address"]),
        ("DATABASE_URL", "garbage", ["not a database URL"]),
        ("DATABASE_URL", "mysql://u:hunter2@db/x", ["unsupported database 'mysql'", "u:***@db"]),
        ("SQLITE_SYNCHRONOUS", "sometimes", ["FULL, NORMAL or EXTRA"]),
        ("PROCESSES", "-1", ["greater than or equal to 0"]),
        ("RELAY", "smtp://u:hunter2@relay:port", ["port is not a number", "u:***@relay"]),
        ("RELAY", "http://relay", ["smtp://[user:pass@]host:port"]),
        ("LOG_LEVEL", "loud", ["one of critical, error, warning, info, debug, trace"]),
        ("ACCESS_LOG", "perhaps", ["valid boolean"]),
        ("SECRET_KEY", '{"a": 1}', []),
    ],
)
def test_a_wrong_environment_variable_is_named_with_what_is_wrong(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, fragments: list[str]
) -> None:
    monkeypatch.setenv(f"MAILPULSE_{variable}", value)
    if variable == "SECRET_KEY":  # any string is a key: nothing to refuse
        assert load_settings().secret_key == value
        return
    with pytest.raises(ConfigError) as caught:
        load_settings()
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"MAILPULSE_{variable}: ")
    for fragment in fragments:
        assert fragment in message
    assert "hunter2" not in message


def test_a_wrong_value_in_the_file_names_the_key_and_the_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    config = tmp_path / "settings.toml"
    config.write_text('mx_port = "twenty-five"\n')
    monkeypatch.setenv("MAILPULSE_CONFIG", str(config))
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert str(caught.value).startswith(f"mx_port in {config}: Input should be a valid int")


def test_the_environment_wins_over_the_file_and_is_named_when_wrong(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    config = tmp_path / "settings.toml"
    config.write_text("mx_port = 2525\n")
    monkeypatch.setenv("MAILPULSE_CONFIG", str(config))
    assert load_settings().mx_port == 2525
    monkeypatch.setenv("MAILPULSE_MX_PORT", "0")
    with pytest.raises(ConfigError, match=r"^MAILPULSE_MX_PORT: "):
        load_settings()


def test_several_wrong_settings_are_all_named_on_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAILPULSE_HTTP_PORT", "abc")
    monkeypatch.setenv("MAILPULSE_MX_PORT", "abc")
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert "MAILPULSE_HTTP_PORT" in str(caught.value)
    assert "MAILPULSE_MX_PORT" in str(caught.value)
    assert "\n" not in str(caught.value)


def test_unknown_variables_are_warned_about_except_the_ones_that_are_not_settings() -> None:
    environ = {
        "MAILPULSE_HTTP_PROT": "1",
        "MAILPULSE_HTTP_PORT": "1",
        "MAILPULSE_CONFIG": "x.toml",
        "MAILPULSE_TEST_DATABASE_URL": "postgresql://",
        "MAILPULSE_INTERNAL_DELIVER": "1",
        "OTHER_THING": "1",
    }
    assert unknown_variable_warnings(environ) == [
        "MAILPULSE_HTTP_PROT is not a setting and is ignored (did you mean MAILPULSE_HTTP_PORT?)"
    ]
