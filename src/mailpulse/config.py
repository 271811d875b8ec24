"""One settings object, read from MAILPULSE_* environment variables and an optional TOML file.

The file is named by MAILPULSE_CONFIG (default ``./mailpulse.toml`` when it exists); environment
variables win over the file. Every setting is documented in the README.

An operator's mistake must cost one readable line, not a traceback: :func:`load_settings` turns
every way settings can be wrong (a malformed value, a key the file should not have, a missing or
broken file, a database URL we cannot use) into one :class:`ConfigError` that names the setting,
where it came from and what is wrong. Unknown keys in the file are errors (a typo there would
otherwise silently leave a default in force); unknown ``MAILPULSE_*`` environment variables only
earn a warning, since an environment carries many variables nobody checks.
"""

from __future__ import annotations

import difflib
import ipaddress
import json
import os
import re
import secrets
import socket
import sys
import tomllib
from pathlib import Path
from typing import Any, get_origin
from urllib.parse import urlsplit

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
    TomlConfigSettingsSource,
)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from mailpulse import files
from mailpulse.failures import OperatorError

ENV_PREFIX = "MAILPULSE_"
# MAILPULSE_* variables that are not settings: the config file's name, what a parent process
# tells its server processes, and the test suite's own.
_NOT_SETTINGS = re.compile(r"MAILPULSE_(CONFIG|INTERNAL_.*|TEST_.*)", re.IGNORECASE)
LOG_LEVELS = ("critical", "error", "warning", "info", "debug", "trace")


class ConfigError(OperatorError):
    """A setting is wrong; the message is the one line the operator sees."""

    exit_status = 78  # EX_CONFIG


def _config_file() -> Path | None:
    named = os.environ.get("MAILPULSE_CONFIG")
    if named:
        return Path(named)
    default = Path("mailpulse.toml")
    return default if default.exists() else None


