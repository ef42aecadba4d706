"""Rules on ingest agree with search: the matches recorded (and alerted) while feeds are polled are exactly
the articles a search for the rule's query finds in the archive afterwards."""

from __future__ import annotations

from pathlib import Path

from monitor.search import search
from monitor.store.matches import articles_for_rule
from tests.test_alerts_support import World, config_text, later, make_article

RULES = '[[rules]]\nname = "mali"\nquery = "Mali"\n'


def _matched_and_found(world: World) -> tuple[list[int], list[int]]:
    with world.store.reading() as conn:
        return articles_for_rule(conn, "mali"), sorted(hit.id for hit in search(conn, "Mali", limit=None))


def test_another_outlets_version_of_a_stored_article_is_matched_as_stored(tmp_path: Path) -> None:
    """One URL in two feeds: the archive keeps the first feed's text, so the rules judge that text; the
    second outlet's summary (never stored) must not alert on an article that search cannot find."""
    world = World(tmp_path, config_text(rules=RULES))
    world.ingest("A", make_article("story-1", "Talks in Paris", summary="Ministers met on Tuesday."))
    world.ingest("B", make_article("story-1", "Talks in Paris", summary="Ministers met on Tuesday to discuss Mali."),
                 now=later(minutes=10))
    matched, found = _matched_and_found(world)
    assert (matched, found) == ([], [])
    assert world.alerts() == []
    # the feed the article came from rewrites it: now the stored text says Mali, and both agree
    world.ingest("A", make_article("story-1", "Talks in Paris", summary="Ministers met on Tuesday about Mali."),
                 now=later(minutes=20))
    matched, found = _matched_and_found(world)
    assert matched == found and len(found) == 1
    assert len(world.alerts()) == 1
    world.close()


def test_a_revision_that_no_longer_matches_takes_the_match_back(tmp_path: Path) -> None:
    """The feed rewrites an article so that it no longer says Mali: its match goes, as `rules rematch`
    would take it back, so `search --rule mali` and a search for the query still agree."""
    rules = RULES + '[[rules]]\nname = "paris"\nquery = "Paris"\n'
    world = World(tmp_path, config_text(rules=rules))
    world.ingest("A", make_article("story-1", "Talks in Paris on Mali", summary="Ministers met on Tuesday."))
    assert _matched_and_found(world) == ([1], [1])
    world.ingest("A", make_article("story-1", "Talks in Paris on Niger", summary="Ministers met on Tuesday."),
                 now=later(minutes=10))
    assert _matched_and_found(world) == ([], [])
    with world.store.reading() as conn:
        assert articles_for_rule(conn, "paris") == [1]        # the rule it still matches keeps its match
    world.close()
