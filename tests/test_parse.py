"""parse_feed: feedparser on bytes (RSS, Atom), JSON Feed, error kinds, and that nothing is ever fetched."""

from __future__ import annotations

import json
import xml.sax
from datetime import datetime, timezone
from pathlib import Path

import feedparser.api as feedparser_api
import feedparser.mixin as feedparser_mixin
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.errors import ParseError
from monitor.parse import parse_feed
from monitor.saxdriver import BufferedExpatParser

CORPORA = Path(__file__).resolve().parents[1].parent / "shared" / "corpora"
UTC = timezone.utc

RSS20 = b"""<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0" xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:content="http://purl.org/rss/1.0/modules/content/">
<channel>
  <title>Example News</title>
  <link>https://news.example.org/</link>
  <language>fr-FR</language>
  <ttl>30</ttl>
  <item>
    <title>Sahel: &lt;b&gt;talks&lt;/b&gt; resume in Bamako</title>
    <link>https://news.example.org/2026/talks</link>
    <guid isPermaLink="false">news-example-4711</guid>
    <description>&lt;p&gt;Short summary&lt;/p&gt;</description>
    <content:encoded><![CDATA[<p>The long body of the article.</p>]]></content:encoded>
    <pubDate>Tue, 17 Feb 2026 10:00:00 +0200</pubDate>
    <dc:creator>Awa Traor\xc3\xa9</dc:creator>
    <category>Mali</category>
    <category>Politics</category>
    <enclosure url="https://cdn.example.org/a.mp3" type="audio/mpeg" length="123"/>
  </item>
  <item>
    <title>Second</title>
    <guid>https://news.example.org/2026/second</guid>
  </item>
  <item>
    <title>Third</title>
    <link>https://news.example.org/2026/third</link>
    <guid isPermaLink="true">https://news.example.org/2026/third</guid>
  </item>
</channel>
</rss>"""

ATOM10 = b"""<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom" xml:lang="de-DE">
  <title>Atom Example</title>
  <link rel="alternate" href="https://atom.example.org/"/>
  <id>urn:uuid:60a76c80-d399-11d9-b91C-0003939e0af6</id>
  <updated>2026-02-17T08:00:00Z</updated>
  <entry>
    <title type="html">Caf&amp;eacute; &lt;i&gt;news&lt;/i&gt;</title>
    <link rel="related" href="https://elsewhere.example.org/x"/>
    <link rel="alternate" type="text/html" href="/2026/cafe"/>
    <link rel="enclosure" href="https://atom.example.org/pic.jpg"/>
    <id>tag:atom.example.org,2026:cafe</id>
    <updated>2026-02-17T07:30:00+01:00</updated>
    <author><name>Jane Doe</name></author>
    <author><name>John Roe</name></author>
    <category term="food"/>
    <summary>short</summary>
    <content type="html">&lt;p&gt;a&lt;/p&gt;</content>
    <content type="html">&lt;p&gt;a much longer content block&lt;/p&gt;</content>
  </entry>
</feed>"""


def rss_with_items(items: str, channel_extra: str = "") -> bytes:
    return (
        f'<?xml version="1.0"?><rss version="2.0"><channel><title>T</title>'
        f"<link>https://example.org/</link>{channel_extra}{items}</channel></rss>"
    ).encode()


# --------------------------------------------------------------------------------------- RSS and Atom

def test_rss20_fields_are_mapped() -> None:
    parsed = parse_feed(RSS20, {"Content-Type": "application/rss+xml; charset=utf-8"}, "https://news.example.org/rss")
    assert parsed.format == "rss20"
    assert parsed.title == "Example News"
    assert parsed.link == "https://news.example.org/"
    assert parsed.language == "fr-FR"
    assert parsed.ttl_minutes == 30
    assert parsed.bozo is None
    assert len(parsed.entries) == 3
    first = parsed.entries[0]
    assert first.title == "Sahel: <b>talks</b> resume in Bamako"  # decoded HTML, cleaned later
    assert first.link == "https://news.example.org/2026/talks"
    assert first.guid == "news-example-4711"
    assert first.guid_is_permalink is False
    assert first.summary == "<p>Short summary</p>"
    assert first.content == "<p>The long body of the article.</p>"
    assert first.published == datetime(2026, 2, 17, 8, 0, tzinfo=UTC)
    assert first.published.tzinfo is not None
    assert first.updated is None
    assert first.authors == ["Awa Traoré"]
    assert first.categories == ["Mali", "Politics"]
    assert first.enclosures == ["https://cdn.example.org/a.mp3"]
    assert first.language == "fr-FR"  # no language of its own: the channel's


