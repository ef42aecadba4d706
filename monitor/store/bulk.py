"""The bulk insert path: many articles per transaction (archive import, benchmarks).

Unlike the poll path (``pipeline.ingest_articles``) it creates no alerts. It does store what
makes an article searchable and grouped: the article row (indexed by the FTS triggers), its
feed links, its story (through the clusterer, when one is given) and its rule matches (when a
rule set is given). It is idempotent: an article whose key (or canonical URL) is stored already
is not inserted again; only feed links it did not have are added.

Each batch is one transaction. Look-ups of existing keys and URLs are done per batch, and new
rows get their ids from the batch itself, so that the inserts are ``executemany`` calls.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Iterable, Iterator, Sequence

from monitor.errors import StoreError
from monitor.models import Article
from monitor.timeutil import to_iso, utcnow

if TYPE_CHECKING:
    from monitor.rules import RuleSet
    from monitor.store import Store
    from monitor.stories import StoryClusterer

log = logging.getLogger(__name__)

DEFAULT_BATCH = 2000
_LOOKUP_CHUNK = 500

_INSERT_ARTICLE = (
    "INSERT INTO articles(id, key, url, guid, title, summary, content, published, published_source, undated, "
    "first_seen, updated_at, language, authors, categories, domain, fingerprint, feed_id) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_INSERT_LINK = "INSERT OR IGNORE INTO article_feeds(article_id, feed_id, first_seen) VALUES (?, ?, ?)"


@dataclass(frozen=True)
class FeedLink:
    """A feed an article appeared in: its name (identity), URL and when the article was first seen there."""

    name: str
    url: str | None = None
    first_seen: datetime | None = None


@dataclass(frozen=True)
class BulkArticle:
    """One article to store and the feeds it appeared in (the first one is its origin feed)."""

    article: Article
    feeds: tuple[FeedLink, ...]
    updated_at: datetime | None = None


@dataclass
class BulkResult:
    new: int = 0                 # articles inserted
    existing: int = 0            # articles already stored (same key or canonical URL)
    links: int = 0               # feed links added (to new and existing articles)
    feeds_created: int = 0       # feeds that were not in the archive
    stories_created: int = 0
    matches: int = 0             # rule matches recorded
    batches: int = 0
    article_ids: list[int] = field(default_factory=list)

    def add(self, other: "BulkResult") -> None:
        self.new += other.new
        self.existing += other.existing
        self.links += other.links
        self.feeds_created += other.feeds_created
        self.stories_created += other.stories_created
        self.matches += other.matches
        self.batches += other.batches
        self.article_ids.extend(other.article_ids)


def bulk_insert(
    store: "Store",
    items: Iterable[BulkArticle],
    *,
    batch_size: int = DEFAULT_BATCH,
    clusterer: "StoryClusterer | None" = None,
    ruleset: "RuleSet | None" = None,
    now: datetime | None = None,
    keep_ids: bool = False,
) -> BulkResult:
    """Store ``items``, ``batch_size`` per transaction; no alerts are ever created.

    ``clusterer``: assign stories (None skips it: benchmarks only). ``ruleset``: record rule
    matches. ``keep_ids``: collect the ids of every article touched in the result.
    """
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    now = now or utcnow()
    total = BulkResult()
    feed_ids: dict[str, int] = {}
    for batch in _batches(items, batch_size):
        with store.transaction() as conn:
            try:
                result = _insert_batch(store, conn, batch, feed_ids, clusterer=clusterer, ruleset=ruleset, now=now)
            except sqlite3.Error as exc:
                raise StoreError(f"bulk insert into {store.path} failed: {exc}") from exc
        if not keep_ids:
            result.article_ids.clear()
        total.add(result)
        log.debug("bulk batch stored new=%d existing=%d links=%d", result.new, result.existing, result.links)
    if clusterer is not None:
        with store.transaction() as conn:
            clusterer.flush(conn)  # the document counts it still holds in memory
    log.info("bulk insert done new=%d existing=%d links=%d batches=%d", total.new, total.existing, total.links,
             total.batches)
    return total


def _batches(items: Iterable[BulkArticle], size: int) -> Iterator[list[BulkArticle]]:
    batch: list[BulkArticle] = []
    for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def _lookup(conn: sqlite3.Connection, column: str, values: Sequence[str]) -> dict[str, int]:
    """``{value: article id}`` for the stored articles whose ``column`` is one of ``values`` (lowest id wins)."""
    found: dict[str, int] = {}
    unique = list(dict.fromkeys(v for v in values if v))
    for start in range(0, len(unique), _LOOKUP_CHUNK):
        chunk = unique[start:start + _LOOKUP_CHUNK]
        marks = ", ".join("?" for _ in chunk)
        for value, article_id in conn.execute(
            f"SELECT {column}, min(id) FROM articles WHERE {column} IN ({marks}) GROUP BY {column}", chunk
        ):
            found[value] = article_id
    return found


def _feed_id(store: "Store", conn: sqlite3.Connection, link: FeedLink, cache: dict[str, int], now: datetime,
             result: BulkResult) -> int:
    if link.name in cache:
        return cache[link.name]
    row = conn.execute("SELECT id FROM feeds WHERE name = ?", (link.name,)).fetchone()
    if row is None:
        result.feeds_created += 1
    feed_id = store.ensure_feed(conn, link.name, link.url or f"urn:newsmon:feed:{link.name}", now=now)
    cache[link.name] = feed_id
    return feed_id


def _row(article_id: int, item: BulkArticle, feed_id: int | None) -> tuple[object, ...]:
    article = item.article
    return (
        article_id, article.key, article.url, article.guid, article.title, article.summary, article.content,
        to_iso(article.published), article.published_source, int(article.undated), to_iso(article.first_seen),
        to_iso(item.updated_at), article.language, _json_list(article.authors), _json_list(article.categories),
        article.domain, article.fingerprint, feed_id,
    )


def _json_list(values: list[str]) -> str:
    return json.dumps(values, ensure_ascii=False) if values else "[]"


def _insert_batch(
    store: "Store", conn: sqlite3.Connection, batch: list[BulkArticle], feed_ids: dict[str, int], *,
    clusterer: "StoryClusterer | None", ruleset: "RuleSet | None", now: datetime,
) -> BulkResult:
    result = BulkResult(batches=1)
    by_key = _lookup(conn, "key", [item.article.key for item in batch])
    by_url = _lookup(conn, "url", [item.article.url for item in batch if item.article.key not in by_key])
    next_id = int(conn.execute("SELECT coalesce(max(id), 0) FROM articles").fetchone()[0]) + 1
    rows: list[tuple[object, ...]] = []
    links: list[tuple[int, int, str]] = []
    placed: list[tuple[int, BulkArticle, bool]] = []    # (article id, item, new?)
    batch_urls: dict[str, int] = {}
    for item in batch:
        article = item.article
        existing = by_key.get(article.key)
        if existing is None and article.url:
            existing = by_url.get(article.url, batch_urls.get(article.url))
        origin = _feed_id(store, conn, item.feeds[0], feed_ids, now, result) if item.feeds else None
        if existing is None:
            article_id, next_id = next_id, next_id + 1
            rows.append(_row(article_id, item, origin))
            by_key[article.key] = article_id
            if article.url:
                batch_urls[article.url] = article_id
            result.new += 1
            placed.append((article_id, item, True))
        else:
            article_id = existing
            result.existing += 1
            placed.append((article_id, item, False))
        for link in item.feeds:
            feed_id = _feed_id(store, conn, link, feed_ids, now, result)
            links.append((article_id, feed_id, to_iso(link.first_seen or article.first_seen) or ""))
        result.article_ids.append(article_id)
    conn.executemany(_INSERT_ARTICLE, rows)
    before = conn.total_changes
    conn.executemany(_INSERT_LINK, links)
    result.links = conn.total_changes - before
    if clusterer is not None or ruleset is not None:
        _stories_and_matches(conn, placed, clusterer=clusterer, ruleset=ruleset, now=now, result=result)
    return result


def _stories_and_matches(
    conn: sqlite3.Connection, placed: list[tuple[int, BulkArticle, bool]], *, clusterer: "StoryClusterer | None",
    ruleset: "RuleSet | None", now: datetime, result: BulkResult,
) -> None:
    from monitor.store.matches import match_doc, record_matches

    done: set[int] = set()
    for article_id, item, new in placed:
        if not item.feeds:
            continue
        if clusterer is not None:
            for link in item.feeds:
                assignment = clusterer.assign(conn, article_id, item.article, link.name,
                                              now=link.first_seen or item.article.first_seen)
                result.stories_created += int(assignment.created)
        if ruleset is not None and article_id not in done:
            matches = ruleset.match(match_doc(conn, article_id))
            if matches:
                record_matches(conn, article_id, matches, now)
                result.matches += len(matches)
        done.add(article_id)


# --------------------------------------------------------------------------- export / import records

EXPORT_FIELDS = (
    "key", "url", "guid", "title", "summary", "content", "published", "published_source", "undated",
    "first_seen", "updated_at", "language", "authors", "categories", "domain", "fingerprint",
)
_EXPORT_SQL = (
    "SELECT a.id, " + ", ".join(f"a.{name}" for name in EXPORT_FIELDS) + ", "
    "(SELECT json_group_array(json_object('name', f.name, 'url', f.url, 'first_seen', af.first_seen)) "
    " FROM (SELECT * FROM article_feeds WHERE article_id = a.id ORDER BY first_seen, feed_id) af "
    " JOIN feeds f ON f.id = af.feed_id) "
    "FROM articles a WHERE a.id > ? {since} ORDER BY a.id LIMIT ?"
)


def export_records(conn: sqlite3.Connection, *, since: datetime | None = None,
                   page: int = 1000) -> Iterator[dict[str, object]]:
    """Every stored article (published at or after ``since``) as one JSON-ready dict, oldest id first:
    the article's columns and ``feeds`` ([{name, url, first_seen}], first feed first). Read in pages
    so that an export of a large archive holds little memory."""
    since_text = to_iso(since)
    sql = _EXPORT_SQL.format(since="AND a.published >= ?" if since_text else "")
    last = 0
    while True:
        params: list[object] = [last, *([since_text] if since_text else []), page]
        try:
            rows = conn.execute(sql, params).fetchall()
        except sqlite3.Error as exc:
            raise StoreError(f"cannot read articles for export: {exc}") from exc
        for row in rows:
            record: dict[str, object] = dict(zip(EXPORT_FIELDS, row[1:-1]))
            record["undated"] = bool(record["undated"])
            record["authors"] = json.loads(str(record["authors"] or "[]"))
            record["categories"] = json.loads(str(record["categories"] or "[]"))
            record["feeds"] = json.loads(row[-1] or "[]")
            yield record
        if len(rows) < page:
            return
        last = rows[-1][0]


class RecordError(ValueError):
    """A JSON object that is not an exported article; the message says which field and why."""


def _text(record: dict[str, object], name: str, *, required: bool = False, default: str | None = "") -> str | None:
    value = record.get(name)
    if value is None:
        if required:
            raise RecordError(f"missing {name!r}")
        return default
    if not isinstance(value, str):
        raise RecordError(f"{name!r} must be a string, not {type(value).__name__}")
    _check_encodable(name, value)
    return value


def _check_encodable(name: str, value: str) -> None:
    """JSON may escape half a UTF-16 pair (\\ud800), which is no character: SQLite cannot store it."""
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise RecordError(f"{name!r} holds an unpaired surrogate {value[exc.start]!r}, not text") from None


def _time(record: dict[str, object], name: str, *, required: bool = False) -> datetime | None:
    from monitor.timeutil import DateRangeError, from_iso

    text = _text(record, name, required=required, default=None)
    if text is None:
        return None
    try:
        return from_iso(text)
    except DateRangeError as exc:
        raise RecordError(f"{name!r}: {exc}") from None
    except ValueError:
        raise RecordError(f"{name!r} is not an ISO-8601 time: {text!r}") from None


def _strings(record: dict[str, object], name: str) -> list[str]:
    value = record.get(name) or []
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise RecordError(f"{name!r} must be a list of strings")
    for item in value:
        _check_encodable(name, item)
    return list(value)


def _links(record: dict[str, object]) -> tuple[FeedLink, ...]:
    value = record.get("feeds") or []
    if not isinstance(value, list) or not value:
        raise RecordError("'feeds' must be a non-empty list of {name, url, first_seen}")
    links = []
    for index, item in enumerate(value):
        if not isinstance(item, dict):
            raise RecordError(f"feeds[{index}] must be an object with a name")
        try:
            name = _text(item, "name", required=True)
            if not name or not name.strip():
                raise RecordError("missing 'name'")
            links.append(FeedLink(name=name, url=_text(item, "url", default=None),
                                  first_seen=_time(item, "first_seen")))
        except RecordError as exc:
            raise RecordError(f"feeds[{index}]: {exc}") from None
    return tuple(links)


def record_to_bulk(record: object) -> BulkArticle:
    """An exported JSON object back into a :class:`BulkArticle`; raises RecordError naming the problem."""
    if not isinstance(record, dict):
        raise RecordError(f"expected a JSON object, got {type(record).__name__}")
    key = _text(record, "key", required=True)
    if not key:
        raise RecordError("'key' is empty")
    published = _time(record, "published", required=True)
    first_seen = _time(record, "first_seen") or published
    source = _text(record, "published_source", default="published") or "published"
    if source not in ("published", "updated", "first_seen"):
        raise RecordError(f"'published_source' must be published, updated or first_seen, not {source!r}")
    undated = record.get("undated", False)
    if not isinstance(undated, bool):
        raise RecordError("'undated' must be true or false")
    article = Article(
        key=key, url=_text(record, "url", default=None), guid=_text(record, "guid", default=None),
        title=_text(record, "title") or "", summary=_text(record, "summary") or "",
        content=_text(record, "content") or "", published=published, published_source=source,  # type: ignore[arg-type]
        undated=undated, first_seen=first_seen, language=_text(record, "language", default=None),  # type: ignore[arg-type]
        authors=_strings(record, "authors"), categories=_strings(record, "categories"),
        domain=_text(record, "domain", default=None), fingerprint=_text(record, "fingerprint") or "",
    )
    return BulkArticle(article=article, feeds=_links(record), updated_at=_time(record, "updated_at"))
