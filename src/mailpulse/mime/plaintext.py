"""A readable text/plain alternative generated from an HTML body, with html2text.

Configuration: no hard wrapping (``body_width = 0``; the MIME layer keeps lines short),
images dropped, Unicode characters kept as they are, links inline as ``[text](url)`` (a bare
``<url>`` when the text is the URL), no emphasis markers, and layout tables (most HTML email
is built from them) read as text rather than drawn as Markdown tables. Around html2text:

* its Markdown escaping is off: a paragraph starting ``1. Click`` stays ``1. Click``, not
  ``1\\. Click``;
* an end tag of ``head``/``style``/``script`` that was never opened is ignored: html2text
  would count it below zero and drop every word after it;
* a link whose only content was an image keeps its URL instead of becoming ``[](url)``.
"""

from __future__ import annotations

import re
from collections import Counter

import html2text

__all__ = ["html_to_text"]

_HIDDEN = frozenset({"head", "style", "script"})  # html2text counts these to stay quiet
_EMPTY_LINK = re.compile(r"\[\]\(([^()\s]+)(?: \"[^\"]*\")?\)")
_TRAILING_SPACE = re.compile(r"[^\S\n]+$", re.MULTILINE)
_BLANK_LINES = re.compile(r"\n{4,}")  # three or more blank lines


class _Converter(html2text.HTML2Text):
    def __init__(self) -> None:
        super().__init__()
        self.body_width = 0
        self.ignore_images = True
        self.unicode_snob = True
        self.ignore_links = False
        self.inline_links = True
        self.ignore_emphasis = True
        self.ignore_tables = True
        self._open: Counter[str] = Counter()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _HIDDEN:
            self._open[tag] += 1
        super().handle_starttag(tag, attrs)

    def handle_endtag(self, tag: str) -> None:
        if tag in _HIDDEN:
            if not self._open[tag]:
                return
            self._open[tag] -= 1
        super().handle_endtag(tag)
        if tag in ("td", "th"):
            self.o(" ")  # with ignore_tables, adjacent cells would run together

    def handle_data(self, data: str, entity_char: bool = False) -> None:
        # entity_char=True is html2text's own switch for "do not Markdown-escape this text".
        super().handle_data(data, True)


def html_to_text(html: str) -> str:
    """Plain text for ``html``: trailing whitespace stripped from every line, runs of three or
    more blank lines cut to two, no blank lines at either end (the first line keeps its
    indentation, so a leading list stays aligned). Malformed HTML does not raise."""
    text = _Converter().handle(html)
    text = _EMPTY_LINK.sub(r"\1", text)
    text = _TRAILING_SPACE.sub("", text)
    return _BLANK_LINES.sub("\n\n\n", text).strip("\n")
