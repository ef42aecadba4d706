"""Library search over a real archive file: semantics, filters, ranking, snippets, stories,
rule matches, ``rules test`` and highlighting; no query ever surfaces a SQLite error."""

from __future__ import annotations

import json
import sqlite3
from datetime import datetime, timezone
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from monitor.errors import QueryError, StoreError, UsageError
from monitor.rules import MatchedTerm, RuleMatch, RuleSet, parse_query
from monitor.search import article_doc, count_hits, highlight, resolve_rule_or_query, search, test_rule
from monitor.store import Store
from monitor.store import stories as story_store
from monitor.store.matches import (
    SCHEMA as MATCHES_SCHEMA,
    articles_for_rule,
    delete_matches_for_rule,
    matches_for_article,
    record_matches,
)

NOW = datetime(2026, 2, 17, 12, 0, tzinfo=timezone.utc)

FEEDS = [("RFI Afrique", ["afrique", "france"]), ("Al Jazeera", ["world", "africa"]), ("Le Monde", ["france"])]

ARTICLES = [
    # key, title, summary, content, published, language, domain, feeds
    ("a1", "Le Mali exige le départ de l’ambassadeur de France",
     "La junte au pouvoir à Bamako a donné 72 heures au diplomate français.", "",
     "2026-02-17T08:00:00Z", "fr", "rfi.fr", ["RFI Afrique"]),
    ("a2", "Somalia: al-Shabaab attack near Mogadishu", "Somali forces repelled the assault.", "",
     "2026-02-16T08:00:00Z", "en", "aljazeera.com", ["Al Jazeera"]),
    ("a3", "Malibu wildfire forces evacuations", "Firefighters battled the flames overnight.", "",
     "2026-02-15T08:00:00Z", "en", "aljazeera.com", ["Al Jazeera"]),
    ("a4", "Coopération militaire : le président Goïta reçoit une délégation russe",
     "Les discussions ont porté sur la coopération minière.", "",
     "2026-02-14T08:00:00Z", "fr-FR", "afrique.lemonde.fr", ["Le Monde", "RFI Afrique"]),
    ("a5", "Sahel security summit opens", "Ministers met in Dakar.",
     "Delegates from Mali and Niger did not attend the talks in Dakar.",
     "2026-02-13T08:00:00Z", "en", "aljazeera.com", ["Al Jazeera"]),
    ("a6", "Rugby : le XV de France s’impose", "Les Bleus ont dominé la mêlée.", "",
     "2026-01-10T08:00:00Z", "fr", "lemonde.fr", ["Le Monde"]),
]


@pytest.fixture
def archive(tmp_path: Path) -> Store:
    store = Store.open(tmp_path / "archive.db")
    conn = store.conn
    conn.executescript(MATCHES_SCHEMA)
    story_store.apply_schema(conn)
    feed_ids = {}
    for name, tags in FEEDS:
        feed_ids[name] = conn.execute(
            "INSERT INTO feeds (name, url, tags, created) VALUES (?, ?, ?, ?)",
            (name, f"https://example.org/{name}", json.dumps(tags), "2026-01-01T00:00:00Z"),
        ).lastrowid
    for key, title, summary, content, published, language, domain, feeds in ARTICLES:
        article_id = conn.execute(
            "INSERT INTO articles (key, url, title, summary, content, published, published_source, first_seen, "
            "language, domain) VALUES (?, ?, ?, ?, ?, ?, 'published', ?, ?, ?)",
            (key, f"https://{domain}/{key}", title, summary, content, published, published, language, domain),
        ).lastrowid
        for offset, name in enumerate(feeds):
            conn.execute("INSERT INTO article_feeds (article_id, feed_id, first_seen) VALUES (?, ?, ?)",
                         (article_id, feed_ids[name], f"2026-02-17T0{offset}:00:00Z"))
    yield store
    store.close()


def keys(store: Store, hits) -> list[str]:
    ids = [hit.id for hit in hits]
    rows = dict(store.conn.execute("SELECT id, key FROM articles").fetchall())
    return [rows[i] for i in ids]


