"""PHP's own wire encodings, written the way PHP writes them, for tests that play a PHP client.

``http_build_query`` is a replica of PHP's (what the 1.x SDK posts and Guzzle's ``form_params``
sends); ``serialize`` is ``phpserialize.dumps``, which writes PHP's format. When a ``php`` binary
is on the machine, :func:`run_php` runs real PHP, and the tests check the replica against it.
"""

from __future__ import annotations

import shutil
import subprocess
from typing import Any
from urllib.parse import quote_plus

import phpserialize

PHP = shutil.which("php")


def urlencode(value: str) -> str:
    """PHP's ``urlencode``: like ``quote_plus``, but ``~`` is encoded too."""
    return quote_plus(value, safe="").replace("~", "%7E")


def http_build_query(data: dict[Any, Any] | list[Any]) -> str:
    """PHP's ``http_build_query($data)``: nested arrays as ``a[b][0]=…``, brackets encoded,
    ``null`` and empty arrays left out, ``true``/``false`` as ``1``/``0``."""
    return "&".join(f"{urlencode(name)}={urlencode(value)}" for name, value in fields(data))


def fields(data: dict[Any, Any] | list[Any], prefix: str = "") -> list[tuple[str, str]]:
    """The (name, value) pairs ``http_build_query`` writes, before URL encoding (also the parts
    of a multipart body built the same way). A list is an array keyed 0..n-1."""
    items = data.items() if isinstance(data, dict) else enumerate(data)
    pairs: list[tuple[str, str]] = []
    for key, value in items:
        name = f"{prefix}[{key}]" if prefix else str(key)
        if isinstance(value, dict | list):
            pairs.extend(fields(value, name))
        elif isinstance(value, bool):
            pairs.append((name, str(int(value))))
        elif value is not None:
            pairs.append((name, str(value)))
    return pairs


def serialize(value: Any) -> str:
    """PHP's ``serialize($value)`` (a dict with int keys is a PHP array with gaps)."""
    return str(phpserialize.dumps(value).decode("utf-8"))


def run_php(code: str, timeout: float = 30) -> str:
    """Run ``<?php code`` with the real PHP CLI and return what it printed."""
    assert PHP is not None, "no php binary"
    done = subprocess.run(
        [PHP, "-r", code], capture_output=True, text=True, timeout=timeout, check=True
    )
    return done.stdout