def test_rss_guid_permalink_flag() -> None:
    entries = parse_feed(RSS20).entries
    assert entries[1].guid_is_permalink is True
    assert entries[1].link == "https://news.example.org/2026/second"  # the permalink GUID is the link
    assert entries[2].guid_is_permalink is True
    assert entries[0].guid_is_permalink is False


def test_atom10_prefers_alternate_link_and_longest_content() -> None:
    parsed = parse_feed(ATOM10, {"content-type": "application/atom+xml"}, "https://atom.example.org/feed.atom")
    assert parsed.format == "atom10"
    assert parsed.language == "de-DE"
    assert parsed.ttl_minutes is None
    entry = parsed.entries[0]
    assert entry.title == "Caf&eacute; <i>news</i>"  # HTML as feedparser decoded it; clean.py finishes
    assert entry.link == "https://atom.example.org/2026/cafe"  # relative, resolved against the feed URL
    assert entry.guid == "tag:atom.example.org,2026:cafe"
    assert entry.guid_is_permalink is None
    assert entry.published is None
    assert entry.updated == datetime(2026, 2, 17, 6, 30, tzinfo=UTC)
    assert entry.authors == ["Jane Doe", "John Roe"]
    assert entry.categories == ["food"]
    assert entry.content == "<p>a much longer content block</p>"
    assert entry.enclosures == ["https://atom.example.org/pic.jpg"]
    assert entry.language == "de-DE"


def test_rss10_rdf_and_atom03_and_rss091() -> None:
    rdf = b"""<?xml version="1.0"?>
<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" xmlns="http://purl.org/rss/1.0/"
  xmlns:dc="http://purl.org/dc/elements/1.1/">
  <channel rdf:about="https://rdf.example.org/"><title>RDF</title><link>https://rdf.example.org/</link></channel>
  <item rdf:about="https://rdf.example.org/1"><title>One</title><link>https://rdf.example.org/1</link>
    <dc:date>2026-02-17T10:00:00+00:00</dc:date></item>
</rdf:RDF>"""
    atom03 = b"""<?xml version="1.0"?>
<feed version="0.3" xmlns="http://purl.org/atom/ns#"><title>A03</title>
<entry><title>Old atom</title><link rel="alternate" type="text/html" href="https://a03.example.org/1"/>
<id>tag:a03.example.org,2005:1</id><issued>2005-01-01T00:00:00Z</issued><modified>2005-01-02T00:00:00Z</modified></entry>
</feed>"""
    rss091 = b"""<?xml version="1.0"?><rss version="0.91"><channel><title>Old</title><link>https://o.example.org/</link>
<description>d</description><language>en-us</language>
<item><title>Item</title><link>https://o.example.org/1</link></item></channel></rss>"""
    parsed_rdf = parse_feed(rdf)
    assert parsed_rdf.format == "rss10"
    assert parsed_rdf.entries[0].link == "https://rdf.example.org/1"
    assert parsed_rdf.entries[0].published == datetime(2026, 2, 17, 10, 0, tzinfo=UTC) or (
        parsed_rdf.entries[0].updated == datetime(2026, 2, 17, 10, 0, tzinfo=UTC)
    )
    parsed_03 = parse_feed(atom03)
    assert parsed_03.format == "atom03"
    assert parsed_03.entries[0].link == "https://a03.example.org/1"
    assert parse_feed(rss091).format.startswith("rss09")


def test_dates_outside_1970_2100_are_dropped() -> None:
    body = rss_with_items(
        "<item><title>old</title><pubDate>Mon, 01 Jan 1900 00:00:00 GMT</pubDate></item>"
        "<item><title>far</title><pubDate>Fri, 01 Jan 2500 00:00:00 GMT</pubDate></item>"
        "<item><title>bad</title><pubDate>not a date</pubDate></item>"
    )
    assert [entry.published for entry in parse_feed(body).entries] == [None, None, None]


