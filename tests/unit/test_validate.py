"""Address normalisation: the fast path for plain addresses agrees with email-validator."""

from __future__ import annotations

import pytest
from email_validator import EmailNotValidError, validate_email
from hypothesis import given
from hypothesis import strategies as st

from mailpulse.core import validate


def by_email_validator(value: str) -> str | None:
    """What normalise_address answered before the fast path: email-validator alone."""
    try:
        checked = validate_email(
            value.strip(),
            check_deliverability=False,
            allow_smtputf8=False,
            allow_quoted_local=False,
        )
    except EmailNotValidError:
        return None
    return f"{checked.local_part}@{checked.ascii_domain.lower()}"


_LOCAL = st.text(alphabet="aZ09_+=-.!#'", min_size=1, max_size=70)
_LABEL = st.text(alphabet="aZ09-", min_size=1, max_size=66)
_DOMAIN = st.lists(_LABEL, min_size=1, max_size=5).map(".".join)
_TLD = st.sampled_from(["com", "ORG", "x", "test", "local", "arpa", "c0m", "xn--p1ai", "de"])


@given(local=_LOCAL, domain=_DOMAIN, tld=_TLD)
def test_plain_addresses_normalise_as_email_validator_normalises_them(
    local: str, domain: str, tld: str
) -> None:
    address = f"{local}@{domain}.{tld}"
    assert validate._normalise.__wrapped__(address) == by_email_validator(address)


@given(st.from_regex(validate._PLAIN, fullmatch=True))
def test_whatever_the_fast_path_takes_email_validator_takes_alike(address: str) -> None:
    fast = validate._plain(address)
    if fast is not None:
        assert fast == by_email_validator(address)


@pytest.mark.parametrize(
    "address",
    [
        "rcpt1@bench.example",
        "John.Smith+tag@Example.COM",
        " padded@example.org ",
        "a@b.co",
        "x" * 64 + "@example.com",
        "x" * 65 + "@example.com",
        "a@" + "b" * 63 + ".com",
        "a@" + "b" * 64 + ".com",
        "a@" + ".".join(["b" * 60] * 4) + ".com",
        "user@localhost.localhost",
        "user@mail.test",
        "user@xn--80ak6aa92e.com",
        "user@ab--cd.com",
        "user@123.com",
        "user@example.123",
        "user@-example.com",
        ".user@example.com",
        "us..er@example.com",
        "user@bücher.de",
        "üser@example.com",
        'quoted"@example.com',
        "no-at-sign",
    ],
)
def test_examples_normalise_as_email_validator_normalises_them(address: str) -> None:
    assert validate._normalise.__wrapped__(address) == by_email_validator(address)
