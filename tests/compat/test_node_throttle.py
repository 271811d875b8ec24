"""The official Node SDK meets the token endpoint's failure limit (429) and stops cleanly.

Without ``is_error`` in the 429 body the SDK took the answer for a token, wrote ``undefined``
to its token file and crashed the application with a TypeError.
"""

from __future__ import annotations

from pathlib import Path

from tests.compat.test_node_sdk import drive, node_email, pytestmark, steps
from tests.support.server import running_server

__all__ = ["pytestmark"]


def test_a_throttled_token_request_reaches_the_app_as_an_error(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'n.db'}"
    with running_server(url, tmp_path, token_failures_per_client=1) as server:
        tenant = server.tenant()
        drive(server, tmp_path / "t", tenant, secret="wrong", email=node_email(tenant.sender))
        result = drive(server, tmp_path / "t", tenant, email=node_email(tenant.sender))
    assert steps(result) == [("POST", "/oauth/access_token", 429)]
    assert result["init"]["is_error"] == 1
    assert result["init"]["error_code"] == 429
    assert "send" not in result
