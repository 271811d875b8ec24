"""Turn a validated :class:`EmailRequest` into the RFC 5322 bytes we sign, store and deliver.

A message with attachments is built and written by the standard library's ``email``
package (bodies 7bit, quoted-printable or base64, attachments and their RFC 2231 file names).
A message without (one text part, or a text and an HTML part: nearly every send) is written
here directly, in exactly the bytes the package writes for the same tree — a property test
checks the two against each other — because building the tree and running the generator over
it was most of a compose, and a compose a fifth of an accept. The top-level headers we fold
ourselves in both cases (handed to the package as pre-folded header objects: ``EmailPolicy``
stores and writes any header object with a ``name`` and a ``fold`` method as it is), because
Python 3.11's folder gets them wrong:

* address fields: it loses the spaces of a long non-ASCII display name for RFC 2047 readers,
  and can encode the comma between two addresses into an encoded word (``=?utf-8?q?=2C?=``),
  which merges two recipients into one;
* Subject: where a long subject mixes ASCII and non-ASCII words it can drop the whitespace
  between two encoded words or double the space before one; a subject containing ``=?`` is
  written raw (so readers decode it as an encoded word) or makes the folder raise.

So a printable ASCII subject is folded at its spaces, any other is written as RFC 2047
encoded words, and both decode to exactly the subject given. Every header value goes through
:func:`header_safe` first, so no value can start a header.
"""

from __future__ import annotations

import base64
import binascii
import functools
import re
import secrets
from datetime import UTC, datetime
from email import base64mime, quoprimime
from email import policy as email_policy
from email.headerregistry import BaseHeader, HeaderRegistry
from email.message import EmailMessage, MIMEPart
from email.policy import Policy
from email.utils import format_datetime, quote

from mailpulse.core.model import Address, Attachment, EmailRequest

__all__ = ["compose", "header_safe"]


class _HeaderClasses(HeaderRegistry):
    """The stock registry, but each header class is built once: ``HeaderRegistry`` makes a new
    class with ``type()`` for every header it parses (about a tenth of a compose)."""

    def __init__(self) -> None:
        super().__init__()
        self._classes: dict[str, type[BaseHeader]] = {}

    def __getitem__(self, name: str) -> type[BaseHeader]:
        key = name.lower()
        cls = self._classes.get(key)
        if cls is None:
            cls = self._classes[key] = super().__getitem__(name)
        return cls


# policy.SMTP (CRLF, RFC 2047 headers, no SMTPUTF8) that never picks 8bit for a text part:
# bodies go out 7bit, quoted-printable or base64, so they need no 8BITMIME on the way and
# no relay re-encodes them under a DKIM signature.
_POLICY = email_policy.SMTP.clone(cte_type="7bit", header_factory=_HeaderClasses())
_MAX_LINE = 78  # RFC 5322's "SHOULD"; we fold the headers we write at it
_LONGEST_WORD = 900  # an ASCII subject word longer than this is encoded (998 is a "MUST")

# Exactly the characters str.splitlines() breaks on (tests check this against every code point).
_LINE_BREAKS = re.compile("[\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029]+")
_SURROGATES = re.compile("[\ud800-\udfff]")

# A display name made of RFC 5322 atoms separated by single spaces can be written bare (and
# folded between the atoms, so each atom is kept short enough for a line).
_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]{1,64}"
_BARE_PHRASE = re.compile(rf"{_ATOM}(?: {_ATOM})*")
_MAX_QUOTED = 64  # a longer ASCII name is written as encoded words, which can be folded

# RFC 2047 caps an encoded word at 75 characters; "=?utf-8?b?" + "?=" take 12 of them.
_B_BYTES = 45  # 45 bytes -> 60 base64 characters
_Q_CHARS = 63

_MIME_TOKEN = r"[!#$%&'*+.^_`|~0-9a-z-]+"
_MIME_TYPE = re.compile(rf"({_MIME_TOKEN})/({_MIME_TOKEN})")
_CHARSET_PARAM = re.compile(r";\s*charset\s*=\s*\"?([A-Za-z0-9!#$%&'+^_`{}~.-]+)\"?", re.I)


