"""OPML reading (strict and lenient) and writing, over the real lists in ../shared/corpora/opml."""

from __future__ import annotations

from pathlib import Path

import pytest

from monitor.errors import OPMLError
from monitor.opml import OpmlEntry, OpmlResult, _read_lenient, read_opml, tag_from_title, write_opml

CORPORA = Path(__file__).resolve().parents[1].parent / "shared" / "corpora"
OPML_DIR = CORPORA / "opml"
OPML_FILES = sorted(OPML_DIR.rglob("*.opml")) if OPML_DIR.is_dir() else []


def _corpus_id(path: Path) -> str:
    return str(path.relative_to(OPML_DIR))


@pytest.fixture
def corpus() -> Path:
    if not OPML_DIR.is_dir():
        pytest.skip("../shared/corpora/opml is not there")
    return OPML_DIR


def _doc(body: str, head: str = "<head><title>t</title></head>") -> bytes:
    return f'<?xml version="1.0" encoding="UTF-8"?>\n<opml version="2.0">{head}<body>{body}</body></opml>'.encode()


# --------------------------------------------------------------------------- the real lists


@pytest.mark.skipif(not OPML_FILES, reason="../shared/corpora/opml is not there")
@pytest.mark.parametrize("path", OPML_FILES, ids=_corpus_id)
def test_every_corpus_file_reads_counts_and_round_trips(path: Path) -> None:
    data = path.read_bytes()
    result = read_opml(data, source=path.name)
    assert result.entries, "a real list yields feeds"
    # every xmlUrl attribute is accounted for: a feed, a merged duplicate or a rejected entry
    assert len(result.entries) + result.duplicates + len(result.rejected) == data.count(b"xmlUrl=")
    for entry in result.entries:
        assert entry.xml_url.startswith(("http://", "https://"))
        assert all(tag == tag_from_title(tag) and tag for tag in entry.tags)
    again = read_opml(write_opml(result.entries), source="exported")
    assert not again.lenient and not again.rejected and again.duplicates == 0
    assert again.entries == result.entries


def test_awesome_lists_are_mostly_ill_formed_but_all_read(corpus: Path) -> None:
    files = sorted((corpus / "awesome-rss-feeds").rglob("*.opml"))
    results = [read_opml(path.read_bytes(), source=path.name) for path in files]
    assert len(files) == 118
    assert sum(result.lenient for result in results) == 80
    urls = {entry.xml_url for result in results for entry in result.entries}
    assert "https://www.diplomatie.gouv.fr/spip.php?page=backend-fd&lang=en" in urls


def test_lenient_reader_agrees_with_strict_on_well_formed_files(corpus: Path) -> None:
    compared = 0
    for path in sorted(corpus.rglob("*.opml")):
        data = path.read_bytes()
        strict = read_opml(data, source=path.name)
        if strict.lenient:
            continue
        lenient = OpmlResult(source=path.name)
        _read_lenient(data, lenient)
        assert lenient.entries == strict.entries, path.name
        assert lenient.rejected == strict.rejected
        assert lenient.title == strict.title
        compared += 1
    assert compared >= 30


def test_folders_become_tags_in_category_lists(corpus: Path) -> None:
    data = (corpus / "awesome-rss-feeds" / "countries" / "with_category" / "France.opml").read_bytes()
    result = read_opml(data, source="France.opml")
    assert len(result.entries) == 11
    assert all(entry.tags == ("france",) for entry in result.entries)
    assert any(entry.xml_url == "https://www.lemonde.fr/rss/une.xml" for entry in result.entries)


def test_html_inside_description_does_not_lose_the_feed(corpus: Path) -> None:
    path = corpus / "awesome-rss-feeds" / "recommended" / "with_category" / "Programming.opml"
    result = read_opml(path.read_bytes(), source=path.name)
    by_url = {entry.xml_url: entry for entry in result.entries}
    assert by_url["https://m.signalvnoise.com/feed/"].title == "Signal v. Noise"
    assert by_url["https://m.signalvnoise.com/feed/"].tags == ("programming",)


def test_kagi_list_merges_duplicates_and_keeps_folder_language(corpus: Path) -> None:
    path = corpus / "kagi-kite" / "kite_feeds.opml"
    result = read_opml(path.read_bytes(), source=path.name)
    assert len(result.entries) + result.duplicates + len(result.rejected) == 10104
    assert 9800 < len(result.entries) < 9900
    by_url = {entry.xml_url: entry for entry in result.entries}
    aljazeera = by_url["https://www.aljazeera.com/xml/rss/all.xml"]
    assert "africa" in aljazeera.tags
    assert aljazeera.language == "en"
    assert any(len(entry.tags) > 1 for entry in result.entries)


