"""html_to_text(): the plain-text alternative generated from an HTML body."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailpulse.mime.plaintext import html_to_text


def test_links_keep_their_urls() -> None:
    text = html_to_text(
        '<p>Please <a href="https://example.com/confirm?id=7&amp;t=x">confirm</a>.</p>'
    )
    assert "confirm" in text
    assert "https://example.com/confirm?id=7&t=x" in text


def test_a_link_whose_text_is_its_url_shows_the_url_once() -> None:
    text = html_to_text('<a href="https://example.com/">https://example.com/</a>')
    assert text.count("https://example.com/") == 1


def test_a_link_around_an_image_keeps_its_url() -> None:
    text = html_to_text('<a href="https://example.com/buy"><img src="button.png"></a>')
    assert text == "https://example.com/buy"


def test_images_are_left_out() -> None:
    text = html_to_text('<p>Before<img src="https://example.com/logo.png" alt="Logo">after</p>')
    assert text == "Beforeafter"


def test_headings_and_paragraphs_become_separate_lines() -> None:
    text = html_to_text("<h1>Welcome</h1><p>First paragraph.</p><p>Second paragraph.</p>")
    lines = [line for line in text.splitlines() if line]
    assert len(lines) == 3
    assert lines[0].endswith("Welcome")
    assert lines[1:] == ["First paragraph.", "Second paragraph."]


def test_line_breaks_and_list_items_become_separate_lines() -> None:
    text = html_to_text("<p>one<br>two</p><ul><li>apple</li><li>pear</li></ul>")
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    assert lines == ["one", "two", "* apple", "* pear"]


def test_layout_table_cells_are_separated_and_rows_become_lines() -> None:
    text = html_to_text(
        "<table><tr><td>Order</td><td>#123</td></tr><tr><td>Total</td><td>$5</td></tr></table>"
    )
    assert text.splitlines() == ["Order #123", "Total $5"]
    assert "|" not in text and "---" not in text


def test_script_and_style_contents_do_not_leak() -> None:
    text = html_to_text(
        "<html><head><title>T</title><style>p { color: red }</style></head><body>"
        "<script>var secret = 'x'; document.write('<p>LEAK</p>');</script>"
        "<p>Visible</p><style>.a { display: none }</style></body></html>"
    )
    assert text == "Visible"


@pytest.mark.parametrize("tag", ["script", "style", "head"])
def test_a_stray_closing_tag_does_not_hide_the_rest(tag: str) -> None:
    assert html_to_text(f"</{tag}><p>Still here</p>") == "Still here"


@pytest.mark.parametrize(
    "html",
    [
        "<p>unclosed <b>bold <i>italic",
        "</div></p></span>text after stray end tags",
        '<<<>>> < a href=">broken</a',
        '<a href="',
        "<table><td>cell without row<tr>row without table",
        "<script>never closed",
        "<!-- comment never closed",
        "<![CDATA[ odd ]]><p>x</p>",
        "&#0; &#xD800; &#99999999; &bogus; &amp",
        "<p>\x00nul\x00</p>",
        "",
    ],
)
def test_malformed_html_does_not_raise(html: str) -> None:
    assert isinstance(html_to_text(html), str)


@given(st.text())
def test_any_text_gives_tidy_text(html: str) -> None:
    text = html_to_text(html)
    assert not re.search(r"[^\S\n]\n", text + "\n")  # no trailing whitespace on any line
    assert "\n\n\n\n" not in text  # at most two blank lines in a row
    assert not text.startswith("\n") and not text.endswith("\n")


def test_long_paragraphs_are_not_wrapped() -> None:
    sentence = " ".join(["word"] * 100)
    assert html_to_text(f"<p>{sentence}</p>") == sentence


def test_no_markdown_escapes_or_emphasis_markers_are_added() -> None:
    html = "<p>1. Click <b>here</b> - then [copy] the *code* snake_case</p>"
    assert html_to_text(html) == "1. Click here - then [copy] the *code* snake_case"


def test_entities_and_non_ascii_come_out_as_characters() -> None:
    text = html_to_text("<p>Caf&eacute; &mdash; &laquo;Привет&raquo; &#x1F600; &lt;b&gt;</p>")
    assert text == "Café — «Привет» 😀 <b>"


def test_trailing_whitespace_is_stripped_and_long_blank_runs_are_cut_to_two() -> None:
    text = html_to_text("<p>top   </p>" + "<br>" * 8 + "<p>bottom</p>")
    assert text == "top\n\n\nbottom"


def test_blank_input_gives_empty_text() -> None:
    assert html_to_text("  <p> </p>\n<br>  ") == ""


def test_a_link_reads_as_its_text_then_its_url() -> None:
    text = html_to_text('<p>Track it <a href="https://acme.example/t/1">here</a>.</p>')
    assert text == "Track it here (https://acme.example/t/1)."


def test_a_mailto_link_whose_text_is_the_address_shows_it_once() -> None:
    text = html_to_text('<p>Write to <a href="mailto:s@acme.example">s@acme.example</a></p>')
    assert text == "Write to s@acme.example"


def test_in_page_anchors_show_their_text_only() -> None:
    assert html_to_text('<a href="#top">Back to top</a>') == "Back to top"


def test_nested_divs_are_not_indented() -> None:
    assert html_to_text("<div><div><div><p>Hello</p></div></div></div>") == "Hello"


@pytest.mark.parametrize("depth", [250, 5000])
def test_deeply_nested_html_does_not_raise(depth: int) -> None:
    html = "<div>" * depth + "deep" + "</div>" * depth
    assert isinstance(html_to_text(html), str)


def test_control_characters_and_lone_surrogates_are_dropped() -> None:
    assert html_to_text("<p>a\x00b\x01c\ud800d</p>") == "abcd"
