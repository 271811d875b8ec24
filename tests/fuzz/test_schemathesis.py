"""schemathesis against the published document, on a real server on loopback, every check on.

Proves two things at once: no request the document allows (or almost allows: schemathesis's
negative cases) draws a 5xx, and no answer contradicts the document (status, content type,
headers, body schema; negative data refused, positive data accepted, 405 with Allow).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import strategies as st
from schemathesis.checks import CHECKS, load_all_checks
from schemathesis.config import SchemathesisConfig

from mailpulse.api.openapi import build
from mailpulse.core.auth import hash_api_key, new_api_key
from mailpulse.store import accounts
from tests.support.databases import ENGINES, fresh_database_url
from tests.support.server import RunningServer, running_server

# Bounds: examples per operation and phase, overridable for a longer hunt.
MAX_EXAMPLES = int(os.environ.get("MAILPULSE_FUZZ_EXAMPLES", "40"))
SEED = int(os.environ.get("MAILPULSE_FUZZ_SEED", "6"))

# Quirks the document states in words and a JSON schema cannot: for these operations a
# well-formed request can still be refused, and the statuses below are the documented refusals.
POSITIVE_REFUSALS = {
    # An id that matches the schema but was never sent: SendPulse answers 400 / 14.
    "getEmail": ["400"],
    "emailsInfo": ["400"],
    # Acceptance depends on the account's active senders, on email-validator's reading of each
    # address and on stored templates: the documented 422 refusals.
    "sendEmail": ["422"],
    # A template body must be base64 (or markup) of a template the renderer accepts, its
    # name unused in the account, its size within max_template_bytes: documented 422s.
    "createTemplate": ["422"],
    "editTemplate": ["422"],
    # Only an address on the account's suppression list can be asked (422 `Blocked email not
    # found`), from an active sender, at most 5 a day.
    "resubscribe": ["422"],
    # An item the schema allows may still not be an address (`Wrong email parameter`).
    "unsubscribeAdd": ["400", "422"],
    "unsubscribeRemove": ["400", "422"],
    "unsubscribeSearch": ["422"],
}


# Operations whose refusal of a body the schema does not allow is not a 4xx of content: the
# one-click page never reads its body for meaning (RFC 8058 providers vary), only bounds its
# size, so a schema-violating body is answered like any other (404 for a random token), or 413
# when it is over 1 KiB.
NEGATIVE_REFUSALS = {
    "unsubscribeOneClick": ["400", "401", "403", "404", "405", "406", "409", "413", "415", "422"],
}


def _sendpulse_dates() -> st.SearchStrategy[str]:
    """The `sendpulse-date` format of the log's date parameters: a date or a datetime (with a
    space or a T, with or without seconds), or empty for "not set"."""
    moments = st.datetimes().map(lambda moment: moment.replace(microsecond=0))
    return st.one_of(
        st.just(""),
        st.dates().map(lambda day: day.isoformat()),
        moments.map(lambda moment: moment.isoformat(sep=" ")),
        moments.map(lambda moment: moment.isoformat()),
        moments.map(lambda moment: moment.isoformat(sep=" ", timespec="minutes")),
    )


schemathesis.openapi.format("sendpulse-date", _sendpulse_dates())


def _config(api_key: str) -> SchemathesisConfig:
    operations = "\n".join(
        f"""
[[operations]]
include-operation-id = "{operation}"
checks.positive_data_acceptance.expected-statuses = {
            ["2xx", "401", "403", "404", "409", "429", *statuses]
        }
"""
        for operation, statuses in POSITIVE_REFUSALS.items()
    ) + "\n".join(
        f"""
[[operations]]
include-operation-id = "{operation}"
checks.negative_data_rejection.expected-statuses = {statuses}
"""
        for operation, statuses in NEGATIVE_REFUSALS.items()
    )
    return SchemathesisConfig.from_str(
        f"""
seed = {SEED}
# A request that takes this long is a hang, not a slow answer.
request-timeout = 30

[generation]
max-examples = {MAX_EXAMPLES}

[auth.openapi.bearerAuth]
bearer = "{api_key}"
{operations}
"""
    )


# The document the server publishes: the fixture below checks the served one is this one.
# (schemathesis's lazy `from_fixture` loader does not work with pytest 9, so the schema is
# loaded at import and the calls go to the fixture's server.) The credential is a static API
# key chosen now and stored for the fuzz account when the server starts.
API_KEY = new_api_key()
schema = schemathesis.openapi.from_dict(build(), config=_config(API_KEY))


@pytest.fixture(scope="module", params=ENGINES)
def fuzz_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningServer]:
    """A server on each engine: PostgreSQL refuses values SQLite stores (NUL characters,
    integers past 64 bits), and each refusal must still be a 4xx."""
    base: Path = tmp_path_factory.mktemp("fuzz")
    with (
        fresh_database_url(request.param, base) as url,
        running_server(url, base / "var") as running,
    ):
        # The sender of the document's send example, so the example itself is accepted.
        tenant = running.tenant(sender="sender@example.com")
        now = running.runtime.clock.now()
        running.runtime.db.write_sync(
            lambda conn: accounts.create_api_key(
                conn,
                account_id=tenant.id,
                name="fuzz",
                key_hash=hash_api_key(API_KEY),
                hint="",
                now=now,
            )
        )
        with running.client() as http:
            assert http.get("/openapi.json").json() == schema.raw_schema
        yield running


# Framing headers belong to the HTTP layer, not to the API: a generated `Content-Length: TN|`
# is answered by uvicorn before the app runs (400 text/plain "Invalid HTTP request received.")
# and says nothing about the document. The HTTP client sets its own.
FRAMING_HEADERS = {"content-length", "transfer-encoding", "host", "connection"}


@schema.parametrize()
def test_the_server_keeps_every_promise_of_its_document(
    case: schemathesis.Case, fuzz_server: RunningServer
) -> None:
    if case.headers:
        case.headers = {
            name: value
            for name, value in case.headers.items()
            if name.lower() not in FRAMING_HEADERS
        }
    case.call_and_validate(base_url=fuzz_server.url)


def test_every_check_is_on_for_every_operation_but_the_stated_exceptions() -> None:
    load_all_checks()
    names = set(CHECKS.get_all_names())
    assert {"not_a_server_error", "response_schema_conformance", "negative_data_rejection"} <= names
    switched_off = {}
    for result in schema.get_all_operations():
        operation = result.ok()
        config = schema.config.checks_config_for(operation=operation)
        off = {name for name in names if not getattr(config, name).enabled}
        if off:
            switched_off[operation.label] = off
    assert switched_off == {}