def test_accents_and_whole_words(archive: Store) -> None:
    assert keys(archive, search(archive.conn, "cooperation")) == ["a4"]
    assert keys(archive, search(archive.conn, "GOITA")) == ["a4"]
    assert keys(archive, search(archive.conn, "Mali", sort="date")) == ["a1", "a5"]   # not Somalia, not Malibu
    assert keys(archive, search(archive.conn, "title:Mali")) == ["a1"]
    assert keys(archive, search(archive.conn, "armée")) == []
    assert keys(archive, search(archive.conn, "ambassadeur de France")) == ["a1"]
    assert keys(archive, search(archive.conn, "l’ambassadeur")) == ["a1"]


def test_only_a_negation_means_everything_except(archive: Store) -> None:
    found = keys(archive, search(archive.conn, "NOT Mali", sort="date", limit=None))
    assert found == ["a2", "a3", "a4", "a6"]


def test_meta_fields(archive: Store) -> None:
    conn = archive.conn
    assert keys(archive, search(conn, 'feed:"rfi afrique"', sort="date")) == ["a1", "a4"]
    assert keys(archive, search(conn, "lang:fr", sort="date")) == ["a1", "a4", "a6"]      # fr-FR too
    assert keys(archive, search(conn, "tag:afrique", sort="date")) == ["a1", "a4"]
    assert keys(archive, search(conn, "domain:lemonde.fr", sort="date")) == ["a4", "a6"]  # subdomain too
    assert keys(archive, search(conn, "domain:monde.fr", sort="date")) == []
    assert keys(archive, search(conn, "France -lang:fr", sort="date")) == []
    assert keys(archive, search(conn, "France OR tag:world", sort="date")) == ["a1", "a2", "a3", "a5", "a6"]


def test_filters(archive: Store) -> None:
    conn = archive.conn
    assert keys(archive, search(conn, "NOT zzz", since="2026-02-15T00:00:00Z", sort="date")) == ["a1", "a2", "a3"]
    until = datetime(2026, 2, 15, 8, tzinfo=timezone.utc)
    assert keys(archive, search(conn, "NOT zzz", until=until, sort="date")) == ["a4", "a5", "a6"]
    assert keys(archive, search(conn, "NOT zzz", feeds=["AL JAZEERA"], sort="date")) == ["a2", "a3", "a5"]
    assert keys(archive, search(conn, "NOT zzz", languages=["fr"], sort="date")) == ["a1", "a4", "a6"]
    assert keys(archive, search(conn, "NOT zzz", sort="date", limit=2, offset=1)) == ["a2", "a3"]
    assert count_hits(conn, "NOT zzz", languages=["en"]) == 3


def test_relevance_puts_title_hits_first(archive: Store) -> None:
    hits = search(archive.conn, "Mali")
    assert keys(archive, hits) == ["a1", "a5"]
    assert hits[0].score is not None and hits[0].score < hits[1].score
    with pytest.raises(UsageError):
        search(archive.conn, "Mali", sort="newest")


def test_hit_fields_and_snippet(archive: Store) -> None:
    (hit,) = search(archive.conn, "Goïta OR cooperation")
    assert hit.feed == "Le Monde"              # the feed it was first seen in
    assert hit.url == "https://afrique.lemonde.fr/a4"
    assert hit.published == "2026-02-14T08:00:00Z"
    assert hit.snippet == "Les discussions ont porté sur la [coopération] minière."
    assert hit.story_id is None and hit.rules == []
    assert set(hit.to_dict()) == {"id", "title", "url", "feed", "published", "story_id", "snippet", "rules"}
    (content_hit,) = search(archive.conn, "Niger")
    assert content_hit.snippet == "Delegates from Mali and [Niger] did not attend the talks in Dakar."


def test_rule_and_story_filters(archive: Store) -> None:
    conn = archive.conn
    ids = {key: i for i, key in conn.execute("SELECT id, key FROM articles")}
    record_matches(conn, ids["a1"], [RuleMatch("france-mali", [MatchedTerm("mali", "title")])], NOW)
    record_matches(conn, ids["a1"], [RuleMatch("sahel", [MatchedTerm("bamako", "summary")])], NOW)
    story = conn.execute(
        "INSERT INTO stories (headline, first_seen, updated, first_published, last_published) "
        "VALUES ('x', ?, ?, ?, ?)", ("2026-02-17T08:00:00Z",) * 4).lastrowid
    conn.execute("INSERT INTO story_articles (story_id, article_id, joined_at) VALUES (?, ?, ?)",
                 (story, ids["a1"], "2026-02-17T08:00:00Z"))
    (hit,) = search(conn, "Mali", rule="sahel")
    assert hit.rules == ["france-mali", "sahel"] and hit.story_id == story
    assert keys(archive, search(conn, "NOT zzz", story_id=story)) == ["a1"]
    assert search(conn, "Mali", rule="nothing") == []
    assert matches_for_article(conn, ids["a1"])["sahel"] == [{"term": "bamako", "field": "summary"}]
    assert articles_for_rule(conn, "france-mali") == [ids["a1"]]
    assert delete_matches_for_rule(conn, "sahel") == 1
    assert search(conn, "Mali", rule="sahel") == []
    conn.execute("DELETE FROM articles WHERE id = ?", (ids["a1"],))
    assert articles_for_rule(conn, "france-mali") == []     # matches go with their article


