"""Validation of a canonical send request (after ``api.compat.canonical_email``).

Pure: a dict in, an :class:`EmailRequest` out, or an :class:`ApiError` with the SendPulse code
and message of compat §c. The recipient count is checked first, before any address is
looked at (bounded work); the rest in the order SendPulse reports them: from, to, subject,
body, attachments.
"""

from __future__ import annotations

import binascii
import functools
import mimetypes
import re
from dataclasses import dataclass
from typing import Any

import email_validator
from email_validator import EmailNotValidError, validate_email

from mailpulse.api.compat import lenient_b64decode  # pure: decoding, no HTTP
from mailpulse.core import errors
from mailpulse.core.errors import ApiError
from mailpulse.core.model import Address, Attachment, EmailRequest


@dataclass(frozen=True)
class Limits:
    max_recipients: int = 100
    max_message_bytes: int = 25 * 1024 * 1024


def normalise_address(value: str) -> str | None:
    """The address in the form we store and send to, or None when it is not an address."""
    if not isinstance(value, str) or len(value) > 320:
        return None
    return _normalise(value)


# A plain ASCII address: a dot-atom local part of common characters, a host name of ASCII
# labels ending in an alphabetic top-level label. Every such address (within the lengths and
# outside the special-use domains checked in _plain) is one email-validator accepts, and its
# normal form is the address with the domain lower-cased (tests/unit/test_validate.py checks
# the two against each other); anything else is left to email-validator.
_PLAIN = re.compile(
    r"([A-Za-z0-9_+=-]+(?:\.[A-Za-z0-9_+=-]+)*)"
    r"@((?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63})"
)


def _plain(address: str) -> str | None:
    """The normal form of a plain address without email-validator's checks (a tenth of the
    CPU of an accept when every recipient is new), or None to leave it to them."""
    found = _PLAIN.fullmatch(address)
    if found is None or len(address) > 254 or len(found[1]) > 64:
        return None
    domain = found[2].lower()
    if len(domain) > 253 or "--" in domain:  # "xn--" and friends: IDNA's business
        return None
    if any(
        domain == d or domain.endswith("." + d) for d in email_validator.SPECIAL_USE_DOMAIN_NAMES
    ):
        return None
    return f"{found[1]}@{domain}"


@functools.lru_cache(maxsize=8192)
def _normalise(value: str) -> str | None:
    # Senders and many recipients repeat from send to send; checking one costs ~0.1 ms.
    value = value.strip()
    plain = _plain(value)
    if plain is not None:
        return plain
    try:
        checked = validate_email(
            value,
            check_deliverability=False,
            allow_smtputf8=False,
            allow_quoted_local=False,
        )
    except EmailNotValidError:
        return None
    # Domains are stored and sent as IDNA A-labels (user@bücher.de → user@xn--bcher-kva.de):
    # every SMTP server takes them, with or without SMTPUTF8.
    return f"{checked.local_part}@{checked.ascii_domain.lower()}"


def _address(value: Any, error: ApiError) -> Address:
    if isinstance(value, str):
        value = {"email": value}
    if not isinstance(value, dict):
        raise error
    email = normalise_address(value.get("email", ""))
    if email is None:
        raise error
    name = value.get("name", "")
    return Address(email=email, name=str(name) if name is not None else "")


