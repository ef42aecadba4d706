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
import math
import sqlite3
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from itertools import islice
from typing import Iterable, Iterator, Mapping, Sequence

from monitor.errors import StoreError, UsageError
from monitor.rules import MatchDoc, MatchedTerm, Query, compile_sql, explain_query, parse_query
from monitor.rules.query import And, Meta, Near, Node, Not, Or, Term, ascii_lower
from monitor.rules.sql import SqlQuery, fts_expressible, fts_expression, meta_condition
from monitor.store.matches import match_doc
from monitor.timeutil import from_iso, to_iso, utcnow
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
    ids: str = "a.id",
) -> tuple[list[str], list[object]] | None:
    """Extra WHERE parts; None when a filter names a table the archive does not have yet. ``ids``: the
    column the story filter constrains (``_id_column``)."""
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
        parts.append(f"{ids} IN (SELECT sa.article_id FROM story_articles sa WHERE sa.story_id = ?)")
        params.append(story_id)
    return parts, params


def _id_column(compiled: SqlQuery) -> str:
    """The column that filters on article ids constrain: for a query with a MATCH, FTS5's rowid, so that
    FTS5 reads only those rows of the index rather than every hit of the query (the join makes them the
    same ids); else ``a.id``."""
    return "a.id" if compiled.match is None else "articles_fts.rowid"


def _hit_subqueries(tables: set[str]) -> tuple[str, str, str]:
    """SQL for a hit's first feed, story and rules, correlated on ``a.id`` (an archive without the
    stories or matches tables yields NULL and an empty list)."""
    feed = ("(SELECT f.name FROM article_feeds af JOIN feeds f ON f.id = af.feed_id "
            "WHERE af.article_id = a.id ORDER BY af.first_seen, f.name LIMIT 1)")
    story = ("(SELECT sa.story_id FROM story_articles sa WHERE sa.article_id = a.id LIMIT 1)"
             if "story_articles" in tables else "NULL")
    rules = ("(SELECT json_group_array(rule) FROM (SELECT m.rule FROM matches m "
             "WHERE m.article_id = a.id ORDER BY m.rule))" if "matches" in tables else "'[]'")
    return feed, story, rules


def _select(query: Query, tables: set[str], filters: tuple[list[str], list[object]], sort: str,
            ) -> tuple[str, str, list[object]]:
    """(select list, FROM ... WHERE ..., params) for hits of ``query``."""
    compiled = compile_sql(query)
    condition, params = compiled.condition()
    extra, extra_params = filters
    where = " AND ".join([condition, *extra])
    params = params + extra_params
    feed, story, rules = _hit_subqueries(tables)
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
    now: datetime | None = None,
) -> list[SearchHit]:
    """Articles matching ``query`` (text or parsed), best first (or newest first with sort="date").

    Raises QueryError for a malformed query, UsageError for a bad sort/limit, StoreError when
    the archive cannot be read. ``limit=None`` returns every hit. ``now`` is the time the
    recency factor counts from (default: the current time). See ``iter_search``.
    """
    return list(iter_search(conn, query, since=since, until=until, feeds=feeds, languages=languages, rule=rule,
                            story_id=story_id, sort=sort, limit=limit, offset=offset, mark=mark, now=now))


def iter_search(
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
    now: datetime | None = None,
    chunk: int = 500,
) -> Iterator[SearchHit]:
    """The hits of ``search``, read ``chunk`` at a time as they are consumed: memory does not grow with
    the number of hits (read them inside one transaction, ``Store.snapshot``, for a consistent list).

    Two steps: the ids of the page are ranked first (no text, feed, story or rules read), then
    the rows of each chunk of ids are read. A query with very many hits is ranked within a recent
    window first (see ``_Plan.page_ids``); the window is widened until the result is provably the
    same as ranking every hit, so the fast path never changes an answer.
    """
    parsed = _as_query(query)
    if sort not in SORTS:
        raise UsageError(f"unknown sort {sort!r}: use relevance or date")
    if (limit is not None and limit < 0) or offset < 0:
        raise UsageError("limit and offset must not be negative")
    moment = to_iso(now) if now is not None else to_iso(utcnow())
    terms = positive_terms(parsed.root)
    try:
        tables = _tables(conn)
        filters = _filters(tables, since=since, until=until, feeds=feeds, languages=languages,
                           rule=rule, story_id=story_id, ids=_id_column(compile_sql(parsed)))
        if filters is None:
            return
        plan = _Plan(conn, parsed, filters, sort=sort, now=moment or "", since=_iso(since),
                     few_rows=story_id is not None)
        ranked = iter(plan.page_ids(limit, offset))
        while page := list(islice(ranked, chunk)):
            rows = _details(conn, tables, [article_id for article_id, _ in page])
            for article_id, score in page:
                if article_id in rows:
                    yield _hit((*rows[article_id], score), terms, mark)
    except sqlite3.Error as exc:
        raise StoreError(f"search failed: {exc}") from exc


