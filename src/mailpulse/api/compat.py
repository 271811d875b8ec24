"""Decoding what the real SendPulse clients put on the wire into one canonical shape.

Pure functions over bytes, strings and plain data: no web framework, no I/O. The HTTP layer
calls them before validation, so every other module sees ordinary dicts and lists.
Quirks handled (numbers refer to compat §h), with the client that causes each:

- ``email`` / ``emails`` as a JSON string inside the body: PY; CS and RB in form bodies (h.1, h.3).
- ``email`` / ``emails`` as a PHP ``serialize()`` string, lengths in UTF-8 bytes, PHP arrays as
  int-keyed maps: NODE (JSON body), PHP1 and JAVA (form body) (h.2, h.3).
- form-urlencoded bodies: PHP1, CS, RB, JAVA, n8n token requests; multipart token requests:
  MCP-D (h.4).
- the whole query string as URL-quoted JSON (``?%7B%7D`` on every GET, literal ``+``): PY (h.5).
- JSON bodies on GET and DELETE, JSON with no Content-Type: NODE, AIO, all DELETEs (h.6, h.7, h.17).
- ``[]`` as the body of an empty post: PHP2 (h.8, h.17).
- null / ``""`` / empty containers meaning "not set": PY, NODE, PHP, GO (``"template": null``),
  MCP-Y, N8N (``"template": {"id": "", ...}``) (h.8).
- odd keys: the misspelled ``auto_plaint_text`` (AIO), ``сс`` in Cyrillic letters (SEED),
  ``reply_to`` as a plain string (SDK) (h.9).
- template id as int or string, ``real_id`` instead of ``id``: PY, curl docs, SEED (h.10).
- repeated and trailing slashes in paths: CS, JAVA, RB, GO; raw ``@`` / ``+`` in paths (h.14-16).
- base64 with newlines every 60 characters (RB), without padding or URL-safe (h.18).
- PHP arrays, in every body, query and ``email`` / ``emails`` value (issue 7): an object keyed
  only by integers, gaps and any order included (``array_filter``), is a list; bracketed form
  and query fields (``http_build_query``, Guzzle ``form_params``: ``email[to][0][email]=…``,
  ``emails[]=…``) are nested as PHP builds them. See :mod:`mailpulse.api.php_arrays`.

Decoding is bounded before it is done (issue 6): a JSON text is scanned for its number of values
and its depth before it is parsed, a form or multipart body has its fields (and their bracket
groups, at most :data:`MAX_DEPTH` per name) counted first, and a PHP string is parsed on a read
budget. So no body, however shaped, builds a tree much larger than
itself, and nothing downstream ever walks a tree deeper than :data:`MAX_DEPTH`.
"""

from __future__ import annotations

import base64
import re
from codecs import BOM_UTF8
from collections.abc import Callable
from dataclasses import dataclass
from email import policy
from email.message import Message
from email.parser import BytesParser
from io import BytesIO
from typing import Any
from urllib.parse import parse_qsl, unquote

import orjson
import phpserialize

from mailpulse.api.php_arrays import as_lists, index_order, nest_fields, values_as_lists
from mailpulse.core.errors import BADLY_FORMED, TOO_DEEP, TOO_MANY_FIELDS, ApiError

_SLASHES = re.compile(r"/{2,}")
_PHP_SERIALIZED = re.compile(r"(?:[asibd]:|N;)")
_JSON_START = ("{", "[")
_CYRILLIC_CC = "\u0441\u0441"
_RECIPIENT_KEYS = ("to", "cc", "bcc")
_TRUE_WORDS = {"1": True, "true": True, "0": False, "false": False}

# The deepest structure a real client sends is about 6 levels (body > email > template >
# variables > a list > an object); 32 leaves room for any template variables while staying far
# below Python's recursion limit (1000), which the decoders and validators would otherwise hit
# (a 490-deep ``email`` was a 500).
MAX_DEPTH = 32


@dataclass(frozen=True)
class Shape:
    """How much structure one request may carry: values (JSON values, form fields, multipart
    parts, PHP array members) and nesting depth."""

    max_items: int = 10_000
    max_depth: int = MAX_DEPTH


DEFAULT_SHAPE = Shape()


# ---------------------------------------------------------------------------------------- paths


def normalise_path(path: str) -> str:
    """Collapse repeated slashes and strip a trailing one; ``+`` and ``@`` are left alone."""
    return _SLASHES.sub("/", path).rstrip("/") or "/"


# ------------------------------------------------------------------------------ query and body


