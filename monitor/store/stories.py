"""The only SQL for stories: schema, the clusterer's index tables, and story queries.

Tables (all kept outside ``articles`` so that no FTS trigger fires when a story changes):

- ``stories``: one row per story. ``first_seen`` is the earliest publication time among its
  articles and ``first_feed`` the outlet that published it; ``updated`` is the arrival time of
  the newest source. ``vector`` is the story's centroid (binary, see ``encode_vector``: the
  strongest terms only) and ``first_published``/``last_published`` bound its articles' times.
- ``story_articles``: which story each article belongs to (an article is in at most one).
- ``story_sources``: (story, article, feed) triples: every outlet that carried each article.
- ``story_postings``: the inverted index of rare terms -> stories, ordered by the story's
  publication time when it was posted, so that candidate look-ups read a term's newest entries
  first and touch only recent stories. One B-tree: a story refreshed under a term gets a new entry
  and its older ones stay until retention prunes them; readers take each story's newest entry.
- ``story_df``: document frequency of each term over the archive so far, kept incrementally;
  ``story_stats`` holds the document count.
"""

from __future__ import annotations

import math
import sqlite3
import struct
import sys
from array import array
from dataclasses import dataclass
from datetime import datetime
from typing import Iterable, Iterator, Sequence

from monitor.store.schema import run_script
from monitor.timeutil import to_iso

SCHEMA = """
CREATE TABLE IF NOT EXISTS stories (
    id INTEGER PRIMARY KEY,
    headline TEXT NOT NULL DEFAULT '',
    headline_article_id INTEGER,
    first_seen TEXT NOT NULL,
    updated TEXT NOT NULL,
    first_article_id INTEGER,
    first_feed TEXT,
    first_published TEXT NOT NULL,
    last_published TEXT NOT NULL,
    article_count INTEGER NOT NULL DEFAULT 0,
    language TEXT,
    join_count INTEGER NOT NULL DEFAULT 0,
    join_score REAL NOT NULL DEFAULT 0,
    vector BLOB NOT NULL DEFAULT x''
);
CREATE INDEX IF NOT EXISTS stories_updated ON stories(updated);

CREATE TABLE IF NOT EXISTS story_articles (
    story_id INTEGER NOT NULL REFERENCES stories(id) ON DELETE CASCADE,
    article_id INTEGER NOT NULL UNIQUE,
    feed TEXT,
    joined_at TEXT NOT NULL,
    score REAL
);
CREATE INDEX IF NOT EXISTS story_articles_story ON story_articles(story_id);

CREATE TABLE IF NOT EXISTS story_sources (
    story_id INTEGER NOT NULL,
    feed TEXT NOT NULL,
    article_id INTEGER NOT NULL,
    seen_at TEXT NOT NULL,
    PRIMARY KEY (story_id, feed, article_id)
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS story_postings (
    term TEXT NOT NULL,
    last_published TEXT NOT NULL,
    story_id INTEGER NOT NULL,
    PRIMARY KEY (term, last_published, story_id)
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS story_df (
    term TEXT PRIMARY KEY,
    df INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS story_stats (
    key TEXT PRIMARY KEY,
    value INTEGER NOT NULL
) WITHOUT ROWID;
"""


def apply_schema(conn: sqlite3.Connection) -> None:
    """Create the story tables (idempotent, inside the caller's transaction if any)."""
    run_script(conn, SCHEMA)


# --------------------------------------------------------------------------- clusterer state


@dataclass
class StoryState:
    """What the clusterer needs to score an article against one story and to update it."""

    id: int
    headline: str
    headline_article_id: int | None
    first_seen: str
    first_feed: str | None
    first_published: str
    last_published: str
    article_count: int
    language: str | None
    join_count: int
    join_score: float
    vector: dict[str, float]
    names: set[str]
    headline_vector: dict[str, float]
    norm: float = 0.0                 # Euclidean norm of ``vector``


def document_count(conn: sqlite3.Connection) -> int:
    row = conn.execute("SELECT value FROM story_stats WHERE key = 'documents'").fetchone()
    return int(row[0]) if row else 0


def document_frequencies(conn: sqlite3.Connection, terms: Sequence[str]) -> dict[str, int]:
    """df of each term (absent terms are left out)."""
    found: dict[str, int] = {}
    for chunk in _chunks(terms, 500):
        marks = ",".join("?" * len(chunk))
        for term, df in conn.execute(f"SELECT term, df FROM story_df WHERE term IN ({marks})", chunk):
            found[term] = df
    return found


