"""Feed discovery against pages served on 127.0.0.1 by the test feed server."""

from __future__ import annotations

from typing import Iterator

import pytest

from monitor.discover import Candidate, discover, explore, find_feed_links
from monitor.errors import FetchError
from monitor.fetch import Fetcher, FetchSettings
from tests.feedserver import FeedServer

RSS = """<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0"><channel><title>{title}</title><link>http://example.org/</link>
<description>d</description>
<item><title>First story</title><link>http://example.org/1</link><guid>1</guid></item>
</channel></rss>"""

ATOM = """<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom"><title>{title}</title><id>urn:x</id>
<updated>2026-02-17T08:00:00Z</updated>
<entry><title>One</title><id>urn:x:1</id><updated>2026-02-17T08:00:00Z</updated>
<link href="http://example.org/1"/></entry></feed>"""

JSON_FEED = '{"version": "https://jsonfeed.org/version/1.1", "title": "%s", "items": [{"id": "1", "content_text": "x"}]}'


def page(head: str, body: str = "<p>Hello</p>") -> str:
    return f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>Site</title>{head}</head><body>{body}</body></html>"


@pytest.fixture
def server() -> Iterator[FeedServer]:
    with FeedServer() as feed_server:
        yield feed_server


@pytest.fixture
def fetcher() -> Iterator[Fetcher]:
    with Fetcher(FetchSettings.default()) as instance:
        yield instance


def test_a_feed_url_is_its_own_candidate(server: FeedServer, fetcher: Fetcher) -> None:
    server.add("/rss.xml", RSS.format(title="Direct"))
    assert discover(server.url("/rss.xml"), fetcher) == [
        Candidate(url=server.url("/rss.xml"), title="Direct", type="rss20", source="direct")
    ]


def test_feed_link_in_head(server: FeedServer, fetcher: Fetcher) -> None:
    feed_url = server.url("/feeds/all.atom")
    server.add("/", page(f'<link rel="alternate" type="application/atom+xml" title="All" href="{feed_url}">'),
               content_type="text/html; charset=utf-8")
    server.add("/feeds/all.atom", ATOM.format(title="Site (Atom)"), content_type="application/atom+xml")
    assert discover(server.url("/"), fetcher) == [
        Candidate(url=feed_url, title="Site (Atom)", type="atom10", source="link")
    ]


def test_relative_href_and_base_are_resolved(server: FeedServer, fetcher: Fetcher) -> None:
    server.add("/blog/post/1", page('<link rel="alternate" type="application/rss+xml" href="../rss.xml">'),
               content_type="text/html")
    server.add("/blog/rss.xml", RSS.format(title="Blog"))
    server.add("/other/page", page('<base href="/news/"><link rel="Alternate feed" type="application/rss+xml"'
                                   ' href="feed.xml">'), content_type="text/html")
    server.add("/news/feed.xml", RSS.format(title="News"))
    assert [c.url for c in discover(server.url("/blog/post/1"), fetcher)] == [server.url("/blog/rss.xml")]
    assert [c.url for c in discover(server.url("/other/page"), fetcher)] == [server.url("/news/feed.xml")]


def test_several_feeds_are_all_listed_and_broken_ones_dropped(server: FeedServer, fetcher: Fetcher) -> None:
    head = (
        '<link rel="alternate" type="application/rss+xml" title="Posts" href="/feed/">'
        '<link rel="alternate" type="application/rss+xml" title="Comments" href="/comments/feed/">'
        '<link rel="alternate" type="application/feed+json" href="/feed.json">'
        '<link rel="alternate" type="application/json" href="/wp-json/wp/v2/pages/2">'
        '<link rel="alternate" type="application/rss+xml" href="/gone.xml">'
        '<link rel="alternate" type="text/xml+oembed" href="/oembed">'
        '<link rel="stylesheet" type="text/css" href="/style.css">'
        '<link rel="alternate" hreflang="fr" href="/fr/">'
    )
    server.add("/", page(head), content_type="text/html")
    server.add("/feed/", RSS.format(title="Posts feed"))
    server.add("/comments/feed/", RSS.format(title="Comments feed"))
    server.add("/feed.json", JSON_FEED % "JSON posts", content_type="application/feed+json")
    server.add("/wp-json/wp/v2/pages/2", '{"id": 2, "title": {"rendered": "About"}}', content_type="application/json")
    result = explore(server.url("/"), fetcher)
    assert [(c.title, c.type, c.source) for c in result.candidates] == [
        ("Posts feed", "rss20", "link"), ("Comments feed", "rss20", "link"), ("JSON posts", "json11", "link"),
    ]
    tried = dict(result.tried)
    assert set(tried) == {server.url("/wp-json/wp/v2/pages/2"), server.url("/gone.xml")}
    assert not server.requests_for("/oembed") and not server.requests_for("/style.css")
    assert not server.requests_for("/rss.xml"), "common paths are not tried when links gave feeds"


