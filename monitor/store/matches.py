"""Rule matches: which article matched which rule, with the terms and fields that matched.

Kept out of ``articles`` on purpose: an UPDATE of ``articles`` re-indexes the row in FTS.
``SCHEMA`` is applied by the store's migrations; the functions take the connection of the
caller's transaction and never commit.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from typing import TYPE_CHECKING, Iterable, Iterator, Sequence

from monitor.errors import StoreError
from monitor.rules import MatchDoc
from monitor.timeutil import to_iso

if TYPE_CHECKING:
    from monitor.models import Article
    from monitor.rules import RuleMatch, RuleSet

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


_UPSERT = ("INSERT INTO matches (article_id, rule, terms, matched_at) VALUES (?, ?, ?, ?) "
           "ON CONFLICT (article_id, rule) DO UPDATE SET terms = excluded.terms")


def record_matches(conn: sqlite3.Connection, article_id: int, matches: list["RuleMatch"], now: datetime) -> None:
    """Store (or refresh) the matches of one article; the first ``matched_at`` is kept."""
    stamp = to_iso(now)
    try:
        conn.executemany(_UPSERT, [(article_id, match.rule, terms_json(match), stamp) for match in matches])
    except sqlite3.Error as exc:
        raise StoreError(f"cannot record matches for article {article_id}: {exc}") from exc
    log.debug("matches recorded article=%d rules=%s", article_id, ",".join(m.rule for m in matches))


def forget_matches_of_article(conn: sqlite3.Connection, article_id: int, rules: Iterable[str],
                              keep: Iterable[str]) -> int:
    """Drop the article's matches of ``rules`` not in ``keep`` (its text was revised and no longer matches
    them); returns how many went."""
    gone = sorted(set(rules) - set(keep))
    if not gone:
        return 0
    marks = ",".join("?" * len(gone))
    try:
        cursor = conn.execute(f"DELETE FROM matches WHERE article_id = ? AND rule IN ({marks})", (article_id, *gone))
    except sqlite3.Error as exc:
        raise StoreError(f"cannot update the matches of article {article_id}: {exc}") from exc
    return cursor.rowcount


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


def match_counts(conn: sqlite3.Connection) -> dict[str, int]:
    """``{rule: number of stored matches}``, rules no longer configured included (``rules list``)."""
    try:
        return dict(conn.execute("SELECT rule, count(*) FROM matches GROUP BY rule").fetchall())
    except sqlite3.Error as exc:
        raise StoreError(f"cannot count matches: {exc}") from exc


# --------------------------------------------------------------------------- what the matcher sees

FeedRow = tuple[str, "str | None"]      # (feed name, feed tags as stored JSON)


def _feed_rows(conn: sqlite3.Connection, article_ids: Sequence[int]) -> dict[int, list[FeedRow]]:
    """The feeds each article appeared in, first seen first (ties by name)."""
    rows: dict[int, list[FeedRow]] = {}
    if not article_ids:
        return rows
    low, high = min(article_ids), max(article_ids)
    if high - low < 2 * len(article_ids):       # a dense run of ids: a range reads the index faster
        where, params = "af.article_id BETWEEN ? AND ?", [low, high]
    else:
        where, params = f"af.article_id IN ({','.join('?' for _ in article_ids)})", list(article_ids)
    for article_id, name, tags in conn.execute(
        "SELECT af.article_id, f.name, f.tags FROM article_feeds af JOIN feeds f ON f.id = af.feed_id "
        f"WHERE {where} ORDER BY af.article_id, af.first_seen, f.name", params,
    ):
        rows.setdefault(article_id, []).append((name, tags))
    return rows


@lru_cache(maxsize=1024)
def _feed_tags(raw: str | None) -> tuple[str, ...]:
    """A feed's stored tags (JSON); the few distinct values are parsed once."""
    return tuple(tag for tag in json.loads(raw or "[]") if isinstance(tag, str))


def _names_and_tags(feed_rows: Iterable[FeedRow]) -> tuple[list[str], list[str]]:
    names: list[str] = []
    tags: list[str] = []
    for name, raw in feed_rows:
        names.append(name)
        tags.extend(tag for tag in _feed_tags(raw) if tag not in tags)
    return names, tags


