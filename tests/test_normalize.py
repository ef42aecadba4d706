"""canonical_url, normalize_entry, article_key, feed_has_single_link, fingerprints."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from monitor.models import Entry, ParsedFeed
from monitor.normalize import (
    article_key,
    canonical_url,
    feed_has_single_link,
    fold_text,
    normalize_entry,
    normalize_feed,
    normalize_language,
    shared_guids,
    text_fingerprint,
    url_domain,
)

UTC = timezone.utc
SEEN = datetime(2026, 2, 17, 12, 0, tzinfo=UTC)


# ---------------------------------------------------------------------------------------------- URLs

@pytest.mark.parametrize("url, expected", [
    ("HTTP://WWW.Example.COM/Path?b=2#frag", "http://www.example.com/Path?b=2"),
    ("https://example.com", "https://example.com/"),
    ("https://example.com:443/a", "https://example.com/a"),
    ("http://example.com:80/a", "http://example.com/a"),
    ("http://example.com:8080/a", "http://example.com:8080/a"),
    ("https://example.com/a?", "https://example.com/a"),
    ("  https://example.com/a \n", "https://example.com/a"),
    ("https://example.com/a?utm_source=rss&id=7&utm_medium=feed&fbclid=abc&x=1", "https://example.com/a?id=7&x=1"),
    ("https://example.com/a?gclid=1&dclid=2&msclkid=3&mc_cid=4&mc_eid=5&igshid=6&yclid=7", "https://example.com/a"),
    ("https://example.com/a?_hsenc=1&_hsmi=2&ref_src=twsrc&at_medium=x&at_campaign=y&xtor=RSS-1",
     "https://example.com/a"),
    ("https://example.com/a?UTM_Campaign=x&b=2&a=1", "https://example.com/a?b=2&a=1"),
    ("https://example.com/a?q=hello+world&empty=&&z", "https://example.com/a?q=hello+world&empty=&z"),
    ("https://bücher.example/straße", "https://xn--bcher-kva.example/stra%C3%9Fe"),
    ("https://example.com/a b", "https://example.com/a%20b"),
    ("https://example.com./a", "https://example.com/a"),
    ("https://user:secret@example.com/a", "https://example.com/a"),
    ("http://[2001:DB8::1]:8080/x", "http://[2001:db8::1]:8080/x"),
])
def test_canonical_url(url: str, expected: str) -> None:
    assert canonical_url(url) == expected


@pytest.mark.parametrize("url", [
    "", "   ", "mailto:desk@example.org", "ftp://example.org/file", "javascript:alert(1)", "tag:example.org,2026:1",
    "urn:uuid:1234", "//example.org/no-scheme", "/relative/only", "http://", "http://[::1", "http://exa mple.com/",
    "http://example.com:99999/", "http://example.com:port/", "http://a..b/", "https://-/x", None,
])
def test_canonical_url_rejects(url: str | None) -> None:
    assert canonical_url(url) is None


def test_relative_urls_resolve_against_base() -> None:
    base = "https://news.example.org/feeds/world.xml"
    assert canonical_url("/2026/story", base) == "https://news.example.org/2026/story"
    assert canonical_url("story?id=1#x", base) == "https://news.example.org/feeds/story?id=1"
    assert canonical_url("//cdn.example.org/a", base) == "https://cdn.example.org/a"
    assert canonical_url("https://other.example/a", base) == "https://other.example/a"


def test_url_domain() -> None:
    assert url_domain("https://www.example.co.uk/a") == "example.co.uk"
    assert url_domain("https://news.example.org:8443/a") == "news.example.org"
    assert url_domain(None) is None


@settings(max_examples=500, deadline=None)
@given(st.one_of(
    st.text(max_size=80),
    st.builds(
        lambda scheme, host, path, query, frag: f"{scheme}://{host}{path}{query}{frag}",
        st.sampled_from(["http", "HTTPS", "https", "ftp", "Http"]),
        st.text(alphabet=st.sampled_from(list("abcXYZ.-_:@[]0123456789é中 ")), min_size=0, max_size=20),
        st.text(max_size=20),
        st.text(alphabet=st.sampled_from(list("?&=utm_sourcefbclidab%+ é#")), max_size=30),
        st.text(max_size=5),
    ),
))
@example("http://a.b/%zz?%zz=1")
@example("http://xn--a.com/")
@example("http://a.com/?utm_=1&&=&a")
def test_canonical_url_is_idempotent_and_never_raises(url: str) -> None:
    once = canonical_url(url)
    if once is not None:
        assert canonical_url(once) == once
        assert once.startswith(("http://", "https://"))
        assert "#" not in once


# ------------------------------------------------------------------------------------- normalize_entry

def make_entry(**fields: object) -> Entry:
    defaults: dict[str, object] = {
        "title": "Talks resume in Bamako",
        "link": "https://news.example.org/2026/talks?utm_source=rss",
        "guid": "https://news.example.org/?p=4711",
        "summary": "<p>Negotiators met on Monday.</p>",
        "published": datetime(2026, 2, 17, 8, 0, tzinfo=UTC),
    }
    defaults.update(fields)
    return Entry(**defaults)  # type: ignore[arg-type]


def test_normalize_entry_basic() -> None:
    article = normalize_entry(
        make_entry(
            title="<b>Talks</b> resume\nin Bamako &amp; Gao",
            content="<p>Negotiators met on Monday.</p><p>More text follows here.</p>",
            authors=["Awa", "awa", " Bob "],
            categories=["Mali", "MALI", "Sahel"],
            language="fr-FR",
        ),
        seen_at=SEEN,
    )
    assert article.title == "Talks resume in Bamako & Gao"
    assert article.summary == "Negotiators met on Monday."
    assert article.content == "Negotiators met on Monday.\nMore text follows here."
    assert article.url == "https://news.example.org/2026/talks"
    assert article.domain == "news.example.org"
    assert article.key == "guid:https://news.example.org/?p=4711"
    assert article.guid == "https://news.example.org/?p=4711"
    assert article.published == datetime(2026, 2, 17, 8, 0, tzinfo=UTC)
    assert article.published_source == "published"
    assert article.undated is False
    assert article.first_seen == SEEN
    assert article.language == "fr"
    assert article.authors == ["Awa", "Bob"]
    assert article.categories == ["Mali", "Sahel"]
    assert len(article.fingerprint) == 40


def test_content_equal_to_summary_is_dropped() -> None:
    article = normalize_entry(make_entry(summary="<p>Same text.</p>", content="<div>Same   text.</div>"), seen_at=SEEN)
    assert article.summary == "Same text."
    assert article.content == ""


def test_dates_fall_back_to_updated_then_first_seen() -> None:
    updated = datetime(2026, 2, 16, 23, 0, tzinfo=UTC)
    by_update = normalize_entry(make_entry(published=None, updated=updated), seen_at=SEEN)
    assert (by_update.published, by_update.published_source, by_update.undated) == (updated, "updated", False)
    undated = normalize_entry(make_entry(published=None, updated=None), seen_at=SEEN)
    assert (undated.published, undated.published_source, undated.undated) == (SEEN, "first_seen", True)


def test_future_dates_are_clamped_to_seen_at() -> None:
    within_skew = SEEN + timedelta(minutes=9)
    assert normalize_entry(make_entry(published=within_skew), seen_at=SEEN).published == within_skew
    future = normalize_entry(make_entry(published=SEEN + timedelta(days=3)), seen_at=SEEN)
    assert future.published == SEEN
    assert future.published_source == "published"
    assert future.undated is False


def test_naive_seen_at_is_taken_as_utc() -> None:
    article = normalize_entry(make_entry(published=None), seen_at=SEEN.replace(tzinfo=None))
    assert article.published == SEEN


def test_language_precedence() -> None:
    assert normalize_entry(make_entry(language=None), seen_at=SEEN, feed_language="en-US",
                           config_language="fr").language == "en"
    assert normalize_entry(make_entry(language=None), seen_at=SEEN, config_language="FR").language == "fr"
    assert normalize_entry(make_entry(language="US"), seen_at=SEEN, feed_language="de").language == "de"
    assert normalize_entry(make_entry(language=None), seen_at=SEEN).language is None


@pytest.mark.parametrize("values, expected", [
    (("en-US",), "en"), (("pt_BR",), "pt"), (("  EN ",), "en"), (("",  "x-klingon", "fr-fr"), "fr"),
    (("us", None), None), (("und", "fil"), "fil"),
])
def test_normalize_language(values: tuple[str | None, ...], expected: str | None) -> None:
    assert normalize_language(*values) == expected


def test_relative_link_resolves_against_feed_url() -> None:
    article = normalize_entry(make_entry(link="/2026/x"), seen_at=SEEN, feed_url="https://www.example.org/rss.xml")
    assert article.url == "https://www.example.org/2026/x"
    assert article.domain == "example.org"


# ---------------------------------------------------------------------------------------- article keys

def test_key_prefers_a_trustworthy_guid() -> None:
    entry = make_entry(guid="tag:news.example.org,2026:4711")
    assert article_key(entry, "https://news.example.org/a") == "guid:tag:news.example.org,2026:4711"


@pytest.mark.parametrize("guid", [None, "", "   ", "abc", "1234567", "123456789012", "https://news.example.org/",
                                  "https://news.example.org"])
def test_untrustworthy_guids_fall_back_to_the_url(guid: str | None) -> None:
    entry = make_entry(guid=guid)
    assert article_key(entry, "https://news.example.org/a") == "url:https://news.example.org/a"


def test_guid_equal_to_the_feed_homepage_is_untrustworthy() -> None:
    entry = make_entry(guid="https://news.example.org/section/world")
    key = article_key(entry, "https://news.example.org/a", feed_link="https://news.example.org/section/world")
    assert key == "url:https://news.example.org/a"


def test_guid_shared_by_several_entries_is_untrustworthy() -> None:
    entries = [make_entry(guid="same-guid-for-all", link=f"https://x.example/{n}") for n in range(3)]
    entries.append(make_entry(guid="unique-guid-0001"))
    shared = shared_guids(entries)
    assert shared == {"same-guid-for-all"}
    assert article_key(entries[0], "https://x.example/0", shared_guids=shared) == "url:https://x.example/0"
    assert article_key(entries[3], None, shared_guids=shared) == "guid:unique-guid-0001"


def test_hash_key_when_no_guid_and_urls_are_not_merged() -> None:
    entry = make_entry(guid=None, title="<b>Title</b>", summary="Summary")
    key = article_key(entry, "https://x.example/a", merge_urls=False)
    assert key.startswith("hash:") and len(key) == 45
    same_text = make_entry(guid=None, title="Title", summary="<p>Summary</p>", link="https://other.example/")
    assert article_key(same_text, None) == key
    assert article_key(make_entry(guid=None, title="Other"), None, merge_urls=False) != key


def test_site_root_url_is_not_a_key() -> None:
    entry = make_entry(guid=None)
    assert article_key(entry, "https://x.example/").startswith("hash:")


def test_hash_key_uses_content_when_summary_is_empty() -> None:
    first = article_key(make_entry(guid=None, title="", summary="", content="<p>body one</p>"), None)
    second = article_key(make_entry(guid=None, title="", summary="", content="<p>body two</p>"), None)
    assert first != second
    entry = make_entry(guid=None, summary="", content="<p>body one</p>")
    assert normalize_entry(entry, seen_at=SEEN, merge_urls=False).key == article_key(entry, None, merge_urls=False)


def test_naive_entry_dates_are_taken_as_utc() -> None:
    article = normalize_entry(make_entry(published=datetime(2026, 2, 17, 8, 0)), seen_at=SEEN)
    assert article.published == datetime(2026, 2, 17, 8, 0, tzinfo=UTC)


def test_feed_has_single_link() -> None:
    home = [make_entry(link="https://x.example/"), make_entry(link=" https://x.example/ ")]
    assert feed_has_single_link(home) is True
    assert feed_has_single_link(home[:1]) is False
    assert feed_has_single_link([]) is False
    assert feed_has_single_link(home + [make_entry(link="https://x.example/other")]) is False
    assert feed_has_single_link([make_entry(link=None), make_entry(link=None)]) is False


def test_normalize_feed_switches_off_url_merging_for_a_single_link_feed() -> None:
    entries = [
        make_entry(guid=None, link="https://x.example/page", title="First", summary="one"),
        make_entry(guid=None, link="https://x.example/page", title="Second", summary="two"),
    ]
    parsed = ParsedFeed(format="rss20", link="https://x.example/", language="en-GB", entries=entries)
    articles = normalize_feed(parsed, seen_at=SEEN, feed_url="https://x.example/rss")
    assert [article.key[:5] for article in articles] == ["hash:", "hash:"]
    assert articles[0].key != articles[1].key
    assert articles[0].language == "en"
    merged = normalize_feed(ParsedFeed(format="rss20", entries=entries[:1]), seen_at=SEEN)
    assert merged[0].key == "url:https://x.example/page"


# ---------------------------------------------------------------------------------------- fingerprints

def test_fingerprint_ignores_case_accents_punctuation_and_spacing() -> None:
    assert text_fingerprint("Élysée: talks!", "Le  président  parle.") == text_fingerprint(
        "elysee talks", "le president parle"
    )
    assert text_fingerprint("a", "b") != text_fingerprint("a", "c")
    assert fold_text("  Ça, c’est ÉNORME — 北京! ") == "ca c est enorme 北京"
