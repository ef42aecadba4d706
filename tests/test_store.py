"""The archive on real SQLite files: migrations, read-only opening, article identity and edits."""

from __future__ import annotations

import sqlite3
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from monitor.config import FeedConfig
from monitor.errors import ReadOnlyError, StoreError
from monitor.models import Article
from monitor.store import Store
from monitor.store.schema import SCHEMA_VERSION

NOW = datetime(2026, 2, 17, 8, 0, tzinfo=timezone.utc)


def article(key: str = "guid:1", *, url: str | None = "https://example.org/a", title: str = "Mali: talks",
            summary: str = "Talks in Bamako.", guid: str | None = "1") -> Article:
    return Article(
        key=key, url=url, guid=guid, title=title, summary=summary, content="", published=NOW,
        published_source="published", undated=False, first_seen=NOW, language="en", domain="example.org",
        fingerprint=f"fp-{title}-{summary}",
    )


@pytest.fixture
def store(tmp_path: Path) -> Store:
    opened = Store.open(tmp_path / "archive.db")
    opened.sync_feeds([FeedConfig("A", "https://a.example/rss"), FeedConfig("B", "https://b.example/rss")])
    yield opened
    opened.close()


def feed_id(store: Store, name: str) -> int:
    return store.feed_row(name)["id"]


