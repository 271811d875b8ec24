"""The resubscribe confirmation's words, in the languages SendPulse offers.

One TOML file per language ships in the package (``mailpulse/texts/resubscribe/<lang>.toml``):
the email's ``subject``, ``text`` and ``html``, and under ``[page]`` the strings of the link's
pages. Placeholders are ``string.Template``'s ``$name``: ``$link``, ``$email`` and ``$sender``
(no template language is needed for three fixed substitutions). In HTML every value is
escaped first; a placeholder a text does not know is an error, found by the unit tests.
"""

from __future__ import annotations

import functools
import html
import tomllib
from dataclasses import dataclass
from importlib import resources
from string import Template
from typing import Any

TEXTS_DIR = ("texts", "resubscribe")
PAGE_KEYS = ("title", "question", "button", "done", "used", "expired")


@dataclass(frozen=True)
class Confirmation:
    subject: str
    text: str
    html: str


@dataclass(frozen=True)
class PageText:
    """The link pages' strings in one language, placeholders filled, not yet escaped."""

    lang: str
    title: str
    question: str
    button: str
    done: str
    used: str
    expired: str


@functools.cache
def texts(lang: str) -> dict[str, Any]:
    """The parsed file of one language (read once per process)."""
    folder = resources.files("mailpulse").joinpath(*TEXTS_DIR)
    with folder.joinpath(f"{lang}.toml").open("rb") as handle:
        return tomllib.load(handle)


def _fill(template: str, values: dict[str, str]) -> str:
    return Template(template).substitute(values)


def render(lang: str, *, link: str, email: str, sender: str) -> Confirmation:
    """The confirmation email in ``lang`` (one of core.resubscribe.LANGUAGES)."""
    found = texts(lang)
    plain = {"link": link, "email": email, "sender": sender}
    escaped = {name: html.escape(value, quote=True) for name, value in plain.items()}
    return Confirmation(
        subject=_fill(found["subject"], plain),
        text=_fill(found["text"], plain),
        html=_fill(found["html"], escaped),
    )


def page(lang: str, *, email: str, sender: str) -> PageText:
    """The link pages' strings in ``lang``; the caller escapes them for HTML."""
    strings = texts(lang)["page"]
    values = {"email": email, "sender": sender}
    return PageText(lang, **{key: _fill(strings[key], values) for key in PAGE_KEYS})