# --------------------------------------------------------------------------- small cases


def test_nested_folders_give_tags_outermost_first() -> None:
    data = _doc(
        '<outline text="World News"><outline title="Africa &amp; Sahel">'
        '<outline text="RFI" xmlUrl="https://www.rfi.fr/fr/afrique/rss" htmlUrl="https://www.rfi.fr/"/>'
        "</outline></outline>"
    )
    result = read_opml(data, source="t")
    assert result.title == "t"
    assert result.entries == [
        OpmlEntry(title="RFI", xml_url="https://www.rfi.fr/fr/afrique/rss", html_url="https://www.rfi.fr/",
                  tags=("world-news", "africa-sahel"))
    ]


def test_rejected_entries_carry_reasons() -> None:
    data = _doc(
        '<outline text="empty folder"/>'
        '<outline text="mail" xmlUrl="mailto:someone@example.org"/>'
        '<outline text="no scheme" xmlUrl="example.org/feed"/>'
        '<outline text="bad port" xmlUrl="https://example.org:99999/feed"/>'
        '<outline text="ok" xmlUrl="feed://example.org/rss"/>'
        '<outline text="space in host" xmlUrl="https://exa mple.org/feed"/>'
        '<outline text="broken punycode" xmlUrl="https://xn--zz.example.org/feed"/>'
    )
    result = read_opml(data, source="t")
    reasons = {rejected.title: rejected.reason for rejected in result.rejected}
    # hosts the fetcher could never reach are reported now, not written into the config
    assert reasons["space in host"] == "unparsable URL (host name 'exa mple.org')"
    assert reasons["broken punycode"] == "unparsable URL (host name 'xn--zz.example.org')"
    assert reasons["empty folder"] == "no xmlUrl"
    assert reasons["mail"].startswith("not an http(s) URL")
    assert reasons["no scheme"].startswith("not an http(s) URL")
    assert reasons["bad port"].startswith("unparsable URL")
    assert [entry.xml_url for entry in result.entries] == ["http://example.org/rss"]


def test_same_url_in_two_folders_is_one_entry_with_both_tags() -> None:
    data = _doc(
        '<outline text="A"><outline text="x" xmlUrl="https://e.org/f"/></outline>'
        '<outline text="B"><outline text="x again" xmlUrl="https://e.org/f"/></outline>'
    )
    result = read_opml(data, source="t")
    assert result.duplicates == 1
    assert result.entries == [OpmlEntry(title="x", xml_url="https://e.org/f", tags=("a", "b"))]


def test_category_attribute_and_language() -> None:
    data = _doc('<outline text="x" xmlUrl="https://e.org/f" category="/News/World,Tech" language="fr_FR"/>'
                '<outline text="y" xmlUrl="https://e.org/g" language="French"/>')
    first, second = read_opml(data, source="t").entries
    assert first.tags == ("news", "world", "tech")
    assert first.language == "fr-fr"
    assert second.language is None


def test_raw_ampersands_and_angle_brackets_fall_back_to_lenient_reading() -> None:
    data = _doc(
        '<outline text="NYT > World" title="NYT > World" xmlUrl="https://e.org/rss?a=1&b=2" type="rss" />'
        '<!-- <outline text="commented" xmlUrl="https://e.org/no"/> -->'
        "<outline text='single' xmlUrl='https://e.org/s&amp;t'/>"
    )
    result = read_opml(data, source="t")
    assert result.lenient
    assert [(entry.title, entry.xml_url) for entry in result.entries] == [
        ("NYT > World", "https://e.org/rss?a=1&b=2"),
        ("single", "https://e.org/s&t"),
    ]


def test_entity_declarations_are_refused() -> None:
    data = (b'<?xml version="1.0"?><!DOCTYPE opml [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;">]>'
            b'<opml version="2.0"><body><outline text="&b;" xmlUrl="https://e.org/f"/></body></opml>')
    with pytest.raises(OPMLError, match="entity"):
        read_opml(data, source="bomb.opml")


@pytest.mark.parametrize("data", [b"", b"   \n", b"<rss><channel/></rss>", b"just some text", b"\x00\xff\xfe"])
def test_data_that_is_not_opml_is_an_opml_error(data: bytes) -> None:
    with pytest.raises(OPMLError, match="t.opml"):
        read_opml(data, source="t.opml")