def add_document_counts(conn: sqlite3.Connection, counts: dict[str, int], documents: int) -> None:
    """Add ``documents`` documents whose terms occur in ``counts[term]`` of them."""
    conn.executemany(
        "INSERT INTO story_df(term, df) VALUES (?, ?) ON CONFLICT(term) DO UPDATE SET df = df + excluded.df",
        counts.items(),
    )
    conn.execute(
        "INSERT INTO story_stats(key, value) VALUES ('documents', ?) "
        "ON CONFLICT(key) DO UPDATE SET value = value + excluded.value",
        (documents,),
    )


def candidate_stories(
    conn: sqlite3.Connection,
    weights: dict[str, float],
    *,
    since: str,
    per_term: int,
    min_overlap: float,
    limit: int,
) -> list[int]:
    """Recent stories posted under the article's probe terms, best first (the clusterer reads the
    same rows from its memory, ``stories.StoryMemory``; this query is the reference it is tested against).

    Each term gives at most ``per_term`` of its most recent stories (by each story's newest entry,
    kept if at or after ``since``). A story's overlap is the summed article weight of the terms that
    found it; stories below ``min_overlap`` are left out. This query groups every entry of a term;
    the clusterer reads a term's newest entries only (``recent_postings``).
    """
    if not weights:
        return []
    sql, params = _candidate_sql(weights, since=since, per_term=per_term, min_overlap=min_overlap, limit=limit)
    return [row[0] for row in conn.execute(sql, params)]


def _candidate_sql(
    weights: dict[str, float], *, since: str, per_term: int, min_overlap: float, limit: int
) -> tuple[str, list[object]]:
    parts = []
    params: list[object] = []
    for term, weight in weights.items():
        parts.append(
            "SELECT story_id, ? AS w FROM (SELECT story_id, max(last_published) AS newest FROM story_postings "
            "WHERE term = ? GROUP BY story_id ORDER BY newest DESC, story_id DESC LIMIT ?) WHERE newest >= ?"
        )
        params.extend((weight, term, per_term, since))
    sql = (
        f"SELECT story_id, sum(w) AS overlap FROM ({' UNION ALL '.join(parts)}) "
        "GROUP BY story_id HAVING overlap >= ? ORDER BY overlap DESC, story_id DESC LIMIT ?"
    )
    params.extend((min_overlap, limit))
    return sql, params


def recent_postings(conn: sqlite3.Connection, term: str, *, limit: int) -> list[tuple[str, int]]:
    """The newest (last_published, story_id) entries of ``term`` for ``limit`` distinct stories, newest
    first (ties: higher story id first, the order of the index); each story's newest entry only.

    The index is read backwards from the term's newest entry, ``limit`` rows first and more only when
    some were older entries of a story already read: the rows read are bounded by how often stories
    were refreshed, not by the archive's size."""
    sql = ("SELECT last_published, story_id FROM story_postings WHERE term = ? "
           "ORDER BY last_published DESC, story_id DESC LIMIT ?")
    rows = limit
    while True:
        found = conn.execute(sql, (term, rows)).fetchall()
        entries: list[tuple[str, int]] = []
        seen: set[int] = set()
        for published, story_id in found:
            if story_id not in seen:
                seen.add(story_id)
                entries.append((published, story_id))
        if len(entries) >= limit or len(found) < rows:
            return entries[:limit]
        rows *= 4


def advance_clusterer_mark(conn: sqlite3.Connection, *, expected: int, version: int, new: int) -> bool:
    """Move this connection's clusterer mark from ``expected`` to ``new``, only if it still is ``expected``
    and no other connection has committed since ``version`` (``PRAGMA data_version``). True if moved.

    A clusterer that keeps story state in memory calls this before each article, in its transaction
    (one statement). The mark is a TEMP table row, so it belongs to this connection and follows its
    transactions: it goes back to an older value when a transaction that set it rolls back, and to
    0 after ``forget_clusterer_state``. False (any of those, or another connection's commit) means:
    drop the memory and ``reset_clusterer_mark``.
    """
    try:
        cursor = conn.execute(
            "UPDATE temp.newsmon_story_mark SET value = ? WHERE id = 1 AND value = ? "
            "AND (SELECT data_version FROM pragma_data_version) = ?",
            (new, expected, version),
        )
    except sqlite3.OperationalError as exc:
        if "no such table" not in str(exc):
            raise
        return False  # never set on this connection (or the transaction that made it rolled back)
    return cursor.rowcount == 1