# --------------------------------------------------------------------------- ranking plan

WINDOW_MIN_HITS = 20_000            # rank within recent windows first when a query may have more hits
WINDOW_MAX_PAGE = 20_000            # ... and the page (offset + limit) is at most this long
WINDOW_DAYS = (7.0, 30.0, 120.0, 480.0)  # the windows tried, widest last (then every hit)
ROWID_SCAN_CAP = 100_000            # index entries read to turn a date bound into a rowid bound
BM25_RATIO_MAX = 2.2                # k1 + 1 with FTS5's k1 = 1.2: one phrase's tf part stays below it
SATURATING_WEIGHT = "1e15"          # column weight that drives each present phrase's tf part to k1 + 1 ...
SATURATION_SLACK = 1e-5             # ... to within this share (row length / average length < 1e9)


def _core_node(query: Query) -> Node | None:
    """The part of the query that ``compile_sql`` puts in MATCH (None when there is none)."""
    root = query.root
    if fts_expressible(root):
        return root
    if isinstance(root, And):
        core = [c for c in root.children if not isinstance(c, Not) and fts_expressible(c)]
        if core:
            core += [c for c in root.children if isinstance(c, Not) and fts_expressible(c.child)]
            return core[0] if len(core) == 1 else And(tuple(core))
    return None


def _phrases(node: Node) -> list[Term]:
    """Every phrase FTS5 sees in ``node`` (NOT branches and NEAR items included), with its scope."""
    if isinstance(node, Term):
        return [node]
    if isinstance(node, Near):
        return [Term(item.words, item.prefix, node.fields) for item in node.items]
    if isinstance(node, Not):
        return _phrases(node.child)
    if isinstance(node, Meta):
        return []
    found: list[Term] = []
    for child in node.children:  # type: ignore[union-attr]
        found.extend(_phrases(child))
    return found


def _all_required(node: Node) -> bool:
    """True when every phrase of ``node`` must be in a row for it to match (terms joined by AND, and
    NOT of unscoped terms, which add nothing): then the saturated bm25 of one matched row bounds the
    bm25 of every row."""
    if isinstance(node, Term):
        return True
    if isinstance(node, And):
        return all(_absent(child.child) if isinstance(child, Not) else _all_required(child)
                   for child in node.children)
    return False


def _absent(node: Node) -> bool:
    """True when a row matching ``NOT node`` holds none of node's phrases in any field (so they add
    nothing to its bm25): unscoped terms, alone or joined by OR."""
    if isinstance(node, Term):
        return node.fields is None
    if isinstance(node, Or):
        return all(isinstance(child, Term) and child.fields is None for child in node.children)
    return False