WORDS = ("Mali", "Bamako", "Niger", "junta", "talks", "France", "Sahel", "army", "election", "Dakar")


def add_story_articles(conn: sqlite3.Connection, first: int, count: int, *, per_story: int) -> None:
    """``count`` articles numbered from ``first`` made of ``WORDS`` in turn, ``per_story`` to a story."""
    for number in range(first, first + count):
        words = [WORDS[(number * step) % len(WORDS)] for step in (1, 3, 7)]
        published = f"2026-02-{1 + number % 16:02d}T{number % 24:02d}:00:00Z"
        article_id = conn.execute(
            "INSERT INTO articles (key, url, title, summary, content, published, published_source, first_seen) "
            "VALUES (?, ?, ?, ?, ?, ?, 'published', ?)",
            (f"s{number}", f"https://example.org/s{number}", " ".join(words), " ".join(reversed(words)) + " news",
             "" if number % 3 else "Mali " * (number % 5), published, published),
        ).lastrowid
        story = number // per_story + 1
        conn.execute("INSERT OR IGNORE INTO stories (id, headline, first_seen, updated, first_published, "
                     "last_published) VALUES (?, 'x', ?, ?, ?, ?)", (story, *(published,) * 4))
        conn.execute("INSERT INTO story_articles (story_id, article_id, joined_at) VALUES (?, ?, ?)",
                     (story, article_id, published))


STORY_QUERIES = ["Mali", "Mali OR Niger", "Mali AND NOT junta", '"Bamako Niger"', "title:Sahel", "Ma*",
                 "NEAR(Mali talks, 3)", "NOT zzz", "feed:nothing OR lang:none", "Dakar -army"]


@pytest.mark.parametrize("sort", ["relevance", "date"])
def test_story_filter_gives_the_storys_hits_in_search_order(archive: Store, sort: str) -> None:
    """``story_id`` keeps exactly the hits of ``search`` that belong to the story, in the same order and with
    the same fields (snippets, feeds, rules), whatever the query; counts agree."""
    conn = archive.conn
    add_story_articles(conn, 0, 400, per_story=8)
    for query in STORY_QUERIES:
        every = search(conn, query, sort=sort, limit=None, now=NOW)
        for story in (1, 17, 50, 999):
            expected = [hit.to_dict() for hit in every if hit.story_id == story]
            got = search(conn, query, story_id=story, sort=sort, limit=None, now=NOW)
            assert [hit.to_dict() for hit in got] == expected, (query, story)
            assert count_hits(conn, query, story_id=story) == len(expected)
            assert [hit.to_dict() for hit in search(conn, query, story_id=story, sort=sort, limit=2, offset=1,
                                                    now=NOW)] == expected[1:3]


def test_story_filter_reads_only_the_storys_rows(archive: Store) -> None:
    """A search of one story reads that story's articles, not every hit of the query and then the story's
    among them: the work SQLite does (its virtual machine steps) does not grow with the query's other hits."""
    conn = archive.conn
    add_story_articles(conn, 0, 200, per_story=8)

    def steps(query: str) -> int:
        counted = [0]

        def count() -> int:
            counted[0] += 1
            return 0

        conn.set_progress_handler(count, 100)
        try:
            hits = search(conn, query, story_id=3, limit=None, now=NOW)
        finally:
            conn.set_progress_handler(None, 0)
        assert hits and {hit.story_id for hit in hits} == {3}
        return counted[0]

    small = {query: steps(query) for query in ("Mali", "Mali OR Niger", "Sahel -army")}
    add_story_articles(conn, 200, 4000, per_story=8)        # ten times as many hits, none of them in story 3
    for query, before in small.items():
        assert steps(query) < before * 2, query