def reset_clusterer_mark(conn: sqlite3.Connection, new: int) -> int:
    """Set this connection's clusterer mark to ``new``; returns the current ``PRAGMA data_version``."""
    _set_mark(conn, new)
    return int(conn.execute("PRAGMA data_version").fetchone()[0])


def forget_clusterer_state(conn: sqlite3.Connection) -> None:
    """Tell clusterers using this connection that story tables changed under them (retention)."""
    _set_mark(conn, 0)


def _set_mark(conn: sqlite3.Connection, value: int) -> None:
    conn.execute("CREATE TEMP TABLE IF NOT EXISTS newsmon_story_mark(id INTEGER PRIMARY KEY, value INTEGER NOT NULL)")
    conn.execute("INSERT OR REPLACE INTO temp.newsmon_story_mark(id, value) VALUES (1, ?)", (value,))


_STATE_COLUMNS = (
    "s.id, s.headline, s.headline_article_id, s.first_seen, s.first_feed, s.first_published, "
    "s.last_published, s.article_count, s.language, s.join_count, s.join_score, s.vector"
)


class VectorCache:
    """Decoded story vectors, keyed by story id and checked against the stored bytes.

    A cached entry is used only when the ``vector`` blob just read is byte-for-byte the one it was
    decoded from, so a story changed by another process (or a rolled-back transaction) is never
    scored from a stale copy; the cache only saves decoding. Bounded: cleared when full.
    """

    def __init__(self, size: int = 50_000) -> None:
        self.size = size
        self._entries: dict[int, tuple[bytes, tuple[dict[str, float], set[str], dict[str, float], float]]] = {}

    def decode(self, story_id: int, blob: bytes) -> tuple[dict[str, float], set[str], dict[str, float], float]:
        entry = self._entries.get(story_id)
        if entry is not None and entry[0] == blob:
            return entry[1]
        decoded = decode_story_vector(blob)
        if len(self._entries) >= self.size:
            self._entries.clear()
        self._entries[story_id] = (blob, decoded)
        return decoded

    def remember(self, story_id: int, blob: bytes, decoded: tuple[dict[str, float], set[str], dict[str, float], float]
                 ) -> None:
        """Record a blob this process just wrote (checked against the stored bytes when read)."""
        if len(self._entries) >= self.size:
            self._entries.clear()
        self._entries[story_id] = (blob, decoded)


def _state(row: Sequence, cache: VectorCache | None) -> StoryState:
    blob = row[11]
    if cache is not None:
        vector, names, headline_vector, norm = cache.decode(row[0], blob)
    else:
        vector, names, headline_vector, norm = decode_story_vector(blob)
    return StoryState(*row[:11], vector=vector, names=names, headline_vector=headline_vector, norm=norm)


def load_story_states(
    conn: sqlite3.Connection, story_ids: Sequence[int], cache: VectorCache | None = None
) -> list[StoryState]:
    """States of ``story_ids`` (order not kept; missing ids left out). The decoded vectors are
    shared with ``cache``: callers replace them, never change them in place."""
    states: list[StoryState] = []
    for chunk in _chunks(story_ids, 500):
        marks = ",".join("?" * len(chunk))
        rows = conn.execute(f"SELECT {_STATE_COLUMNS} FROM stories s WHERE s.id IN ({marks})", chunk)
        states.extend(_state(row, cache) for row in rows)
    return states


def story_by_fingerprint(
    conn: sqlite3.Connection, fingerprint: str, *, article_id: int, since: str, until: str
) -> int | None:
    """The story of another article with the same text fingerprint whose span of publication times
    reaches into [``since``, ``until``] (the joining article's time, give or take the story window)."""
    row = conn.execute(
        "SELECT sa.story_id FROM articles a JOIN story_articles sa ON sa.article_id = a.id "
        "JOIN stories s ON s.id = sa.story_id "
        "WHERE a.fingerprint = ? AND a.id != ? AND s.last_published >= ? AND s.first_published <= ? "
        "ORDER BY s.last_published DESC LIMIT 1",
        (fingerprint, article_id, since, until),
    ).fetchone()
    return int(row[0]) if row else None


