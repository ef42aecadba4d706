"""The archive: the only place that runs SQL (with the area modules beside this file).

One ``Store`` wraps one SQLite connection. Writes go through ``transaction()``, which holds
a lock so that the daemon's worker threads share the connection one short transaction at a
time (one writer). Read-only commands open the file with ``mode=ro`` and never migrate.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Iterable, Iterator

import sqlite_utils

from monitor.errors import ReadOnlyError, StoreError
from monitor.models import Article
from monitor.store.schema import MIGRATIONS, READABLE_FROM, SCHEMA_VERSION
from monitor.timeutil import to_iso, utcnow

log = logging.getLogger(__name__)

BUSY_TIMEOUT_MS = 30_000


@dataclass(frozen=True)
class ArticleWrite:
    """What storing one article did. ``status``: "new", "updated" or "seen"."""

    article_id: int
    status: str
    linked: bool          # the article was linked to this feed for the first time


def translate_sqlite_error(exc: sqlite3.Error, path: Path | str) -> StoreError:
    """A user-facing StoreError for the SQLite failures a user can act on."""
    text = str(exc)
    lowered = text.lower()
    if "readonly" in lowered or "read-only" in lowered:
        return ReadOnlyError(f"archive {path} is read-only: {text}")
    if "disk is full" in lowered or "database or disk is full" in lowered:
        return StoreError(f"archive {path}: the disk is full ({text}); free some space and try again")
    if "locked" in lowered or "busy" in lowered:
        return StoreError(f"archive {path} is busy (another process holds a write lock too long): {text}")
    if "malformed" in lowered or "not a database" in lowered:
        return StoreError(f"archive {path} is damaged or not a newsmon database: {text}")
    if "unable to open" in lowered:
        return StoreError(f"archive {path} cannot be opened: {text}")
    if "disk i/o" in lowered:
        return StoreError(f"archive {path}: disk I/O error: {text}")
    return StoreError(f"archive {path}: {text}")


def archive_fault(exc: sqlite3.DatabaseError) -> bool:
    """Whether an SQLite error comes from the archive's state (locked, full disk, I/O, a damaged file: SQLite
    raises the bare ``DatabaseError`` for "malformed" and "not a database") rather than from a wrong statement."""
    return isinstance(exc, sqlite3.OperationalError) or type(exc) is sqlite3.DatabaseError


_ARTICLE_COLUMNS = "id, title, summary, content, feed_id, url"
_RECOGNISE_SQL = (
    f"SELECT * FROM (SELECT 1, {_ARTICLE_COLUMNS} FROM articles "
    "WHERE :by_url AND url = :url ORDER BY id LIMIT 1) "
    f"UNION ALL SELECT * FROM (SELECT 2, {_ARTICLE_COLUMNS} FROM articles "
    "WHERE :guid IS NOT NULL AND guid = :guid AND key LIKE 'guid:%' ORDER BY id LIMIT 1) "
    "ORDER BY 1 LIMIT 1"
)


# The feed columns a poll learns about the URL it fetched, and what they become when the configured URL
# changes (the feed keeps its name, articles and history; ``sync_feeds`` applies this).
URL_CHANGE_RESET: dict[str, Any] = {"etag": None, "last_modified": None, "body_hash": None, "gone": 0,
                                    "permanent_url": None, "next_check": None, "retry_after": None,
                                    "consecutive_errors": 0}


def as_configured(row: dict[str, Any], url: str) -> dict[str, Any]:
    """A feed's row as it will be once the archive has seen ``url`` configured (what ``sync_feeds`` does
    when a poll or a reload meets a changed URL): the old URL's validators, errors and advice do not apply."""
    if not row or row.get("url") in (None, url):
        return row
    return {**row, "url": url, **URL_CHANGE_RESET}