@pytest.mark.parametrize("ttl", ["soon", "-5", "0", ""])
def test_unusable_ttl_is_none(ttl: str) -> None:
    assert parse_feed(rss_with_items("", f"<ttl>{ttl}</ttl>")).ttl_minutes is None


def test_valid_feed_without_entries_is_not_an_error() -> None:
    parsed = parse_feed(rss_with_items(""))
    assert parsed.entries == []
    assert parsed.title == "T"


def test_bozo_feed_keeps_its_entries() -> None:
    body = rss_with_items("<item><title>one & two</title><link>https://example.org/1</link></item>"
                          "<item><title>three</title></item>")
    parsed = parse_feed(body)
    assert [entry.title for entry in parsed.entries] == ["one & two", "three"]
    assert parsed.bozo is not None
    assert "\n" not in parsed.bozo and len(parsed.bozo) <= 200


# --------------------------------------------------------------------------- buffered SAX driver

def _parse_with_plain_expat(body: bytes) -> object:
    """parse_feed with feedparser's default driver list (Python's unbuffered expat driver)."""
    drivers = feedparser_api.PREFERRED_XML_PARSERS
    saved = list(drivers)
    drivers[:] = [name for name in drivers if name != "monitor.saxdriver"]
    try:
        return parse_feed(body, {"Content-Type": "application/rss+xml"}, "https://example.org/feed")
    finally:
        drivers[:] = saved


def test_feedparser_gets_text_in_whole_runs() -> None:
    """Escaped HTML reaches feedparser as one piece per run of text, and the result is the same."""
    summary = "&lt;p&gt;" + "&amp;".join(f"word{n}\nline" for n in range(300)) + "&lt;/p&gt;"
    body = rss_with_items(f"<item><title>T &amp; U</title><link>https://example.org/1</link>"
                          f"<description>{summary}</description></item>")
    pieces: list[int] = []
    original = feedparser_mixin._FeedParserMixin.handle_data

    def counting(self, text, escape=1):  # type: ignore[no-untyped-def]
        pieces.append(len(text))
        return original(self, text, escape)

    feedparser_mixin._FeedParserMixin.handle_data = counting
    try:
        buffered = parse_feed(body, {"Content-Type": "application/rss+xml"}, "https://example.org/feed")
        buffered_pieces = len(pieces)
        pieces.clear()
        plain = _parse_with_plain_expat(body)
    finally:
        feedparser_mixin._FeedParserMixin.handle_data = original
    assert isinstance(xml.sax.make_parser(feedparser_api.PREFERRED_XML_PARSERS), BufferedExpatParser)
    assert buffered == plain
    assert buffered.entries[0].summary.count("word") == 300
    assert len(pieces) > 1000 and buffered_pieces < 50


def test_buffered_driver_changes_nothing_on_the_real_feeds(corpora: Path) -> None:
    checked = 0
    for path in sorted((corpora / "real-feeds").iterdir()):
        body = path.read_bytes()
        if body.lstrip()[:1] != b"<":
            continue
        buffered = parse_feed(body, {"Content-Type": "application/rss+xml"}, "https://example.org/feed")
        assert buffered == _parse_with_plain_expat(body), path.name
        checked += 1
    assert checked >= 40


# ----------------------------------------------------------------------------------------- encodings

def test_latin1_feed_without_declaration_decodes_with_the_content_type(corpora: Path) -> None:
    body = (corpora / "real-feeds" / "cerclepsy_iso-8859-1_no-decl_2018-10-17.xml").read_bytes()
    parsed = parse_feed(body, {"Content-Type": "application/rss+xml; charset=ISO-8859-1"})
    assert parsed.bozo is None
    titles = [entry.title for entry in parsed.entries]
    assert "La criminalité liée surtout à... l'ennui ?" in titles
    assert not any("\ufffd" in title for title in titles)


def test_latin1_feed_without_headers_still_reads(corpora: Path) -> None:
    body = (corpora / "real-feeds" / "cerclepsy_iso-8859-1_no-decl_2018-10-17.xml").read_bytes()
    parsed = parse_feed(body)
    assert "La criminalité liée surtout à... l'ennui ?" in [entry.title for entry in parsed.entries]


UTF8_FRENCH = "Le président malien à Bamako – coopération « sécuritaire »"


