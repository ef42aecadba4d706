"""The archive's schema and its migrations.

Each migration is applied once, in order, inside one transaction, and recorded in
``PRAGMA user_version``. An archive written by one version of newsmon opens with the next:
add a migration, never edit one that has shipped.
"""

from __future__ import annotations

import sqlite3
from typing import Callable

FTS_TOKENIZE = "unicode61 remove_diacritics 2"
FTS_COLUMNS = ("title", "summary", "content")

CORE_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value TEXT
);
CREATE TABLE IF NOT EXISTS feeds (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    url TEXT NOT NULL,
    enabled INTEGER NOT NULL DEFAULT 1,
    language TEXT,
    tags TEXT NOT NULL DEFAULT '[]',
    interval_s REAL,
    title TEXT,
    etag TEXT,
    last_modified TEXT,
    body_hash TEXT,
    last_status INTEGER,
    last_error TEXT,
    last_error_kind TEXT,
    consecutive_errors INTEGER NOT NULL DEFAULT 0,
    last_fetch TEXT,
    last_success TEXT,
    next_check TEXT,
    first_polled TEXT,
    permanent_url TEXT,
    gone INTEGER NOT NULL DEFAULT 0,
    bozo TEXT,
    ttl_s REAL,
    retry_after TEXT,
    single_link INTEGER NOT NULL DEFAULT 0,
    lease_owner TEXT,
    lease_until TEXT,
    created TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS feeds_next_check ON feeds(next_check);

CREATE TABLE IF NOT EXISTS articles (
    id INTEGER PRIMARY KEY,
    key TEXT NOT NULL UNIQUE,
    url TEXT,
    guid TEXT,
    title TEXT NOT NULL DEFAULT '',
    summary TEXT NOT NULL DEFAULT '',
    content TEXT NOT NULL DEFAULT '',
    published TEXT NOT NULL,
    published_source TEXT NOT NULL,
    undated INTEGER NOT NULL DEFAULT 0,
    first_seen TEXT NOT NULL,
    updated_at TEXT,
    language TEXT,
    authors TEXT NOT NULL DEFAULT '[]',
    categories TEXT NOT NULL DEFAULT '[]',
    domain TEXT,
    fingerprint TEXT NOT NULL DEFAULT '',
    feed_id INTEGER REFERENCES feeds(id) ON DELETE SET NULL
);
CREATE INDEX IF NOT EXISTS articles_url ON articles(url);
CREATE INDEX IF NOT EXISTS articles_guid ON articles(guid);
CREATE INDEX IF NOT EXISTS articles_published ON articles(published);
CREATE INDEX IF NOT EXISTS articles_fingerprint ON articles(fingerprint);

CREATE TABLE IF NOT EXISTS article_feeds (
    article_id INTEGER NOT NULL REFERENCES articles(id) ON DELETE CASCADE,
    feed_id INTEGER NOT NULL REFERENCES feeds(id) ON DELETE CASCADE,
    first_seen TEXT NOT NULL,
    PRIMARY KEY (article_id, feed_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS article_feeds_feed ON article_feeds(feed_id, article_id);

CREATE TABLE IF NOT EXISTS article_versions (
    id INTEGER PRIMARY KEY,
    article_id INTEGER NOT NULL REFERENCES articles(id) ON DELETE CASCADE,
    title TEXT NOT NULL,
    summary TEXT NOT NULL,
    seen_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS article_versions_article ON article_versions(article_id);

CREATE TABLE IF NOT EXISTS fetch_log (
    id INTEGER PRIMARY KEY,
    feed_id INTEGER NOT NULL REFERENCES feeds(id) ON DELETE CASCADE,
    at TEXT NOT NULL,
    outcome TEXT NOT NULL,
    http_status INTEGER,
    duration REAL,
    new INTEGER NOT NULL DEFAULT 0,
    updated INTEGER NOT NULL DEFAULT 0,
    error_kind TEXT,
    error TEXT
);
CREATE INDEX IF NOT EXISTS fetch_log_feed ON fetch_log(feed_id, at);
"""

# Full-text index made the sqlite-utils way (table articles_fts, external content,
# triggers named articles_ai/_ad/_au), so Datasette and `sqlite-utils search` use it.
FTS_SCHEMA = f"""
CREATE VIRTUAL TABLE IF NOT EXISTS [articles_fts] USING FTS5 (
    [title], [summary], [content],
    tokenize='{FTS_TOKENIZE}',
    content=[articles]
);
CREATE TRIGGER IF NOT EXISTS [articles_ai] AFTER INSERT ON [articles] BEGIN
  INSERT INTO [articles_fts] (rowid, [title], [summary], [content])
  VALUES (new.rowid, new.[title], new.[summary], new.[content]);
END;
CREATE TRIGGER IF NOT EXISTS [articles_ad] AFTER DELETE ON [articles] BEGIN
  INSERT INTO [articles_fts] ([articles_fts], rowid, [title], [summary], [content])
  VALUES('delete', old.rowid, old.[title], old.[summary], old.[content]);
END;
CREATE TRIGGER IF NOT EXISTS [articles_au] AFTER UPDATE ON [articles] BEGIN
  INSERT INTO [articles_fts] ([articles_fts], rowid, [title], [summary], [content])
  VALUES('delete', old.rowid, old.[title], old.[summary], old.[content]);
  INSERT INTO [articles_fts] (rowid, [title], [summary], [content])
  VALUES (new.rowid, new.[title], new.[summary], new.[content]);
END;
"""


def run_script(conn: sqlite3.Connection, script: str) -> None:
    """Run several SQL statements inside the caller's transaction.

    ``executescript`` would COMMIT first, which breaks the one-transaction migration.
    """
    statement = ""
    for line in script.splitlines(keepends=True):
        statement += line
        if sqlite3.complete_statement(statement):
            if statement.strip():
                conn.execute(statement)
            statement = ""
    if statement.strip():
        raise ValueError(f"incomplete SQL statement in schema script: {statement.strip()[:80]!r}")


def _migration_1(conn: sqlite3.Connection) -> None:
    # The area modules own their tables; imported here so that this module stays importable by them.
    from monitor.store import alerts, matches, stories

    run_script(conn, CORE_SCHEMA)
    run_script(conn, FTS_SCHEMA)
    run_script(conn, stories.SCHEMA)
    run_script(conn, matches.SCHEMA)
    run_script(conn, alerts.SCHEMA)


def _migration_2(conn: sqlite3.Connection) -> None:
    # The story index keyed by term and time, one B-tree instead of two (a no-op on archives that
    # migration 1 created with it).
    from monitor.store import stories

    stories.upgrade_postings(conn)


MIGRATIONS: list[Callable[[sqlite3.Connection], None]] = [_migration_1, _migration_2]
SCHEMA_VERSION = len(MIGRATIONS)
# The oldest schema that read-only commands read as it is: migrations since then change only what
# the writer uses (migration 2: the clusterer's index), so `search` and `stories` need no upgrade first.
READABLE_FROM = 1
