"""Every corpus file through parse_feed → normalize_feed.

feedparser's own corpus (../shared/corpora/feedparser-tests) is used for robustness only: the only
allowed failure is a ParseError of a documented kind. Its ``Expect:`` lines come from feedparser's
development branch and are not asserted. Each file's leading comment may carry ``Header:`` lines, which
are passed as the HTTP response headers.

The real feeds (../shared/corpora/real-feeds) must give exactly the entries feedparser finds, and a
few known titles and dates are checked.
"""

from __future__ import annotations

import io
from datetime import datetime, timezone
from pathlib import Path

import feedparser
import pytest

from monitor.errors import ParseError
from monitor.normalize import normalize_feed
from monitor.parse import parse_feed
from tests.corpus_support import corpus_headers

CORPORA = Path(__file__).resolve().parents[1].parent / "shared" / "corpora"
FEEDPARSER_TESTS = CORPORA / "feedparser-tests"
REAL_FEEDS = CORPORA / "real-feeds"
PARSE_ERROR_KINDS = {"empty", "not_a_feed", "html_page", "invalid_json", "malformed"}
SEEN_AT = datetime(2026, 2, 18, 12, 0, tzinfo=timezone.utc)
UTC = timezone.utc


def _files(folder: Path, suffixes: tuple[str, ...]) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted(path for path in folder.rglob("*") if path.is_file() and path.suffix in suffixes)


def _ids(paths: list[Path], root: Path) -> list[str]:
    return [str(path.relative_to(root)) for path in paths]


FEEDPARSER_FILES = _files(FEEDPARSER_TESTS, (".xml", ".json"))
REAL_FEED_FILES = _files(REAL_FEEDS, (".xml", ".rss", ".atom"))


def parse_and_normalize(body: bytes, headers: dict[str, str]) -> tuple[int, int]:
    """(entries, articles), or the ParseError with a documented kind."""
    try:
        parsed = parse_feed(body, headers, "http://example.com/feed.xml")
    except ParseError as exc:
        assert exc.kind in PARSE_ERROR_KINDS, exc.kind
        return -1, -1
    articles = normalize_feed(parsed, seen_at=SEEN_AT, feed_url="http://example.com/feed.xml")
    for article in articles:
        assert article.key.startswith(("guid:", "url:", "hash:"))
        assert article.published.tzinfo is not None
        assert "\n" not in article.title
    return len(parsed.entries), len(articles)


def test_corpus_headers_are_read() -> None:
    body = b'<!--\nHeader:      Content-type: text/xml;charset="us-ascii"\nHeader: X-Foo: bar\nExpect: x\n-->'
    assert corpus_headers(body) == {"Content-type": 'text/xml;charset="us-ascii"', "X-Foo": "bar"}


@pytest.mark.skipif(not FEEDPARSER_FILES, reason="../shared/corpora/feedparser-tests is not present")
@pytest.mark.parametrize("path", FEEDPARSER_FILES, ids=_ids(FEEDPARSER_FILES, FEEDPARSER_TESTS))
def test_feedparser_corpus_file(path: Path) -> None:
    body = path.read_bytes()
    entries, articles = parse_and_normalize(body, corpus_headers(body))
    assert entries == articles


@pytest.mark.skipif(not REAL_FEED_FILES, reason="../shared/corpora/real-feeds is not present")
@pytest.mark.parametrize("path", REAL_FEED_FILES, ids=_ids(REAL_FEED_FILES, REAL_FEEDS))
def test_real_feed(path: Path) -> None:
    body = path.read_bytes()
    expected = len(feedparser.parse(io.BytesIO(body), sanitize_html=False, resolve_relative_uris=False).entries)
    entries, articles = parse_and_normalize(body, {})
    assert entries == articles == expected
    assert expected > 0


def _article(name: str, index: int, headers: dict[str, str] | None = None):  # noqa: ANN202 - test helper
    if not REAL_FEEDS.is_dir():
        pytest.skip("../shared/corpora/real-feeds is not present")
    parsed = parse_feed((REAL_FEEDS / name).read_bytes(), headers)
    return parsed, normalize_feed(parsed, seen_at=SEEN_AT)[index]


def test_spot_check_al_jazeera() -> None:
    parsed, article = _article("aljazeera_en_all_2026-02-17.xml", 0)
    assert parsed.format == "rss20"
    assert article.title == "Stephen Colbert says CBS barred interview with Texas Democratic candidate"
    assert article.published == datetime(2026, 2, 18, 1, 51, tzinfo=UTC)
    assert article.language == "en"
    assert article.url == (
        "https://www.aljazeera.com/news/2026/2/18/stephen-colbert-says-cbs-barred-his-interview-with-texas-senate-candidate"
    )
    assert article.domain == "aljazeera.com"


def test_spot_check_bbc_chinese_atom() -> None:
    parsed, article = _article("bbc_chinese_2013-01-23.atom", 0)
    assert parsed.format == "atom10"
    assert article.title == "白宫提名艾伦为北约最高司令官"
    assert article.published == datetime(2013, 1, 23, 20, 40, 21, tzinfo=UTC)
    assert article.language == "zh"
    assert article.key == "guid:tag:www.bbcchinese.com,2013-01-23:22535477"


def test_spot_check_le_monde() -> None:
    _, article = _article("lemonde_une_2024-01-18.xml", 0)
    assert article.title == "En Ukraine, la russification à marche forcée des territoires occupés"
    assert article.published == datetime(2024, 1, 18, 5, 0, 16, tzinfo=UTC)
    assert article.language == "fr"


def test_spot_check_dw_rdf_uses_dc_date() -> None:
    parsed, article = _article("dw_en_all_2026-02-17.xml", 0)
    assert parsed.format == "rss10"
    assert len(parsed.entries) == 141
    assert article.title == "France arrests nine in right-wing activist's death"
    assert (article.published, article.published_source) == (datetime(2026, 2, 18, 0, 15, tzinfo=UTC), "updated")
    assert "maca=" not in (article.url or "")


def test_spot_check_ill_formed_latin1_feed_keeps_its_entries() -> None:
    parsed, article = _article("uol_noticias_2018-09-24.rss", 1)
    assert parsed.bozo
    assert len(parsed.entries) == 15
    assert article.title == "Promotoria abre inquérito para apurar suspeita de improbidade de Skaf no Sebrae-SP"