def test_new_archive_is_migrated_wal_and_searchable(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "new.db"
    with Store.open(path) as store:
        assert store.schema_version() == SCHEMA_VERSION
        assert store.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        with store.transaction() as conn:
            fid = store.ensure_feed(conn, "A", "https://a.example/rss")
            store.write_article(conn, fid, article(title="Coopération militaire"))
        hits = list(store.db["articles"].search("cooperation"))
        assert [hit["title"] for hit in hits] == ["Coopération militaire"]


def test_readonly_never_migrates_or_writes(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    sqlite3.connect(path).close()  # an empty file: no schema
    with pytest.raises(StoreError, match="not a newsmon archive"):
        Store.open(path, readonly=True)
    assert sqlite3.connect(path).execute("PRAGMA user_version").fetchone()[0] == 0
    Store.open(path).close()
    with Store.open(path, readonly=True) as store:
        with pytest.raises(ReadOnlyError):
            with store.transaction():
                pass
        with pytest.raises(sqlite3.OperationalError, match="readonly"):
            store.conn.execute("INSERT INTO meta(key, value) VALUES ('x', 'y')")
    with pytest.raises(StoreError, match="no archive"):
        Store.open(tmp_path / "missing.db", readonly=True)


def test_another_programs_database_is_refused_untouched(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    other = sqlite3.connect(path)
    other.execute("CREATE TABLE notes(id INTEGER PRIMARY KEY, body TEXT)")
    other.execute("INSERT INTO notes(body) VALUES ('keep me')")
    other.commit()
    other.close()
    before = path.read_bytes()
    with pytest.raises(StoreError, match="SQLite database of another program \\(tables: notes\\)"):
        Store.open(path)
    assert path.read_bytes() == before
    tables = [row[0] for row in sqlite3.connect(path).execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
    assert tables == ["notes"]


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "future.db"
    Store.open(path).close()
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(StoreError, match="newer newsmon"):
        Store.open(path)


def test_same_article_from_two_feeds_is_one_row_linked_twice(store: Store) -> None:
    with store.transaction() as conn:
        first = store.write_article(conn, feed_id(store, "A"), article())
        # Feed B has no GUID for it, only the same canonical URL.
        second = store.write_article(conn, feed_id(store, "B"), article("url:https://example.org/a", guid=None))
        again = store.write_article(conn, feed_id(store, "B"), article("url:https://example.org/a", guid=None))
    assert (first.status, second.status, again.status) == ("new", "seen", "seen")
    assert first.article_id == second.article_id == again.article_id
    assert (second.linked, again.linked) == (True, False)
    assert store.conn.execute("SELECT count(*) FROM articles").fetchone()[0] == 1
    names, _ = Store.article_feeds_and_tags(store.conn, first.article_id)
    assert names == ["A", "B"]


def test_a_guid_another_site_uses_for_another_story_does_not_merge(store: Store) -> None:
    """GUIDs are often unique only within their feed ("article-1234" from two CMSs): the second outlet's
    story was taken for the first's and never stored, so a search for its words found nothing."""
    alpha = article("guid:article-1234", guid="article-1234", url="https://alpha.example/mali", title="Mali talks")
    beta = article("guid:article-1234", guid="article-1234", url="https://beta.example/niger", title="Niger floods")
    with store.transaction() as conn:
        first = store.write_article(conn, feed_id(store, "A"), alpha)
        second = store.write_article(conn, feed_id(store, "B"), beta)
        again = store.write_article(conn, feed_id(store, "B"), beta)
        edited = store.write_article(conn, feed_id(store, "B"), replace(beta, title="Niger floods: toll rises"))
        first_again = store.write_article(conn, feed_id(store, "A"), alpha)
    assert (first.status, second.status, again.status, edited.status, first_again.status) == (
        "new", "new", "seen", "updated", "seen")
    assert first.article_id != second.article_id == again.article_id == edited.article_id
    assert first_again.article_id == first.article_id
    rows = store.conn.execute("SELECT key, url, guid, title FROM articles ORDER BY id").fetchall()
    assert rows == [("guid:article-1234", "https://alpha.example/mali", "article-1234", "Mali talks"),
                    ("url:https://beta.example/niger", "https://beta.example/niger", "article-1234",
                     "Niger floods: toll rises")]
    assert [Store.article_feeds_and_tags(store.conn, row_id)[0] for row_id in (first.article_id, second.article_id)] \
        == [["A"], ["B"]]


def test_one_outlets_article_in_two_feeds_still_merges_by_guid(store: Store) -> None:
    """Its second feed links it under another section's URL (or a tracking redirect) with the same title."""
    with store.transaction() as conn:
        first = store.write_article(conn, feed_id(store, "A"), article(
            "guid:article-1234", guid="article-1234", url="https://news.example/africa/mali-talks"))
        second = store.write_article(conn, feed_id(store, "B"), article(
            "guid:article-1234", guid="article-1234", url="https://news.example/world/mali-talks"))
        third = store.write_article(conn, feed_id(store, "B"), article(
            "url:https://news.example/world/mali-talks-2", guid="article-1234",
            url="https://news.example/world/mali-talks-2"))
    assert first.article_id == second.article_id == third.article_id
    assert store.conn.execute("SELECT count(*) FROM articles").fetchone()[0] == 1


def test_url_merging_off_keeps_articles_apart(store: Store) -> None:
    with store.transaction() as conn:
        one = store.write_article(conn, feed_id(store, "A"), article("hash:1", guid=None, url="https://home.example/"))
        two = store.write_article(conn, feed_id(store, "A"), article("hash:2", guid=None, url="https://home.example/",
                                                                     title="Other"), merge_urls=False)
    assert one.article_id != two.article_id


def test_edited_article_is_updated_keeps_earlier_title_and_reindexes(store: Store) -> None:
    with store.transaction() as conn:
        first = store.write_article(conn, feed_id(store, "A"), article(title="Mali: talks stall"))
        edit = store.write_article(conn, feed_id(store, "A"), article(title="Mali: talks resume in Bamako"),
                                   now=NOW + timedelta(hours=1))
        # Another outlet carrying the same URL with its own title does not overwrite the origin's text.
        other = store.write_article(conn, feed_id(store, "B"), article("url:https://example.org/a", guid=None,
                                                                       title="Completely different"))
    assert (first.status, edit.status, other.status) == ("new", "updated", "seen")
    row = store.conn.execute("SELECT title, updated_at FROM articles").fetchone()
    assert row == ("Mali: talks resume in Bamako", "2026-02-17T09:00:00Z")
    versions = store.conn.execute("SELECT title FROM article_versions").fetchall()
    assert versions == [("Mali: talks stall",)]
    assert [hit["id"] for hit in store.db["articles"].search("resume")] == [first.article_id]
    assert list(store.db["articles"].search("stall")) == []


def test_sync_feeds_keeps_history_when_url_changes_and_disables_removed(store: Store) -> None:
    with store.transaction() as conn:
        store.update_feed(conn, feed_id(store, "A"), etag='"v1"', consecutive_errors=3)
        store.write_article(conn, feed_id(store, "A"), article())
    store.sync_feeds([FeedConfig("A", "https://a.example/new-rss", tags=("x",))])
    row = store.feed_row("A")
    assert row["url"] == "https://a.example/new-rss" and row["etag"] is None and row["tags"] == '["x"]'
    assert store.conn.execute("SELECT count(*) FROM article_feeds WHERE feed_id = ?", (row["id"],)).fetchone()[0] == 1
    assert store.feed_row("B")["enabled"] == 0


def test_failed_transaction_rolls_back(store: Store) -> None:
    with pytest.raises(RuntimeError):
        with store.transaction() as conn:
            store.write_article(conn, feed_id(store, "A"), article())
            raise RuntimeError("stop")
    assert store.conn.execute("SELECT count(*) FROM articles").fetchone()[0] == 0
