"""Plain data passed between the pipeline's stages. No I/O here."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Mapping


@dataclass(frozen=True)
class FetchResult:
    """What ``fetch.Fetcher.fetch`` returns for a response it accepted (2xx or 304)."""

    requested_url: str
    url: str                          # final URL after redirects
    status: int                       # 200..299 or 304
    headers: Mapping[str, str]        # response headers, keys lower-cased
    body: bytes                       # decompressed body; b"" on 304
    etag: str | None = None
    last_modified: str | None = None
    permanent_url: str | None = None  # set when every redirect on the way was 301/308
    elapsed: float = 0.0              # seconds
    fetched_at: datetime | None = None  # UTC

    @property
    def not_modified(self) -> bool:
        return self.status == 304


@dataclass
class Entry:
    """One feed entry as the parser found it: text fields may still hold HTML."""

    title: str = ""
    link: str | None = None
    guid: str | None = None
    guid_is_permalink: bool | None = None
    summary: str = ""                 # HTML or text
    content: str = ""                 # HTML or text (longest content block)
    published: datetime | None = None  # UTC-aware
    updated: datetime | None = None    # UTC-aware
    authors: list[str] = field(default_factory=list)
    categories: list[str] = field(default_factory=list)
    language: str | None = None
    enclosures: list[str] = field(default_factory=list)


@dataclass
class ParsedFeed:
    """What ``parse.parse_feed`` returns."""

    format: str                       # feedparser's version ("rss20", "atom10", ...) or "json1"/"json11"
    title: str = ""
    link: str | None = None
    language: str | None = None
    ttl_minutes: int | None = None    # RSS <ttl>
    entries: list[Entry] = field(default_factory=list)
    bozo: str | None = None           # the parser's warning for a feed that is not well-formed


@dataclass
class Article:
    """A normalised entry, ready to store. Text fields are clean text."""

    key: str                          # stable identity: "guid:..." / "url:..." / "hash:..."
    url: str | None                   # canonical URL
    guid: str | None
    title: str
    summary: str
    content: str
    published: datetime               # UTC; see published_source
    published_source: str             # "published", "updated" or "first_seen"
    undated: bool                     # True when the entry had no date of its own
    first_seen: datetime              # UTC
    language: str | None
    authors: list[str] = field(default_factory=list)
    categories: list[str] = field(default_factory=list)
    domain: str | None = None         # host of the canonical URL, without "www."
    fingerprint: str = ""             # hash of normalised title + summary text


@dataclass
class FeedPollResult:
    """What one refresh of one feed did; printed by ``newsmon poll`` and logged."""

    feed: str
    status: str                       # "ok", "not_modified", "unchanged", "error", "skipped"
    http_status: int | None = None
    new: int = 0
    updated: int = 0
    seen: int = 0
    error: str | None = None
    error_kind: str | None = None
    alerts: int = 0
    held_back: int = 0
    elapsed: float = 0.0