def create_story(
    conn: sqlite3.Connection,
    *,
    headline: str,
    article_id: int,
    feed: str,
    published: str,
    arrived: str,
    language: str | None,
    vector: dict[str, float],
    names: set[str],
    headline_vector: dict[str, float],
    cache: VectorCache | None = None,
) -> StoryState:
    """Insert a story of one article; its state is exactly what ``load_story_states`` would read."""
    blob, decoded = _encode(vector, names, headline_vector)
    cursor = conn.execute(
        "INSERT INTO stories(headline, headline_article_id, first_seen, updated, first_article_id, "
        "first_feed, first_published, last_published, article_count, language, vector) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, 1, ?, ?)",
        (headline, article_id, published, arrived, article_id, feed, published, published, language, blob),
    )
    story_id = int(cursor.lastrowid)
    if cache is not None:
        cache.remember(story_id, blob, decoded)
    vector, names, headline_vector, norm = decoded
    return StoryState(story_id, headline, article_id, published, feed, published, published, 1, language, 0, 0.0,
                      vector=vector, names=names, headline_vector=headline_vector, norm=norm)


def add_article(
    conn: sqlite3.Connection, story_id: int, article_id: int, *, feed: str, arrived: str, score: float | None
) -> None:
    conn.execute(
        "INSERT INTO story_articles(story_id, article_id, feed, joined_at, score) VALUES (?, ?, ?, ?, ?)",
        (story_id, article_id, feed, arrived, score),
    )


def add_source(
    conn: sqlite3.Connection, story_id: int, article_id: int, *, feed: str, arrived: str, touch: bool = True,
    new_story: bool = False,
) -> bool:
    """Record that ``feed`` carried ``article_id``; True when the feed is new to the story.

    ``touch``: a new outlet moves the story's ``updated`` to ``arrived`` (callers that rewrite the
    story row anyway pass False). ``new_story``: the story was just created (no outlet to check).
    """
    known = None if new_story else conn.execute(
        "SELECT 1 FROM story_sources WHERE story_id = ? AND feed = ? LIMIT 1", (story_id, feed)
    ).fetchone()
    conn.execute(
        "INSERT OR IGNORE INTO story_sources(story_id, feed, article_id, seen_at) VALUES (?, ?, ?, ?)",
        (story_id, feed, article_id, arrived),
    )
    if known is None and touch:
        conn.execute("UPDATE stories SET updated = max(updated, ?) WHERE id = ?", (arrived, story_id))
    return known is None


def update_story(
    conn: sqlite3.Connection,
    state: StoryState,
    *,
    arrived: str,
    cache: VectorCache | None = None,
    vector_changed: bool = True,
) -> None:
    """Write back a state the clusterer changed (headline, times, first outlet, centroid).

    ``vector_changed=False``: centroid, names and headline vector are as stored; only the other
    columns are written (the vector blob is the larger part of the work).
    """
    columns = ("headline = ?, headline_article_id = ?, first_seen = ?, first_feed = ?, first_published = ?, "
               "last_published = ?, article_count = ?, join_count = ?, join_score = ?, ")
    values = (state.headline, state.headline_article_id, state.first_seen, state.first_feed, state.first_published,
              state.last_published, state.article_count, state.join_count, state.join_score)
    if not vector_changed:
        conn.execute(f"UPDATE stories SET {columns}updated = max(updated, ?) WHERE id = ?",
                     (*values, arrived, state.id))
        return
    blob, decoded = _encode(state.vector, state.names, state.headline_vector)
    conn.execute(f"UPDATE stories SET {columns}vector = ?, updated = max(updated, ?) WHERE id = ?",
                 (*values, blob, arrived, state.id))
    state.vector, state.names, state.headline_vector, state.norm = decoded  # exactly what a reload reads
    if cache is not None:
        cache.remember(state.id, blob, decoded)


def post_terms(
    conn: sqlite3.Connection, story_id: int, terms: Iterable[str], *, last_published: str,
    stale_before: str | None = None,
) -> None:
    """Index the story under ``terms`` at ``last_published``; with ``stale_before``, only under the
    terms where the story has no entry at or after that time (a busy story does not rewrite its
    index with every article). Without it the caller knows that no such entry exists.

    The older entries stay (readers take each story's newest); finding them would mean reading the
    term's whole history. Retention's ``prune_postings`` removes them once past the window."""
    if stale_before is None:
        conn.executemany(
            "INSERT OR IGNORE INTO story_postings(term, last_published, story_id) VALUES (?, ?, ?)",
            ((term, last_published, story_id) for term in terms),
        )
        return
    conn.executemany(
        "INSERT INTO story_postings(term, last_published, story_id) SELECT ?1, ?2, ?3 WHERE NOT EXISTS "
        "(SELECT 1 FROM story_postings WHERE term = ?1 AND last_published >= ?4 AND story_id = ?3)",
        ((term, last_published, story_id, stale_before) for term in terms),
    )


