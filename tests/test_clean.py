"""html_to_text / clean_title: feed HTML → clean text."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.clean import (
    _REMOVED_CHARS,
    clean_title, fast_markup_to_text, html_to_text, normalize_whitespace, soup_markup_to_text,
)
from tests.corpus_support import corpus_fields


@pytest.mark.parametrize("html, text", [
    ("<p>a</p><p>b</p>", "a\nb"),
    ("a<br>b", "a\nb"),
    ("a<br/>b<BR />c", "a\nb\nc"),
    ("<ul><li>one</li><li>two</li></ul>", "one\ntwo"),
    ("<div>x</div><div>y</div>", "x\ny"),
    ("<h1>Head</h1>body", "Head\nbody"),
    ("<table><tr><td>a</td><td>b</td></tr><tr><td>c</td></tr></table>", "a b\nc"),
    ("<b>Hel</b>lo <i>world</i>", "Hello world"),
    ("<a href='https://x.example/'>link</a>text", "linktext"),
])
def test_blocks_separate_words_and_inline_elements_do_not(html: str, text: str) -> None:
    assert html_to_text(html) == text


@pytest.mark.parametrize("html", [
    "<script>alert('x')</script>kept",
    "<style>p { color: red }</style>kept",
    "<noscript>enable js</noscript>kept",
    "<iframe src='https://ads.example/'>frame text</iframe>kept",
    "<object data='x'>fallback</object><embed src='y'>kept",
    "<svg><text>chart label</text></svg>kept",
    "<form><label>Email</label><input name=e><button>Subscribe</button></form>kept",
    "<video src='v.mp4'>Your browser does not support video</video>kept",
    "<!-- a comment -->kept",
    "<img src='https://feeds.feedburner.com/~r/example/~4/abc' width='1' height='1'/>kept",
    "<img src='https://pixel.wp.com/b.gif?host=x' alt='tracker'>kept",
    "<img src='photo.jpg' alt='A photo'>kept",
])
def test_non_text_elements_and_tracking_pixels_leave_no_trace(html: str) -> None:
    assert html_to_text(html) == "kept"


def test_entities_are_decoded() -> None:
    assert html_to_text("<p>Caf&eacute; &amp; cr&#232;me &#x2014; &quot;ok&quot;</p>") == 'Café & crème — "ok"'
    assert html_to_text("AT&amp;T &lt;3") == "AT&T <3"  # no markup: unescaped without the HTML parser


def test_invisible_characters_and_nbsp() -> None:
    assert html_to_text("infor\u00admation\u200b here\u00a0and\u202fthere\ufeff") == "information here and there"
    assert html_to_text("<p>ze\u200dro\u2060width</p>") == "zerowidth"
    assert html_to_text("bell\x07 and\x00 nul") == "bell and nul"


def test_whitespace_is_collapsed_and_paragraphs_are_single_newlines() -> None:
    assert html_to_text("  a \t  b  \n\n\n  c  ") == "a b\nc"
    assert html_to_text("<p>  first   paragraph </p>\n\n<p></p><p> second </p>") == "first paragraph\nsecond"
    assert normalize_whitespace("\r\n x \r\n") == "x"


_WHITESPACE = [chr(code) for code in range(0x3000 + 1) if chr(code).isspace()] + ["\u00ad", "\u200b", "\x1c", "\x85"]


def _whitespace_reference(text: str) -> str:
    """normalize_whitespace written with regular expressions: the specification it is checked against."""
    text = re.sub("[" + "".join(re.escape(chr(code)) for code in sorted(_REMOVED_CHARS)) + "]", "", text)
    text = re.sub(r"[^\S\n]+", " ", text)
    return re.sub(r"\s*\n\s*", "\n", text).strip()


def test_normalize_whitespace_matches_its_regular_expression_reference() -> None:
    counts = {"examples": 0, "multiline": 0}

    line = st.text(alphabet=st.sampled_from(_WHITESPACE + list("ab\n")) | st.characters(), max_size=30)

    @settings(max_examples=3000, deadline=None, database=None)
    @given(line | st.lists(line, min_size=2, max_size=5).map("\n".join))
    def check(text: str) -> None:
        counts["examples"] += 1
        counts["multiline"] += "\n" in text
        assert normalize_whitespace(text) == _whitespace_reference(text)

    check()
    print(f"normalize_whitespace: {counts['examples']} examples, {counts['multiline']} with line breaks")
    assert counts["multiline"] >= 0.2 * counts["examples"]


def test_twice_escaped_html_is_unwrapped_once() -> None:
    assert html_to_text("&lt;p&gt;Hello &lt;b&gt;world&lt;/b&gt;&lt;/p&gt;") == "Hello world"
    assert html_to_text("<p>&lt;p&gt;Hello&lt;/p&gt;</p>") == "Hello"
    assert html_to_text("5 &lt; 6 and 7 &gt; 3") == "5 < 6 and 7 > 3"


def test_plain_text_fast_path_keeps_text() -> None:
    assert html_to_text("Plain headline, no markup") == "Plain headline, no markup"
    assert html_to_text("") == ""


def test_clean_title_is_one_line() -> None:
    assert clean_title("<p>Breaking:</p><p>talks <b>resume</b></p>") == "Breaking: talks resume"
    assert clean_title("Two\nlines &amp; more") == "Two lines & more"


@pytest.mark.parametrize("garbage", [
    "<", ">", "<<<>>>", "&", "&#;", "&#xZZ;", "&#99999999;", "<!", "<![CDATA[", "<!DOCTYPE", "<?php",
    "</", "<a href='", "<div" * 2000, "<div>" * 5000 + "deep", "<p>\x00</p>", "\ud800<p>lone surrogate</p>",
    "<![if !supportLists]>x<![endif]>", "<table><td>cell", "<math><mi>x</mi></math>y",
])
def test_garbage_never_raises(garbage: str) -> None:
    result = html_to_text(garbage)
    assert isinstance(result, str)
    assert "\n\n" not in result


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("<>/&;#!-=\"' abpdivscrt\u00ad\u00a0\n")) | st.characters(), max_size=200))
def test_html_to_text_never_raises_property(text: str) -> None:
    result = html_to_text(text)
    assert result == result.strip()
    assert "\u00ad" not in result and "\u00a0" not in result
    assert clean_title(text).count("\n") == 0


def test_huge_fields_are_cut_before_parsing() -> None:
    from monitor.clean import MAX_HTML_CHARS

    text = html_to_text("<p>word </p>" * (MAX_HTML_CHARS // 5))
    assert len(text) <= MAX_HTML_CHARS
    assert text.startswith("word\nword")


# --- the fast path (regular-expression tokeniser) against the BeautifulSoup path -----------------------------

def _assert_paths_agree(markup: str) -> bool:
    """Both paths give the same text; True when the fast path took the markup."""
    fast = fast_markup_to_text(markup)
    if fast is not None:
        assert fast == soup_markup_to_text(markup), markup
    assert html_to_text(markup) == html_to_text(markup, fast_path=False), markup
    return fast is not None


@pytest.mark.parametrize("folder, suffixes, min_share", [
    ("real-feeds", (".xml", ".rss", ".atom"), 0.80),
    ("feedparser-tests", (".xml", ".json"), 0.75),
])
def test_fast_path_agrees_with_soup_on_corpus_fields(
    corpora: Path, folder: str, suffixes: tuple[str, ...], min_share: float,
) -> None:
    fields = corpus_fields(corpora / folder, suffixes)
    markup = [field for field in fields if "<" in field]
    fast = sum(_assert_paths_agree(field) for field in markup)
    for field in fields:
        if "<" not in field:
            assert html_to_text(field) == html_to_text(field, fast_path=False)
    share = fast / len(markup)
    print(f"{folder}: {len(fields)} fields, {len(markup)} with '<', fast path took {fast} ({share:.1%})")
    assert len(markup) > 500
    assert share >= min_share


# Markup from a small alphabet. "Simple" pieces are ones the fast path may accept (unclosed, unmatched and
# self-closing tags, quoted ">" in attributes, entities of every kind it reads); "odd" pieces make it give up.
_SIMPLE_TAGS = ["p", "P", "div", "li", "ul", "h2", "pre", "td", "th", "b", "a", "A", "span", "em", "font",
                "br", "BR", "img", "wbr", "hr", "source"]
_ODD_TAGS = ["script", "style", "iframe", "svg", "video", "input", "form", "noscript", "title", "textarea",
             "xmp", "plaintext", "template", "rt"]
_SIMPLE_ATTRIBUTES = [
    ' href="https://x.example/?a=1&amp;b=2"', " class='c'", ' title="a>b"', " title='x\"<y>'", " data-x=bare",
    " checked", ' alt = "spaced"', " a=b/c",
]
_ODD_ATTRIBUTES = [" src=x/", " x='unclosed", ' y="a>b', " z==1", ' u="1"v="2"', " \u00a0nbsp=1", " w=\u00a0"]
_SIMPLE_TEXT = [
    "word", "Two words", " ", "  ", "\n", "\t", "\x0c", "\r\n", "\u00a0", "\u00ad", "é", ">", "&amp;",
    "&lt;b&gt;", "&quot;", "&nbsp;", "&eacute;", "&foo;", "&amp.x;", "&#39;", "&#x27;", "&#150;", "&#0;", "&#12;",
    "&#10;", "&#32;", "& ", "a&b;c", "AT&T ", "</br>", "</img>", "<img></img>",
]
_ODD_TEXT = [
    "&amp", "&nbsp", "&", "&#", "&#x;", "&#99999999;", "AT&T", "<", "< ", "<1", "a < b", "<!-- c -->",
    "<!DOCTYPE html>", "<![CDATA[cdata]]>", "<?php x ?>", "</>", "</ p>", "</p x>", "<a", "<b/ >", "<o:p>",
]


def _markup(tags: list[str], attributes: list[str], texts: list[str]) -> st.SearchStrategy[str]:
    name = st.sampled_from(tags)
    start = st.tuples(name, st.lists(st.sampled_from(attributes), max_size=2).map("".join),
                      st.sampled_from(["", "", "", "/", " /"])).map(lambda t: f"<{t[0]}{t[1]}{t[2]}>")
    end = st.tuples(name, st.sampled_from(["", "", " ", "\n"])).map(lambda t: f"</{t[0]}{t[1]}>")
    return st.lists(st.one_of(start, end, st.sampled_from(texts)), max_size=30).map("".join)


_GENERATED_MARKUP = st.one_of(
    _markup(_SIMPLE_TAGS, _SIMPLE_ATTRIBUTES + [""] * 4, _SIMPLE_TEXT),
    _markup(_SIMPLE_TAGS * 3 + _ODD_TAGS, _SIMPLE_ATTRIBUTES + _ODD_ATTRIBUTES + [""] * 8,
            _SIMPLE_TEXT * 3 + _ODD_TEXT),
)


def test_fast_path_agrees_with_soup_on_generated_markup() -> None:
    counts = {"examples": 0, "fast": 0}

    @settings(max_examples=3000, deadline=None, database=None)
    @given(_GENERATED_MARKUP)
    def check(markup: str) -> None:
        counts["examples"] += 1
        counts["fast"] += _assert_paths_agree(markup)

    check()
    print(f"generated markup: the fast path took {counts['fast']} of {counts['examples']} examples")
    assert counts["fast"] >= 0.4 * counts["examples"]


def test_exactly_the_invisible_and_control_characters_are_removed() -> None:
    """Soft hyphen, zero-width characters, the BOM, the Mongolian vowel separator and the C0/C1 controls
    (except tab, newline, carriage return) vanish; every other BMP character leaves a trace."""
    expected = {0x00AD, 0x200B, 0x200C, 0x200D, 0x2060, 0xFEFF, 0x180E}
    expected |= {code for code in range(0x20) if code not in (0x09, 0x0A, 0x0D)} | set(range(0x7F, 0xA0))
    removed = {code for code in range(0x10000) if normalize_whitespace(f"a{chr(code)}b") == "ab"}
    assert removed == expected
