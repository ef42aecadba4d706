"""``rules rematch``: stored articles re-evaluated after a rule changes, nothing fetched."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path

from monitor.rules import RuleSet
from monitor.search import article_doc
from monitor.store import Store
from monitor.store.matches import SCHEMA, articles_for_rule, iter_match_docs, matches_for_article, rematch

NOW = datetime(2026, 2, 17, 12, 0, tzinfo=timezone.utc)


def make_archive(path: Path, count: int) -> Store:
    store = Store.open(path)
    conn = store.conn
    conn.executescript(SCHEMA)
    rfi = conn.execute("INSERT INTO feeds (name, url, tags, created) VALUES ('RFI', 'u1', ?, 'x')",
                       (json.dumps(["afrique"]),)).lastrowid
    bbc = conn.execute("INSERT INTO feeds (name, url, tags, created) VALUES ('BBC', 'u2', ?, 'x')",
                       (json.dumps(["world", "afrique"]),)).lastrowid
    for i in range(count):
        title = ["Le Mali et la France", "Goïta à Bamako", "Somalia votes", "Niger : la junte"][i % 4]
        article = conn.execute(
            "INSERT INTO articles (key, title, summary, published, published_source, first_seen, language) "
            "VALUES (?, ?, ?, ?, 'published', ?, 'fr')",
            (f"k{i}", title, f"résumé {i}", f"2026-02-{1 + i % 17:02d}T08:00:00Z", "2026-02-17T08:00:00Z"),
        ).lastrowid
        conn.execute("INSERT INTO article_feeds (article_id, feed_id, first_seen) VALUES (?, ?, 'a')",
                     (article, rfi if i % 2 else bbc))
        if i % 3 == 0:
            conn.execute("INSERT INTO article_feeds (article_id, feed_id, first_seen) VALUES (?, ?, 'b')",
                         (article, rfi if i % 2 == 0 else bbc))
    return store


def test_iter_match_docs_reads_everything_in_batches(tmp_path: Path) -> None:
    store = make_archive(tmp_path / "a.db", 25)
    docs = list(iter_match_docs(store.conn, batch=4))
    assert [article_id for article_id, _ in docs] == list(range(1, 26))
    for article_id, doc in docs:
        assert doc == article_doc(store.conn, article_id)
    assert len(list(iter_match_docs(store.conn, since="2026-02-16T00:00:00Z"))) == 2


def test_rematch_replaces_the_matches_of_changed_rules_only(tmp_path: Path) -> None:
    store = make_archive(tmp_path / "a.db", 20)
    conn = store.conn
    first = rematch(conn, RuleSet.compile([("mali", "Mali"), ("afrique", "tag:afrique")]), now=NOW)
    assert (first.articles, first.before, first.after) == (20, 0, 25)
    assert len(articles_for_rule(conn, "mali")) == 5
    # the rule changes: Goïta's articles now count, the untouched rule keeps its matches
    second = rematch(conn, RuleSet.compile([("mali", "Mali OR Goita")]), now=NOW)
    assert (second.before, second.after) == (5, 10)
    assert sorted(second.new) == [(i, "mali") for i in range(2, 21, 4)]
    assert len(articles_for_rule(conn, "afrique")) == 20
    terms = matches_for_article(conn, 2)["mali"]
    assert terms == [{"term": "goita", "field": "title"}]
    again = rematch(conn, RuleSet.compile([("mali", "Mali OR Goita")]), now=NOW)
    assert again.new == [] and again.after == 10       # idempotent
    store.close()


def test_rematch_counts_per_rule_keeps_first_matched_at_and_drops_unlisted_rules(tmp_path: Path) -> None:
    store = make_archive(tmp_path / "a.db", 8)
    conn = store.conn
    rematch(conn, RuleSet.compile([("mali", "Mali"), ("afrique", "tag:afrique")]), now=NOW)
    later = datetime(2026, 2, 18, 12, 0, tzinfo=timezone.utc)
    result = rematch(conn, RuleSet.compile([("mali", "Mali OR Somalia")]), now=later, drop_other_rules=True)
    assert result.rules["mali"].matches == 4 and result.rules["mali"].added == 2
    assert result.rules["mali"].removed == 0
    assert result.dropped == {"afrique": 8}
    assert articles_for_rule(conn, "afrique") == []
    stamps = dict(conn.execute("SELECT article_id, matched_at FROM matches WHERE rule = 'mali'").fetchall())
    assert stamps[1] == "2026-02-17T12:00:00Z" and stamps[3] == "2026-02-18T12:00:00Z"
    store.close()


def test_rematch_since_leaves_older_matches_alone(tmp_path: Path) -> None:
    store = make_archive(tmp_path / "a.db", 20)
    conn = store.conn
    rematch(conn, RuleSet.compile([("mali", "Mali")]), now=NOW)
    assert len(articles_for_rule(conn, "mali")) == 5
    # articles 17 (2026-02-17) and 1 (2026-02-01) are "Mali"; only the window is re-evaluated
    result = rematch(conn, RuleSet.compile([("mali", "Somalia")]), now=NOW, since="2026-02-16T00:00:00Z")
    assert result.articles == 2 and result.rules["mali"].removed == 1
    assert 1 in articles_for_rule(conn, "mali") and 17 not in articles_for_rule(conn, "mali")
    store.close()


def test_poll_bulk_and_stored_docs_are_one_definition(tmp_path: Path) -> None:
    """The doc the poll path matches, the one the bulk path matches and the stored one agree."""
    from monitor.models import Article
    from monitor.pipeline import ingest_articles
    from monitor.store.bulk import BulkArticle, FeedLink, bulk_insert
    from monitor.store.matches import match_doc

    store = Store.open(tmp_path / "a.db")
    article = Article(key="url:https://www.rfi.fr/mali", url="https://www.rfi.fr/mali", guid=None,
                      title="Bamako", summary="Le Mali", content="", published=NOW, published_source="published",
                      undated=False, first_seen=NOW, language="fr", domain="rfi.fr")
    seen = ingest_articles(store, "RFI", [article], now=NOW, ruleset=RuleSet.compile([("m", "Mali")]))
    other = replace(article, key="url:https://bbc.co.uk/x", url="https://bbc.co.uk/x", domain="bbc.co.uk")
    bulk = bulk_insert(store, [BulkArticle(other, (FeedLink("BBC"), FeedLink("RFI")))], now=NOW,
                       ruleset=RuleSet.compile([("m", "Mali")]), keep_ids=True)
    for article_id, source in ((seen.article_ids[0], article), (bulk.article_ids[0], other)):
        stored = article_doc(store.conn, article_id)
        assert match_doc(store.conn, article_id) == stored
        assert (stored.title, stored.summary, stored.content) == (source.title, source.summary, source.content)
        assert stored.domain == source.domain and stored.language == "fr"
    assert article_doc(store.conn, bulk.article_ids[0]).feeds == ["BBC", "RFI"]
    assert articles_for_rule(store.conn, "m") == [seen.article_ids[0], bulk.article_ids[0]]
    store.close()


def test_a_new_article_is_matched_as_it_was_stored(tmp_path: Path) -> None:
    """The ingest path builds a just-inserted article's MatchDoc without reading it back; it must be
    the MatchDoc that reading it back gives (text, language, domain, feed name and tags)."""
    from monitor.models import Article
    from monitor.store.matches import feed_row_of, match_doc, new_article_doc

    store = make_archive(tmp_path / "a.db", 0)
    with store.transaction() as conn:
        feed_id = store.ensure_feed(conn, "RFI", "u1", now=NOW)
        article = Article(
            key="url:https://www.rfi.fr/fr/afrique/mali", url="https://www.rfi.fr/fr/afrique/mali", guid=None,
            title="Mali : la junte à Bamako", summary="Le colonel Goïta a reçu…", content="<texte>",
            published=NOW, published_source="published", undated=False, first_seen=NOW, language="fr",
            fingerprint="f1",
        )
        write = store.write_article(conn, feed_id, article, now=NOW)
        assert write.status == "new"
        assert new_article_doc(article, feed_row_of(conn, feed_id)) == match_doc(conn, write.article_id)
        assert match_doc(conn, write.article_id).tags == ["afrique"]
    store.close()
