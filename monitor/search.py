"""Archive search: one query language, run over the stored articles.

``search()`` compiles a query (see :mod:`monitor.rules`) to one FTS5 ``MATCH`` plus SQL
conditions, adds the filters, ranks by BM25 (title weighted above summary above content)
damped by age, or by date, and returns :class:`SearchHit` rows with highlighted snippets.
``test_rule()`` is what ``newsmon rules test`` prints: a count and the hits with the
terms that matched. ``highlight()`` marks a query's words in any text.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from dataclasses import dataclass, field
from datetime import datetime
from typing import Iterable, Mapping, Sequence

from monitor.errors import StoreError, UsageError
from monitor.rules import MatchDoc, MatchedTerm, Query, compile_sql, explain_query, parse_query
from monitor.rules.query import Meta, Near, Node, Not, Term, ascii_lower
from monitor.rules.sql import meta_condition
from monitor.timeutil import to_iso
from monitor.tokenize import tokenize_with_offsets

log = logging.getLogger(__name__)

BM25_WEIGHTS = (5.0, 2.0, 1.0)     # title, summary, content
RECENCY_DAYS = 30.0                # a hit this many days old counts half as much
SNIPPET_TOKENS = 24
SORTS = ("relevance", "date")


@dataclass
class SearchHit:
    id: int
    title: str
    url: str | None
    feed: str | None            # the first feed the article was seen in
    published: str              # UTC ISO-8601
    story_id: int | None        # None when the archive has no stories table (or no story row)
    snippet: str                # summary/content/title excerpt, query words marked
    rules: list[str] = field(default_factory=list)
    score: float | None = None  # the ranking value (lower is better); None when sorted by date
    terms: list[MatchedTerm] = field(default_factory=list)  # filled by test_rule()
    title_marked: str | None = None                         # filled by test_rule()

    def to_dict(self) -> dict[str, object]:
        """The JSON shape of INTERFACE.md (search / rules test hit)."""
        data: dict[str, object] = {
            "id": self.id, "title": self.title, "url": self.url, "feed": self.feed,
            "published": self.published, "story_id": self.story_id, "snippet": self.snippet,
            "rules": list(self.rules),
        }
        if self.terms:
            data["matched"] = [{"term": t.term, "field": t.field} for t in self.terms]
        return data


def _as_query(query: str | Query) -> Query:
    return query if isinstance(query, Query) else parse_query(query)


def _tables(conn: sqlite3.Connection) -> set[str]:
    rows = conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name IN ('matches', 'story_articles', 'stories')"
    )
    return {row[0] for row in rows}


def _iso(value: datetime | str | None) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return to_iso(value)


def _filters(
    tables: set[str], *, since: datetime | str | None, until: datetime | str | None,
    feeds: Sequence[str] | None, languages: Sequence[str] | None, rule: str | None, story_id: int | None,
) -> tuple[list[str], list[object]] | None:
    """Extra WHERE parts; None when a filter names a table the archive does not have yet."""
    parts: list[str] = []
    params: list[object] = []
    if since is not None:
        parts.append("a.published >= ?")
        params.append(_iso(since))
    if until is not None:
        parts.append("a.published < ?")
        params.append(_iso(until))
    if feeds:
        marks = ", ".join("?" for _ in feeds)
        parts.append("EXISTS (SELECT 1 FROM article_feeds af JOIN feeds f ON f.id = af.feed_id "
                     f"WHERE af.article_id = a.id AND lower(f.name) IN ({marks}))")
        params.extend(ascii_lower(name) for name in feeds)
    if languages:
        ors = []
        for language in languages:
            text, lang_params = meta_condition(Meta("lang", ascii_lower(language.strip())))
            ors.append(text)
            params.extend(lang_params)
        parts.append("(" + " OR ".join(ors) + ")")
    if rule is not None:
        if "matches" not in tables:
            return None
        parts.append("EXISTS (SELECT 1 FROM matches m WHERE m.article_id = a.id AND m.rule = ?)")
        params.append(rule)
    if story_id is not None:
        if "story_articles" not in tables:
            return None
        parts.append("a.id IN (SELECT sa.article_id FROM story_articles sa WHERE sa.story_id = ?)")
        params.append(story_id)
    return parts, params


def _select(query: Query, tables: set[str], filters: tuple[list[str], list[object]], sort: str,
            ) -> tuple[str, str, list[object]]:
    """(select list, FROM ... WHERE ..., params) for hits of ``query``."""
    compiled = compile_sql(query)
    condition, params = compiled.condition()
    extra, extra_params = filters
    where = " AND ".join([condition, *extra])
    params = params + extra_params
    story = ("(SELECT sa.story_id FROM story_articles sa WHERE sa.article_id = a.id LIMIT 1)"
             if "story_articles" in tables else "NULL")
    rules = ("(SELECT json_group_array(rule) FROM (SELECT m.rule FROM matches m "
             "WHERE m.article_id = a.id ORDER BY m.rule))" if "matches" in tables else "'[]'")
    feed = ("(SELECT f.name FROM article_feeds af JOIN feeds f ON f.id = af.feed_id "
            "WHERE af.article_id = a.id ORDER BY af.first_seen, f.name LIMIT 1)")
    if compiled.match is not None and sort == "relevance":
        weights = ", ".join(str(w) for w in BM25_WEIGHTS)
        score = (f"bm25(articles_fts, {weights}) / "
                 f"(1.0 + max(0.0, julianday('now') - julianday(a.published)) / {RECENCY_DAYS})")
    else:
        score = "NULL"
    columns = (f"a.id, a.title, a.url, {feed}, a.published, {story}, a.summary, a.content, "
               f"{rules}, {score}")
    return columns, f"FROM {compiled.from_clause()} WHERE {where}", params


def search(
    conn: sqlite3.Connection,
    query: str | Query,
    *,
    since: datetime | str | None = None,
    until: datetime | str | None = None,
    feeds: Sequence[str] | None = None,
    languages: Sequence[str] | None = None,
    rule: str | None = None,
    story_id: int | None = None,
    sort: str = "relevance",
    limit: int | None = 20,
    offset: int = 0,
    mark: tuple[str, str] = ("[", "]"),
) -> list[SearchHit]:
    """Articles matching ``query`` (text or parsed), best first (or newest first with sort="date").

    Raises QueryError for a malformed query, UsageError for a bad sort/limit, StoreError when
    the archive cannot be read. ``limit=None`` returns every hit.
    """
    parsed = _as_query(query)
    if sort not in SORTS:
        raise UsageError(f"unknown sort {sort!r}: use relevance or date")
    if (limit is not None and limit < 0) or offset < 0:
        raise UsageError("limit and offset must not be negative")
    try:
        tables = _tables(conn)
        filters = _filters(tables, since=since, until=until, feeds=feeds, languages=languages,
                           rule=rule, story_id=story_id)
        if filters is None:
            return []
        columns, body, params = _select(parsed, tables, filters, sort)
        order = ("ORDER BY 10, a.published DESC, a.id DESC" if sort == "relevance"
                 else "ORDER BY a.published DESC, a.id DESC")
        sql = f"SELECT {columns} {body} {order} LIMIT ? OFFSET ?"
        rows = conn.execute(sql, [*params, -1 if limit is None else limit, offset]).fetchall()
    except sqlite3.Error as exc:
        raise StoreError(f"search failed: {exc}") from exc
    terms = positive_terms(parsed.root)
    return [_hit(row, terms, mark) for row in rows]


def count_hits(
    conn: sqlite3.Connection,
    query: str | Query,
    *,
    since: datetime | str | None = None,
    until: datetime | str | None = None,
    feeds: Sequence[str] | None = None,
    languages: Sequence[str] | None = None,
    rule: str | None = None,
    story_id: int | None = None,
) -> int:
    """How many articles ``search()`` would return with no limit."""
    parsed = _as_query(query)
    try:
        tables = _tables(conn)
        filters = _filters(tables, since=since, until=until, feeds=feeds, languages=languages,
                           rule=rule, story_id=story_id)
        if filters is None:
            return 0
        _, body, params = _select(parsed, tables, filters, "date")
        return int(conn.execute(f"SELECT count(*) {body}", params).fetchone()[0])
    except sqlite3.Error as exc:
        raise StoreError(f"search failed: {exc}") from exc


def _hit(row: tuple, terms: list[Term], mark: tuple[str, str]) -> SearchHit:
    article_id, title, url, feed, published, story, summary, content, rules, score = row
    return SearchHit(
        id=article_id, title=title, url=url, feed=feed, published=published, story_id=story,
        snippet=make_snippet(terms, title or "", summary or "", content or "", mark=mark),
        rules=json.loads(rules) if rules else [], score=score,
    )


# --------------------------------------------------------------------------- highlighting


def positive_terms(node: Node) -> list[Term]:
    """The terms of a query that can be shown as hits (not under NOT), NEAR items included."""
    if isinstance(node, Term):
        return [node]
    if isinstance(node, Near):
        return [Term(item.words, item.prefix, node.fields) for item in node.items]
    if isinstance(node, (Meta, Not)):
        return []
    found: list[Term] = []
    for child in node.children:  # type: ignore[union-attr]
        found.extend(positive_terms(child))
    return found


def _spans(tokens: list[tuple[str, int, int]], terms: Iterable[Term], field_name: str | None) -> list[tuple[int, int]]:
    """Character spans of ``text`` covered by occurrences of ``terms``, merged and sorted."""
    spans = []
    words = [token for token, _, _ in tokens]
    for term in terms:
        if field_name is not None and term.fields is not None and field_name not in term.fields:
            continue
        size = len(term.words)
        for i in range(len(words) - size + 1):
            ok = all(words[i + k] == term.words[k] for k in range(size - 1))
            last = words[i + size - 1]
            if ok and (last == term.words[-1] or (term.prefix and last.startswith(term.words[-1]))):
                spans.append((tokens[i][1], tokens[i + size - 1][2]))
    spans.sort()
    merged: list[tuple[int, int]] = []
    for start, end in spans:
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


def _mark(text: str, spans: list[tuple[int, int]], mark: tuple[str, str]) -> str:
    out, last = [], 0
    for start, end in spans:
        out.append(text[last:start])
        out.append(mark[0] + text[start:end] + mark[1])
        last = end
    out.append(text[last:])
    return "".join(out)


def highlight(text: str, terms: str | Query | Iterable[Term], *, field: str | None = None,
              mark: tuple[str, str] = ("[", "]")) -> str:
    """``text`` with every occurrence of the query's words/phrases/prefixes wrapped in ``mark``.

    ``terms``: a query (text or parsed) or its terms; ``field`` limits to terms that apply to
    that field (unscoped terms apply everywhere). Matching is the index's: ``Goita`` marks
    ``Goïta``; ``Mali`` does not mark ``Somalia``.
    """
    if isinstance(terms, str):
        terms = parse_query(terms)
    if isinstance(terms, Query):
        terms = positive_terms(terms.root)
    return _mark(text, _spans(tokenize_with_offsets(text), list(terms), field), mark)


def make_snippet(terms: list[Term], title: str, summary: str, content: str, *,
                 mark: tuple[str, str] = ("[", "]"), size: int = SNIPPET_TOKENS) -> str:
    """About ``size`` tokens of the first of summary, content, title that holds a query word,
    centred on the first hit and marked; the start of the summary (or title) otherwise."""
    for name, text in (("summary", summary), ("content", content), ("title", title)):
        if not text:
            continue
        tokens = tokenize_with_offsets(text)
        spans = _spans(tokens, terms, name)
        if spans:
            return _window(text, tokens, spans, mark, size)
    text = summary or title
    tokens = tokenize_with_offsets(text)
    return _window(text, tokens, [], mark, size)


def _window(text: str, tokens: list[tuple[str, int, int]], spans: list[tuple[int, int]],
            mark: tuple[str, str], size: int) -> str:
    if len(tokens) <= size:
        return _mark(text, spans, mark).strip()
    first = 0
    if spans:
        first = next(i for i, (_, start, _) in enumerate(tokens) if start >= spans[0][0])
        first = max(0, min(first - size // 3, len(tokens) - size))
    last = first + size - 1
    start = 0 if first == 0 else tokens[first][1]
    end = len(text) if last >= len(tokens) - 1 else tokens[last][2]
    inside = [(max(s, start) - start, min(e, end) - start) for s, e in spans if s < end and e > start]
    body = _mark(text[start:end], inside, mark).strip()
    return ("…" if start > 0 else "") + body + ("…" if end < len(text) else "")


# --------------------------------------------------------------------------- rules test


def article_doc(conn: sqlite3.Connection, article_id: int) -> MatchDoc:
    """What the matcher sees of a stored article (feed names and their tags included)."""
    row = conn.execute(
        "SELECT title, summary, content, language, domain FROM articles WHERE id = ?", (article_id,)
    ).fetchone()
    if row is None:
        raise StoreError(f"no article {article_id}")
    feed_rows = conn.execute(
        "SELECT f.name, f.tags FROM article_feeds af JOIN feeds f ON f.id = af.feed_id "
        "WHERE af.article_id = ? ORDER BY af.first_seen, f.name", (article_id,)
    ).fetchall()
    tags: list[str] = []
    for _, raw in feed_rows:
        for tag in json.loads(raw or "[]"):
            if isinstance(tag, str) and tag not in tags:
                tags.append(tag)
    return MatchDoc(title=row[0], summary=row[1], content=row[2], feeds=[name for name, _ in feed_rows],
                    language=row[3], tags=tags, domain=row[4])


def resolve_rule_or_query(text: str, rules: Mapping[str, str]) -> tuple[str | None, Query]:
    """``rules test RULE_OR_QUERY``: a configured rule's name wins; otherwise ``text`` is a query."""
    if text in rules:
        return text, parse_query(rules[text])
    return None, parse_query(text)


def test_rule(
    conn: sqlite3.Connection,
    query: str | Query,
    since: datetime | str | None = None,
    *,
    limit: int | None = 20,
    mark: tuple[str, str] = ("[", "]"),
) -> tuple[int, list[SearchHit]]:
    """Run a rule (or any query) over the archive: (number of hits, newest hits first).

    Each hit carries ``terms`` (what matched, in which field), ``title_marked`` and a marked
    snippet, so that the CLI can print why each article matched.
    """
    parsed = _as_query(query)
    total = count_hits(conn, parsed, since=since)
    hits = search(conn, parsed, since=since, sort="date", limit=limit, mark=mark)
    terms = positive_terms(parsed.root)
    for hit in hits:
        try:
            matched = explain_query(parsed, article_doc(conn, hit.id))
        except sqlite3.Error as exc:
            raise StoreError(f"cannot read article {hit.id}: {exc}") from exc
        hit.terms = matched or []
        hit.title_marked = highlight(hit.title or "", terms, field="title", mark=mark)
    return total, hits


test_rule.__test__ = False  # type: ignore[attr-defined]  # not a pytest test