def test_latin1_declared_encoding_is_honoured_in_both_readers() -> None:
    body = '<outline text="Le Monde – à la une" xmlUrl="https://e.org/f?x=1&y=2"/>'
    data = ('<?xml version="1.0" encoding="ISO-8859-1"?><opml version="1.0"><body>'
            + body.replace("–", "-") + "</body></opml>").encode("latin-1")
    result = read_opml(data, source="t")
    assert result.lenient
    assert result.entries[0].title == "Le Monde - à la une"


def test_tag_from_title_is_idempotent() -> None:
    for title in ["Business & Economy", "UI - UX", "Australia | Victoria", "C++", "日本 ニュース", "  --  "]:
        tag = tag_from_title(title)
        assert tag_from_title(tag) == tag
    assert tag_from_title("Business & Economy") == "business-economy"
    assert tag_from_title("  --  ") == ""


def test_write_opml_groups_by_first_tag_and_round_trips_order() -> None:
    entries = [
        OpmlEntry(title="A & B <news>", xml_url="https://e.org/a?x=1&y=2", tags=("news",), language="fr"),
        OpmlEntry(title="plain", xml_url="https://e.org/p"),
        OpmlEntry(title="multi", xml_url="https://e.org/m", html_url="https://e.org/", tags=("news", "africa")),
        OpmlEntry(title="", xml_url="https://e.org/untitled", tags=("news",)),
    ]
    data = write_opml(entries, title="mine")
    assert data.startswith(b"<?xml")
    assert b'version="2.0"' in data
    result = read_opml(data, source="t")
    assert not result.lenient
    assert result.title == "mine"
    assert result.entries == entries


# --------------------------------------------------------------------------- properties

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_titles = st.text(max_size=40).map(lambda text: " ".join(text.split()))
_tags = st.lists(st.text(min_size=1, max_size=12).map(tag_from_title).filter(bool), max_size=3, unique=True)
_urls = st.builds(
    lambda host, path, query: f"https://h{host}.example/{path}" + (f"?{query}" if query else ""),
    st.text(alphabet="abcxyz019-", max_size=8),
    st.text(alphabet="AZaz09_./-~%", max_size=16),
    st.text(alphabet="ab=&<>\"'#;", max_size=10),
)
_entries = st.lists(
    st.builds(OpmlEntry, title=_titles, xml_url=_urls, html_url=st.none() | _urls, tags=_tags.map(tuple),
              language=st.sampled_from([None, "en", "fr", "pt-br"])),
    max_size=12, unique_by=lambda entry: entry.xml_url,
)


def _as_read(entry: OpmlEntry) -> OpmlEntry:
    """What reading keeps of an entry: titles without characters XML cannot hold."""
    title = " ".join("".join(ch if ch.isprintable() or ch == " " else " " for ch in entry.title).split())
    return OpmlEntry(title=title, xml_url=entry.xml_url, html_url=entry.html_url, tags=entry.tags,
                     language=entry.language)


@settings(max_examples=100, deadline=None)
@given(_entries)
def test_property_write_then_read_gives_the_entries_back(entries: list[OpmlEntry]) -> None:
    data = write_opml(entries)
    strict = read_opml(data, source="p")
    assert not strict.lenient and not strict.rejected
    lenient = OpmlResult(source="p")
    _read_lenient(data, lenient)
    assert lenient.entries == strict.entries
    assert [entry.xml_url for entry in strict.entries] == [entry.xml_url for entry in entries]
    assert [entry.tags for entry in strict.entries] == [entry.tags for entry in entries]
    assert read_opml(write_opml(strict.entries), source="p").entries == strict.entries


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300) | st.text(max_size=300).map(lambda t: ("<opml><body>" + t).encode()))
def test_property_any_bytes_give_a_result_or_an_opml_error(data: bytes) -> None:
    try:
        result = read_opml(data, source="fuzz")
    except OPMLError:
        return
    for entry in result.entries:
        assert entry.xml_url.startswith(("http://", "https://"))


def test_lenient_reading_with_text_between_tags_keeps_every_outline() -> None:
    data = _doc(
        '<outline text="Folder & co"> stray text '
        '<outline text="a" xmlUrl="https://e.org/a?x=1&y=2" description="x > y"> more text '
        '<outline text="b" xmlUrl="https://e.org/b"/></outline></outline>'
    )
    result = read_opml(data, source="t")
    assert result.lenient
    assert [(e.title, e.xml_url, e.tags) for e in result.entries] == [
        ("a", "https://e.org/a?x=1&y=2", ("folder-co",)),
        ("b", "https://e.org/b", ("folder-co",)),
    ]