def feeds_as_configured(feeds: Iterable[Any], rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """The configured ``feeds`` (``FeedConfig``, in config order) as rows of the feeds table once ``sync_feeds``
    has seen the config, from the archive's ``rows``: a feed added or edited since the last poll or reload
    shows as it will be (a new one has only the configured columns); feeds no longer configured are left out."""
    by_name = {row["name"]: row for row in rows}
    return [
        {**as_configured(by_name.get(feed.name, {}), feed.url), "name": feed.name, "url": feed.url,
         "enabled": int(feed.enabled), "language": feed.language, "tags": json.dumps(list(feed.tags))}
        for feed in feeds
    ]


def feeds_as_synced(feeds: Iterable[Any], rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """The whole feeds table as ``sync_feeds`` will leave it for the configured ``feeds``: the configured ones
    (``feeds_as_configured``), then those no longer configured, disabled."""
    rows = list(rows)
    configured = feeds_as_configured(feeds, rows)
    names = {row["name"] for row in configured}
    return configured + [{**row, "enabled": 0} for row in rows if row["name"] not in names]


class Store:
    def __init__(self, conn: sqlite3.Connection, path: Path, *, readonly: bool) -> None:
        self.conn = conn
        self.path = path
        self.readonly = readonly
        self.lock = threading.RLock()
        self.db = sqlite_utils.Database(conn)

    # ---------------------------------------------------------------- opening
    @classmethod
    def open(cls, path: str | Path, *, readonly: bool = False) -> "Store":
        db_path = Path(path)
        if db_path.is_dir():
            raise StoreError(f"archive {db_path} is a directory, not an SQLite file: name the archive's file "
                             f"(such as {db_path / 'newsmon.db'})")
        if str(db_path) == ":memory:":
            conn = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
        elif readonly:
            if not db_path.exists():
                raise StoreError(f"no archive at {db_path}: run `newsmon poll` (or `newsmon run`) first")
            uri = f"file:{db_path.resolve()}?mode=ro"
            try:
                conn = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False,
                                       timeout=BUSY_TIMEOUT_MS / 1000)
            except sqlite3.Error as exc:
                raise translate_sqlite_error(exc, db_path) from exc
        else:
            try:
                db_path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StoreError(f"cannot create the folder for the archive {db_path}: {exc.strerror}") from exc
            try:
                conn = sqlite3.connect(db_path, isolation_level=None, check_same_thread=False,
                                       timeout=BUSY_TIMEOUT_MS / 1000)
            except sqlite3.Error as exc:
                raise translate_sqlite_error(exc, db_path) from exc
        store = cls(conn, db_path, readonly=readonly)
        try:
            store._configure()
            if readonly:
                store._check_version()
            else:
                store.migrate()
        except sqlite3.Error as exc:
            conn.close()
            raise translate_sqlite_error(exc, db_path) from exc
        except StoreError:
            conn.close()
            raise
        return store

    def _configure(self) -> None:
        self.conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        self.conn.execute("PRAGMA foreign_keys = ON")
        if not self.readonly:
            self._refuse_foreign()  # before anything is changed, the journal mode included
            mode = self.conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if mode.lower() != "wal" and str(self.path) != ":memory:":
                log.warning("journal mode is %s, not WAL path=%s", mode, self.path)
            self.conn.execute("PRAGMA synchronous = NORMAL")

    def _check_version(self) -> None:
        # The header's user_version reads no schema: load it now, so that a damaged archive is reported
        # as such when it is opened rather than by whichever query meets the damage first.
        self.conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
        version = self.schema_version()
        if version == 0:
            raise StoreError(f"{self.path} is not a newsmon archive (no schema): run `newsmon poll` to create one")
        if version < READABLE_FROM:
            raise StoreError(
                f"archive {self.path} was written by an older newsmon (schema {version}, this one uses "
                f"{SCHEMA_VERSION}): run a writing command such as `newsmon poll` once to upgrade it"
            )
        self._refuse_newer(version)

    def _refuse_newer(self, version: int) -> None:
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"archive {self.path} was written by a newer newsmon (schema {version}; this one knows "
                f"{SCHEMA_VERSION}): upgrade newsmon"
            )

    def _refuse_foreign(self) -> None:
        """An SQLite file with tables but no newsmon schema belongs to another program: never add ours to it.
        (One statement reads both, so a newsmon archive being created by another process at this moment
        is seen either empty or with its schema version.)"""
        tables = [row[0] for row in self.conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' "
            "AND (SELECT user_version FROM pragma_user_version) = 0 ORDER BY name LIMIT 4"
        )]
        if tables:
            shown = ", ".join(tables[:3]) + (", ..." if len(tables) > 3 else "")
            raise StoreError(f"{self.path} is an SQLite database of another program (tables: {shown}), not a "
                             "newsmon archive: choose another --db")

    def schema_version(self) -> int:
        return int(self.conn.execute("PRAGMA user_version").fetchone()[0])

    def migrate(self) -> None:
        with self.lock:
            version = self.schema_version()
            self._refuse_newer(version)
            if version == SCHEMA_VERSION:
                return
            self.conn.execute("BEGIN IMMEDIATE")
            try:
                version = self.schema_version()
                for number, migration in enumerate(MIGRATIONS[version:], start=version + 1):
                    migration(self.conn)
                    log.info("migrated archive path=%s schema=%d", self.path, number)
                self.conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
                self.conn.execute("COMMIT")
            except BaseException:
                self.conn.execute("ROLLBACK")
                raise

    def close(self) -> None:
        with self.lock:
            self.conn.close()

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # ---------------------------------------------------------------- transactions
    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One short write transaction (BEGIN IMMEDIATE ... COMMIT), rolled back on any error."""
        if self.readonly:
            raise ReadOnlyError(f"archive {self.path} is open read-only")
        with self.lock:
            try:
                self.conn.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as exc:
                raise translate_sqlite_error(exc, self.path) from exc
            try:
                yield self.conn
            except sqlite3.DatabaseError as exc:
                # SQLite may have rolled back already (a full disk does): then ROLLBACK itself would fail
                # and hide the cause.
                self._rollback()
                if not archive_fault(exc):
                    raise
                raise translate_sqlite_error(exc, self.path) from exc
            except BaseException:
                self._rollback()
                raise
            try:
                self.conn.execute("COMMIT")
            except sqlite3.OperationalError as exc:
                self._rollback()
                raise translate_sqlite_error(exc, self.path) from exc

    def _rollback(self) -> None:
        if self.conn.in_transaction:
            self.conn.execute("ROLLBACK")

    @contextmanager
    def reading(self) -> Iterator[sqlite3.Connection]:
        """The connection for a group of reads, not interleaved with another thread's transaction.
        An SQLite failure inside (a damaged page met by a query) comes out as a StoreError."""
        with self.lock:
            try:
                yield self.conn
            except sqlite3.Error as exc:
                raise translate_sqlite_error(exc, self.path) from exc

    @contextmanager
    def snapshot(self) -> Iterator[sqlite3.Connection]:
        """``reading()`` inside one read transaction: reads spread over many queries (output written in
        chunks as it is read) all see the archive as it was at the first one, whatever is committed meanwhile."""
        with self.reading() as conn:
            if conn.in_transaction:
                yield conn
                return
            conn.execute("BEGIN")
            try:
                yield conn
            finally:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")

    def table_exists(self, name: str) -> bool:
        with self.lock:
            row = self.conn.execute(
                "SELECT 1 FROM sqlite_master WHERE type IN ('table', 'view') AND name = ?", (name,)
            ).fetchone()
        return row is not None

    # ---------------------------------------------------------------- meta
    def get_meta(self, key: str) -> str | None:
        with self.lock:
            row = self.conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def set_meta(self, conn: sqlite3.Connection, key: str, value: str | None) -> None:
        conn.execute(
            "INSERT INTO meta(key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            (key, value),
        )

    # ---------------------------------------------------------------- feeds
    def sync_feeds(self, feeds: Iterable[Any], *, now: datetime | None = None) -> None:
        """Make the feeds table match the configured feeds (``FeedConfig``), keyed by name.

        A feed whose URL changed keeps its history (articles, errors) but loses its cached
        validators; a feed no longer configured is disabled, never deleted.
        """
        now_text = to_iso(now or utcnow())
        configured = list(feeds)
        with self.transaction() as conn:
            existing = {row[0]: row for row in conn.execute("SELECT name, url FROM feeds")}
            for feed in configured:
                interval = feed.interval.total_seconds() if feed.interval else None
                values = (feed.url, int(feed.enabled), feed.language, json.dumps(list(feed.tags)), interval)
                if feed.name not in existing:
                    conn.execute(
                        "INSERT INTO feeds(name, url, enabled, language, tags, interval_s, created) "
                        "VALUES (?, ?, ?, ?, ?, ?, ?)",
                        (feed.name, *values, now_text),
                    )
                    continue
                conn.execute(
                    "UPDATE feeds SET url = ?, enabled = ?, language = ?, tags = ?, interval_s = ? WHERE name = ?",
                    (*values, feed.name),
                )
                if existing[feed.name][1] != feed.url:
                    log.info("feed URL changed feed=%s url=%s", feed.name, feed.url)
                    columns = ", ".join(f"{column} = ?" for column in URL_CHANGE_RESET)
                    conn.execute(f"UPDATE feeds SET {columns} WHERE name = ?",
                                 (*URL_CHANGE_RESET.values(), feed.name))
            names = {feed.name for feed in configured}
            for name in existing:
                if name not in names:
                    conn.execute("UPDATE feeds SET enabled = 0 WHERE name = ?", (name,))

    def ensure_feed(self, conn: sqlite3.Connection, name: str, url: str, *, now: datetime | None = None) -> int:
        """The id of the feed called ``name``, creating it if needed (imports, benchmarks)."""
        row = conn.execute("SELECT id FROM feeds WHERE name = ?", (name,)).fetchone()
        if row:
            return int(row[0])
        cursor = conn.execute(
            "INSERT INTO feeds(name, url, created) VALUES (?, ?, ?)", (name, url, to_iso(now or utcnow()))
        )
        return int(cursor.lastrowid)

    def feed_row(self, name: str) -> dict[str, Any] | None:
        with self.reading() as conn:
            cursor = conn.execute("SELECT * FROM feeds WHERE name = ?", (name,))
            row = cursor.fetchone()
            if row is None:
                return None
            return _row_dict(cursor, row)

    def feed_rows(self) -> list[dict[str, Any]]:
        with self.reading() as conn:
            return read_feed_rows(conn)

    def update_feed(self, conn: sqlite3.Connection, feed_id: int, *, polled_url: str | None = None,
                    **values: Any) -> None:
        """Set columns of a feed. ``polled_url``: the URL a poll fetched; when the feed's URL is no longer that
        one (a reload changed it while the poll was in flight), the columns that belong to the old URL
        (validators, redirect, schedule, error count) are left as ``sync_feeds`` set them for the new one."""
        if polled_url is not None:
            current = conn.execute("SELECT url FROM feeds WHERE id = ?", (feed_id,)).fetchone()
            if current is not None and current[0] != polled_url:
                log.info("feed URL changed during a poll, its schedule and validators are not kept "
                         "feed_id=%d old_url=%s url=%s", feed_id, polled_url, current[0])
                values = {column: value for column, value in values.items() if column not in URL_CHANGE_RESET}
        if not values:
            return
        columns = ", ".join(f"{column} = ?" for column in values)
        conn.execute(f"UPDATE feeds SET {columns} WHERE id = ?", (*values.values(), feed_id))

    def log_fetch(
        self, conn: sqlite3.Connection, feed_id: int, *, at: datetime, outcome: str, http_status: int | None,
        duration: float, new: int = 0, updated: int = 0, error_kind: str | None = None, error: str | None = None,
    ) -> None:
        conn.execute(
            "INSERT INTO fetch_log(feed_id, at, outcome, http_status, duration, new, updated, error_kind, error) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (feed_id, to_iso(at), outcome, http_status, round(duration, 4), new, updated, error_kind, error),
        )

    # ---------------------------------------------------------------- articles
    def write_article(
        self, conn: sqlite3.Connection, feed_id: int, article: Article, *, merge_urls: bool = True,
        now: datetime | None = None,
    ) -> ArticleWrite:
        """Insert an article, or recognise it (same key, or same canonical URL from another feed).

        An article already stored is updated only from the feed that first brought it (two outlets
        carrying one URL with different summaries must not flip it back and forth); the earlier
        title and summary are kept in ``article_versions``.
        """
        seen_text = to_iso(now or article.first_seen)
        key = article.key
        # Recognised by its key (an article seen again: one look-up), else by its canonical URL (unless
        # URL merging is off for this feed) or its GUID when that GUID made another article's key, in
        # that order, in one statement.
        row = conn.execute(f"SELECT {_ARTICLE_COLUMNS} FROM articles WHERE key = ?", (key,)).fetchone()
        by_guid = row is not None and key.startswith("guid:")
        if row is None and ((merge_urls and article.url) or article.guid):
            row = conn.execute(_RECOGNISE_SQL, {
                "by_url": bool(merge_urls and article.url), "url": article.url, "guid": article.guid or None,
            }).fetchone()
            if row is not None:
                by_guid = row[0] == 2
                row = row[1:]
        if by_guid and merge_urls and _another_feeds_guid(conn, feed_id, article, row):
            # the same GUID from another site for another story: this entry is an article of its own,
            # known by its URL
            key = "url:" + str(article.url)
            row = conn.execute(f"SELECT {_ARTICLE_COLUMNS} FROM articles WHERE url = ? ORDER BY id LIMIT 1",
                               (article.url,)).fetchone()
        if row is None:
            cursor = conn.execute(
                "INSERT INTO articles(key, url, guid, title, summary, content, published, published_source, "
                "undated, first_seen, language, authors, categories, domain, fingerprint, feed_id) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    key, article.url, article.guid, article.title, article.summary, article.content,
                    to_iso(article.published), article.published_source, int(article.undated),
                    to_iso(article.first_seen), article.language, json.dumps(article.authors, ensure_ascii=False),
                    json.dumps(article.categories, ensure_ascii=False), article.domain, article.fingerprint, feed_id,
                ),
            )
            article_id = int(cursor.lastrowid)
            conn.execute(
                "INSERT INTO article_feeds(article_id, feed_id, first_seen) VALUES (?, ?, ?)",
                (article_id, feed_id, seen_text),
            )
            return ArticleWrite(article_id, "new", True)

        article_id, old_title, old_summary, old_content, origin_feed, _ = row
        linked = conn.execute(
            "INSERT OR IGNORE INTO article_feeds(article_id, feed_id, first_seen) VALUES (?, ?, ?)",
            (article_id, feed_id, seen_text),
        ).rowcount == 1
        changed = (article.title, article.summary, article.content) != (old_title, old_summary, old_content)
        if not changed or (origin_feed is not None and origin_feed != feed_id):
            return ArticleWrite(article_id, "seen", linked)
        if (article.title, article.summary) != (old_title, old_summary):
            conn.execute(
                "INSERT INTO article_versions(article_id, title, summary, seen_at) VALUES (?, ?, ?, ?)",
                (article_id, old_title, old_summary, seen_text),
            )
        conn.execute(
            "UPDATE articles SET title = ?, summary = ?, content = ?, updated_at = ?, fingerprint = ?, "
            "categories = ?, authors = ? WHERE id = ?",
            (
                article.title, article.summary, article.content, seen_text, article.fingerprint,
                json.dumps(article.categories, ensure_ascii=False), json.dumps(article.authors, ensure_ascii=False),
                article_id,
            ),
        )
        return ArticleWrite(article_id, "updated", linked)

    @staticmethod
    def article_feeds_and_tags(conn: sqlite3.Connection, article_id: int) -> tuple[list[str], list[str]]:
        """Names of the feeds an article appeared in (first first), and the union of their tags."""
        from monitor.store.matches import article_feeds_and_tags

        return article_feeds_and_tags(conn, article_id)

    def counts(self) -> dict[str, int]:
        with self.lock:
            return {
                "feeds": self.conn.execute("SELECT count(*) FROM feeds").fetchone()[0],
                "articles": self.conn.execute("SELECT count(*) FROM articles").fetchone()[0],
            }


def _another_feeds_guid(conn: sqlite3.Connection, feed_id: int, article: Article, row: tuple[Any, ...]) -> bool:
    """True when the article ``row``, found by the GUID of ``article``, is another story that only shares
    its GUID: it came from other feeds, under another link and another title. A GUID is often unique
    only within its own feed (a CMS's "article-1234"); one outlet's feeds that share an article share
    its title or its link."""
    _, stored_title, _, _, origin_feed, stored_url = row
    if origin_feed == feed_id or not article.url or not stored_url or article.url == stored_url:
        return False
    if article.title.casefold() == (stored_title or "").casefold():
        return False
    linked = conn.execute("SELECT 1 FROM article_feeds WHERE article_id = ? AND feed_id = ?",
                          (row[0], feed_id)).fetchone()
    return linked is None


def read_feed_rows(conn: sqlite3.Connection) -> list[dict[str, Any]]:
    """Every row of the feeds table as a dict, by name."""
    cursor = conn.execute("SELECT * FROM feeds ORDER BY name")
    return [_row_dict(cursor, row) for row in cursor.fetchall()]


def _row_dict(cursor: sqlite3.Cursor, row: tuple[Any, ...]) -> dict[str, Any]:
    return {description[0]: value for description, value in zip(cursor.description, row)}