def decode_query(query_string: bytes | str, shape: Shape = DEFAULT_SHAPE) -> dict[str, Any]:
    """An ordinary (or bracketed) query string, or PY's URL-quoted JSON object, as a dict; PHP
    arrays as lists (:mod:`mailpulse.api.php_arrays`)."""
    text = _utf8(query_string) if isinstance(query_string, bytes) else query_string
    unquoted = _strict(unquote, text, errors="strict")
    if unquoted.lstrip().startswith("{"):  # JSON text starting with "{" is an object
        return values_as_lists(dict(_json(unquoted, shape)))
    return values_as_lists(_form(text, shape))


def decode_body(content_type: str | None, body: bytes, shape: Shape = DEFAULT_SHAPE) -> Any:
    """The parsed request body: JSON (sniffed), form-urlencoded (bracketed names nested) or
    multipart; empty -> ``{}``. PHP arrays (integer-keyed objects) come out as lists."""
    body = body.removeprefix(BOM_UTF8).strip()
    if not body:
        return {}
    media_type = (content_type or "").split(";", 1)[0].strip().lower()
    if body.startswith((b"{", b"[")) or _is_json_media(media_type):
        decoded = _json(body, shape)
        return values_as_lists(decoded) if isinstance(decoded, dict) else as_lists(decoded)
    if media_type == "application/x-www-form-urlencoded":
        return values_as_lists(_form(_utf8(body), shape))
    if media_type == "multipart/form-data":
        return values_as_lists(_multipart(content_type or "", body, shape))
    raise _badly_formed()


def request_params(
    query_string: bytes | str,
    content_type: str | None,
    body: bytes,
    shape: Shape = DEFAULT_SHAPE,
) -> dict[str, Any]:
    """Query parameters overlaid with the body's, when the body is an object."""
    params = decode_query(query_string, shape)
    decoded = decode_body(content_type, body, shape)
    if isinstance(decoded, dict):
        params.update(decoded)
    return params


def _badly_formed() -> ApiError:
    """A fresh copy: re-raising the shared constant would grow its traceback on every raise."""
    return BADLY_FORMED()


def _utf8(data: bytes) -> str:
    return _strict(data.decode, "utf-8")


def _strict(decode: Callable[..., str], *args: Any, **kwargs: Any) -> str:
    try:
        return decode(*args, **kwargs)
    except UnicodeError as exc:
        raise _badly_formed() from exc


_JSON_BRACKETS = re.compile(rb"[\[\]{}]")


def check_json_shape(data: bytes, shape: Shape = DEFAULT_SHAPE) -> None:
    """Refuse a JSON text with more values or deeper nesting than ``shape`` allows, before it is
    parsed (parsing ``[{},{},...]`` costs about 25 bytes of memory per byte of input).

    Counting is at C speed. Commas and opening brackets bound the values and the depth; only when
    that bound is too high (brackets and commas inside strings count too) is the structure
    counted outside the strings, and the depth walked.
    """
    containers = data.count(b"[") + data.count(b"{")
    if containers + data.count(b",") <= shape.max_items and containers <= shape.max_depth:
        return  # every ordinary request
    # Without its escaped backslashes and then its escaped quotes (JSON pairs a run of
    # backslashes from the left, as bytes.replace does), every quote left opens or closes a
    # string. Each value brings at most four (a key and a string).
    data = data.replace(b"\\\\", b"").replace(b'\\"', b"")
    if data.count(b'"') > 4 * (shape.max_items + 1):
        raise TOO_MANY_FIELDS()
    gaps = _outside_strings(data)
    containers = sum(data.count(b"[", a, b) + data.count(b"{", a, b) for a, b in gaps)
    if containers + sum(data.count(b",", a, b) for a, b in gaps) > shape.max_items:
        raise TOO_MANY_FIELDS()
    if containers <= shape.max_depth:
        return
    depth = 0
    for start, end in gaps:
        for match in _JSON_BRACKETS.finditer(data, start, end):
            if match.group() in (b"[", b"{"):
                depth += 1
                if depth > shape.max_depth:
                    raise TOO_DEEP()
            else:
                depth -= 1


def _outside_strings(data: bytes) -> list[tuple[int, int]]:
    """The stretches of ``data`` (without escaped quotes) outside strings, found with
    ``bytes.find`` at memchr speed; a string left open runs to the end."""
    gaps: list[tuple[int, int]] = []
    position = 0
    while (start := data.find(b'"', position)) >= 0:
        gaps.append((position, start))
        end = data.find(b'"', start + 1)
        if end < 0:
            return gaps
        position = end + 1
    gaps.append((position, len(data)))
    return gaps


def _json(text: str | bytes, shape: Shape = DEFAULT_SHAPE) -> Any:
    """Parse strictly (orjson: UTF-8 only, no lone surrogates such as ``\\ud800``, no NaN)."""
    data = text.encode("utf-8", "surrogatepass") if isinstance(text, str) else text
    check_json_shape(data, shape)
    try:
        return orjson.loads(data)
    except (ValueError, RecursionError) as exc:
        raise _badly_formed() from exc


