"""The unsubscribe list through the official SDKs, against a real mailpulse server.

pysendpulse 0.1.8 has ``smtp_add_emails_to_unsubscribe`` and
``smtp_delete_emails_from_unsubscribe`` (``emails`` as a JSON string in a JSON body, §h.3);
it has no method for the list or the search, so those go through its own request function
(the query as URL-quoted JSON, §h.5). The Node SDK 1.1.7 has ``smtpUnsubscribeEmails`` and
``smtpRemoveFromUnsubscribe`` (``emails`` PHP-``serialize()``d, §h.2; the DELETE with a body,
§h.7) and reaches the list and the search with its raw ``sendRequest`` (a JSON body on a GET,
§h.6): ``node/unsubscribe.js`` drives it.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pysendpulse.pysendpulse import PySendPulse

from tests.compat.test_node_sdk import DRIVER_ENV, NODE_DIR, TIMEOUT
from tests.compat.test_node_sdk import pytestmark as node_marks
from tests.compat.test_pysendpulse import Factory, pysendpulse, token_dir  # noqa: F401
from tests.support.server import RunningServer


def py_request(client: PySendPulse, path: str, method: str, data: dict[str, Any]) -> Any:
    """pysendpulse's own request function, as its methods call it."""
    send = client._PySendPulse__send_request  # type: ignore[attr-defined]
    handle = client._PySendPulse__handle_result  # type: ignore[attr-defined]
    return handle(send(path, method, data))


def test_pysendpulse_adds_lists_searches_and_removes(
    server: RunningServer,
    pysendpulse: Factory,  # noqa: F811
) -> None:
    tenant = server.tenant()
    client = pysendpulse(tenant)
    added = client.smtp_add_emails_to_unsubscribe(
        [
            {"email": "Anna@example.com", "comment": "Отписка 👋"},
            {"email": "bob@example.org", "comment": "c2"},
        ]
    )
    assert added == {"result": True}

    listed = py_request(client, "smtp/unsubscribe", "GET", {"limit": 10, "offset": 0})
    assert sorted(row["email"] for row in listed) == ["anna@example.com", "bob@example.org"]
    assert all(
        row["unsubscribe_by_user"] == 1 and row["unsubscribe_by_link"] == 0 for row in listed
    )
    found = py_request(client, "smtp/unsubscribe/search", "GET", {"email": "anna@example.com"})
    assert found == {"result": True}

    removed = client.smtp_delete_emails_from_unsubscribe(["anna@example.com"])
    assert removed == {"result": True}
    found = py_request(client, "smtp/unsubscribe/search", "GET", {"email": "anna@example.com"})
    assert found == {"result": False}
    listed = py_request(client, "smtp/unsubscribe", "GET", {})
    assert [row["email"] for row in listed] == ["bob@example.org"]


def test_pysendpulse_sees_a_refusal_in_its_own_error_shape(
    server: RunningServer,
    pysendpulse: Factory,  # noqa: F811
) -> None:
    client = pysendpulse(server.tenant())
    answer = client.smtp_add_emails_to_unsubscribe([{"email": "not an address"}])
    assert answer["data"]["is_error"] is True
    assert answer["data"]["http_code"] == 422


@node_marks[0]
@node_marks[1]
def test_node_sdk_adds_lists_searches_and_removes(server: RunningServer, tmp_path: Path) -> None:
    tenant = server.tenant()
    port = str(urlsplit(server.url).port)
    storage = tmp_path / "tokens"
    storage.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in DRIVER_ENV}
    done = subprocess.run(
        ["node", "unsubscribe.js", port, str(storage), tenant.client_id, tenant.client_secret],
        cwd=NODE_DIR,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        env=env,
        check=False,
    )
    assert done.returncode == 0, (done.returncode, done.stdout, done.stderr)
    result = json.loads(done.stdout.strip().splitlines()[-1])

    assert result["add"] == {"result": True}
    listed = {row["email"]: row for row in result["list"]}
    assert set(listed) == {"anna@example.com", "bob@example.org"}
    assert listed["anna@example.com"]["unsubscribe_by_user"] == 1
    assert result["search"] == {"result": True}
    assert result["remove"] == {"result": True}
    assert result["search_after"] == {"result": False}
    assert [row["email"] for row in result["list_after"]] == ["bob@example.org"]
    assert result["empty"] == {"error_code": 14, "message": "Empty emails"}
    # the comment arrived intact through PHP serialize() with UTF-8 byte lengths
    from mailpulse.store.tables import suppressions

    comment = server.runtime.db.read_sync(
        lambda conn: conn.execute(
            suppressions.select().where(suppressions.c.email == "bob@example.org")
        ).one()
    )
    assert comment.unsubscribe_by_user == 1
    requests = [(r["method"], r["path"].split("?")[0], r["status"]) for r in result["requests"]]
    assert ("DELETE", "/smtp/unsubscribe", 200) in requests
    assert ("POST", "/smtp/unsubscribe", 200) in requests