def header_safe(value: str) -> str:
    """``value`` made safe for any header: NULs dropped, each run of line-breaking characters
    (anything ``str.splitlines`` splits on) replaced by one space, lone surrogates by U+FFFD."""
    if value.isprintable():  # the common case: none of those characters can be present
        return value
    value = _LINE_BREAKS.sub(" ", value.replace("\x00", ""))
    return _SURROGATES.sub("\ufffd", value)


def compose(request: EmailRequest, *, message_id: str, date: datetime) -> bytes:
    """The message for ``request`` as CRLF bytes. ``date`` is naive UTC (an aware one is
    converted); ``message_id`` comes without angle brackets. Bcc never appears."""
    headers = _root_headers(request, message_id, date)
    text = _body_safe(request.text) if request.text else None
    html = _body_safe(request.html) if request.html else None
    if request.attachments:
        return _compose_with_email_package(headers, text, html, request.attachments)
    return _compose_direct(headers, text, html)


def _root_headers(request: EmailRequest, message_id: str, date: datetime) -> list[_Prefolded]:
    when = date.replace(tzinfo=UTC) if date.tzinfo is None else date.astimezone(UTC)
    headers = [
        _date_header(when.replace(microsecond=0)),
        _address_field("From", (request.sender,)),
    ]
    if request.to:
        headers.append(_address_field("To", request.to))
    if request.cc:
        headers.append(_address_field("Cc", request.cc))
    if request.reply_to is not None:
        headers.append(_address_field("Reply-To", (request.reply_to,)))
    headers += [
        _Prefolded("Subject", _subject_tokens(header_safe(request.subject))),
        _Prefolded("Message-ID", [f"<{header_safe(message_id).strip('<>')}>"]),
        _MIME_VERSION,
    ]
    return headers


@functools.lru_cache(maxsize=4)
def _date_header(when: datetime) -> _Prefolded:
    """The Date header of a second (formatting it was a fortieth of an accept)."""
    return _Prefolded("Date", [format_datetime(when)])


# -- without attachments: written directly ------------------------------------------------------
# A message of one text part, or of a text and an HTML part, is written here in the very bytes
# the email package's generator writes for the same tree (tests/unit/test_compose.py checks the
# two against each other): the headers as folded above, a blank line, and the body with every
# line break as CRLF; an alternative's parts between ``--boundary`` lines. Building the tree and
# running the generator over it was most of a compose, and a compose about a fifth of an accept.
def _compose_direct(headers: list[_Prefolded], text: str | None, html: str | None) -> bytes:
    if html is None:
        body = _text_entity(headers, text or "", "plain")
    elif text is None:
        body = _text_entity(headers, html, "html")
    else:
        boundary = _boundary()
        headers.append(
            _Prefolded("Content-Type", ["multipart/alternative;", f'boundary="{boundary}"'])
        )
        plain_headers: list[_Prefolded] = []
        plain = _text_entity(plain_headers, text, "plain")
        html_headers: list[_Prefolded] = []
        rich = _text_entity(html_headers, html, "html")
        body = "".join(
            [
                f"--{boundary}\r\n",
                _entity(plain_headers, plain),
                f"\r\n--{boundary}\r\n",
                _entity(html_headers, rich),
                f"\r\n--{boundary}--\r\n",
            ]
        )
    # The generator writes headers and body with encode("ascii", "surrogateescape") too.
    return _entity(headers, body).encode("ascii", "surrogateescape")


def _entity(headers: list[_Prefolded], body: str) -> str:
    return "".join([*(header.folded() for header in headers), "\r\n", body])


def _text_entity(headers: list[_Prefolded], text: str, subtype: str) -> str:
    """Appends a text part's Content-Type and Content-Transfer-Encoding to ``headers`` (as
    :func:`_set_text` sets them); returns its body with CRLF line breaks."""
    cte, payload = _encode_body(text)
    headers.append(_Prefolded("Content-Type", [f"text/{subtype};", 'charset="utf-8"']))
    headers.append(_Prefolded("Content-Transfer-Encoding", [cte]))
    return _crlf(payload)


_ANY_LINE_BREAK = re.compile(r"\r\n|\r|\n")  # the generator's NLCRE


def _crlf(payload: str) -> str:
    """Every line break as CRLF, as the generator's ``_write_lines`` writes a body."""
    if "\r" in payload:
        return _ANY_LINE_BREAK.sub("\r\n", payload)
    return payload.replace("\n", "\r\n")


