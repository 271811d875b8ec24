"""PHP arrays as they arrive on the wire, turned into the JSON they stand for.

A PHP array is one type for lists and maps. After ``array_filter`` or ``array_unique`` a list
keeps its old keys (``[0 => "a", 2 => "c"]``), and ``json_encode`` then writes an object
(``{"0":"a","2":"c"}``), ``serialize()`` an int-keyed array (``a:2:{i:0;…i:2;…}``). And
``http_build_query`` (hand-written PHP calls, Guzzle's ``form_params``) writes nested arrays
as bracketed field names: ``email[to][0][email]=…&emails[]=…``.

Two pure functions undo that, and :mod:`mailpulse.api.compat` applies them to every body, query
string and ``email`` / ``emails`` parameter, whatever the endpoint:

- :func:`as_lists`: an object whose keys are all non-negative integers (``"0"``, ``"2"``, ``"10"``;
  not ``"01"`` or ``"-1"``, which PHP keeps as strings too) is a list, in the order of its keys.
  Except where the API defines a map keyed by names (:data:`NAMED_MAPS`: ``attachments``,
  ``attachments_binary`` and template ``variables``), whose keys are kept: a file may be called
  ``1``. The values inside those maps are converted as usual.
- :func:`nest_fields`: form fields with bracketed names become nested objects, as PHP's own
  ``parse_str`` builds them (``a[]`` appends at the next integer key). A name that is not
  ``base[key]…[key]`` exactly stays a plain field, as before. Work is bounded before anything is
  built: the fields plus their bracket groups are counted against the item limit, the groups of
  one name against the depth limit. A field that would be both a value and an object
  (``a=1&a[b]=2``, ``a[b]=1&a[b][c]=2``) is refused as badly formed; a value given twice keeps
  the last, as for plain fields.
"""

from __future__ import annotations

import re
from typing import Any

from mailpulse.core.errors import BADLY_FORMED, TOO_DEEP, TOO_MANY_FIELDS

# Maps whose keys are names the sender chose, never list positions.
NAMED_MAPS = frozenset({"attachments", "attachments_binary", "variables"})

_CONTAINERS = (dict, list)
_BRACKETED = re.compile(r"([^\[\]]+)((?:\[[^\[\]]*\])+)")
_SEGMENT = re.compile(r"\[([^\[\]]*)\]")
# Beyond PHP's 64-bit int a key is a string in PHP too; it never counts towards ``a[]``.
_MAX_INDEX_DIGITS = 18


# ------------------------------------------------------------------------------------ lists


def as_lists(value: Any, key: Any = None) -> Any:
    """``value`` with every integer-keyed object (a PHP array) turned into a list.

    ``key`` is the name ``value`` sits under: under one of :data:`NAMED_MAPS` an object stays an
    object. The containers are the decoders' own fresh ones, so they are changed in place (a
    send's body is walked on every request; rebuilding it cost a tenth of its decoding), and the
    result is ``value`` itself unless ``value`` became a list. Recursive: the callers have bounded
    the depth (compat's ``MAX_DEPTH``) beforehand.
    """
    if isinstance(value, list):
        for position, item in enumerate(value):
            if isinstance(item, _CONTAINERS):
                value[position] = as_lists(item)
        return value
    if not isinstance(value, dict):
        return value
    for name, item in value.items():
        if isinstance(item, _CONTAINERS):
            converted = as_lists(item, name)
            if converted is not item:
                value[name] = converted  # a value replaced, no key added: safe while iterating
    if key in NAMED_MAPS:
        return value
    order = index_order(value)
    return value if order is None else [value[name] for name in order]


def values_as_lists(mapping: dict[str, Any]) -> dict[str, Any]:
    """A body or query: an object of named parameters, itself never a list (in place)."""
    for name, value in mapping.items():
        if isinstance(value, _CONTAINERS):
            mapping[name] = as_lists(value, name)
    return mapping


def index_order(mapping: dict[Any, Any]) -> list[Any] | None:
    """The keys of a non-empty object keyed only by non-negative integers (as ints or canonical
    digit strings), in integer order; None for any other object."""
    if not mapping:
        return None
    texts = {}
    for name in mapping:
        text = _index_text(name)
        if text is None:
            return None
        texts[name] = text
    # Canonical digit strings sort as integers by (length, text): no int() of a 5,000-digit key
    # (Python refuses those with a ValueError).
    return sorted(mapping, key=lambda name: (len(texts[name]), texts[name]))


def _index_text(name: Any) -> str | None:
    if isinstance(name, str):  # str methods: a regex match per key cost more than the walk
        if name.isascii() and name.isdigit() and (name[0] != "0" or name == "0"):
            return name
        return None
    if isinstance(name, int) and not isinstance(name, bool) and name >= 0:
        return str(name)
    return None


# ----------------------------------------------------------------------------- form fields


def nest_fields(pairs: list[tuple[str, str]], *, max_items: int, max_depth: int) -> dict[str, Any]:
    """Form fields (name, value) in order, bracketed names nested; lists not yet made (see
    :func:`as_lists`)."""
    if not any("[" in name for name, _ in pairs):
        return dict(pairs)  # every plain form: the token request, the old SDKs' ``email=…``
    # Where each name's brackets start (its length if it has none): positions, not copies, so
    # counting costs no memory; nothing is cut out of a name before the counts pass.
    starts = [_brackets_start(name, max_depth) for name, _ in pairs]
    groups = sum(name.count("[", start) for (name, _), start in zip(pairs, starts, strict=True))
    if len(pairs) + groups > max_items:
        raise TOO_MANY_FIELDS()
    tree = _FieldTree()
    for (name, value), start in zip(pairs, starts, strict=True):
        tree.put([name[:start], *_SEGMENT.findall(name, start)], value)
    return tree.root


def _brackets_start(name: str, max_depth: int) -> int:
    """Where ``[key]…[key]`` begins in ``base[key]…[key]``; ``len(name)`` for any other name."""
    match = _BRACKETED.fullmatch(name)
    if match is None:
        return len(name)
    if name.count("[", match.start(2)) + 1 > max_depth:  # the body is one level, as in JSON
        raise TOO_DEEP()
    return match.start(2)


class _FieldTree:
    """The nested objects PHP's ``parse_str`` would build, with string keys."""

    def __init__(self) -> None:
        self.root: dict[str, Any] = {}
        self._next_index: dict[int, int] = {}  # id(object) -> the key ``[]`` appends at

    def put(self, path: list[str], value: str) -> None:
        """Set ``value`` at ``path``: a field name (any string, ``""`` too) and then its
        bracket segments, where ``""`` is PHP's ``[]`` (the next integer key)."""
        node = self.root
        *parents, last = path
        for depth, name in enumerate(parents):
            name = self._key(node, name) if depth else name
            child = node.get(name)
            if child is None:
                child = node[name] = {}
                self._taken(node, name)
            elif not isinstance(child, dict):
                raise BADLY_FORMED()  # ``a=1&a[b]=2``: a value and an object at once
            node = child
        last = self._key(node, last) if parents else last
        if isinstance(node.get(last), dict):
            raise BADLY_FORMED()  # ``a[b]=1&a=2``
        node[last] = value
        self._taken(node, last)

    def _key(self, node: dict[str, Any], name: str) -> str:
        return str(self._next_index.get(id(node), 0)) if name == "" else name

    def _taken(self, node: dict[str, Any], name: str) -> None:
        if _index_text(name) is not None and len(name) <= _MAX_INDEX_DIGITS:
            following = int(name) + 1
            if following > self._next_index.get(id(node), 0):
                self._next_index[id(node)] = following
