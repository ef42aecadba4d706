"""Match ⇔ search, proved by property: the in-memory matcher accepts an article exactly
when ``search()`` (FTS5 over a real SQLite archive) returns it.

Queries are generated from the grammar; articles from a small vocabulary full of traps
(accented and plain spellings, upper case, œ and ligatures, apostrophes, hyphens, soft
hyphens, combining accents, Somalia/Nigeria near Mali/Niger) so that hits are common.
``hypothesis.event`` reports how many examples had hits (run pytest with
``--hypothesis-show-statistics``). A second test hands the same check a tokenizer that keeps
accents and expects hypothesis to find a counterexample: broken folding cannot pass.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pytest
from hypothesis import HealthCheck, event, find, given, settings
from hypothesis import strategies as st

from monitor.rules import MatchDoc, RuleSet, matches_query, parse_query
from monitor.rules.matcher import _DocView, holds
from monitor.search import search
from monitor.store import Store
from monitor.store.matches import SCHEMA as MATCHES_SCHEMA
from monitor.tokenize import tokenize, tokenize_with_offsets

FEEDS = {"Al Jazeera": ["africa"], "RFI": ["africa", "French"], "Le Monde": ["french", "europe"]}

DOC_WORDS = [
    "Mali", "MALI", "mali", "Somalia", "Malibu", "malien", "Maliens", "malienne",
    "Goïta", "Goita", "GOÏTA", "Goi\u0308ta", "coopération", "cooperation", "Coopération",
    "armée", "Armée", "armee", "l’armée", "l'armée", "d’Bamako", "Bamako", "junte", "Junte",
    "Niger", "Nigeria", "nigérien", "Niger-Benue", "Sahel", "SAHEL", "sahélien",
    "cœur", "coeur", "Œuvre", "ﬁnance", "finance", "soft\u00adpower", "soft", "power",
    "G5", "g5", "2026", "Burkina", "Faso", "Burkina-Faso", "France", "français", "française",
    "Paris", "Texas", "rugby", "Wagner", "AES", "é\u0301té", "ete", "été",
]
JOINERS = [" ", " ", " ", ", ", " — ", "’", "-", " « ", " » ", ". ", "\u00ad", " (", ") "]

QUERY_WORDS = [
    "Mali", "mali", "MALI", "Somalia", "malien", "Goïta", "goita", "cooperation", "Coopération",
    "armée", "armee", "l’armée", "Bamako", "junte", "Niger", "Nigeria", "nigérien", "Niger-Benue",
    "Sahel", "cœur", "coeur", "ﬁnance", "finance", "soft", "power", "G5", "2026", "Burkina",
    "Faso", "France", "Paris", "rugby", "Wagner", "été", "ete",
]
PREFIXES = ["mal*", "Mali*", "malien*", "goï*", "coop*", "nig*", "Niger*", "sah*", "fran*", "burk*", "l’arm*", "g*"]


def _text(parts: list[tuple[str, str]]) -> str:
    return "".join(word + joiner for word, joiner in parts).strip()


text_strategy = st.lists(st.tuples(st.sampled_from(DOC_WORDS), st.sampled_from(JOINERS)),
                         min_size=0, max_size=7).map(_text)


@st.composite
def docs_strategy(draw: st.DrawFn) -> MatchDoc:
    feeds = draw(st.lists(st.sampled_from(sorted(FEEDS)), max_size=2, unique=True))
    tags: list[str] = []
    for name in feeds:
        tags.extend(t for t in FEEDS[name] if t not in tags)
    return MatchDoc(
        title=draw(text_strategy), summary=draw(text_strategy), content=draw(text_strategy),
        feeds=feeds, language=draw(st.sampled_from([None, "fr", "fr-FR", "FR-ca", "en", "fra"])),
        tags=tags, domain=draw(st.sampled_from([None, "lemonde.fr", "afrique.lemonde.fr", "rfi.fr",
                                                "notlemonde.fr", "LeMonde.FR"])),
    )


word = st.sampled_from(QUERY_WORDS)
phrase = st.lists(word, min_size=2, max_size=3).map(lambda ws: '"' + " ".join(ws) + '"')
prefix = st.sampled_from(PREFIXES)
near = st.tuples(word, word, st.integers(0, 3)).map(lambda t: f"NEAR({t[0]} {t[1]}, {t[2]})")
meta = st.sampled_from([
    'feed:"Al Jazeera"', "feed:rfi", "feed:LE", "lang:fr", "lang:FR", "lang:en", "tag:africa",
    "tag:french", "domain:lemonde.fr", "domain:www.lemonde.fr", "domain:monde.fr",
])
plain_leaf = st.one_of(word, word, phrase, prefix, near)
scoped = st.tuples(st.sampled_from(["title:", "summary:", "content:", "text:"]), plain_leaf).map("".join)
leaf = st.one_of(plain_leaf, plain_leaf, scoped, meta)


def _combine(children: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    pair = st.tuples(children, children)
    return st.one_of(
        pair.map(lambda p: f"({p[0]} OR {p[1]})"),
        pair.map(lambda p: f"({p[0]} AND {p[1]})"),
        pair.map(lambda p: f"{p[0]} {p[1]}"),
        pair.map(lambda p: f"({p[0]}) NOT ({p[1]})"),
        children.map(lambda c: f"NOT ({c})"),
        word.map(lambda w: f"-{w}"),
        st.tuples(st.sampled_from(["title:", "summary:"]), pair).map(lambda t: f"{t[0]}({t[1][0]} OR {t[1][1]})"),
    )


query_strategy = st.recursive(leaf, _combine, max_leaves=5)
example_strategy = st.tuples(query_strategy, st.lists(docs_strategy(), min_size=1, max_size=4))


@dataclass
class Archive:
    conn: sqlite3.Connection
    feed_ids: dict[str, int]


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Archive:
    path: Path = tmp_path_factory.mktemp("property") / "archive.db"
    store = Store.open(path)
    conn = store.conn
    conn.executescript(MATCHES_SCHEMA)
    ids = {}
    for name, tags in FEEDS.items():
        cursor = conn.execute(
            "INSERT INTO feeds (name, url, tags, created) VALUES (?, ?, ?, '2026-01-01T00:00:00Z')",
            (name, f"https://example.org/{len(ids)}", json.dumps(tags)),
        )
        ids[name] = cursor.lastrowid
    yield Archive(conn, ids)
    store.close()


def _insert(archive: Archive, docs: list[MatchDoc]) -> list[int]:
    ids = []
    for number, doc in enumerate(docs):
        cursor = archive.conn.execute(
            "INSERT INTO articles (key, title, summary, content, published, published_source, first_seen, "
            "language, domain) VALUES (?, ?, ?, ?, '2026-02-17T08:00:00Z', 'published', "
            "'2026-02-17T08:00:00Z', ?, ?)",
            (f"k{number}", doc.title, doc.summary, doc.content, doc.language, doc.domain),
        )
        ids.append(cursor.lastrowid)
        for name in doc.feeds:
            archive.conn.execute(
                "INSERT INTO article_feeds (article_id, feed_id, first_seen) VALUES (?, ?, '2026-02-17T08:00:00Z')",
                (cursor.lastrowid, archive.feed_ids[name]),
            )
    return ids


def agree(archive: Archive, query_text: str, docs: list[MatchDoc],
          tokenizer: Callable[[str], list[str]] = tokenize) -> tuple[bool, int]:
    """(matcher and search() agree on every doc, number of docs the matcher accepted)."""
    query = parse_query(query_text, tokenizer=tokenizer)
    rules = RuleSet.compile([("q", query)], tokenizer=tokenizer)
    archive.conn.execute("BEGIN")
    try:
        ids = _insert(archive, docs)
        found = {hit.id for hit in search(archive.conn, query, limit=None)}
    finally:
        archive.conn.execute("ROLLBACK")
    expected = {article_id for article_id, doc in zip(ids, docs) if rules.match(doc)}
    return expected == found, len(expected)


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(example_strategy)
def test_matcher_accepts_exactly_what_search_returns(archive: Archive, example: tuple[str, list[MatchDoc]]) -> None:
    query_text, docs = example
    same, hits = agree(archive, query_text, docs)
    event("hit" if hits else "no hit")
    event(f"hits per example: {min(hits, 3)}{'+' if hits >= 3 else ''}")
    assert same, f"matcher and search() disagree on {query_text!r}"


def test_typographic_quotes_and_dashes_agree_with_search(archive: Archive) -> None:
    """« Burkina Faso » is the phrase and « Mali –football » excludes football, in the matcher and in
    search() alike (the queries French keyboards and autocorrect produce)."""
    docs = [MatchDoc(title="Le Burkina Faso et le Mali signent un accord"),
            MatchDoc(title="Burkina : le Faso face aux attaques"),
            MatchDoc(title="Mali : la finale de football reportée"),
            MatchDoc(title="Mali : la junte reçoit une délégation")]
    expected = {"« Burkina Faso »": 1, "“Burkina Faso”": 1, "Burkina Faso": 2, "Mali –football": 2,
                "Mali −football": 2, "Mali football": 1, "Mali": 3}
    for query_text, hits in expected.items():
        same, found = agree(archive, query_text, docs)
        assert same and found == hits, (query_text, found)


def accents_kept(text: str) -> list[str]:
    """A deliberately broken tokenizer: same cuts, lower case, but accents not removed."""
    return [text[start:end].lower() for _, start, end in tokenize_with_offsets(text)]


@pytest.mark.filterwarnings("ignore:Generating overly large repr")
def test_broken_accent_folding_is_caught(archive: Archive) -> None:
    counterexample = find(
        example_strategy,
        lambda example: not agree(archive, example[0], example[1], tokenizer=accents_kept)[0],
        settings=settings(max_examples=2000, deadline=None, database=None,
                          suppress_health_check=list(HealthCheck)),
    )
    query_text, docs = counterexample
    assert agree(archive, query_text, docs)[0], "the real tokenizer must agree where the broken one fails"


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(query_strategy, min_size=1, max_size=8), st.lists(docs_strategy(), min_size=1, max_size=3))
def test_trigger_index_never_skips_a_rule(queries: list[str], docs: list[MatchDoc]) -> None:
    """All rules in one pass (trigger index) = each rule evaluated on its own."""
    rules = [(f"r{i}", text) for i, text in enumerate(queries)]
    ruleset = RuleSet.compile(rules)
    for doc in docs:
        alone = [name for name, text in rules if matches_query(text, doc)]
        view = _DocView(doc, tokenize)
        assert alone == [name for name, text in rules if holds(parse_query(text).root, view)]
        assert [m.rule for m in ruleset.match(doc)] == alone
        assert ruleset.matching_rules(doc) == alone