def test_archive_without_stories_or_matches(archive: Store) -> None:
    conn = archive.conn
    conn.executescript("DROP TABLE story_articles; DROP TABLE matches;")
    hits = search(conn, "Mali")
    assert [h.story_id for h in hits] == [None, None] and [h.rules for h in hits] == [[], []]
    assert search(conn, "Mali", story_id=1) == [] and search(conn, "Mali", rule="sahel") == []


def test_read_only_archive(archive: Store, tmp_path: Path) -> None:
    archive.close()
    readonly = Store.open(tmp_path / "archive.db", readonly=True)
    try:
        assert keys(readonly, search(readonly.conn, "cooperation")) == ["a4"]
    finally:
        readonly.close()


def test_rules_test_counts_and_explains(archive: Store) -> None:
    rules = {"france-mali": "(France OR françai*) AND (Mali OR Bamako)"}
    name, query = resolve_rule_or_query("france-mali", rules)
    assert name == "france-mali"
    total, hits = test_rule(archive.conn, query, since="2026-01-01", mark=("<", ">"))
    assert total == 1
    (hit,) = hits
    assert hit.title_marked == "Le <Mali> exige le départ de l’ambassadeur de <France>"
    assert {(t.term, t.field) for t in hit.terms} == {
        ("france", "title"), ("mali", "title"), ("francai*", "summary"), ("bamako", "summary")}
    assert hit.to_dict()["matched"]
    assert resolve_rule_or_query("Goïta", rules)[0] is None
    total, hits = test_rule(archive.conn, "Mali", since="2026-02-16")
    assert total == 1 and len(hits) == 1


def test_article_doc_feeds_and_tags(archive: Store) -> None:
    (a4,) = archive.conn.execute("SELECT id FROM articles WHERE key = 'a4'").fetchone()
    doc = article_doc(archive.conn, a4)
    assert doc.feeds == ["Le Monde", "RFI Afrique"] and doc.tags == ["france", "afrique"]
    ruleset = RuleSet.compile([("fr", "lang:fr tag:afrique Goita")])
    assert [m.rule for m in ruleset.match(doc)] == ["fr"]


def test_highlight() -> None:
    text = "Goïta, Somalia, l’armée malienne et les Maliens ; Burkina Faso"
    assert highlight(text, "Goita OR Mali OR malien* OR \"Burkina Faso\" OR armée") == \
        "[Goïta], Somalia, l’[armée] [malienne] et les [Maliens] ; [Burkina Faso]"
    assert highlight(text, "NOT Goïta") == text
    assert highlight("Mali in title", "title:Mali", field="summary") == "Mali in title"
    assert highlight("Mali in title", "title:Mali", field="title", mark=("**", "**")) == "**Mali** in title"


SYNTAX = st.lists(st.sampled_from(list('ab ()"*-:,01’é') + [" AND ", " OR ", " NOT ", "NEAR(", "title:", "feed:"]),
                  max_size=16).map("".join)


@pytest.fixture(scope="module")
def fuzz_store(tmp_path_factory: pytest.TempPathFactory) -> Store:
    store = Store.open(tmp_path_factory.mktemp("fuzz") / "archive.db")
    store.conn.executescript(MATCHES_SCHEMA)
    store.conn.execute(
        "INSERT INTO articles (key, title, summary, content, published, published_source, first_seen) "
        "VALUES ('k', 'a b', 'b a', '', '2026-02-17T08:00:00Z', 'published', '2026-02-17T08:00:00Z')")
    yield store
    store.close()


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(SYNTAX)
def test_any_text_is_a_result_or_a_query_error(fuzz_store: Store, text: str) -> None:
    """User text never reaches SQLite unparsed: no query can produce a SQLite error."""
    try:
        query = parse_query(text)
    except QueryError as exc:
        assert 0 <= exc.position <= len(text)
        return
    try:
        search(fuzz_store.conn, query, limit=5)
        search(fuzz_store.conn, query, sort="date", limit=5)
    except StoreError as exc:  # pragma: no cover - the failure we are looking for
        pytest.fail(f"{text!r} reached SQLite: {exc}")


def test_sqlite_errors_become_store_errors(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "empty.db")
    with pytest.raises(StoreError):
        search(conn, "Mali")
