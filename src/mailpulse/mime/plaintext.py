"""A readable text/plain alternative generated from an HTML body, with inscriptis.

Why inscriptis (Apache-2.0): it lays HTML out as text the way a browser would (block elements
on their own lines, list bullets, table rows as lines with their cells side by side, which
suits the layout tables most HTML email is built from), on lxml's C parser, which copes with
any malformed markup. The previous converter, html2text, is GPL-3.0 and cannot ship with an
MIT project; markdownify (MIT) recurses once per nesting level in Python and raised
RecursionError on a few hundred nested ``<div>``s.

Choices on top of inscriptis:

* the "strict" CSS profile (browser defaults): nested ``<div>``s are not indented;
* table cells separated by one space;
* images dropped; links written as ``text (url)``, or the bare URL when the link has no text
  or its text is the URL (a ``mailto:`` link whose text is the address shows the address
  once); ``#anchor`` and ``javascript:`` links show their text only;
* characters that lxml cannot take (NUL, other C0 controls, lone surrogates) are dropped
  before parsing, so no input raises;
* lxml stops building the tree at 255 levels of nesting, so HTML nested deeper than that
  loses its innermost text instead of exhausting the stack (no real email nests that deep).
"""

from __future__ import annotations

import re
from typing import Any

from inscriptis import get_text
from inscriptis.css_profiles import CSS_PROFILES
from inscriptis.model.config import ParserConfig
from inscriptis.model.tag import CustomHtmlTagHandlerMapping

__all__ = ["html_to_text"]

# Private-use characters mark where a link's text starts and ends; any in the input are removed.
_OPEN, _MID, _CLOSE = "\ue000", "\ue001", "\ue002"
_UNPARSEABLE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff\ue000-\ue002]")
_LINK = re.compile(f"{_OPEN}([^{_OPEN}{_MID}{_CLOSE}]*){_MID}([^{_CLOSE}]*){_CLOSE}")
_TRAILING_SPACE = re.compile(r"[^\S\n]+$", re.MULTILINE)
_BLANK_LINES = re.compile(r"\n{4,}")  # three or more blank lines


def _a_start(state: Any, attrs: dict[str, str]) -> None:
    href = (attrs.get("href") or "").strip()
    state.link_target = href
    if href:
        state.tags[-1].write(_OPEN)


def _a_end(state: Any) -> None:
    if state.link_target:
        state.tags[-1].write(f"{_MID}{state.link_target}{_CLOSE}")


_CONFIG = ParserConfig(
    css=CSS_PROFILES["strict"],
    display_images=False,
    display_links=True,
    table_cell_separator=" ",
    custom_html_tag_handler_mapping=CustomHtmlTagHandlerMapping(
        start_tag_mapping={"a": _a_start}, end_tag_mapping={"a": _a_end}
    ),
)


def _link(match: re.Match[str]) -> str:
    text, url = match.group(1), match.group(2)
    shown = " ".join(text.split())
    lowered = url.lower()
    if lowered.startswith(("#", "javascript:")):
        return text
    if not shown or shown == url:
        return url
    if lowered.startswith("mailto:") and shown == url[len("mailto:") :]:
        return text
    return f"{text} ({url})"


def html_to_text(html: str) -> str:
    """Plain text for ``html``: trailing whitespace stripped from every line, runs of three or
    more blank lines cut to two, no blank lines at either end (the first line keeps its
    indentation, so a leading list stays aligned). Malformed HTML does not raise."""
    text = get_text(_UNPARSEABLE.sub("", html), _CONFIG)
    text = _LINK.sub(_link, text)
    text = text.replace(_OPEN, "").replace(_MID, "").replace(_CLOSE, "")
    text = _TRAILING_SPACE.sub("", text)
    return _BLANK_LINES.sub("\n\n\n", text).strip("\n")