def test_no_feed_anywhere_gives_no_candidate(server: FeedServer, fetcher: Fetcher) -> None:
    server.add("/", page(""), content_type="text/html")
    result = explore(server.url("/"), fetcher)
    assert result.candidates == []
    assert {url for url, _ in result.tried} == {server.url(path) for path in
                                                ("/feed", "/feed/", "/rss", "/rss.xml", "/atom.xml", "/feed.xml",
                                                 "/index.xml", "/index.rss", "/feeds/posts/default", "/?feed=rss2")}


def test_common_paths_on_the_same_host_and_redirect_duplicates(server: FeedServer, fetcher: Fetcher) -> None:
    server.add("/section/page.html", page("<link rel='icon' href='/favicon.ico'>"), content_type="text/html")
    server.add("/feed", RSS.format(title="Guessed"))
    server.redirect("/feed/", "/feed", status=301)
    server.redirect("/rss", "/feed", status=302)
    server.add("/atom.xml", ATOM.format(title="Guessed Atom"))
    candidates = discover(server.url("/section/page.html"), fetcher)
    assert [(c.url, c.title, c.source) for c in candidates] == [
        (server.url("/feed"), "Guessed", "path"),
        (server.url("/atom.xml"), "Guessed Atom", "path"),
    ]


def test_a_feed_that_moved_permanently_is_proposed_at_its_new_url(server: FeedServer, fetcher: Fetcher) -> None:
    server.redirect("/old.rss", "/new.rss", status=301)
    server.add("/new.rss", RSS.format(title="Moved"))
    assert [c.url for c in discover(server.url("/old.rss"), fetcher)] == [server.url("/new.rss")]


def test_an_unreachable_url_is_a_fetch_error(server: FeedServer, fetcher: Fetcher) -> None:
    with pytest.raises(FetchError):
        discover(server.url("/missing"), fetcher)


def test_find_feed_links_reads_types_rels_and_encodings() -> None:
    html = (
        "<html><head><meta charset='iso-8859-1'>"
        "<link rel='alternate' type='application/rss+xml; charset=utf-8' title='Actualit\xe9s' href='/a.rss'>"
        "<link rel='alternate' type='application/rdf+xml' href='https://other.example/b.rdf'>"
        "<link rel='feed' href='/c'>"
        "<link rel='alternate' type='application/rss+xml' href='javascript:alert(1)'>"
        "<link rel='alternate' type='application/rss+xml' href='/a.rss'>"
        "</head><body><a rel='alternate' type='application/atom+xml' href='d.atom'>feed</a></body></html>"
    ).encode("latin-1")
    links = find_feed_links(html, "http://site.example/x/y", "text/html")
    assert [(link.url, link.title) for link in links] == [
        ("http://site.example/a.rss", "Actualités"),
        ("https://other.example/b.rdf", ""),
        ("http://site.example/c", ""),
        ("http://site.example/x/d.atom", ""),
    ]


def test_links_and_base_urllib_cannot_read_are_skipped(server: FeedServer, fetcher: Fetcher) -> None:
    """An unclosed IPv6 literal in a page's <base> or feed link made urljoin raise ValueError: a traceback
    from `newsmon feeds add` instead of the feeds the page's other links offer."""
    server.add("/", page('<base href="http://[::1/news/">'
                         '<link rel="alternate" type="application/rss+xml" href="http://[oops/feed">'
                         '<link rel="alternate" type="application/rss+xml" href="/rss.xml">'), content_type="text/html")
    server.add("/rss.xml", RSS.format(title="Works"))
    assert [(c.url, c.title) for c in discover(server.url("/"), fetcher)] == [(server.url("/rss.xml"), "Works")]
