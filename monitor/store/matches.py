"""Rule matches: which article matched which rule, with the terms and fields that matched.

Kept out of ``articles`` on purpose: an UPDATE of ``articles`` re-indexes the row in FTS.
``SCHEMA`` is applied by the store's migrations; the functions take the connection of the
caller's transaction and never commit.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from datetime import datetime
from typing import TYPE_CHECKING

from monitor.errors import StoreError
from monitor.timeutil import to_iso

if TYPE_CHECKING:
    from monitor.rules import RuleMatch

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