def _form(text: str, shape: Shape = DEFAULT_SHAPE) -> dict[str, Any]:
    if text.count("&") >= shape.max_items:  # counted before a single field is built
        raise TOO_MANY_FIELDS()
    try:
        pairs = parse_qsl(text, keep_blank_values=True, errors="strict")
    except UnicodeError as exc:
        raise _badly_formed() from exc
    return _fields(pairs, shape)


def _fields(pairs: list[tuple[str, str]], shape: Shape) -> dict[str, Any]:
    """Form fields, bracketed names (``email[to][0][email]``) nested as PHP writes them."""
    return nest_fields(pairs, max_items=shape.max_items, max_depth=shape.max_depth)


def _is_json_media(media_type: str) -> bool:
    return media_type == "application/json" or media_type.endswith("+json")


_BOUNDARY = re.compile(r'boundary\s*=\s*"?([^";,\s]+)', re.IGNORECASE)


def _multipart(content_type: str, body: bytes, shape: Shape = DEFAULT_SHAPE) -> dict[str, Any]:
    boundary = _BOUNDARY.search(content_type)
    if boundary is None:
        raise _badly_formed()
    if body.count(b"--" + boundary.group(1).encode("latin-1", "replace")) > shape.max_items:
        raise TOO_MANY_FIELDS()  # counted before the parser builds one object per part
    header = "Content-Type: " + " ".join(content_type.splitlines()) + "\r\n\r\n"
    message = BytesParser(policy=policy.HTTP).parsebytes(header.encode("latin-1", "replace") + body)
    if message.defects or not message.is_multipart():
        raise _badly_formed()
    return _fields([_form_field(part) for part in message.iter_parts()], shape)


def _form_field(part: Message) -> tuple[str, str]:
    name = part.get_param("name", header="content-disposition")
    payload = part.get_payload(decode=True)
    if part.defects or not isinstance(name, str) or not isinstance(payload, bytes):
        raise _badly_formed()
    return name, _utf8(payload)


# ----------------------------------------------------------------- email / emails parameters


def decode_structured(value: Any, shape: Shape = DEFAULT_SHAPE) -> Any:
    """``email`` / ``emails`` as an object, a JSON string or a PHP ``serialize()`` string, with
    PHP arrays (integer-keyed objects, gaps and all) as lists."""
    if not isinstance(value, str):
        return as_lists(value)
    text = value.strip()
    if text.startswith(_JSON_START):
        return as_lists(_json(text, shape))
    if _PHP_SERIALIZED.match(text):
        value = _php_unserialize(text, shape)
        check_depth(value, shape)
        return as_lists(value)
    raise _badly_formed()


def looks_php_serialized(text: str) -> bool:
    """Whether ``text`` starts like a PHP ``serialize()`` value (``a:``, ``s:``, ``N;`` …)."""
    return _PHP_SERIALIZED.match(text) is not None


class _BudgetedStream(BytesIO):
    """phpserialize reads a few times per value: a budget of reads bounds the values it builds
    (its pure-Python parser is slow, so a million small members would cost seconds)."""

    def __init__(self, data: bytes, reads: int) -> None:
        super().__init__(data)
        self.reads_left = reads

    def read(self, size: int | None = -1, /) -> bytes:
        self.reads_left -= 1
        if self.reads_left < 0:
            raise TOO_MANY_FIELDS()
        return super().read(size)


_READS_PER_PHP_VALUE = 8  # type, ':', length digits one by one, ':', payload, terminator


def _php_unserialize(text: str, shape: Shape = DEFAULT_SHAPE) -> Any:
    try:
        stream = _BudgetedStream(text.encode("utf-8"), shape.max_items * _READS_PER_PHP_VALUE)
        value = phpserialize.load(
            stream, decode_strings=True, errors="strict", array_hook=_php_array
        )
    except (ValueError, TypeError, RecursionError) as exc:
        raise _badly_formed() from exc
    if stream.read():
        raise _badly_formed()
    return value


def check_depth(value: Any, shape: Shape = DEFAULT_SHAPE) -> None:
    """Refuse a decoded structure nested deeper than ``shape.max_depth`` (iteratively: a deep
    tree cannot exhaust the stack here). Its size is already bounded by the decoder."""
    level: list[Any] = [value]
    for _ in range(shape.max_depth):
        level = [
            child
            for node in level
            if isinstance(node, dict | list)
            for child in (node.values() if isinstance(node, dict) else node)
            if isinstance(child, dict | list)
        ]
        if not level:
            return
    raise TOO_DEEP()


