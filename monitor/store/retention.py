"""Retention: forget articles older than ``[monitor] retention``, a story at a time (once its newest article is
that old too), except the stories that were alerted.

Deletes run in small batches, one short transaction each, so the daemon's polls interleave with them, and
a stop request (the daemon's SIGTERM) is honoured between two batches: what is left goes at the next run.
``article_feeds`` and ``article_versions`` follow by ``ON DELETE CASCADE`` and the FTS index by its delete
trigger; the story tables (no foreign key to ``articles``) are cleaned here, and so is the fetch log.
Tables an older archive does not have are skipped.
"""

from __future__ import annotations

import logging
import sqlite3
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Callable, ContextManager

from monitor.errors import StoreError
from monitor.store.leases import raw_connection
from monitor.store.status import table_exists
from monitor.timeutil import to_iso

log = logging.getLogger(__name__)

BATCH = 500
# The fetch log grows by one row per poll (about a million a day at 10,000 feeds every 15 minutes):
# it is kept for this long, or for ``retention`` when that is shorter.
FETCH_LOG_KEEP = timedelta(days=14)

Transaction = Callable[[], ContextManager[sqlite3.Connection]]
StopRequested = Callable[[], bool]


def _never() -> bool:
    return False


@dataclass
class RetentionResult:
    articles: int = 0
    stories: int = 0
    fetch_log: int = 0
    postings: int = 0
    interrupted: bool = False


def _article_cleanup_tables(conn: sqlite3.Connection) -> list[tuple[str, str]]:
    """(table, article column) of tables that point at articles without a cascading foreign key."""
    candidates = [("story_articles", "article_id"), ("story_sources", "article_id"), ("matches", "article_id")]
    return [(table, column) for table, column in candidates if table_exists(conn, table)]


def _deletable_sql(conn: sqlite3.Connection) -> str:
    """Articles older than the cutoff, unless their story is kept: a story goes whole, once its newest
    article is older than the cutoff too (a story cut in two would keep a headline, first outlet and
    article count describing articles gone), and an alerted story stays."""
    keep = ""
    if table_exists(conn, "stories") and table_exists(conn, "story_articles"):
        alerted = " OR EXISTS (SELECT 1 FROM alerts al WHERE al.story_id = s.id)" if table_exists(conn, "alerts") else ""
        keep = (
            " AND NOT EXISTS (SELECT 1 FROM story_articles sa JOIN stories s ON s.id = sa.story_id"
            " WHERE sa.article_id = articles.id AND (s.last_published >= :cutoff OR s.updated >= :cutoff"
            + alerted + "))"
        )
    return (
        "SELECT id FROM articles WHERE published < :cutoff AND first_seen < :cutoff"
        + keep
        + " ORDER BY published LIMIT :batch"
    )


def delete_old_articles(transaction: Transaction, *, now: datetime, retention: timedelta,
                        batch: int = BATCH, stop: StopRequested = _never) -> RetentionResult:
    """Delete what retention allows, in batches; ``transaction()`` yields a connection inside one transaction
    (``Store.transaction``). ``stop()`` is asked before each batch: when it says so, the result is marked
    ``interrupted`` and the rest waits for the next run. Returns what was deleted."""
    cutoff = to_iso(now - retention)
    result = RetentionResult()
    try:
        while not _stopped(stop, result):
            with transaction() as conn:
                db = raw_connection(conn)
                ids = [row[0] for row in db.execute(_deletable_sql(db), {"cutoff": cutoff, "batch": batch})]
                if ids:
                    _delete_articles(db, ids)
                    result.articles += len(ids)
            if len(ids) < batch:
                break
        after = 0
        while not _stopped(stop, result):
            with transaction() as conn:
                deleted, after = _delete_empty_stories(raw_connection(conn), after=after, batch=batch)
            result.stories += deleted
            if deleted < batch:
                break
        while not _stopped(stop, result):
            with transaction() as conn:
                trimmed = _trim_fetch_log(raw_connection(conn), now=now, keep=min(retention, FETCH_LOG_KEEP),
                                          batch=batch * 10)
            result.fetch_log += trimmed
            if trimmed < batch * 10:
                break
    except sqlite3.Error as exc:
        raise StoreError(f"retention failed: {exc}") from exc
    if result.articles or result.stories or result.fetch_log or result.interrupted:
        log.info("retention articles=%d stories=%d fetch_log=%d cutoff=%s%s",
                 result.articles, result.stories, result.fetch_log, cutoff,
                 " interrupted=stop (the rest waits for the next run)" if result.interrupted else "")
    return result