def _doc(title: str | None, summary: str | None, content: str | None, language: str | None,
         domain: str | None, feed_rows: Iterable[FeedRow]) -> MatchDoc:
    """The one definition of a MatchDoc: the text given, ``feeds`` = names of the feeds the article
    appeared in, ``tags`` = union of those feeds' tags, ``language`` and ``domain`` as stored."""
    names, tags = _names_and_tags(feed_rows)
    return MatchDoc(title=title or "", summary=summary or "", content=content or "", feeds=names,
                    language=language, tags=tags, domain=domain)


def article_feeds_and_tags(conn: sqlite3.Connection, article_id: int) -> tuple[list[str], list[str]]:
    """Names of the feeds an article appeared in (first first), and the union of their tags."""
    try:
        return _names_and_tags(_feed_rows(conn, [article_id]).get(article_id, []))
    except sqlite3.Error as exc:
        raise StoreError(f"cannot read the feeds of article {article_id}: {exc}") from exc


def match_doc(conn: sqlite3.Connection, article_id: int) -> MatchDoc:
    """A stored article as the matcher sees it: the archive's text, feeds, tags, language and domain.

    Also on ingest of a version of an article already stored: another feed's version is not stored
    (only the first feed's updates are), so matching it would record matches and alerts that a
    search for the rule's query never finds and ``rules rematch`` takes back.
    """
    try:
        row = conn.execute(
            "SELECT title, summary, content, language, domain FROM articles WHERE id = ?", (article_id,)
        ).fetchone()
        if row is None:
            raise StoreError(f"no article {article_id}")
        feed_rows = _feed_rows(conn, [article_id]).get(article_id, [])
    except sqlite3.Error as exc:
        raise StoreError(f"cannot read article {article_id}: {exc}") from exc
    title, summary, content, language, domain = row
    return _doc(title, summary, content, language, domain, feed_rows)


def new_article_doc(article: "Article", feed_row: FeedRow) -> MatchDoc:
    """``match_doc`` of an article just inserted from the feed of ``feed_row`` (``feed_row_of``): its
    stored text, language and domain are the article's own and that feed is its only one, so nothing
    needs reading back."""
    return _doc(article.title, article.summary, article.content, article.language, article.domain, [feed_row])


def feed_row_of(conn: sqlite3.Connection, feed_id: int) -> FeedRow:
    """(name, stored tags) of a feed, as ``_feed_rows`` gives them."""
    try:
        row = conn.execute("SELECT name, tags FROM feeds WHERE id = ?", (feed_id,)).fetchone()
    except sqlite3.Error as exc:
        raise StoreError(f"cannot read feed {feed_id}: {exc}") from exc
    if row is None:
        raise StoreError(f"no feed {feed_id}")
    return row[0], row[1]


def _since_text(since: datetime | str | None) -> str | None:
    return to_iso(since) if isinstance(since, datetime) else since


def iter_match_docs(conn: sqlite3.Connection, *, since: datetime | str | None = None,
                    batch: int = 1000) -> Iterator[tuple[int, MatchDoc]]:
    """Every stored article (published at or after ``since``) as the matcher sees it, oldest id
    first, read ``batch`` articles at a time with one feed query per batch."""
    since_text = _since_text(since)
    last_id = 0
    while True:
        try:
            rows = conn.execute(
                "SELECT id, title, summary, content, language, domain FROM articles "
                "WHERE id > ? AND (? IS NULL OR published >= ?) ORDER BY id LIMIT ?",
                (last_id, since_text, since_text, batch),
            ).fetchall()
            feeds = _feed_rows(conn, [row[0] for row in rows])
        except sqlite3.Error as exc:
            raise StoreError(f"cannot read articles for matching: {exc}") from exc
        for article_id, title, summary, content, language, domain in rows:
            yield article_id, _doc(title, summary, content, language, domain, feeds.get(article_id, []))
        if len(rows) < batch:
            return
        last_id = rows[-1][0]


# --------------------------------------------------------------------------- rematch


@dataclass(frozen=True)
class RuleChange:
    """What a rematch did to one rule's stored matches."""

    matches: int           # matches of the rule now (among the articles evaluated)
    added: int
    removed: int


@dataclass(frozen=True)
class Evaluation:
    """Rules run over stored articles, nothing written yet: ``found[rule][article_id]`` is the match's terms
    as stored (``terms_json``): a rule matching most of a large archive is held as small strings."""

    articles: int
    found: dict[str, dict[int, str]]
    since: str | None = None