def _addresses(value: Any, error: ApiError) -> tuple[Address, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise error
    return tuple(_address(item, error) for item in value)


def _sender(value: Any) -> Address:
    if value is None:
        raise errors.FROM_EMAIL_MISSING()
    if isinstance(value, str):
        value = {"email": value}
    if not isinstance(value, dict):
        raise errors.FROM_INVALID()
    if not value.get("email"):
        raise errors.FROM_EMAIL_MISSING()
    return _address(value, errors.FROM_EMAIL_INVALID())


def _subject(value: Any) -> str:
    if value is None or (isinstance(value, str) and not value.strip()):
        raise errors.SUBJECT_MISSING()
    if isinstance(value, dict | list):
        raise errors.BADLY_FORMED()
    return str(value)


def decode_html(value: Any) -> str:
    """``html`` is base64 (decoded leniently: Ruby's newlines, missing padding, URL-safe).

    A value that is not base64 of UTF-8 but plainly is markup (it contains ``<``) is taken as
    the HTML itself, which is what a hand-written curl call usually means.
    """
    if not isinstance(value, str):
        raise errors.BADLY_FORMED()
    try:
        return lenient_b64decode(value).decode("utf-8")
    except (ValueError, UnicodeDecodeError):
        if "<" in value:
            return value
        raise ApiError(422, 422, "Argument html is invalid") from None


def _attachments(value: Any) -> list[Attachment]:
    if value is None:
        return []
    if not isinstance(value, dict):
        raise errors.ATTACHMENTS_INVALID()
    out = []
    for name, content in value.items():
        if not str(name).strip() or isinstance(content, dict | list) or content is None:
            raise errors.ATTACHMENTS_INVALID()
        out.append(_attachment(str(name), str(content).encode("utf-8")))
    return out


def _attachments_binary(value: Any) -> list[Attachment]:
    if value is None:
        return []
    if not isinstance(value, dict):
        raise errors.ATTACHMENTS_BINARY_INVALID()
    out = []
    for name, content in value.items():
        if not str(name).strip() or not isinstance(content, str):
            raise errors.ATTACHMENTS_BINARY_INVALID()
        try:
            data = lenient_b64decode(content)
        except (ValueError, binascii.Error):
            raise errors.ATTACHMENTS_BINARY_INVALID() from None
        out.append(_attachment(str(name), data))
    return out


def _attachment(name: str, content: bytes) -> Attachment:
    guessed, _ = mimetypes.guess_type(name, strict=False)
    return Attachment(
        filename=name, content=content, content_type=guessed or "application/octet-stream"
    )


def _template(value: Any) -> tuple[str | None, dict[str, Any]]:
    if value is None:
        return None, {}
    if not isinstance(value, dict):
        raise errors.TEMPLATE_INVALID()
    template_id = value.get("id")
    if template_id is None or str(template_id).strip() == "":
        raise errors.TEMPLATE_ID_MISSING()
    variables = value.get("variables", {})
    if variables is None or variables == []:
        variables = {}
    if not isinstance(variables, dict):
        raise ApiError(422, 731, "Variables list passed in wrong format")
    return str(template_id).strip(), variables


def _flag(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "on")
    return bool(value)


def parse_email(email: dict[str, Any], limits: Limits) -> EmailRequest:
    """Turn the canonical ``email`` object into an :class:`EmailRequest`, or raise ApiError."""
    # Counted before any address is validated: validating a million recipients only to refuse
    # them took 24 s of the event loop.
    if _recipient_count(email) > limits.max_recipients:
        raise errors.TOO_MANY_RECIPIENTS()
    sender = _sender(email.get("from"))
    to = _addresses(email.get("to"), errors.TO_INVALID())
    if not to:
        raise errors.TO_INVALID()
    cc = _addresses(email.get("cc"), errors.RECIPIENT_INVALID())
    bcc = _addresses(email.get("bcc"), errors.RECIPIENT_INVALID())
    reply_to_raw = email.get("reply_to")
    reply_to = (
        None
        if reply_to_raw is None
        else _address(reply_to_raw, ApiError(422, 422, "Argument reply_to is invalid"))
    )
    subject = _subject(email.get("subject"))
    template_id, variables = _template(email.get("template"))
    html = None if email.get("html") is None else decode_html(email["html"])
    text = email.get("text")
    if text is not None and not isinstance(text, str):
        if isinstance(text, dict | list):
            raise errors.BADLY_FORMED()
        text = str(text)
    if not html and not text and template_id is None:
        raise errors.BODY_MISSING()
    attachments = _attachments(email.get("attachments")) + _attachments_binary(
        email.get("attachments_binary")
    )
    request = EmailRequest(
        sender=sender,
        to=to,
        cc=cc,
        bcc=bcc,
        reply_to=reply_to,
        subject=subject,
        html=html or None,
        text=text or None,
        auto_plain_text=_flag(email.get("auto_plain_text", False)),
        attachments=tuple(attachments),
        template_id=template_id,
        template_variables=variables,
    )
    if _has_nul(request):
        raise errors.NUL_IN_TEXT()
    if _rough_size(request) > limits.max_message_bytes:
        raise errors.MESSAGE_TOO_LARGE()
    return request


def _has_nul(request: EmailRequest) -> bool:
    """NUL is not allowed anywhere in a message's text (RFC 5322 §3.5), and PostgreSQL refuses
    it in a text column: refused as bad input rather than failing at the store."""
    names = (a.name for a in (request.sender, *request.to, *request.cc, *request.bcc))
    texts = (
        request.subject,
        request.html or "",
        request.text or "",
        request.template_id or "",
        request.reply_to.name if request.reply_to else "",
        *names,
        *(a.filename for a in request.attachments),
    )
    return any("\x00" in text for text in texts)


def _recipient_count(email: dict[str, Any]) -> int:
    """to + cc + bcc as given (lists; anything else is refused later as invalid)."""
    return sum(
        len(value) for key in ("to", "cc", "bcc") if isinstance(value := email.get(key), list)
    )


def _rough_size(request: EmailRequest) -> int:
    """A lower bound of the encoded size, to refuse huge requests before composing them."""
    body = len((request.html or "").encode()) + len((request.text or "").encode())
    return body + sum(len(a.content) * 4 // 3 for a in request.attachments)
