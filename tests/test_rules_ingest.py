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
