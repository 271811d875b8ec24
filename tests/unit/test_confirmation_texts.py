"""mime/confirmation.py and the texts it ships: every language complete, every placeholder
known, every value escaped in HTML, and the files part of the package."""

from __future__ import annotations

import fnmatch
import html
import tomllib
from html.parser import HTMLParser
from importlib import resources
from pathlib import Path

import pytest

from mailpulse.core.resubscribe import LANGUAGES
from mailpulse.mime import confirmation

ROOT = Path(__file__).resolve().parents[2]
LINK = "https://mail.example.net/resubscribe/abc-def?x=1&y=<2>\"'"
EMAIL = "rita@example.org"
SENDER = "news@example.com"
HTML_LANG = {"ua": "uk"}


def test_the_languages_are_sendpulses_and_each_has_its_file() -> None:
    assert set(LANGUAGES) == {"ru", "en", "ua", "tr", "es", "pt"}
    folder = resources.files("mailpulse").joinpath(*confirmation.TEXTS_DIR)
    assert {f.name for f in folder.iterdir() if f.name.endswith(".toml")} == {
        f"{lang}.toml" for lang in LANGUAGES
    }


@pytest.mark.parametrize("lang", LANGUAGES)
def test_each_language_has_every_text_and_nothing_else(lang: str) -> None:
    found = confirmation.texts(lang)
    assert set(found) == {"subject", "text", "html", "page"}
    assert set(found["page"]) == set(confirmation.PAGE_KEYS)


@pytest.mark.parametrize("lang", LANGUAGES)
def test_each_confirmation_renders_with_the_link_in_both_parts(lang: str) -> None:
    rendered = confirmation.render(lang, link=LINK, email=EMAIL, sender=SENDER)
    assert SENDER in rendered.subject and "$" not in rendered.subject
    assert "\n" not in rendered.subject
    assert LINK in rendered.text and EMAIL in rendered.text and SENDER in rendered.text
    assert "$" not in rendered.text and "$" not in rendered.html
    # In HTML the link is escaped, never raw: it cannot close the attribute it sits in.
    assert LINK not in rendered.html
    assert html.escape(LINK, quote=True) in rendered.html
    assert f'<html lang="{HTML_LANG.get(lang, lang)}">' in rendered.html


@pytest.mark.parametrize("lang", LANGUAGES)
def test_each_html_body_links_only_to_the_link(lang: str) -> None:
    rendered = confirmation.render(lang, link=LINK, email=EMAIL, sender=SENDER)

    class Hrefs(HTMLParser):
        def __init__(self) -> None:
            super().__init__()
            self.hrefs: list[str] = []

        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            self.hrefs += [value or "" for name, value in attrs if name == "href"]

    parser = Hrefs()
    parser.feed(rendered.html)
    assert parser.hrefs == [LINK, LINK]  # the button and the copyable link


def test_markup_in_an_address_is_escaped_in_html() -> None:
    rendered = confirmation.render("en", link=LINK, email="<b>@example.org", sender=SENDER)
    assert "<b>@example.org" not in rendered.html
    assert "&lt;b&gt;@example.org" in rendered.html


def test_the_translations_are_real_no_two_languages_share_a_text() -> None:
    for key in ("subject", "text", "html"):
        values = [confirmation.texts(lang)[key] for lang in LANGUAGES]
        assert len(set(values)) == len(LANGUAGES), key
    for key in confirmation.PAGE_KEYS:
        values = [confirmation.texts(lang)["page"][key] for lang in LANGUAGES]
        assert len(set(values)) == len(LANGUAGES), key


def test_the_ukrainian_and_russian_texts_are_in_their_own_alphabets() -> None:
    ukrainian = confirmation.texts("ua")["text"]
    russian = confirmation.texts("ru")["text"]
    assert set("ієї") & set(ukrainian) and not set("ыэъ") & set(ukrainian)
    assert set("ыэ") & set(russian) and not set("ієї") & set(russian)


@pytest.mark.parametrize("lang", LANGUAGES)
def test_each_page_text_renders(lang: str) -> None:
    text = confirmation.page(lang, email=EMAIL, sender=SENDER)
    assert text.lang == lang
    assert EMAIL in text.question and SENDER in text.question
    for key in confirmation.PAGE_KEYS:
        value = getattr(text, key)
        assert value.strip() and "$" not in value, key


def test_the_texts_are_declared_package_data_so_the_wheel_carries_them() -> None:
    with (ROOT / "pyproject.toml").open("rb") as handle:
        globs = tomllib.load(handle)["tool"]["setuptools"]["package-data"]["mailpulse"]
    package = ROOT / "src" / "mailpulse"
    files = sorted((package / "/".join(confirmation.TEXTS_DIR)).glob("*.toml"))
    assert files
    for path in files:
        relative = path.relative_to(package).as_posix()
        assert any(fnmatch.fnmatch(relative, pattern) for pattern in globs), relative