def _php_array(pairs: list[tuple[Any, Any]]) -> list[Any] | dict[str, Any]:
    """A PHP array: a list when its keys are exactly 0..n-1, else a dict with str keys."""
    if [key for key, _ in pairs] == list(range(len(pairs))):
        return [item for _, item in pairs]
    return {str(key): item for key, item in pairs}


def canonical_email(raw: Any) -> dict[str, Any]:
    """The ``email`` object with aliases resolved, "not set" values dropped, shapes unified."""
    if raw == []:  # an empty PHP array
        raw = {}
    if not isinstance(raw, dict):
        raise _badly_formed()
    # A shallow copy: the normalisers build new containers where they change anything, and the
    # deep copy this replaced cost seconds and gigabytes on a large unvalidated tree.
    email = _resolve_aliases(dict(raw))
    email = _drop_empty({key: _NORMALISERS.get(key, _same)(value) for key, value in email.items()})
    template = email.get("template")
    if isinstance(template, dict) and "id" not in template and ("html" in email or "text" in email):
        del email["template"]  # N8N's unused template form next to a real body
    return email


def _resolve_aliases(email: dict[str, Any]) -> dict[str, Any]:
    if _CYRILLIC_CC in email:
        aliased = (_recipients(email.get("cc")), _recipients(email.pop(_CYRILLIC_CC)))
        email["cc"] = [item for value in aliased for item in _as_list(value)]
    misspelled = email.pop("auto_plaint_text", None)
    if _is_empty(email.get("auto_plain_text")):
        email["auto_plain_text"] = misspelled
    return email


def _is_empty(value: Any) -> bool:
    return value is None or value == "" or (isinstance(value, dict | list) and not value)


def _drop_empty(mapping: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in mapping.items() if not _is_empty(value)}


def _same(value: Any) -> Any:
    return value


def _recipients(value: Any) -> Any:
    """``to`` / ``cc`` / ``bcc`` as a list of ``{"email": ...}`` objects."""
    if _is_empty(value):
        return []
    if isinstance(value, str):
        value = [value]
    elif isinstance(value, dict):
        value = _int_keyed_values(value) or [value]
    if not isinstance(value, list):
        return value
    return [{"email": item} if isinstance(item, str) else item for item in value]


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _int_keyed_values(mapping: dict[Any, Any]) -> list[Any] | None:
    """The values of a non-empty map keyed by ints or digit strings (a PHP array), in key order."""
    order = index_order(mapping)
    return None if order is None else [mapping[key] for key in order]


def int_keyed_values(mapping: dict[Any, Any]) -> list[Any] | None:
    """A PHP array sent as an object (``{"0": …, "2": …}``, keys in any order, with gaps) as
    the list of its values in key order; None when ``mapping`` is not one."""
    return _int_keyed_values(mapping)


def _reply_to(value: Any) -> Any:
    if isinstance(value, str):
        return {"email": value}
    if isinstance(value, dict) and _int_keyed_values(value) is None:
        return value
    return _recipients(value)


def _sender(value: Any) -> Any:
    return _drop_empty(value) if isinstance(value, dict) else value


def _template(value: Any) -> Any:
    if not isinstance(value, dict):
        return value
    template = dict(value)
    if "id" not in template and "real_id" in template:
        template["id"] = template.pop("real_id")
    template["id"] = _template_id(template.get("id"))
    if _is_empty(template["id"]):
        if _is_empty(template.get("variables")):
            return None  # nothing of a template at all: "not set"
        del template["id"]  # variables without an id: error 10, unless a body is given
    variables = template.get("variables")
    template = _drop_empty(template)
    if "variables" in value and _is_empty(variables):
        template["variables"] = {}
    return template


def _template_id(value: Any) -> Any:
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return value.strip() if isinstance(value, str) else value


def _boolish(value: Any) -> Any:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        return _TRUE_WORDS.get(value.strip().lower(), value)
    return value


_NORMALISERS: dict[str, Callable[[Any], Any]] = {
    **dict.fromkeys(_RECIPIENT_KEYS, _recipients),
    "reply_to": _reply_to,
    "from": _sender,
    "template": _template,
    "auto_plain_text": _boolish,
}


# ---------------------------------------------------------------------------------- base64


def lenient_b64decode(value: str) -> bytes:
    """Decode base64 with whitespace, missing padding or the URL-safe alphabet.

    Raises ``ValueError`` (``binascii.Error`` is one) when the text still is not base64.
    """
    try:  # the usual case, without the three copies below (a large attachment is megabytes)
        return base64.b64decode(value, validate=True)
    except ValueError:
        pass
    text = "".join(value.split()).translate(_URLSAFE).rstrip("=")
    return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)


_URLSAFE = str.maketrans("-_", "+/")