@pytest.mark.parametrize("declaration", ["iso-8859-1", "windows-1252", "us-ascii", "utf-8", None])
@pytest.mark.parametrize("content_type", [
    None, "application/rss+xml", "text/xml", "application/octet-stream", "application/rss+xml; charset=windows-1252",
    "application/xml; charset=ISO-8859-1", "text/html; charset=iso-8859-1", 'application/atom+xml; charset="cp1252"',
])
def test_utf8_labelled_latin1_or_windows_1252_keeps_its_accents(declaration: str | None,
                                                                content_type: str | None) -> None:
    """UTF-8 bytes named Windows-1252 or Latin-1 by the server or the XML declaration (a server default, a
    template) were decoded as labelled: 'Le prÃ©sident malien Ã  Bamako â€“'."""
    prolog = f'<?xml version="1.0" encoding="{declaration}"?>' if declaration else ""
    body = (f'{prolog}<rss version="2.0"><channel><title>T</title><item><title>{UTF8_FRENCH}</title>'
            "<link>https://example.org/1</link></item></channel></rss>").encode("utf-8")
    parsed = parse_feed(body, {"Content-Type": content_type} if content_type else {})
    assert parsed.entries[0].title == UTF8_FRENCH


def test_utf8_read_against_its_label_is_reported() -> None:
    body = (f'<?xml version="1.0" encoding="windows-1252"?><rss version="2.0"><channel><title>T</title>'
            f"<item><title>{UTF8_FRENCH}</title></item></channel></rss>").encode("utf-8")
    parsed = parse_feed(body, {"Content-Type": "application/rss+xml"})
    assert parsed.bozo == "CharacterEncodingOverride: document declared as windows-1252, but parsed as utf-8"


@pytest.mark.parametrize("content_type", ["application/rss+xml; charset=windows-1252", "application/rss+xml"])
def test_real_windows_1252_and_latin1_are_still_read_as_labelled(content_type: str) -> None:
    for encoding in ("windows-1252", "iso-8859-1"):
        title = "Le président malien à Bamako : l’armée" if encoding == "windows-1252" else "Goïta à Bamako"
        body = (f'<?xml version="1.0" encoding="{encoding}"?><rss version="2.0"><channel><title>T</title>'
                f"<item><title>{title}</title></item></channel></rss>").encode(encoding)
        parsed = parse_feed(body, {"Content-Type": content_type})
        assert parsed.entries[0].title == title, encoding
        assert parsed.bozo is None


# -------------------------------------------------------------------------------------- error kinds

@pytest.mark.parametrize("body", [b"", b"   \n\t  "])
def test_empty_body(body: bytes) -> None:
    with pytest.raises(ParseError) as info:
        parse_feed(body)
    assert info.value.kind == "empty"


@pytest.mark.parametrize("body", [
    b"<!DOCTYPE html><html><head><title>Home</title></head><body><p>Welcome</p></body></html>",
    b"\n<!-- cms --><html lang='en'><body>Not found</body></html>",
    b"<HTML><BODY>Moved</BODY></HTML>",
])
def test_html_page(body: bytes) -> None:
    with pytest.raises(ParseError) as info:
        parse_feed(body, {"content-type": "text/html; charset=utf-8"})
    assert info.value.kind == "html_page"


@pytest.mark.parametrize("body", [b"hello world", b"<foo><bar>x</bar></foo>", b"\x00\x01\x02garbage\xff"])
def test_not_a_feed(body: bytes) -> None:
    with pytest.raises(ParseError) as info:
        parse_feed(body)
    assert info.value.kind == "not_a_feed"


# ---------------------------------------------------------------------------------------- JSON Feed

JSON11 = {
    "version": "https://jsonfeed.org/version/1.1",
    "title": "JSON Example",
    "home_page_url": "https://json.example.org/",
    "language": "en-GB",
    "authors": [{"name": "Feed Author"}],
    "items": [
        {
            "id": "https://json.example.org/1",
            "url": "https://json.example.org/1",
            "title": "First & best",
            "summary": "sum",
            "content_html": "<p>html body</p>",
            "content_text": "text body",
            "date_published": "2026-02-17T10:00:00+02:00",
            "date_modified": "2026-02-17T09:00:00Z",
            "authors": [{"name": "Item Author"}, {"url": "https://nobody"}],
            "tags": ["one", "two", 3],
            "language": "fr",
            "attachments": [{"url": "https://json.example.org/a.mp3", "mime_type": "audio/mpeg"}, {"x": 1}],
        },
        {"id": 42, "external_url": "https://elsewhere.example.org/", "content_text": "only text",
         "date_published": "yesterday"},
        "not an item",
    ],
}