_PUBLIC_URL = re.compile(r"https?://[!#-;=?-~]+")  # printable ASCII but space, '"', '<', '>'
_DOMAIN = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?\.?")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="forbid")

    # storage
    database_url: str = Field(
        default="sqlite:///var/mailpulse.db",
        description="SQLAlchemy URL: sqlite:///path or postgresql://user@host/db",
    )
    sqlite_synchronous: str = Field(
        default="FULL", description="SQLite PRAGMA synchronous: FULL (durable) or NORMAL"
    )
    data_dir: Path = Field(default=Path("var"), description="where secrets and demo files live")

    # HTTP API
    http_host: str = "127.0.0.1"
    http_port: int = Field(default=8000, ge=0, le=65535)
    public_url: str = Field(
        default="",
        description="base URL printed in examples and links, and of the List-Unsubscribe links "
        "in outgoing mail (https://… in production)",
    )
    processes: int = Field(
        default=0,
        ge=0,
        description="server processes for `serve` and `api`, sharing the port and the store "
        "(0: one per CPU core); with `serve` each runs a delivery worker too",
    )
    hostname: str = Field(
        default="", description="this host's name, used in Message-IDs (default: the FQDN)"
    )
    list_unsubscribe: bool = Field(
        default=True,
        description="give every outgoing copy its own List-Unsubscribe and "
        "List-Unsubscribe-Post headers (RFC 2369, RFC 8058); each recipient then gets its own "
        "SMTP transaction",
    )
    bounce_domain: str = Field(
        default="",
        description="the domain of VERP return paths and of the List-Unsubscribe mailto "
        "(default: the hostname setting, else the FQDN)",
    )

    # The bounce receiver (inbound/): DSNs, complaints and unsubscribe mail come back to
    # ``bounce+<token>@<bounce domain>`` / ``unsubscribe+<token>@<bounce domain>``. The bounce
    # domain's MX points at this host, port 25, forwarded to bounce_port.
    bounce_host: str = Field(default="127.0.0.1", description="where the bounce receiver listens")
    bounce_port: int = Field(
        default=2526,
        ge=0,
        le=65535,
        description="the bounce receiver's SMTP port (the bounce domain's MX reaches it on 25)",
    )
    bounce_receiver: bool = Field(
        default=True,
        description="`serve` runs the bounce receiver beside the API and the delivery worker "
        "(false: run it with `mailpulse bounces`, or not at all)",
    )

    # HTTP limits: bounded work per request and per connection (api/deps.py, api/server.py)
    http_header_timeout: float = Field(
        default=10.0,
        description="seconds a connection may take to send a request's headers "
        "(from connect, or from the first byte of a later request); then it is closed",
    )
    http_body_timeout: float = Field(
        default=60.0, description="seconds a request may take to send its whole body (then 408)"
    )
    http_keep_alive_timeout: float = Field(
        default=5.0, description="seconds an idle keep-alive connection is kept open"
    )
    http_max_connections: int = Field(
        default=1000,
        description="concurrent connections and requests per process; beyond it requests get 503",
    )
    http_max_header_bytes: int = Field(
        default=64 * 1024, description="most bytes of request line and headers (then 431)"
    )
    http_small_body_bytes: int = Field(
        default=8 * 1024,
        description="body limit of the token endpoint and the email-log queries (then 413)",
    )
    http_max_body_items: int = Field(
        default=10_000,
        description="most JSON values, form fields or multipart parts in one request (then 413)",
    )

    # tokens
    secret_key: str = Field(
        default="", description="signing key for access tokens; generated under data_dir if empty"
    )
    token_ttl_seconds: int = 3600

    # limits
    max_recipients: int = 100
    max_message_bytes: int = 25 * 1024 * 1024
    max_info_ids: int = 500
    max_unsubscribe_emails: int = Field(
        default=1000, ge=1, description="addresses per POST or DELETE /smtp/unsubscribe"
    )
    list_default_limit: int = 100
    list_max_limit: int = 500
    max_template_bytes: int = Field(
        default=1024 * 1024,
        ge=1,
        description="largest stored template body (decoded HTML, in bytes); "
        "POST /template and /template/edit refuse larger ones",
    )

    # access: the one short-lived auth cache (core/access.py) and the token endpoint's limits
    auth_cache_seconds: float = Field(
        default=2.0,
        description="how long a request may rely on an earlier check of its key, account "
        "(status, credential generation, SMTP activation) and sender: revocation, "
        "deactivation and secret rotation take effect within this time",
    )
    token_failures_per_ip: int = Field(
        default=10,
        description="failed token requests per client IP per window before 429 (0: no limit)",
    )
    token_failures_per_client: int = Field(
        default=5,
        description="failed token requests per client_id per window before 429 (0: no limit)",
    )
    token_failure_window_seconds: float = Field(
        default=60.0, description="the sliding window of the two limits above"
    )
    token_checks_at_once: int = Field(
        default=2,
        ge=1,
        description="client-secret checks run at once per process (each Argon2 check takes "
        "64 MiB for a moment); further token requests wait their turn",
    )

    # store tuning
    commit_batch_max: int = Field(
        default=256, description="most write jobs the writer commits in one transaction"
    )

    # logging
    log_level: str = Field(default="info", description="server log level: " + ", ".join(LOG_LEVELS))
    access_log: bool = Field(
        default=False, description="log one line per HTTP request (uvicorn's access log)"
    )

    # delivery
    relay: str = Field(
        default="",
        description="send all mail through one smart host: smtp://[user:pass@]host:port, "
        "or smtps://... for implicit TLS; empty = deliver to each domain's MX",
    )
    mx_port: int = Field(default=25, ge=1, le=65535, description="TCP port of destination MX hosts")
    dns_nameservers: list[str] = Field(
        default_factory=list,
        description="nameserver IPs for MX/A/AAAA lookups; empty = the system resolver",
    )
    dns_port: int = Field(
        default=53, ge=1, le=65535, description="port of the nameservers in dns_nameservers"
    )
    ehlo_name: str = Field(default="localhost", description="name sent in EHLO/HELO")
    source_addresses: list[str] = Field(
        default_factory=list,
        description="local IPs to send from, used in turn (recorded as used_ip); empty = OS choice",
    )
    require_tls: bool = Field(
        default=False,
        description="refuse to send without STARTTLS (MX certificates are not verified either way)",
    )
    relay_tls_verify: bool = Field(
        default=True,
        description="verify the relay's TLS certificate and host name; false only for a "
        "self-signed relay on a private network (credentials then go to loopback relays only)",
    )
    relay_ca_file: str = Field(
        default="",
        description="PEM CA bundle to verify the relay with; empty = the system store and certifi",
    )
    allow_private_mx: bool = Field(
        default=False,
        description="deliver to MX hosts on loopback, private, link-local or this host's own "
        "addresses (refused by default: they bounce)",
    )
    session_idle_seconds: float = Field(
        default=2.0,
        description="how long an SMTP connection waits for more mail to its destination "
        "before it is closed",
    )
    messages_per_session: int = Field(
        default=100, description="most messages sent over one SMTP connection"
    )
    sessions_per_destination: int = Field(
        default=10, description="most concurrent SMTP sessions to one destination domain/relay"
    )
    max_sessions: int = Field(default=50, description="most concurrent SMTP sessions per worker")
    claim_batch: int = Field(default=200, description="deliveries claimed from the queue at once")
    lease_seconds: int = Field(
        default=30,
        ge=3,
        description="how long a claim lasts before another worker may take it over; a live "
        "worker renews its claims every third of this",
    )
    max_unexpected_failures: int = Field(
        default=5,
        ge=1,
        description="tries failing with the same unexpected error before a delivery bounces",
    )
    retry_window_seconds: int = Field(
        default=5 * 24 * 3600,
        description="how long a deferred delivery is retried before it bounces as expired",
    )
    connect_timeout: float = Field(
        default=30.0, description="seconds to wait for a TCP connection and the SMTP greeting"
    )
    command_timeout: float = Field(
        default=60.0, description="seconds to wait for the reply to any SMTP command"
    )

    @field_validator("public_url")
    @classmethod
    def _public_url(cls, value: str) -> str:
        # It is written into List-Unsubscribe headers: printable ASCII only, no spaces.
        if value and not _PUBLIC_URL.fullmatch(value):
            raise ValueError("not an http:// or https:// URL of printable ASCII without spaces")
        return value

    @field_validator("bounce_domain")
    @classmethod
    def _bounce_domain(cls, value: str) -> str:
        if value and not _DOMAIN.fullmatch(value):
            raise ValueError("not a domain name (letters, digits, '-' and '.')")
        return value

    @field_validator("database_url")
    @classmethod
    def _known_database(cls, value: str) -> str:
        try:
            url = make_url(value)
        except ArgumentError:
            raise ValueError(
                "not a database URL: use sqlite:///path or postgresql://user:pass@host/db"
            ) from None
        if url.get_backend_name() not in ("sqlite", "postgresql"):
            raise ValueError(
                f"unsupported database {url.get_backend_name()!r}: use sqlite:///path or "
                "postgresql://user:pass@host/db"
            )
        return value

    @field_validator("sqlite_synchronous")
    @classmethod
    def _synchronous_mode(cls, value: str) -> str:
        if value.upper() not in ("FULL", "NORMAL", "EXTRA"):
            raise ValueError("must be FULL, NORMAL or EXTRA")
        return value.upper()

    @field_validator("log_level")
    @classmethod
    def _log_level(cls, value: str) -> str:
        if value.lower() not in LOG_LEVELS:
            raise ValueError("must be one of " + ", ".join(LOG_LEVELS))
        return value.lower()

    @field_validator("relay")
    @classmethod
    def _relay_url(cls, value: str) -> str:
        if not value:
            return value
        parts = urlsplit(value)
        try:
            parts.port  # noqa: B018 (raises ValueError for a port that is not a number)
        except ValueError:
            raise ValueError("the port is not a number from 1 to 65535") from None
        if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
            raise ValueError(
                "must be smtp://[user:pass@]host:port or smtps://[user:pass@]host:port"
            )
        return value

    @field_validator("dns_nameservers", "source_addresses")
    @classmethod
    def _ip_addresses(cls, value: list[str]) -> list[str]:
        for item in value:
            try:
                ipaddress.ip_address(item)
            except ValueError:
                raise ValueError(f"{item!r} is not an IP address") from None
        return value

    def process_count(self) -> int:
        return self.processes if self.processes > 0 else (os.cpu_count() or 1)

    def resolved_secret_key(self) -> str:
        """The token signing key: configured, or generated once and kept under data_dir (0600,
        in a 0700 directory). Created atomically: processes starting at once agree on one key."""
        if self.secret_key:
            return self.secret_key
        path = self.data_dir / "secret.key"
        try:
            key = files.create_once(path, secrets.token_urlsafe(48)).strip()
        except OSError as exc:
            raise ConfigError(f"cannot keep the signing key in {path}: {exc.strerror}") from None
        if not key:
            raise ConfigError(f"{path} is empty: delete it to have a new signing key generated")
        return key

    def resolved_hostname(self) -> str:
        """This host's name: the ``hostname`` setting, else the FQDN."""
        return self.hostname or socket.getfqdn() or "mailpulse.local"

    def resolved_bounce_domain(self) -> str:
        """The domain of VERP return paths and unsubscribe mailto addresses, lower-cased."""
        return (self.bounce_domain or self.resolved_hostname()).strip().rstrip(".").lower()

    def base_url(self) -> str:
        return self.public_url.rstrip("/") or f"http://{self.http_host}:{self.http_port}"

    def safe_database_url(self) -> str:
        """The database URL with its password hidden, for logs and messages."""
        return hide_password(self.database_url)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        path = _config_file()
        if path is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=path))
        return tuple(sources)