@dataclass(frozen=True)
class RematchResult:
    articles: int          # articles evaluated
    before: int            # matches of these rules before (among the articles evaluated)
    after: int             # matches of these rules now
    new: list[tuple[int, str]]  # (article_id, rule) pairs that did not match before
    rules: dict[str, RuleChange] = field(default_factory=dict)
    dropped: dict[str, int] = field(default_factory=dict)   # rule no longer listed -> matches removed


def evaluate_rules(conn: sqlite3.Connection, ruleset: "RuleSet", *,
                   since: datetime | str | None = None) -> Evaluation:
    """Run ``ruleset`` over the stored articles (published at or after ``since``); reads only."""
    found: dict[str, dict[int, str]] = {name: {} for name in ruleset.names}
    articles = 0
    for article_id, doc in iter_match_docs(conn, since=since):
        articles += 1
        for match in ruleset.match(doc):
            found[match.rule][article_id] = terms_json(match)
    return Evaluation(articles, found, _since_text(since))


def _stored_ids(conn: sqlite3.Connection, rule: str, since: str | None) -> set[int]:
    if since is None:
        rows = conn.execute("SELECT article_id FROM matches WHERE rule = ?", (rule,))
    else:
        rows = conn.execute("SELECT m.article_id FROM matches m JOIN articles a ON a.id = m.article_id "
                            "WHERE m.rule = ? AND a.published >= ?", (rule, since))
    return {row[0] for row in rows}


def _replace(conn: sqlite3.Connection, rule: str, matches: dict[int, str], now: datetime,
             since: str | None) -> tuple[set[int], RuleChange]:
    """Make the stored matches of ``rule`` (over the evaluated articles) exactly ``matches``; kept
    matches keep their first ``matched_at`` and get the new terms. Returns (ids before, change)."""
    try:
        old = _stored_ids(conn, rule, since)
        gone = sorted(old - set(matches))
        conn.executemany("DELETE FROM matches WHERE rule = ? AND article_id = ?", [(rule, i) for i in gone])
        stamp = to_iso(now)
        conn.executemany(_UPSERT, ((article_id, rule, terms, stamp) for article_id, terms in matches.items()))
    except sqlite3.Error as exc:
        raise StoreError(f"cannot replace matches of rule {rule}: {exc}") from exc
    return old, RuleChange(matches=len(matches), added=len(set(matches) - old), removed=len(gone))


def apply_evaluation(conn: sqlite3.Connection, evaluation: Evaluation, *, now: datetime,
                     drop_other_rules: bool = False) -> RematchResult:
    """Replace the stored matches of the evaluated rules by ``evaluation``; with ``drop_other_rules``
    the matches of every rule not evaluated (no longer configured) are removed. Creates no alert;
    run it inside the caller's transaction."""
    before = after = 0
    new: list[tuple[int, str]] = []
    rules: dict[str, RuleChange] = {}
    for rule, matches in evaluation.found.items():
        old, change = _replace(conn, rule, matches, now, evaluation.since)
        before, after = before + len(old), after + change.matches
        new.extend((article_id, rule) for article_id in matches if article_id not in old)
        rules[rule] = change
        log.info("rematch rule=%s matches=%d added=%d removed=%d", rule, change.matches, change.added,
                 change.removed)
    dropped: dict[str, int] = {}
    if drop_other_rules:
        for rule in sorted(set(match_counts(conn)) - set(evaluation.found)):
            dropped[rule] = delete_matches_for_rule(conn, rule)
            log.info("rematch rule=%s no longer configured, removed=%d", rule, dropped[rule])
    return RematchResult(evaluation.articles, before, after, new, rules, dropped)


def rematch(conn: sqlite3.Connection, ruleset: "RuleSet", *, now: datetime, since: datetime | str | None = None,
            drop_other_rules: bool = False) -> RematchResult:
    """Re-evaluate stored articles against ``ruleset`` (``rules rematch [RULE]``) in one go.

    The matches of every rule in ``ruleset`` (over the articles published since ``since``) are
    replaced by what the rules say now; nothing is fetched and no alert is queued: ``new`` lists
    the pairs that newly match, for the caller to decide. Run it inside the caller's transaction;
    a caller that must keep its write transaction short calls :func:`evaluate_rules` on a read
    connection and :func:`apply_evaluation` in the transaction.
    """
    result = apply_evaluation(conn, evaluate_rules(conn, ruleset, since=since), now=now,
                              drop_other_rules=drop_other_rules)
    log.info("rematch rules=%s articles=%d before=%d after=%d new=%d", ",".join(ruleset.names),
             result.articles, result.before, result.after, len(result.new))
    return result
