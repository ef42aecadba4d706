"""html_to_text / clean_title: feed HTML → clean text."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.clean import clean_title, html_to_text, normalize_whitespace


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