def test_json_feed_by_content_type() -> None:
    parsed = parse_feed(json.dumps(JSON11).encode(), {"Content-Type": "application/feed+json"})
    assert parsed.format == "json11"
    assert parsed.title == "JSON Example"
    assert parsed.link == "https://json.example.org/"
    assert parsed.language == "en-GB"
    assert len(parsed.entries) == 2
    first, second = parsed.entries
    assert first.title == "First & best"
    assert first.link == "https://json.example.org/1"
    assert first.guid == "https://json.example.org/1"
    assert first.summary == "sum"
    assert first.content == "<p>html body</p>"
    assert first.published == datetime(2026, 2, 17, 8, 0, tzinfo=UTC)
    assert first.updated == datetime(2026, 2, 17, 9, 0, tzinfo=UTC)
    assert first.authors == ["Item Author"]
    assert first.categories == ["one", "two"]
    assert first.language == "fr"
    assert first.enclosures == ["https://json.example.org/a.mp3"]
    assert second.guid == "42"
    assert second.link == "https://elsewhere.example.org/"
    assert second.content == "only text"
    assert second.published is None
    assert second.authors == ["Feed Author"]  # JSON Feed 1.1: items inherit the feed's authors
    assert second.language == "en-GB"


def test_json_feed_sniffed_without_content_type() -> None:
    body = b'\xef\xbb\xbf  {"version": "https://jsonfeed.org/version/1", "title": "x", "author": {"name": "A"},' \
           b' "items": [{"id": "abc-def-123", "title": "t"}]}'
    parsed = parse_feed(body, {"content-type": "text/plain"})
    assert parsed.format == "json1"
    assert parsed.entries[0].authors == ["A"]


def test_json_feed_from_feedparser_corpus(corpora: Path) -> None:
    parsed = parse_feed((corpora / "feedparser-tests" / "json" / "example.json").read_bytes())
    assert parsed.title == "My Example Feed"
    assert len(parsed.entries) == 2


@pytest.mark.parametrize("body", [b'{"version": "https://jsonfeed.org/version/1", "items": [', b"{not json}"])
def test_invalid_json(body: bytes) -> None:
    with pytest.raises(ParseError) as info:
        parse_feed(body, {"content-type": "application/json"})
    assert info.value.kind == "invalid_json"


def test_json_that_is_not_a_json_feed() -> None:
    with pytest.raises(ParseError) as info:
        parse_feed(b'{"hello": "world"}', {"content-type": "application/json"})
    assert info.value.kind == "not_a_feed"


def test_xml_served_as_json_is_parsed_as_xml() -> None:
    assert parse_feed(RSS20, {"content-type": "application/json"}).format == "rss20"


# ---------------------------------------------------------------------------------- nothing is fetched

def test_body_that_is_a_url_or_a_path_is_not_opened(feed_server) -> None:  # noqa: ANN001 - fixture
    feed_server.add("/feed.xml", RSS20)
    for body in (feed_server.url("/feed.xml").encode(), b"/etc/hostname", str(Path(__file__)).encode()):
        with pytest.raises(ParseError) as info:
            parse_feed(body)
        assert info.value.kind == "not_a_feed"
    assert feed_server.requests == []


