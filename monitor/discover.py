"""Feed discovery: from a URL a user pastes (a feed or a web page) to feeds that work.

``discover(url, fetcher)``:

1. fetches the URL; if the answer parses as a feed, that feed is the only candidate;
2. otherwise reads the page as HTML for ``<link rel="alternate">`` (or ``rel="feed"``) whose
   ``type`` is a feed type (RSS, Atom, RDF, JSON Feed, plain XML/JSON), resolving relative
   ``href`` against ``<base href>`` or the page's final URL;
3. when no such link yields a feed, tries common feed paths (``/feed``, ``/rss.xml`` ...) on the
   same host.

Every candidate is fetched and parsed before it is returned, so a candidate is a feed that
works now; ``Candidate.type`` is the format the parser found (``rss20``, ``atom10``, ``json11``
...). Links that do not work are left out (``explore`` reports them with the reason).
Candidates are de-duplicated by canonical URL, also after redirects.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Protocol
from urllib.parse import urljoin, urlsplit

from bs4 import BeautifulSoup

from monitor.errors import FetchError, ParseError
from monitor.models import FetchResult, ParsedFeed
from monitor.normalize import canonical_url
from monitor.parse import content_type_charset, parse_feed

log = logging.getLogger(__name__)

FEED_LINK_TYPES = frozenset({
    "application/rss+xml", "application/atom+xml", "application/rdf+xml", "application/feed+json",
    "application/json", "application/xml", "text/xml", "text/rss+xml",
})
COMMON_PATHS = (
    "/feed", "/feed/", "/rss", "/rss.xml", "/atom.xml", "/feed.xml", "/index.xml", "/index.rss",
    "/feeds/posts/default", "/?feed=rss2",
)
MAX_LINKS = 12  # feed links checked on one page, at most


class FetcherLike(Protocol):
    def fetch(self, url: str) -> FetchResult: ...


@dataclass(frozen=True)
class Candidate:
    url: str          # the feed URL to configure
    title: str        # the feed's own title, else the link's title attribute, else ""
    type: str         # the parsed format: "rss20", "atom10", "rss10", "json11" ...
    source: str = "direct"  # "direct" (the URL itself), "link" (<link rel=alternate>), "path" (a common path)


@dataclass
class Discovery:
    url: str                                   # the URL explored (with a scheme added if it had none)
    candidates: list[Candidate] = field(default_factory=list)
    tried: list[tuple[str, str]] = field(default_factory=list)  # (url, why it is not a candidate)


@dataclass(frozen=True)
class FeedLink:
    url: str
    title: str
    type: str


def discover(url: str, fetcher: FetcherLike) -> list[Candidate]:
    """The working feeds found at ``url``. Raises ``FetchError`` when ``url`` itself cannot be fetched."""
    return explore(url, fetcher).candidates


def explore(url: str, fetcher: FetcherLike, *, guess_paths: bool = True) -> Discovery:
    """Like ``discover``, and also says what was tried and why it was not kept."""
    url = _with_scheme(url)
    discovery = Discovery(url=url)
    page = fetcher.fetch(url)
    try:
        feed = parse_feed(page.body, page.headers, page.url)
    except ParseError as exc:
        log.info("not a feed, looking for feed links url=%s kind=%s", page.url, exc.kind)
    else:
        discovery.candidates.append(_candidate(url, page, feed, "", "direct"))
        return discovery
    seen: set[str] = set()
    links = find_feed_links(page.body, page.url, page.headers.get("content-type"))
    for link in links[:MAX_LINKS]:
        _try(link.url, link.title, "link", fetcher, discovery, seen)
    if discovery.candidates or not guess_paths:
        return discovery
    origin = _origin(page.url)
    for path in COMMON_PATHS:
        _try(origin + path, "", "path", fetcher, discovery, seen)
    return discovery


def find_feed_links(body: bytes, page_url: str, content_type: str | None = None) -> list[FeedLink]:
    """Feed links announced in an HTML page, in document order, hrefs made absolute (http(s) only)."""
    encoding = content_type_charset(content_type)
    soup = BeautifulSoup(body, "html.parser", from_encoding=encoding)
    base = page_url
    base_tag = soup.find("base", href=True)
    if base_tag is not None:
        base = _joined(page_url, str(base_tag["href"])) or page_url  # an unusable <base> is ignored
    links: list[FeedLink] = []
    seen: set[str] = set()
    for tag in soup.find_all(["link", "a"], href=True):
        rel = tag.get("rel") or []
        rels = {token.lower() for token in (rel.split() if isinstance(rel, str) else rel)}
        media_type = str(tag.get("type") or "").split(";", 1)[0].strip().lower()
        if not rels & {"alternate", "feed"} or (media_type not in FEED_LINK_TYPES and "feed" not in rels):
            continue
        href = _joined(base, str(tag["href"]))
        if href is None or href in seen:
            continue
        seen.add(href)
        links.append(FeedLink(url=href, title=" ".join(str(tag.get("title") or "").split()), type=media_type))
    return links


def _joined(base: str, href: str) -> str | None:
    """``href`` made absolute against ``base``; None unless that is an http(s) URL urllib can read
    (a page may carry anything, such as an unclosed IPv6 literal ``http://[oops/feed``)."""
    try:
        joined = urljoin(base, href.strip())
        return joined if urlsplit(joined).scheme in ("http", "https") else None
    except ValueError:
        return None


def _try(url: str, title: str, source: str, fetcher: FetcherLike, discovery: Discovery, seen: set[str]) -> None:
    key = canonical_url(url) or url
    if key in seen:
        return
    seen.add(key)
    try:
        result = fetcher.fetch(url)
        feed = parse_feed(result.body, result.headers, result.url)
    except (FetchError, ParseError) as exc:
        log.info("discovery candidate dropped url=%s error=%s", url, exc)
        discovery.tried.append((url, str(exc)))
        return
    final_key = canonical_url(result.url) or result.url
    if final_key in seen and final_key != key:
        discovery.tried.append((url, f"the same feed as {result.url}"))
        return
    seen.add(final_key)
    discovery.candidates.append(_candidate(url, result, feed, title, source))


def _candidate(url: str, result: FetchResult, feed: ParsedFeed, title: str, source: str) -> Candidate:
    feed_title = " ".join((feed.title or "").split())
    return Candidate(url=result.permanent_url or url, title=feed_title or title, type=feed.format, source=source)


def _with_scheme(url: str) -> str:
    url = url.strip()
    if "://" not in url:
        return "https://" + url.lstrip("/")
    return url


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"