def upgrade_postings(conn: sqlite3.Connection) -> bool:
    """Rebuild a ``story_postings`` table of the first layout (keyed by term and story, with a second
    index by time) in the current one (keyed by term and time); True if it did. Inside the caller's
    transaction."""
    columns = {row[1]: row[5] for row in conn.execute("PRAGMA table_info(story_postings)")}
    if not columns or columns.get("last_published"):
        return False  # no table yet, or already keyed by time
    conn.execute("ALTER TABLE story_postings RENAME TO story_postings_old")
    conn.execute("DROP INDEX IF EXISTS story_postings_recent")
    run_script(conn, SCHEMA)
    conn.execute(
        "INSERT INTO story_postings(term, last_published, story_id) "
        "SELECT term, last_published, story_id FROM story_postings_old ORDER BY term, last_published, story_id"
    )
    conn.execute("DROP TABLE story_postings_old")
    return True


def prune_postings(conn: sqlite3.Connection, *, before: datetime) -> int:
    """Drop index entries older than ``before`` (older than any window in use): those of stories
    with no article since, which can no longer be candidates, and the superseded entries of stories
    refreshed since. Returns how many were removed."""
    cursor = conn.execute("DELETE FROM story_postings WHERE last_published < ?", (to_iso(before),))
    forget_clusterer_state(conn)
    return cursor.rowcount


# --------------------------------------------------------------------------- queries


def story_of_article(conn: sqlite3.Connection, article_id: int) -> int | None:
    row = conn.execute("SELECT story_id FROM story_articles WHERE article_id = ?", (article_id,)).fetchone()
    return int(row[0]) if row else None


def get_story(conn: sqlite3.Connection, story_id: int) -> dict | None:
    """A story in the INTERFACE.md shape, sources in publication order."""
    row = conn.execute(
        "SELECT id, headline, first_seen, updated, first_feed, article_count FROM stories WHERE id = ?",
        (story_id,),
    ).fetchone()
    if row is None:
        return None
    return _story_dict(row, _sources(conn, [story_id]).get(story_id, []))


def list_stories(
    conn: sqlite3.Connection,
    *,
    since: datetime | None = None,
    rule: str | None = None,
    min_sources: int = 1,
    limit: int | None = None,
) -> list[dict]:
    """Stories updated since ``since`` (newest first), with at least ``min_sources`` outlets
    (see ``iter_stories``)."""
    return list(iter_stories(conn, since=since, rule=rule, min_sources=min_sources, limit=limit))


def iter_stories(
    conn: sqlite3.Connection,
    *,
    since: datetime | None = None,
    rule: str | None = None,
    min_sources: int = 1,
    limit: int | None = None,
    chunk: int = 500,
) -> Iterator[dict]:
    """Stories updated since ``since`` (newest first), with at least ``min_sources`` outlets, read
    ``chunk`` stories at a time (memory does not grow with the number of stories; read them inside
    one transaction, ``Store.snapshot``, for a consistent list).

    ``rule`` keeps the stories holding an article that matched that rule (table ``matches``);
    when that table does not exist yet no story matches.
    """
    where: list[str] = []
    params: list[object] = []
    if since is not None:
        where.append("s.updated >= ?")
        params.append(to_iso(since))
    if rule is not None:
        if not _table_exists(conn, "matches"):
            return
        # The rule's matches give the stories (one pass over them), rather than a look-up of every
        # match of the rule for each story in turn (which SQLite's plan did for a correlated EXISTS).
        where.append(
            "s.id IN (SELECT sa.story_id FROM matches m JOIN story_articles sa ON sa.article_id = m.article_id "
            "WHERE m.rule = ?)"
        )
        params.append(rule)
    where.append("(SELECT count(DISTINCT feed) FROM story_sources ss WHERE ss.story_id = s.id) >= ?")
    params.append(max(0, min_sources))
    sql = (
        "SELECT s.id, s.headline, s.first_seen, s.updated, s.first_feed, s.article_count "
        f"FROM stories s WHERE {' AND '.join(where)} ORDER BY s.updated DESC, s.id DESC"
    )
    if limit is not None:
        sql += " LIMIT ?"
        params.append(limit)
    batch: list[tuple] = []
    articles = 0
    for row in conn.execute(sql, params):
        batch.append(row)
        articles += row[5] or 0  # about the story's sources: a chunk of large stories is fewer stories
        if len(batch) >= chunk or articles >= chunk * 10:
            yield from _with_sources(conn, batch)
            batch, articles = [], 0
    yield from _with_sources(conn, batch)