class _Plan:
    """How one search finds the ids of its page (see ``search``)."""

    def __init__(self, conn: sqlite3.Connection, query: Query, filters: tuple[list[str], list[object]], *,
                 sort: str, now: str, since: str | None, few_rows: bool = False) -> None:
        self.conn = conn
        self.sort = sort
        self.now = now
        self.since = since
        self.few_rows = few_rows  # the filters keep a handful of rows (one story's): no window is worth a query
        self.compiled = compile_sql(query)
        self.core = _core_node(query) if self.compiled.match is not None else None
        condition, params = self.compiled.condition()
        extra, extra_params = filters
        self.where = [condition, *extra]
        self.params = params + extra_params

    def _score(self) -> str:
        weights = ", ".join(str(w) for w in BM25_WEIGHTS)
        return (f"bm25(articles_fts, {weights}) / "
                f"(1.0 + max(0.0, julianday(?) - julianday(a.published)) / {RECENCY_DAYS})")

    def _query(self, limit: int | None, offset: int, *, window: str | None,
               saturate: bool = False) -> sqlite3.Cursor:
        """(id, score) rows of one page; with ``saturate`` a third column holds bm25 with huge column
        weights, whose size is then sum(idf) * (k1 + 1) for a row holding every phrase."""
        where, params = list(self.where), list(self.params)
        lower = max((t for t in (window, self.since) if t), default=None)
        if window is not None:
            where.append("a.published >= ?")
            params.append(window)
        if self.compiled.match is not None and lower is not None:
            first = self._first_id_since(lower)
            if first is not None:
                where.append("articles_fts.rowid >= ?")
                params.append(first)
        if self.compiled.match is None:
            source = "articles a"
        else:
            source = "articles_fts CROSS JOIN articles a ON a.id = articles_fts.rowid"
        if self.compiled.match is not None and self.sort == "relevance":
            columns, order = f"a.id, {self._score()} AS score", "ORDER BY score, a.published DESC, a.id DESC"
            if saturate:
                columns += f", bm25(articles_fts, {SATURATING_WEIGHT}, {SATURATING_WEIGHT}, {SATURATING_WEIGHT})"
            params = [self.now, *params]
        else:
            columns, order = "a.id, NULL", "ORDER BY a.published DESC, a.id DESC"
        sql = f"SELECT {columns} FROM {source} WHERE {' AND '.join(where)} {order} LIMIT ? OFFSET ?"
        return self.conn.execute(sql, [*params, -1 if limit is None else limit, offset])

    def _first_id_since(self, moment: str) -> int | None:
        """The lowest id of the articles published at or after ``moment`` (so that FTS5 can skip every
        lower rowid), or None when finding it would read too much of the index."""
        count, first = self.conn.execute(
            "SELECT count(*), min(id) FROM (SELECT id FROM articles WHERE published >= ? LIMIT ?)",
            (moment, ROWID_SCAN_CAP + 1),
        ).fetchone()
        if count > ROWID_SCAN_CAP:
            return None
        return first if first is not None else 1 << 62

    def page_ids(self, limit: int | None, offset: int) -> Iterable[tuple[int, float | None]]:
        """(id, score) of the page, best first, read from SQLite as they are consumed; a window's rows are
        held in memory, so a page longer than ``WINDOW_MAX_PAGE`` (an export) ranks every hit instead."""
        if limit == 0:
            return []
        if (self.core is None or self.few_rows or limit is None or limit + offset > WINDOW_MAX_PAGE
                or self._core_hits(WINDOW_MIN_HITS + 1) <= WINDOW_MIN_HITS):
            return self._query(limit, offset, window=None)
        wanted = limit + offset
        relevance = self.sort == "relevance"
        saturate = relevance and _all_required(self.core)
        bound = self._bm25_bound(self._phrase_counts()) if relevance and not saturate else 0.0
        for days in WINDOW_DAYS:
            start = to_iso(from_iso(self.now) - timedelta(days=days)) or ""
            if self.since is not None and self.since >= start:
                break                                    # the date filter is narrower than the window
            rows = self._query(wanted, 0, window=start, saturate=saturate).fetchall()
            if len(rows) < wanted:
                continue
            if saturate:
                bound = abs(rows[0][2]) * (1.0 + SATURATION_SLACK)
            if not relevance or abs(rows[-1][1] or 0.0) >= bound / (1.0 + days / RECENCY_DAYS):
                log.debug("search ranked within window days=%s", days)
                return [(row[0], row[1]) for row in rows[offset:]]
        return self._query(limit, offset, window=None)

    def _core_hits(self, cap: int) -> int:
        """Rows the MATCH part alone matches, counted up to ``cap``."""
        return int(self.conn.execute(
            "SELECT count(*) FROM (SELECT 1 FROM articles_fts WHERE articles_fts MATCH ? LIMIT ?)",
            (self.compiled.match, cap),
        ).fetchone()[0])

    def _rows_upper(self) -> int:
        """At least the number of rows in the index (the largest rowid), cheap to read."""
        return int(self.conn.execute("SELECT coalesce(max(id), 0) FROM articles").fetchone()[0])

    def _phrase_counts(self) -> dict[Term, int]:
        """Rows matching each phrase, as FTS5 counts them for idf, counted up to just over half of the
        rows: beyond that FTS5's idf is its floor (1e-6) whatever the exact count."""
        cap = self._rows_upper() // 2 + 1
        counts: dict[Term, int] = {}
        for term in _phrases(self.core):  # type: ignore[arg-type]
            if term not in counts:
                counts[term] = int(self.conn.execute(
                    "SELECT count(*) FROM (SELECT 1 FROM articles_fts WHERE articles_fts MATCH ? LIMIT ?)",
                    (fts_expression(term), cap),
                ).fetchone()[0])
        return counts

    def _bm25_bound(self, counts: Mapping[Term, int]) -> float:
        """Above the absolute bm25 of any row: FTS5 sums idf * tf-part over the query's phrases, each
        tf-part below k1 + 1, idf = log((N - n + 0.5) / (n + 0.5)) (at least 1e-6); N is bounded by the
        largest rowid (idf grows with N) and n is counted as FTS5 counts it (a count capped at N/2 + 1
        gives the floor, as the true count does)."""
        rows = self._rows_upper()
        total = 0.0
        for term in _phrases(self.core):  # type: ignore[arg-type]
            n = counts[term]
            idf = math.log((rows - n + 0.5) / (n + 0.5)) if rows > n else 0.0
            total += max(idf, 1e-6) * BM25_RATIO_MAX
        return total * (1.0 + 1e-9)


