"""Rule matches: which article matched which rule, with the terms and fields that matched.

Kept out of ``articles`` on purpose: an UPDATE of ``articles`` re-indexes the row in FTS.
``SCHEMA`` is applied by the store's migrations; the functions take the connection of the
caller's transaction and never commit.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Iterator

from monitor.errors import StoreError
from monitor.timeutil import to_iso

if TYPE_CHECKING:
    from monitor.rules import MatchDoc, RuleMatch, RuleSet

log = logging.getLogger(__name__)

SCHEMA = """
CREATE TABLE IF NOT EXISTS matches (
    article_id INTEGER NOT NULL REFERENCES articles(id) ON DELETE CASCADE,
    rule TEXT NOT NULL,
    terms TEXT NOT NULL,            -- JSON: [{"term": "bamako", "field": "title"}, ...]
    matched_at TEXT NOT NULL,
    PRIMARY KEY (article_id, rule)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS matches_rule ON matches(rule, article_id);
"""


def terms_json(match: "RuleMatch") -> str:
    return json.dumps([{"term": t.term, "field": t.field} for t in match.terms], ensure_ascii=False)


def record_matches(conn: sqlite3.Connection, article_id: int, matches: list["RuleMatch"], now: datetime) -> None:
    """Store (or refresh) the matches of one article; the first ``matched_at`` is kept."""
    stamp = to_iso(now)
    try:
        conn.executemany(
            "INSERT INTO matches (article_id, rule, terms, matched_at) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (article_id, rule) DO UPDATE SET terms = excluded.terms",
            [(article_id, match.rule, terms_json(match), stamp) for match in matches],
        )
    except sqlite3.Error as exc:
        raise StoreError(f"cannot record matches for article {article_id}: {exc}") from exc
    log.debug("matches recorded article=%d rules=%s", article_id, ",".join(m.rule for m in matches))


def delete_matches_for_rule(conn: sqlite3.Connection, rule: str) -> int:
    """Forget every match of ``rule`` (before ``rules rematch``); returns how many went."""
    try:
        cursor = conn.execute("DELETE FROM matches WHERE rule = ?", (rule,))
    except sqlite3.Error as exc:
        raise StoreError(f"cannot delete matches of rule {rule}: {exc}") from exc
    return cursor.rowcount


def matches_for_article(conn: sqlite3.Connection, article_id: int) -> dict[str, list[dict[str, str]]]:
    """``{rule: [{"term":..., "field":...}, ...]}`` for one article."""
    try:
        rows = conn.execute(
            "SELECT rule, terms FROM matches WHERE article_id = ? ORDER BY rule", (article_id,)
        ).fetchall()
    except sqlite3.Error as exc:
        raise StoreError(f"cannot read matches of article {article_id}: {exc}") from exc
    return {rule: json.loads(terms) for rule, terms in rows}


def articles_for_rule(conn: sqlite3.Connection, rule: str) -> list[int]:
    """Ids of the articles that matched ``rule``, oldest id first."""
    try:
        rows = conn.execute("SELECT article_id FROM matches WHERE rule = ? ORDER BY article_id", (rule,))
        return [row[0] for row in rows]
    except sqlite3.Error as exc:
        raise StoreError(f"cannot read matches of rule {rule}: {exc}") from exc


def iter_match_docs(conn: sqlite3.Connection, *, since: str | None = None,
                    batch: int = 1000) -> Iterator[tuple[int, "MatchDoc"]]:
    """Every stored article (published at or after ``since``, an ISO string) as the matcher sees it."""
    from monitor.rules import MatchDoc

    try:
        feeds = {fid: (name, [t for t in json.loads(tags or "[]") if isinstance(t, str)])
                 for fid, name, tags in conn.execute("SELECT id, name, tags FROM feeds")}
        last_id = 0
        while True:
            rows = conn.execute(
                "SELECT id, title, summary, content, language, domain FROM articles "
                "WHERE id > ? AND (? IS NULL OR published >= ?) ORDER BY id LIMIT ?",
                (last_id, since, since, batch),
            ).fetchall()
            if not rows:
                return
            links: dict[int, list[int]] = {}
            marks = ",".join("?" for _ in rows)
            for article_id, feed_id in conn.execute(
                f"SELECT article_id, feed_id FROM article_feeds WHERE article_id IN ({marks}) "
                "ORDER BY article_id, first_seen, feed_id", [row[0] for row in rows],
            ):
                links.setdefault(article_id, []).append(feed_id)
            for article_id, title, summary, content, language, domain in rows:
                names, tags = [], []
                for feed_id in links.get(article_id, []):
                    name, feed_tags = feeds[feed_id]
                    names.append(name)
                    tags.extend(t for t in feed_tags if t not in tags)
                yield article_id, MatchDoc(title=title, summary=summary, content=content, feeds=names,
                                           language=language, tags=tags, domain=domain)
            last_id = rows[-1][0]
    except sqlite3.Error as exc:
        raise StoreError(f"cannot read articles for matching: {exc}") from exc


@dataclass(frozen=True)
class RematchResult:
    articles: int          # articles evaluated
    before: int            # matches of these rules before
    after: int             # matches of these rules now
    new: list[tuple[int, str]]  # (article_id, rule) pairs that did not match before


def rematch(conn: sqlite3.Connection, ruleset: "RuleSet", *, now: datetime,
            since: str | None = None) -> RematchResult:
    """Re-evaluate stored articles against ``ruleset`` (``rules rematch [RULE]``).

    The matches of every rule in ``ruleset`` are replaced by what the rules say now; nothing
    is fetched and no alert is queued here: ``new`` lists the pairs that newly match, for the
    caller to decide (the CLI records them without alerting for old articles). Run it inside
    the caller's transaction.
    """
    names = ruleset.names
    if not names:
        return RematchResult(0, 0, 0, [])
    marks = ",".join("?" for _ in names)
    try:
        old = set(conn.execute(f"SELECT article_id, rule FROM matches WHERE rule IN ({marks})", names))
        conn.execute(f"DELETE FROM matches WHERE rule IN ({marks})", names)
    except sqlite3.Error as exc:
        raise StoreError(f"cannot rematch: {exc}") from exc
    articles = 0
    pairs: list[tuple[int, str]] = []
    for article_id, doc in iter_match_docs(conn, since=since):
        articles += 1
        found = ruleset.match(doc)
        if found:
            record_matches(conn, article_id, found, now)
            pairs.extend((article_id, m.rule) for m in found)
    new = [pair for pair in pairs if pair not in old]
    log.info("rematch rules=%s articles=%d before=%d after=%d new=%d",
             ",".join(names), articles, len(old), len(pairs), len(new))
    return RematchResult(articles, len(old), len(pairs), new)