# -- with attachments: the email package builds the tree and writes it ---------------------------
def _compose_with_email_package(
    headers: list[_Prefolded],
    text: str | None,
    html: str | None,
    attachments: tuple[Attachment, ...] = (),
) -> bytes:
    msg = EmailMessage(policy=_POLICY)
    for header in headers:
        msg[header.name] = header
    if html is None:
        _set_text(msg, text or "", "plain")
    elif text is None:
        _set_text(msg, html, "html")
    else:
        msg["Content-Type"] = _Prefolded(
            "Content-Type", ["multipart/alternative;", f'boundary="{_boundary()}"']
        )
        msg.set_payload([_text_part(text, "plain"), _text_part(html, "html")])
    if attachments:
        msg.make_mixed(boundary=_boundary())
        for attachment in attachments:
            _attach(msg, attachment)
    if msg.is_multipart():
        for part in msg.walk():
            if part is not msg:
                del part["MIME-Version"]  # EmailMessage.set_content puts one on every part
    return msg.as_bytes()


def _set_text(part: MIMEPart, text: str, subtype: str) -> None:
    """What ``set_content(text, subtype=…, charset="utf-8")`` does, without parsing back the
    headers it writes (half the cost of a compose)."""
    cte, payload = _encode_body(text)
    part["Content-Type"] = _Prefolded("Content-Type", [f"text/{subtype};", 'charset="utf-8"'])
    part["Content-Transfer-Encoding"] = _Prefolded("Content-Transfer-Encoding", [cte])
    part.set_payload(payload)


def _encode_body(text: str) -> tuple[str, str]:
    """The transfer encoding and encoded body of a UTF-8 text part, chosen as the email
    package's content manager chooses them under a 7bit policy (7bit when every line is short
    ASCII, else the shorter of quoted-printable and base64), but encoded with binascii's C
    encoders: the package's pure-Python quoted-printable encoder was a tenth of a compose."""
    lines = text.encode("utf-8").splitlines()
    body = b"\n".join(lines) + b"\n"
    if body.isascii() and max((len(line) for line in lines), default=0) <= _MAX_LINE:
        return "7bit", body.decode("ascii")
    quoted = binascii.b2a_qp(body, istext=True)
    # base64 is of the CRLF form (one byte more per line); its length is known without it
    if _base64_length(len(body) + max(len(lines), 1)) < len(quoted):
        return "base64", base64.encodebytes(b"\r\n".join(lines) + b"\r\n").decode("ascii")
    return "quoted-printable", quoted.decode("ascii")