@pytest.mark.parametrize("layout", ["multiline", "oneline", "parameter"])
def test_external_entities_are_never_read(tmp_path: Path, feed_server, layout: str) -> None:  # noqa: ANN001
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-MARKER")
    feed_server.add("/entity", "REMOTE-ENTITY-MARKER", content_type="text/plain")
    declarations = {
        "multiline": f'\n<!ENTITY x SYSTEM "file://{secret}">\n<!ENTITY y SYSTEM "{feed_server.url("/entity")}">\n',
        "oneline": f'<!ENTITY x SYSTEM "file://{secret}"><!ENTITY y SYSTEM "{feed_server.url("/entity")}">',
        "parameter": f'<!ENTITY % p SYSTEM "file://{secret}"> %p; <!ENTITY x "x"><!ENTITY y "y">',
    }[layout]
    body = (
        f'<?xml version="1.0"?>\n<!DOCTYPE rss [{declarations}]>\n<rss version="2.0"><channel><title>t</title>'
        f"<item><title>a &x; b &y;</title><description>&x;</description></item></channel></rss>"
    ).encode()
    parsed = parse_feed(body)
    text = repr(parsed)
    assert "TOP-SECRET-MARKER" not in text
    assert "REMOTE-ENTITY-MARKER" not in text
    assert feed_server.requests == []


def test_billion_laughs_does_not_expand() -> None:
    levels = ['<!ENTITY lol0 "lol">'] + [
        f'<!ENTITY lol{i} "{("&lol" + str(i - 1) + ";") * 10}">' for i in range(1, 10)
    ]
    for separator in ("\n", ""):
        body = (
            f'<?xml version="1.0"?>\n<!DOCTYPE rss [{separator}{separator.join(levels)}{separator}]>\n'
            f'<rss version="2.0"><channel><title>t</title><item><title>&lol9;</title>'
            f"<description>&lol9;</description></item></channel></rss>"
        ).encode()
        parsed = parse_feed(body)
        assert len(repr(parsed)) < 10_000


# ------------------------------------------------------------------------------------------ robustness

_XMLISH = st.lists(st.sampled_from([
    b"<rss version='2.0'>", b"<channel>", b"<item>", b"</item>", b"<title>", b"</title>", b"<feed xmlns='http://www.w3.org/2005/Atom'>",
    b"<entry>", b"<link href='x'/>", b"<guid>", b"</guid>", b"&amp;", b"&bogus;", b"<![CDATA[", b"]]>", b"\xff\xfe",
    b"<?xml version='1.0' encoding='utf-16'?>", b"<!DOCTYPE x [<!ENTITY a 'b'>]>", b"{", b'"version":', b"text", b"\x00",
]), max_size=30).map(b"".join)


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.binary(max_size=300), _XMLISH))
def test_any_bytes_give_a_feed_or_a_parse_error(body: bytes) -> None:
    try:
        parsed = parse_feed(body, {"content-type": "application/xml"})
    except ParseError as exc:
        assert exc.kind in {"empty", "not_a_feed", "html_page", "invalid_json", "malformed"}
    else:
        assert all(isinstance(entry.title, str) for entry in parsed.entries)


_JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(
        st.sampled_from(["id", "url", "title", "items", "authors", "author", "name", "tags", "attachments",
                         "date_published", "date_modified", "content_html", "summary", "language"]),
        children, max_size=6),
    max_leaves=30,
)


@settings(max_examples=300, deadline=None)
@given(_JSON_VALUES, _JSON_VALUES)
def test_any_json_feed_shape_gives_a_feed_or_a_parse_error(items: object, extra: object) -> None:
    document = {"version": "https://jsonfeed.org/version/1.1", "items": items, "title": extra, "authors": extra}
    try:
        parsed = parse_feed(json.dumps(document).encode(), {"content-type": "application/feed+json"})
    except ParseError as exc:
        assert exc.kind in {"invalid_json", "not_a_feed"}
    else:
        assert all(isinstance(entry.title, str) and isinstance(entry.authors, list) for entry in parsed.entries)


def test_json_feed_leap_second_is_a_date() -> None:
    """RFC 3339 allows second 60 (a leap second); Python's datetime does not: the entry was marked undated."""
    body = json.dumps({"version": "https://jsonfeed.org/version/1.1", "items": [
        {"id": "1", "title": "Leap", "date_published": "2016-12-31T23:59:60Z"},
        {"id": "2", "title": "Leap with a fraction", "date_published": "2016-12-31T23:59:60.25+00:00"},
    ]}).encode()
    published = [entry.published for entry in parse_feed(body, {"content-type": "application/feed+json"}).entries]
    assert published == [datetime(2016, 12, 31, 23, 59, 59, tzinfo=timezone.utc),
                          datetime(2016, 12, 31, 23, 59, 59, 250000, tzinfo=timezone.utc)]
