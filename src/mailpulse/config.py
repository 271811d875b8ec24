"""One settings object, read from MAILPULSE_* environment variables and an optional TOML file.

The file is named by MAILPULSE_CONFIG (default ``./mailpulse.toml`` when it exists); environment
variables win over the file. Every setting is documented in the README.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Any

from pydantic import Field
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)


def _config_file() -> Path | None:
    named = os.environ.get("MAILPULSE_CONFIG")
    if named:
        return Path(named)
    default = Path("mailpulse.toml")
    return default if default.exists() else None


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MAILPULSE_", extra="ignore")

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
    http_port: int = 8000
    public_url: str = Field(default="", description="base URL printed in examples and links")
    processes: int = Field(
        default=0,
        description="server processes for `serve` and `api`, sharing the port and the store "
        "(0: one per CPU core); with `serve` each runs a delivery worker too",
    )
    hostname: str = Field(
        default="", description="this host's name, used in Message-IDs (default: the FQDN)"
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
    list_default_limit: int = 100
    list_max_limit: int = 500

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

    # store tuning
    commit_batch_max: int = Field(
        default=256, description="most write jobs the writer commits in one transaction"
    )

    # delivery
    relay: str = Field(
        default="",
        description="send all mail through one smart host: smtp://[user:pass@]host:port, "
        "or smtps://... for implicit TLS; empty = deliver to each domain's MX",
    )
    mx_port: int = Field(default=25, description="TCP port of destination MX hosts")
    dns_nameservers: list[str] = Field(
        default_factory=list,
        description="nameserver IPs for MX/A/AAAA lookups; empty = the system resolver",
    )
    dns_port: int = Field(default=53, description="port of the nameservers in dns_nameservers")
    ehlo_name: str = Field(default="localhost", description="name sent in EHLO/HELO")
    source_addresses: list[str] = Field(
        default_factory=list,
        description="local IPs to send from, used in turn (recorded as used_ip); empty = OS choice",
    )
    require_tls: bool = Field(
        default=False,
        description="refuse to send without STARTTLS (certificates are not verified either way)",
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
        default=300, description="how long a claim lasts before another worker may take it over"
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

    def process_count(self) -> int:
        return self.processes if self.processes > 0 else (os.cpu_count() or 1)

    def resolved_secret_key(self) -> str:
        """The token signing key: configured, or generated once and kept under data_dir."""
        if self.secret_key:
            return self.secret_key
        path = self.data_dir / "secret.key"
        if path.exists():
            return path.read_text().strip()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        key = secrets.token_urlsafe(48)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(key)
        return key

    def base_url(self) -> str:
        return self.public_url.rstrip("/") or f"http://{self.http_host}:{self.http_port}"

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


def load_settings(**overrides: Any) -> Settings:
    return Settings(**overrides)