def _base64_length(size: int) -> int:
    """``len(base64.encodebytes(data))`` for ``size`` bytes of data: 4 characters for every 3
    bytes (padded), and a newline after each line of 57 bytes (76 characters) and the last."""
    return 4 * ((size + 2) // 3) + (size + 56) // 57


def _text_part(text: str, subtype: str) -> MIMEPart:
    part = MIMEPart(policy=_POLICY)
    _set_text(part, text, subtype)
    return part


def _boundary() -> str:
    """A fresh random boundary. Left to itself the generator draws one and then compiles a
    regular expression to look for it in the flattened parts, for every message; 128 random
    bits cannot occur in the bodies by chance and are not known to whoever wrote them."""
    return f"=_{secrets.token_hex(16)}"


class _Prefolded:
    """A header we fold ourselves (see :func:`_fold`); the email package writes it as is."""

    __slots__ = ("_lines", "name")

    def __init__(self, name: str, tokens: list[str]) -> None:
        self.name = name
        self._lines = _fold(name, tokens)

    def fold(self, *, policy: Policy) -> str:
        return policy.linesep.join(self._lines) + policy.linesep

    def folded(self) -> str:
        """The header's lines, each ended by CRLF (``fold`` under the SMTP policy)."""
        return "\r\n".join(self._lines) + "\r\n"

    def __str__(self) -> str:
        return "".join(self._lines)[len(self.name) + 2 :]


def _fold(name: str, tokens: list[str]) -> list[str]:
    """Tokens joined by single spaces, a line break before the space ahead of a token that
    would pass ``_MAX_LINE``. Unfolding (dropping the CRLFs) gives back the single spaces.
    Never breaks before the first token, nor where the line so far is only whitespace."""
    lines: list[str] = []
    line = name + ":"
    for index, token in enumerate(tokens):
        if index and len(line) + 1 + len(token) > _MAX_LINE and line.strip():
            lines.append(line)
            line = ""
        line += " " + token
    lines.append(line)
    return lines


def _subject_tokens(subject: str) -> list[str]:
    """A printable ASCII subject as its space-separated words (empty words keep runs of
    spaces), anything else as encoded words."""
    if subject.isascii() and subject.isprintable() and "=?" not in subject:
        words = subject.split(" ")
        if words[0] and max(map(len, words)) <= _LONGEST_WORD:
            return words
    return _encoded_words(subject) if subject else []


_MIME_VERSION = _Prefolded("MIME-Version", ["1.0"])


def _address_field(name: str, addresses: tuple[Address, ...]) -> _Prefolded:
    tokens: list[str] = []
    for address in addresses:
        if tokens:
            tokens[-1] += ","
        phrase = _display_name(header_safe(address.name))
        spec = _addr_spec(header_safe(address.email).strip())
        tokens += [*phrase, f"<{spec}>"] if phrase else [spec]
    return _Prefolded(name, tokens)


def _display_name(name: str) -> list[str]:
    """The display name as foldable tokens: bare atoms when it is a plain phrase, one quoted
    string when it is short printable ASCII, otherwise RFC 2047 encoded words."""
    if not name:
        return []
    if "=?" not in name:
        if _BARE_PHRASE.fullmatch(name):
            return name.split(" ")
        if name.isascii() and name.isprintable() and len(name) <= _MAX_QUOTED:
            return [f'"{quote(name)}"']
    return _encoded_words(name)


def _addr_spec(email: str) -> str:
    if email.isascii():
        return email
    local, _, domain = email.rpartition("@")
    if not local.isascii():
        raise ValueError(f"address {email!r} needs SMTPUTF8, which compose does not produce")
    try:
        return f"{local}@{domain.encode('idna').decode('ascii')}"
    except UnicodeError as exc:
        raise ValueError(f"address {email!r} has a domain IDNA cannot encode") from exc


def _encoded_words(text: str) -> list[str]:
    """``text`` as RFC 2047 encoded words of at most 75 characters, split between code points.
    Q encoding when it is the shorter (mostly ASCII text), B otherwise. Readers drop the
    whitespace between adjacent encoded words, so the words decode to exactly ``text``."""
    data = text.encode("utf-8")
    use_b = base64mime.header_length(data) < quoprimime.header_length(data)
    encode = base64mime.header_encode if use_b else quoprimime.header_encode
    if (len(data) <= _B_BYTES) if use_b else (quoprimime.header_length(data) <= _Q_CHARS):
        return [encode(data, "utf-8")]
    limit = _B_BYTES if use_b else _Q_CHARS
    chunks: list[bytes] = []
    chunk = b""
    size = 0
    for char in text:
        raw = char.encode("utf-8")
        cost = len(raw) if use_b else quoprimime.header_length(raw)
        if size + cost > limit:
            chunks.append(chunk)
            chunk, size = b"", 0
        chunk += raw
        size += cost
    chunks.append(chunk)
    return [encode(piece, "utf-8") for piece in chunks]


def _body_safe(text: str) -> str:
    """Body text the email package can encode and SMTP can carry: no NUL, no lone surrogate."""
    if "\x00" in text:
        text = text.replace("\x00", "")
    if text.isascii() or _SURROGATES.search(text) is None:
        return text
    return _SURROGATES.sub("\ufffd", text)


def _attach(msg: EmailMessage, attachment: Attachment) -> None:
    maintype, subtype, params = _content_type(attachment.content_type)
    filename = header_safe(attachment.filename).strip() or None
    msg.add_attachment(
        attachment.content, maintype=maintype, subtype=subtype, filename=filename, params=params
    )


def _content_type(value: str) -> tuple[str, str, dict[str, str]]:
    """``type/subtype`` of an attachment, with its charset for text. Anything malformed, and
    multipart/* or message/* (whose bodies are not opaque bytes), becomes
    application/octet-stream."""
    found = _MIME_TYPE.fullmatch(value.partition(";")[0].strip().lower())
    if found is None or found[1] in ("multipart", "message"):
        return "application", "octet-stream", {}
    params: dict[str, str] = {}
    if found[1] == "text" and (charset := _CHARSET_PARAM.search(value)) is not None:
        params["charset"] = charset[1].lower()
    return found[1], found[2], params