def _details(conn: sqlite3.Connection, tables: set[str], ids: list[int]) -> dict[int, tuple]:
    """The columns of a hit for each of ``ids`` (one query)."""
    if not ids:
        return {}
    feed, story, rules = _hit_subqueries(tables)
    marks = ", ".join("?" for _ in ids)
    rows = conn.execute(
        f"SELECT a.id, a.title, a.url, {feed}, a.published, {story}, a.summary, a.content, {rules} "
        f"FROM articles a WHERE a.id IN ({marks})", ids,
    ).fetchall()
    return {row[0]: row for row in rows}


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
        compiled = compile_sql(parsed)
        filters = _filters(tables, since=since, until=until, feeds=feeds, languages=languages,
                           rule=rule, story_id=story_id, ids=_id_column(compiled))
        if filters is None:
            return 0
        if compiled.match is not None and compiled.where == "1" and not filters[0]:
            # text only: the index alone knows the count (every indexed row is an article)
            sql, params = "SELECT count(*) FROM articles_fts WHERE articles_fts MATCH ?", [compiled.match]
            return int(conn.execute(sql, params).fetchone()[0])
        _, body, params = _select(parsed, tables, filters, "date")
        return int(conn.execute(f"SELECT count(*) {body}", params).fetchone()[0])
    except sqlite3.Error as exc:
        raise StoreError(f"search failed: {exc}") from exc


def count_hits_by_story(
    conn: sqlite3.Connection,
    query: str | Query,
    story_ids: Sequence[int],
    *,
    since: datetime | str | None = None,
    until: datetime | str | None = None,
    feeds: Sequence[str] | None = None,
    languages: Sequence[str] | None = None,
    rule: str | None = None,
    story_id: int | None = None,
    chunk: int = 500,
) -> dict[int, int]:
    """How many articles ``search()`` would return in each of ``story_ids`` (stories without hits are left
    out): one pass over the hits for each ``chunk`` stories, rather than one for each story."""
    parsed = _as_query(query)
    found: dict[int, int] = {}
    try:
        tables = _tables(conn)
        compiled = compile_sql(parsed)
        filters = _filters(tables, since=since, until=until, feeds=feeds, languages=languages,
                           rule=rule, story_id=story_id, ids=_id_column(compiled))
        if filters is None or "story_articles" not in tables:
            return found
        match = compiled.match is not None
        ids = list(dict.fromkeys(story_ids))
        for start in range(0, len(ids), chunk):
            part = ids[start:start + chunk]
            marks = ", ".join("?" for _ in part)
            extra = [f"a.id IN (SELECT sa.article_id FROM story_articles sa WHERE sa.story_id IN ({marks}))"]
            extra_params: list[object] = list(part)
            low, high = conn.execute("SELECT min(article_id), max(article_id) FROM story_articles "
                                     f"WHERE story_id IN ({marks})", part).fetchone()
            if low is None:
                continue
            if match:   # FTS5 reads only the part of the index that holds these stories' articles
                extra.append("articles_fts.rowid BETWEEN ? AND ?")
                extra_params.extend((low, high))
            _, body, params = _select(parsed, tables, (filters[0] + extra, filters[1] + extra_params), "date")
            rows = conn.execute(
                "SELECT (SELECT sa.story_id FROM story_articles sa WHERE sa.article_id = a.id) AS story, count(*) "
                f"{body} GROUP BY story", params)
            found.update((int(story), int(count)) for story, count in rows)
    except sqlite3.Error as exc:
        raise StoreError(f"search failed: {exc}") from exc
    return found


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
    return match_doc(conn, article_id)


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
    total, hits = iter_test_rule(conn, query, since, limit=limit, mark=mark)
    return total, list(hits)


def iter_test_rule(
    conn: sqlite3.Connection,
    query: str | Query,
    since: datetime | str | None = None,
    *,
    limit: int | None = 20,
    mark: tuple[str, str] = ("[", "]"),
) -> tuple[int, Iterator[SearchHit]]:
    """``test_rule`` with the hits read as they are consumed (see ``iter_search``): at most ``limit``
    of the counted hits, when both are read in one transaction (``Store.snapshot``)."""
    parsed = _as_query(query)
    total = count_hits(conn, parsed, since=since)
    hits = iter_search(conn, parsed, since=since, sort="date", limit=limit, mark=mark)
    return total, _explained(conn, parsed, hits, mark)


def _explained(conn: sqlite3.Connection, parsed: Query, hits: Iterable[SearchHit],
               mark: tuple[str, str]) -> Iterator[SearchHit]:
    terms = positive_terms(parsed.root)
    for hit in hits:
        try:
            matched = explain_query(parsed, article_doc(conn, hit.id))
        except sqlite3.Error as exc:
            raise StoreError(f"cannot read article {hit.id}: {exc}") from exc
        hit.terms = matched or []
        hit.title_marked = highlight(hit.title or "", terms, field="title", mark=mark)
        yield hit


test_rule.__test__ = False  # type: ignore[attr-defined]  # not a pytest test