def _with_sources(conn: sqlite3.Connection, rows: list[tuple]) -> Iterator[dict]:
    sources = _sources(conn, [row[0] for row in rows])
    for row in rows:
        yield _story_dict(row, sources.get(row[0], []))


def _story_dict(row: Sequence, sources: list[dict]) -> dict:
    story_id, headline, first_seen, updated, first_feed, article_count = row
    return {
        "id": story_id,
        "headline": headline,
        "first_seen": first_seen,
        "updated": updated,
        "first_feed": first_feed,
        "article_count": article_count,
        "source_count": len({source["feed"] for source in sources}),
        "sources": sources,
    }


def _sources(conn: sqlite3.Connection, story_ids: Sequence[int]) -> dict[int, list[dict]]:
    found: dict[int, list[dict]] = {}
    for chunk in _chunks(story_ids, 500):
        marks = ",".join("?" * len(chunk))
        rows = conn.execute(
            "SELECT ss.story_id, ss.article_id, a.url, ss.feed, a.title, a.published, ss.seen_at "
            "FROM story_sources ss JOIN articles a ON a.id = ss.article_id "
            f"WHERE ss.story_id IN ({marks}) ORDER BY a.published, ss.seen_at, ss.article_id, ss.feed",
            chunk,
        )
        for story_id, article_id, url, feed, title, published, seen_at in rows:
            found.setdefault(story_id, []).append(
                {"article_id": article_id, "url": url, "feed": feed, "title": title,
                 "published": published, "seen_at": seen_at}
            )
    return found


def _table_exists(conn: sqlite3.Connection, name: str) -> bool:
    row = conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)).fetchone()
    return row is not None


_HEADER = struct.Struct("<HHHf")


def encode_vector(vector: dict[str, float], names: set[str], headline: dict[str, float]) -> bytes:
    return _encode(vector, names, headline)[0]


def _encode(
    vector: dict[str, float], names: set[str], headline: dict[str, float]
) -> tuple[bytes, tuple[dict[str, float], set[str], dict[str, float], float]]:
    """The packed blob and exactly what ``decode_story_vector`` will read back from it.

    A story's centroid, its name terms and its headline's vector, packed for fast reading.

    Layout: three little-endian uint16 (centroid terms, of which names, headline terms) and the
    centroid's norm (float32), then float32 weights (centroid, names first, then headline), then
    the terms, UTF-8, one per line. JSON was the slowest part of scoring a candidate.
    """
    named = [term for term in vector if term in names]
    ordered = named + [term for term in vector if term not in names]
    name_count = len(named)
    weights = array("f", [vector[term] for term in ordered])
    norm = math.hypot(*weights)
    weights.extend(headline.values())
    count = len(ordered)
    header = _HEADER.pack(count, name_count, len(headline), norm)
    if count + len(headline) == 0:
        decoded: tuple[dict[str, float], set[str], dict[str, float], float] = ({}, set(), {}, 0.0)
    else:
        decoded = (dict(zip(ordered, weights[:count])), set(named), dict(zip(headline, weights[count:])),
                   _HEADER.unpack_from(header)[3])
    if sys.byteorder == "big":
        weights.byteswap()
    words = "\n".join([*ordered, *headline]).encode("utf-8")
    return header + weights.tobytes() + words, decoded


def decode_vector(blob: bytes) -> tuple[dict[str, float], set[str], dict[str, float]]:
    vector, names, headline, _ = decode_story_vector(blob)
    return vector, names, headline


def decode_story_vector(blob: bytes) -> tuple[dict[str, float], set[str], dict[str, float], float]:
    """(centroid, name terms, headline vector, centroid norm)."""
    if not blob:
        return {}, set(), {}, 0.0
    count, name_count, headline_count, norm = _HEADER.unpack_from(blob)
    total = count + headline_count
    if total == 0:
        return {}, set(), {}, 0.0
    end = _HEADER.size + 4 * total
    weights = array("f")
    weights.frombytes(blob[_HEADER.size:end])
    if sys.byteorder == "big":
        weights.byteswap()
    words = blob[end:].decode("utf-8").split("\n")
    vector = dict(zip(words[:count], weights[:count]))
    return vector, set(words[:name_count]), dict(zip(words[count:], weights[count:])), norm


def _chunks(items: Sequence, size: int) -> Iterable[list]:
    items = list(items)
    for start in range(0, len(items), size):
        yield items[start:start + size]
