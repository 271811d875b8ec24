"""Cutting off access, over real HTTP: disabling an account, rotating its secret, revoking its
tokens and keys take effect within the auth cache window (the server's clock is moved, never
slept on); authentication reads the store once per window; failed token requests are limited.
The operator's side is the real ``mailpulse account …`` commands, on the server's database."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from mailpulse.cli import app
from mailpulse.core.auth import verify_secret
from mailpulse.core.clock import FixedClock
from mailpulse.store import accounts
from tests.support.server import RunningServer, Tenant, running_server

UNAUTHORIZED = {"error_code": 401, "message": "Unauthorized!"}
WINDOW = 2.0  # auth_cache_seconds' default


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(datetime(2026, 12, 1, 9, 0, 0))


@pytest.fixture
def served(
    tmp_path: Path, clock: FixedClock, monkeypatch: pytest.MonkeyPatch
) -> Iterator[RunningServer]:
    url = f"sqlite:///{tmp_path / 'access.db'}"
    monkeypatch.setenv("MAILPULSE_DATABASE_URL", url)
    monkeypatch.setenv("MAILPULSE_DATA_DIR", str(tmp_path / "var"))
    monkeypatch.delenv("MAILPULSE_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)
    with running_server(url, tmp_path / "var", clock=clock) as server:
        yield server


def cli(*args: str) -> str:
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def token_request(http: httpx.Client, client_id: str, secret: str) -> httpx.Response:
    body = {"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret}
    return http.post("/oauth/access_token", json=body)


def bearer(credential: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {credential}"}


def email(tenant: Tenant) -> dict[str, Any]:
    return {
        "email": {
            "subject": "s",
            "text": "t",
            "from": {"email": tenant.sender},
            "to": [{"email": "r@example.org"}],
        }
    }


def test_disabling_an_account_cuts_off_its_tokens_keys_and_token_requests(
    served: RunningServer, clock: FixedClock
) -> None:
    tenant = served.tenant("acme")
    _key_id, key = served.api_key(tenant)
    with served.client() as http:
        assert http.get("/smtp/emails/total", headers=tenant.auth).status_code == 200
        assert http.get("/smtp/emails/total", headers=bearer(key)).status_code == 200
        assert "disabled" in cli("account", "disable", "acme")
        clock.advance(seconds=WINDOW)
        refused = [
            http.get("/smtp/emails", headers=tenant.auth),
            http.get("/smtp/emails/total", headers=bearer(key)),
            http.post("/smtp/emails", headers=tenant.auth, json=email(tenant)),
            http.post("/smtp/emails", headers=bearer(key), json=email(tenant)),
        ]
        new_token = token_request(http, tenant.client_id, tenant.client_secret)
        listed = json.loads(cli("account", "list", "--json"))

        cli("account", "enable", "acme")
        clock.advance(seconds=WINDOW)
        again = [
            http.get("/smtp/emails/total", headers=tenant.auth),
            http.get("/smtp/emails/total", headers=bearer(key)),
            token_request(http, tenant.client_id, tenant.client_secret),
        ]
    assert [(r.status_code, r.json()) for r in refused] == [(401, UNAUTHORIZED)] * 4
    assert new_token.status_code == 401
    assert new_token.json()["error"] == "invalid_client"
    assert listed[0]["status"] == "disabled"
    assert [r.status_code for r in again] == [200, 200, 200]


def test_smtp_deactivation_stops_sending_only(served: RunningServer, clock: FixedClock) -> None:
    tenant = served.tenant("acme")
    with served.client(headers=tenant.auth) as http:
        assert http.post("/smtp/emails", json=email(tenant)).status_code == 200
        cli("account", "activate", "acme", "--off")
        clock.advance(seconds=WINDOW)
        send = http.post("/smtp/emails", json=email(tenant))
        log = http.get("/smtp/emails")
    assert send.status_code == 422
    assert send.json()["error_code"] == 400
    assert send.json()["message"].startswith("No such SMTP user")
    assert log.status_code == 200 and len(log.json()) == 1


def test_rotating_the_secret_refuses_the_old_one_at_once_and_its_tokens_within_the_window(
    served: RunningServer, clock: FixedClock
) -> None:
    tenant = served.tenant("acme")
    _key_id, key = served.api_key(tenant)
    rotated = json.loads(cli("account", "rotate-secret", "acme", "--json"))
    assert rotated["client_id"] == tenant.client_id
    assert rotated["client_secret"] != tenant.client_secret
    with served.client() as http:
        with_old = token_request(http, tenant.client_id, tenant.client_secret)
        with_new = token_request(http, tenant.client_id, rotated["client_secret"])
        clock.advance(seconds=WINDOW)
        old_token = http.get("/smtp/emails/total", headers=tenant.auth)
        new_token = http.get("/smtp/emails/total", headers=bearer(with_new.json()["access_token"]))
        static_key = http.get("/smtp/emails/total", headers=bearer(key))
    assert with_old.status_code == 401 and with_old.json()["error"] == "invalid_client"
    assert with_new.status_code == 200
    assert (old_token.status_code, old_token.json()) == (401, UNAUTHORIZED)
    assert new_token.status_code == 200
    assert static_key.status_code == 200  # keys are separate credentials, revoked one by one


def test_revoking_tokens_refuses_every_earlier_token_and_new_ones_work(
    served: RunningServer, clock: FixedClock
) -> None:
    tenant = served.tenant("acme")
    other = served.tenant("other", sender="o@other.example")
    with served.client() as http:
        second = token_request(http, tenant.client_id, tenant.client_secret).json()
        cli("account", "revoke-tokens", "acme")
        clock.advance(seconds=WINDOW)
        earlier = [
            http.get("/smtp/emails/total", headers=tenant.auth),
            http.get("/smtp/emails/total", headers=bearer(second["access_token"])),
        ]
        fresh = token_request(http, tenant.client_id, tenant.client_secret)
        with_fresh = http.get("/smtp/emails/total", headers=bearer(fresh.json()["access_token"]))
        untouched = http.get("/smtp/emails/total", headers=other.auth)
    assert [(r.status_code, r.json()) for r in earlier] == [(401, UNAUTHORIZED)] * 2
    assert fresh.status_code == 200 and with_fresh.status_code == 200
    assert untouched.status_code == 200


def test_authentication_reads_the_store_once_per_window(
    served: RunningServer, clock: FixedClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    tenant = served.tenant("acme")
    _key_id, key = served.api_key(tenant)
    reads: list[str] = []

    def counted(name: str) -> Callable[..., Any]:
        real = getattr(accounts, name)

        def wrapper(*args: Any) -> Any:
            reads.append(name)
            return real(*args)

        return wrapper

    for name in ("key_owner", "account_state", "sender_allowed"):
        monkeypatch.setattr(accounts, name, counted(name))
    with served.client() as http:
        for _ in range(2):
            clock.advance(seconds=WINDOW)
            reads.clear()
            statuses = set()
            for _ in range(20):
                for headers in (bearer(key), tenant.auth):
                    statuses.add(http.get("/smtp/emails/total", headers=headers).status_code)
                    answer = http.post("/smtp/emails", headers=headers, json=email(tenant))
                    statuses.add(answer.status_code)
            # one read per window: the key with its account's state, then the sender
            assert sorted(reads) == ["key_owner", "sender_allowed"]
            assert statuses == {200}


def test_a_bogus_key_repeated_reads_the_store_once_per_window(
    served: RunningServer, clock: FixedClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    reads: list[str] = []
    real = accounts.key_owner
    monkeypatch.setattr(accounts, "key_owner", lambda *a: reads.append("k") or real(*a))
    with served.client(headers=bearer("mpk_not-a-key")) as http:
        answers = {http.get("/smtp/emails/total").status_code for _ in range(30)}
        clock.advance(seconds=WINDOW)
        answers |= {http.get("/smtp/emails/total").status_code for _ in range(30)}
    assert answers == {401}
    assert reads == ["k", "k"]


def test_failed_token_requests_are_limited_per_client_id_with_retry_after(
    served: RunningServer, clock: FixedClock
) -> None:
    tenant = served.tenant("acme")
    with served.client() as http:
        wrong = [token_request(http, tenant.client_id, "wrong") for _ in range(5)]
        blocked = token_request(http, tenant.client_id, tenant.client_secret)
        clock.advance(seconds=30)
        still = token_request(http, tenant.client_id, tenant.client_secret)
        clock.advance(seconds=30)
        after = token_request(http, tenant.client_id, tenant.client_secret)
    assert [r.status_code for r in wrong] == [401] * 5
    assert blocked.status_code == 429
    assert blocked.headers["retry-after"] == "60"
    description = "Too many failed token requests; retry after 60 seconds."
    assert blocked.json() == {
        "error": "too_many_requests",
        "error_description": description,
        "message": description,
        "error_code": 429,
        "is_error": 1,  # the Node SDK's error marker (see tests/compat/test_node_throttle.py)
    }
    assert still.status_code == 429 and still.headers["retry-after"] == "30"
    assert after.status_code == 200


def test_failed_token_requests_are_limited_per_ip(served: RunningServer) -> None:
    tenant = served.tenant("acme")
    with served.client() as http:
        guesses = [token_request(http, f"guess{n}", "x").status_code for n in range(10)]
        blocked = token_request(http, tenant.client_id, tenant.client_secret)
    assert guesses == [401] * 10
    assert blocked.status_code == 429 and int(blocked.headers["retry-after"]) == 60


def test_successful_token_requests_are_not_counted(served: RunningServer) -> None:
    tenant = served.tenant("acme")
    with served.client() as http:
        good = [token_request(http, tenant.client_id, tenant.client_secret) for _ in range(30)]
        wrong = [token_request(http, tenant.client_id, "wrong").status_code for _ in range(5)]
        sixth = token_request(http, tenant.client_id, "wrong")
    assert {r.status_code for r in good} == {200}
    assert wrong == [401] * 5
    assert sixth.status_code == 429


def test_token_failure_limits_are_settings(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'l.db'}"
    with running_server(url, tmp_path, token_failures_per_client=2) as server:
        tenant = server.tenant()
        with server.client() as http:
            answers = [token_request(http, tenant.client_id, "x").status_code for _ in range(3)]
    assert answers == [401, 401, 429]


def test_with_no_cache_window_a_revoked_key_is_refused_at_once(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'z.db'}"
    with running_server(url, tmp_path, auth_cache_seconds=0) as server:
        tenant = server.tenant()
        key_id, key = server.api_key(tenant)
        with server.client(headers=bearer(key)) as http:
            before = http.get("/smtp/emails/total").status_code
            now = server.runtime.clock.now()
            server.runtime.db.write_sync(lambda conn: accounts.revoke_api_key(conn, key_id, now))
            after = http.get("/smtp/emails/total").status_code
    assert (before, after) == (200, 401)


def test_client_secret_checks_run_a_few_at_a_time(
    served: RunningServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each Argon2 check holds 64 MiB: a burst of token requests must not run them all at once."""
    tenant = served.tenant()
    lock = threading.Lock()
    running = 0
    most = 0

    def counting_verify(stored: str | None, secret: str) -> bool:
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
        time.sleep(0.05)  # long enough for the others to pile up, if nothing stops them
        with lock:
            running -= 1
        return verify_secret(stored, secret)

    monkeypatch.setattr("mailpulse.api.oauth.verify_secret", counting_verify)

    def one(_: int) -> int:
        with served.client() as http:
            return token_request(http, tenant.client_id, tenant.client_secret).status_code

    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = list(pool.map(one, range(8)))

    assert statuses == [200] * 8
    assert most == served.runtime.settings.token_checks_at_once == 2
