"""The token endpoint and bearer authentication, over real HTTP."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest

from mailpulse.core.clock import FixedClock
from tests.support.server import RunningServer, running_server


def _creds(server: RunningServer) -> dict[str, str]:
    tenant = server.tenant()
    return {
        "grant_type": "client_credentials",
        "client_id": tenant.client_id,
        "client_secret": tenant.client_secret,
    }


def _assert_token(body: dict[str, object]) -> None:
    assert set(body) == {"access_token", "token_type", "expires_in"}
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 3600
    assert isinstance(body["access_token"], str) and body["access_token"]


def test_token_from_json_body(server: RunningServer) -> None:
    with server.client() as http:
        answer = http.post("/oauth/access_token", json=_creds(server))
    assert answer.status_code == 200
    _assert_token(answer.json())


def test_token_from_form_urlencoded_body(server: RunningServer) -> None:
    with server.client() as http:
        answer = http.post("/oauth/access_token", data=_creds(server))
    assert answer.status_code == 200
    _assert_token(answer.json())


def test_token_from_multipart_body(server: RunningServer) -> None:
    fields = {k: (None, v) for k, v in _creds(server).items()}
    with server.client() as http:
        answer = http.post("/oauth/access_token", files=fields)
    assert answer.status_code == 200
    _assert_token(answer.json())


def test_wrong_secret_is_401_invalid_client_with_error_code_1(server: RunningServer) -> None:
    creds = _creds(server) | {"client_secret": "wrong"}
    with server.client() as http:
        answer = http.post("/oauth/access_token", json=creds)
    assert answer.status_code == 401
    assert answer.json() == {
        "error": "invalid_client",
        "error_description": "Client authentication failed.",
        "message": "Client authentication failed.",
        "error_code": 1,
    }


def test_unknown_client_id_is_401_invalid_client(server: RunningServer) -> None:
    creds = _creds(server) | {"client_id": "nobody"}
    with server.client() as http:
        answer = http.post("/oauth/access_token", json=creds)
    assert answer.status_code == 401
    assert answer.json()["error"] == "invalid_client"


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"grant_type": None}, "invalid_request"),
        ({"client_id": None}, "invalid_request"),
        ({"client_secret": None}, "invalid_request"),
        ({"grant_type": "password"}, "unsupported_grant_type"),
        ({"grant_type": "refresh_token"}, "unsupported_grant_type"),
    ],
)
def test_bad_token_requests_are_400_with_oauth_error_names(
    server: RunningServer, change: dict[str, str | None], error: str
) -> None:
    creds = {k: v for k, v in (_creds(server) | change).items() if v is not None}
    with server.client() as http:
        answer = http.post("/oauth/access_token", json=creds)
    assert answer.status_code == 400
    body = answer.json()
    assert body["error"] == error
    assert isinstance(body["error_code"], int) and body["message"]


@pytest.mark.parametrize(
    "header",
    [
        None,
        "Bearer",
        "Basic dXNlcjpwYXNz",
        "Bearer not-a-token",
        "Bearer b'eyJ0eXAiOiJKV1QiLCJhbGciOiJIUzI1NiJ9.e30.x'",
        "Bearer mpk_unknownkey",
    ],
)
def test_missing_or_malformed_bearer_is_401_without_invalid_client(
    server: RunningServer, header: str | None
) -> None:
    headers = {} if header is None else {"Authorization": header}
    with server.client() as http:
        answer = http.get("/smtp/emails", headers=headers)
    assert answer.status_code == 401
    assert "invalid_client" not in answer.text
    assert answer.json() == {"error_code": 401, "message": "Unauthorized!"}


def test_token_of_pythons_bytes_repr_is_refused(server: RunningServer) -> None:
    tenant = server.tenant()
    with server.client() as http:
        answer = http.get("/smtp/emails", headers={"Authorization": f"Bearer b'{tenant.token}'"})
        good = http.get("/smtp/emails", headers=tenant.auth)
    assert answer.status_code == 401
    assert good.status_code == 200


def test_token_signed_with_another_key_is_refused(tmp_path: Path) -> None:
    with running_server(f"sqlite:///{tmp_path / 'a.db'}", tmp_path / "a") as first:
        stranger = first.tenant()
    other_url = f"sqlite:///{tmp_path / 'b.db'}"
    with (
        running_server(other_url, tmp_path / "b", secret_key="x" * 40) as other,
        other.client() as http,
    ):
        answer = http.get("/smtp/emails", headers=stranger.auth)
    assert answer.status_code == 401


def test_tokens_expire_after_an_hour(tmp_path: Path) -> None:
    clock = FixedClock(datetime(2026, 1, 1, 12, 0, 0))
    with running_server(f"sqlite:///{tmp_path / 'c.db'}", tmp_path, clock=clock) as server:
        tenant = server.tenant()
        with server.client() as http:
            clock.advance(seconds=3599)
            assert http.get("/smtp/emails", headers=tenant.auth).status_code == 200
            clock.advance(seconds=2)
            expired = http.get("/smtp/emails", headers=tenant.auth)
    assert expired.status_code == 401
    assert "invalid_client" not in expired.text


def test_static_api_key_works_as_bearer_until_revoked(tmp_path: Path) -> None:
    from mailpulse.store import accounts

    clock = FixedClock(datetime(2026, 1, 1, 12, 0, 0))
    with running_server(f"sqlite:///{tmp_path / 'k.db'}", tmp_path, clock=clock) as server:
        tenant = server.tenant()
        key_id, key = server.api_key(tenant)
        headers = {"Authorization": f"Bearer {key}"}
        with server.client() as http:
            assert http.get("/smtp/emails/total", headers=headers).status_code == 200
            now = server.runtime.clock.now()
            server.runtime.db.write_sync(lambda conn: accounts.revoke_api_key(conn, key_id, now))
            # Refused once the auth cache window (auth_cache_seconds, 2 s) has passed.
            clock.advance(seconds=2.01)
            revoked = http.get("/smtp/emails/total", headers=headers)
    assert revoked.status_code == 401
    assert revoked.json() == {"error_code": 401, "message": "Unauthorized!"}


def test_secrets_and_keys_are_stored_hashed(server: RunningServer) -> None:
    import sqlalchemy as sa

    from mailpulse.store.tables import accounts, api_keys

    tenant = server.tenant()
    _key_id, key = server.api_key(tenant)

    def dump(conn: sa.Connection) -> str:
        rows = [*conn.execute(sa.select(accounts)), *conn.execute(sa.select(api_keys))]
        return repr(rows)

    stored = server.runtime.db.read_sync(dump)
    assert tenant.client_id in stored
    assert tenant.client_secret not in stored
    assert key not in stored
    assert "$argon2id$" in stored
