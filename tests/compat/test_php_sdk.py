"""SendPulse's PHP SDK 2.0.x (``sendpulse/rest-api``) against a real mailpulse server.

The SDK's constructor asks its hard-coded ``https://api.sendpulse.com`` for a token unless its
token storage already holds one, so ``php/drive.php`` sets it up the two ways docs/api.md
("Clients") gives — built without the constructor, and constructed over a pre-stored token with
the URL set by reflection — and then sends mail with hand-written PHP arrays (``array_filter``
gaps, ``array_unique``), asks ``/smtp/emails/info`` with a gapped id list, reads the log. The
driver runs with ``https_proxy`` pointing at a closed port, so a request to SendPulse would
fail the test instead of leaving the machine.

The SDK is not vendored (nor on PyPI / npm, and Packagist and GitHub are not reachable from
every test machine): set ``MAILPULSE_PHP_SDK_DIR`` to a directory holding it, either a composer
project (``composer require sendpulse/rest-api:2.0.1.2``: ``vendor/autoload.php``) or a checkout
of github.com/sendpulse/sendpulse-rest-api-php at 2.0.1.2 (``src/``). Without it, or without
``php`` with its curl extension, the test is skipped with the reason.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.compat.stored import EMAIL_ID, stored_email
from tests.support.server import RunningServer

DRIVER = Path(__file__).parent / "php" / "drive.php"
SDK_DIR = os.environ.get("MAILPULSE_PHP_SDK_DIR", "")
PHP = shutil.which("php")


def _php_has_curl() -> bool:
    if PHP is None:
        return False
    done = subprocess.run(
        [PHP, "-r", "echo extension_loaded('curl') ? 'yes' : 'no';"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    return done.stdout.strip() == "yes"


pytestmark = [
    pytest.mark.skipif(
        PHP is None, reason="php is not installed (apt-get install php-cli php-curl)"
    ),
    pytest.mark.skipif(not _php_has_curl(), reason="php has no curl extension (php-curl)"),
    pytest.mark.skipif(
        not SDK_DIR or not Path(SDK_DIR).is_dir(),
        reason="MAILPULSE_PHP_SDK_DIR is not set to the PHP SDK 2.0.x (composer project or "
        "checkout of sendpulse/sendpulse-rest-api-php): it is not vendored",
    ),
]


def drive(server: RunningServer, tmp_path: Path, client_id: str, secret: str, sender: str) -> Any:
    work = tmp_path / "php-work"
    work.mkdir()
    env = {key: value for key, value in os.environ.items() if "proxy" not in key.lower()}
    # Anything but the loopback server would go through this closed port and fail.
    env.update(https_proxy="http://127.0.0.1:9", HTTPS_PROXY="http://127.0.0.1:9")
    done = subprocess.run(
        [str(PHP), str(DRIVER), SDK_DIR, server.url, client_id, secret, sender, str(work)],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_the_php_sdk_works_set_up_without_ever_asking_sendpulse(
    server: RunningServer, tmp_path: Path
) -> None:
    tenant = server.tenant()
    out = drive(server, tmp_path, tenant.client_id, tenant.client_secret, tenant.sender)

    # the SDK's own constructor would have sent the credentials to SendPulse (blocked here)
    assert out["plain_constructor"]["error"] == "Sendpulse\\RestApi\\ApiClientException", out
    assert "Could not connect to api" in out["plain_constructor"]["message"]
    assert out["construct_without_constructor"] is True, out
    assert out["send"]["result"] is True, out
    sent = out["send"]["id"]
    assert EMAIL_ID.match(sent)
    stored = stored_email(server, sent)
    assert stored.recipients == {
        "rita@example.org": "to",
        "bob@example.org": "to",
        "carl@example.org": "cc",
        "dora@example.org": "cc",
    }
    assert stored.attachments() == {"notes.txt": b"plain text\n"}
    assert "<b>PHP</b>" in (stored.html() or "")

    # json_encode(array_filter([$id, '', 'zzz…'])) is {"0": id, "2": "zzz…"}
    assert [record["id"] for record in out["info_gapped"]] == [sent], out
    assert out["by_id"]["recipient"] == "rita@example.org", out
    assert [record["recipient"] for record in out["list"]] == ["bob@example.org"], out

    assert out["construct_with_stored_token"] is True, out
    assert out["stored_token_total"]["total"] == 4, out