def hide_password(url: str) -> str:
    """``scheme://user:***@host…`` for any URL with a password (database or relay)."""
    return re.sub(r"(://[^:/@]*:)[^@/]*@", r"\1***@", url)


def load_settings(*, warn: bool = True, **overrides: Any) -> Settings:
    """The settings, or one :class:`ConfigError` line saying what is wrong with them. With
    ``warn``, each unknown ``MAILPULSE_*`` environment variable earns one warning line."""
    path = _config_file()
    if path is not None:
        _check_file(path)
    if warn:
        for line in unknown_variable_warnings(os.environ):
            print(f"mailpulse: warning: {line}", file=sys.stderr)
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        raise ConfigError("; ".join(_describe(error, path) for error in exc.errors())) from None
    except SettingsError as exc:
        raise ConfigError(_describe_parse_error(exc, path)) from None


def _check_file(path: Path) -> None:
    try:
        with path.open("rb") as handle:
            tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError(f"config file {path} (MAILPULSE_CONFIG) does not exist") from None
    except OSError as exc:
        raise ConfigError(f"config file {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None


def unknown_variable_warnings(environ: dict[str, str] | os._Environ[str]) -> list[str]:
    known = {name.upper() for name in Settings.model_fields}
    lines = []
    for variable in sorted(environ):
        upper = variable.upper()
        if not upper.startswith(ENV_PREFIX) or _NOT_SETTINGS.fullmatch(upper):
            continue
        name = upper[len(ENV_PREFIX) :]
        if name in known or name.split("__")[0] in known:
            continue
        close = difflib.get_close_matches(name, sorted(known), n=1)
        hint = f" (did you mean {ENV_PREFIX}{close[0]}?)" if close else ""
        lines.append(f"{variable} is not a setting and is ignored{hint}")
    return lines


_SECRET_FIELDS = frozenset({"secret_key"})
_URL_FIELDS = frozenset({"database_url", "relay"})


def _where(field: str, path: Path | None) -> str:
    """Where a setting came from, as the operator wrote it."""
    variable = ENV_PREFIX + field.upper()
    if any(name.upper() == variable for name in os.environ):
        return variable
    if path is not None:
        return f"{field} in {path}"
    return field


def _shown(field: str, value: Any) -> str:
    if field in _SECRET_FIELDS:
        return ""
    if field in _URL_FIELDS and isinstance(value, str):
        value = hide_password(value)
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return f" (got {text[:80]!r})"


def _describe(error: Any, path: Path | None) -> str:
    loc = [str(part) for part in error.get("loc", ())]
    field = loc[0] if loc else "?"
    if error.get("type") == "extra_forbidden":
        where = f"{path}" if path is not None else "the settings"
        close = difflib.get_close_matches(field, sorted(Settings.model_fields), n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        return f"unknown setting {field!r} in {where}{hint}"
    message = str(error.get("msg", "invalid value")).removeprefix("Value error, ")
    if len(loc) > 1:
        message = f"item {'.'.join(loc[1:])}: {message}"
    return f"{_where(field, path)}: {message}{_shown(field, error.get('input'))}"


def _describe_parse_error(exc: SettingsError, path: Path | None) -> str:
    match = re.search(r'field "([^"]+)"', str(exc))
    if match is None:
        return f"settings: {exc}"
    field = match.group(1)
    cause = exc.__cause__
    reason = f"not valid JSON ({cause})" if isinstance(cause, ValueError) else str(cause or exc)
    info = Settings.model_fields.get(field)
    is_list = info is not None and get_origin(info.annotation) is list
    example = " (write a JSON list, e.g. '[\"127.0.0.1\"]')" if is_list else ""
    return f"{_where(field, path)}: {reason}{example}"