def _stopped(stop: StopRequested, result: RetentionResult) -> bool:
    if stop():
        result.interrupted = True
    return result.interrupted


def _delete_articles(db: sqlite3.Connection, ids: list[int]) -> None:
    marks = ",".join("?" for _ in ids)
    for table, column in _article_cleanup_tables(db):
        db.execute(f"DELETE FROM {table} WHERE {column} IN ({marks})", ids)
    db.execute(f"DELETE FROM articles WHERE id IN ({marks})", ids)


def _delete_empty_stories(db: sqlite3.Connection, *, after: int, batch: int) -> tuple[int, int]:
    """Delete at most ``batch`` stories left without articles (alerted ones are kept), of ids above ``after``;
    returns how many, and the id to continue after."""
    if not (table_exists(db, "stories") and table_exists(db, "story_articles")):
        return 0, after
    keep_alerted = " AND id NOT IN (SELECT story_id FROM alerts)" if table_exists(db, "alerts") else ""
    empty = [row[0] for row in db.execute(
        "SELECT id FROM stories WHERE id > ? AND NOT EXISTS "
        "(SELECT 1 FROM story_articles sa WHERE sa.story_id = stories.id)"
        + keep_alerted + " ORDER BY id LIMIT ?", (after, batch)
    )]
    if not empty:
        return 0, after
    marks = ",".join("?" for _ in empty)
    for table in ("story_postings", "story_sources"):
        if table_exists(db, table):
            db.execute(f"DELETE FROM {table} WHERE story_id IN ({marks})", empty)
    db.execute(f"DELETE FROM stories WHERE id IN ({marks})", empty)
    from monitor.store.stories import forget_clusterer_state

    forget_clusterer_state(db)  # a clusterer on this connection must not keep these stories in memory
    return len(empty), empty[-1]


def _trim_fetch_log(db: sqlite3.Connection, *, now: datetime, keep: timedelta, batch: int) -> int:
    if not table_exists(db, "fetch_log"):
        return 0
    cursor = db.execute(
        "DELETE FROM fetch_log WHERE id IN (SELECT id FROM fetch_log WHERE at < ? LIMIT ?)",
        (to_iso(now - keep), batch),
    )
    return cursor.rowcount


def run_retention(store: Any, *, now: datetime, retention: timedelta,
                  story_window: timedelta | None = None, stop: StopRequested = _never) -> RetentionResult:
    """Retention over a ``monitor.store.Store`` (its ``transaction()`` keeps the one-writer rule).

    With ``story_window``, the story index also forgets postings of stories too old for any new
    article to join (older than the window, with a day's margin), so candidate look-ups stay small.
    ``stop()`` interrupts it between two batches (``delete_old_articles``)."""
    result = delete_old_articles(store.transaction, now=now, retention=retention, stop=stop)
    if story_window is not None and not _stopped(stop, result):
        from monitor.store.stories import prune_postings

        try:
            with store.transaction() as conn:
                result.postings = prune_postings(raw_connection(conn), before=now - story_window - timedelta(days=1))
        except sqlite3.Error as exc:
            raise StoreError(f"retention failed to prune the story index: {exc}") from exc
        if result.postings:
            log.info("retention story_postings=%d", result.postings)
    return result
