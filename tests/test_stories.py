"""Story clustering: exact duplicates, rewrites, the two-similar-events trap, window, revisions, queries."""

from __future__ import annotations

import hashlib
import sqlite3
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from monitor.models import Article
from monitor.store import Store
from monitor.store.schema import SCHEMA_VERSION
from monitor.store import stories as story_store
from monitor.stories import StoryAssignment, StoryClusterer, StoryMemory, Tuning, extract_features, fold, stem
from monitor.timeutil import to_iso

T0 = datetime(2026, 2, 17, 8, 0, tzinfo=timezone.utc)

# Hand-written background news so that document frequencies are not all equal.
BACKGROUND = [
    ("Central bank holds interest rates steady", "The central bank kept its main rate unchanged on Tuesday, "
     "citing slowing inflation and a weaker labour market."),
    ("Storm brings heavy snow to the north", "Forecasters warned of travel disruption as the storm moved "
     "across the region, with schools closed in several towns."),
    ("Football club sacks manager after losing run", "The club said the manager had left by mutual consent "
     "after six defeats in a row left the team near the relegation zone."),
    ("Tech company unveils new phone", "The company showed a thinner phone with a faster chip and a longer "
     "battery life at its annual launch event."),
    ("Parliament debates budget bill", "Lawmakers argued over spending cuts and tax changes as the budget "
     "bill reached its second reading."),
    ("Wildfire forces evacuations", "Firefighters battled a wildfire that forced hundreds of residents to "
     "leave their homes as strong winds fanned the flames."),
]

# Same event, three outlets' rewrites.
QUAKE = [
    ("Magnitude 6.4 earthquake strikes off Vanuatu coast",
     "A magnitude 6.4 earthquake struck off the coast of Vanuatu near Port Vila on Tuesday, the US "
     "Geological Survey said. No tsunami warning was issued and there were no immediate reports of damage."),
    ("Strong quake shakes Vanuatu, no tsunami threat",
     "A strong 6.4 magnitude earthquake shook Vanuatu on Tuesday, centred about 30 km west of Port Vila, "
     "according to the US Geological Survey. Officials said there was no tsunami threat."),
    ("Vanuatu: 6.4 earthquake felt in Port Vila",
     "Residents of Port Vila felt strong shaking when a 6.4 magnitude earthquake hit Vanuatu on Tuesday. "
     "The US Geological Survey put the depth at 10 km; no tsunami warning followed."),
]

# Two similar-but-different events: same team, same kind of arrest, different players and dates.
ARREST_A = [
    ("Harbour City Sharks striker Dario Velasquez arrested for drink driving",
     "Police arrested Harbour City Sharks striker Dario Velasquez on suspicion of drink driving early on "
     "Sunday, March 3, after his car was stopped on the coastal road. Velasquez, 27, was released on bail."),
    ("Sharks' Velasquez held on drink-driving charge",
     "Dario Velasquez, the Harbour City Sharks striker, was held by police on Sunday, March 3, on suspicion "
     "of drink driving. The 27-year-old was later released on bail, the club said."),
]
ARREST_B = [
    ("Harbour City Sharks goalkeeper Tomas Oyelaran arrested for drink driving",
     "Harbour City Sharks goalkeeper Tomas Oyelaran was arrested on suspicion of drink driving on Friday, "
     "November 22, the second such arrest at the club this season. Oyelaran, 31, was stopped near the stadium."),
    ("Sharks keeper Oyelaran held on drink-driving charge",
     "Police held Tomas Oyelaran, the Harbour City Sharks goalkeeper, on Friday, November 22, on suspicion "
     "of drink driving. The 31-year-old keeper was stopped near the stadium, the club confirmed."),
]


def fingerprint(title: str, summary: str) -> str:
    return hashlib.sha256(" ".join(f"{title} {summary}".lower().split()).encode()).hexdigest()[:32]


def make_article(title: str, summary: str, *, url: str, published: datetime, key: str | None = None,
                 language: str = "en") -> Article:
    return Article(
        key=key or f"url:{url}", url=url, guid=None, title=title, summary=summary, content="",
        published=published, published_source="published", undated=False, first_seen=published,
        language=language, fingerprint=fingerprint(title, summary),
    )


@pytest.fixture
def store(tmp_path: Path) -> Store:
    opened = Store.open(tmp_path / "archive.db")
    with opened.transaction() as conn:
        story_store.apply_schema(conn)
    yield opened
    opened.close()


class Ingest:
    """Writes an article row the way the archive expects, then assigns it, in one transaction."""

    def __init__(self, store: Store, clusterer: StoryClusterer) -> None:
        self.store = store
        self.clusterer = clusterer
        self.urls = 0

    def __call__(self, article: Article, feed: str) -> tuple[int, StoryAssignment]:
        with self.store.transaction() as conn:
            feed_id = self.store.ensure_feed(conn, feed, f"https://{feed}.example/rss", now=article.first_seen)
            write = self.store.write_article(conn, feed_id, article, now=article.first_seen)
            return write.article_id, self.clusterer.assign(conn, write.article_id, article, feed)

    def new(self, title: str, summary: str, feed: str, published: datetime, **kwargs: object) -> tuple[int, StoryAssignment]:
        self.urls += 1
        url = f"https://{feed}.example/news/{self.urls}"
        return self(make_article(title, summary, url=url, published=published, **kwargs), feed)


@pytest.fixture
def ingest(store: Store) -> Ingest:
    run = Ingest(store, StoryClusterer(window=timedelta(days=7)))
    for index, (title, summary) in enumerate(BACKGROUND):
        run.new(title, summary, f"background{index}", T0 - timedelta(days=1, hours=index))
    return run


def test_rewrites_of_one_event_join_one_story(ingest: Ingest) -> None:
    results = [ingest.new(title, summary, f"outlet{n}", T0 + timedelta(minutes=20 * n))
               for n, (title, summary) in enumerate(QUAKE)]
    first = results[0][1]
    assert first.created and not first.joined and first.source_added
    for _, assignment in results[1:]:
        assert assignment.story_id == first.story_id
        assert assignment.joined and not assignment.created and assignment.source_added


def test_two_similar_events_stay_apart(ingest: Ingest) -> None:
    stories_a = {ingest.new(t, s, f"a{n}", T0 + timedelta(hours=n))[1].story_id for n, (t, s) in enumerate(ARREST_A)}
    stories_b = {ingest.new(t, s, f"b{n}", T0 + timedelta(hours=3 + n))[1].story_id
                 for n, (t, s) in enumerate(ARREST_B)}
    assert len(stories_a) == 1
    assert len(stories_b) == 1
    assert stories_a.isdisjoint(stories_b)


def test_identical_text_under_another_url_joins(ingest: Ingest) -> None:
    title = "Council approves new tram line"
    summary = "The city council voted 31 to 9 to approve the tram line linking the station and the harbour."
    _, first = ingest.new(title, summary, "wire", T0)
    _, copy = ingest.new(title, summary, "aggregator", T0 + timedelta(minutes=5))
    assert copy.story_id == first.story_id
    assert copy.joined and copy.score == 1.0 and copy.source_added


def test_a_copy_extends_the_story_but_leaves_its_centroid(ingest: Ingest, store: Store) -> None:
    """An exact copy (same text, another URL) counts as an article and moves the story's span and
    index entries, but the centroid stands for distinct texts: it does not move towards the copy."""
    (title, summary), rewrite = QUAKE[0], QUAKE[1]
    _, first = ingest.new(title, summary, "wire", T0)
    ingest.new(*rewrite, "outlet1", T0 + timedelta(hours=1))
    before = story_store.load_story_states(store.conn, [first.story_id], None)[0]
    _, copy = ingest.new(title, summary, "aggregator", T0 + timedelta(days=2))
    assert copy.story_id == first.story_id and copy.score == 1.0
    after = story_store.load_story_states(store.conn, [first.story_id], None)[0]
    assert after.vector == before.vector and after.headline == before.headline
    assert after.article_count == 3 and after.join_count == before.join_count
    assert after.last_published == to_iso(T0 + timedelta(days=2))
    # The state held in memory is what the archive holds.
    held = ingest.clusterer.memory.states(store.conn, [first.story_id], ingest.clusterer.vectors)[0]
    assert (held.vector, held.article_count, held.last_published) == (after.vector, 3, after.last_published)
    # Index entries were refreshed to the new span: 2 days is past `posting_refresh`.
    recent = store.conn.execute(
        "SELECT count(*) FROM story_postings WHERE story_id = ? AND last_published = ?",
        (first.story_id, after.last_published),
    ).fetchone()[0]
    assert recent > 0
    # A copy inside the story's span (an earlier time) posts nothing: its terms are already indexed.
    postings = store.conn.execute("SELECT * FROM story_postings ORDER BY term, story_id").fetchall()
    _, inside = ingest.new(title, summary, "mirror", T0 + timedelta(days=1))
    assert inside.story_id == first.story_id
    assert store.conn.execute("SELECT * FROM story_postings ORDER BY term, story_id").fetchall() == postings
    assert story_store.load_story_states(store.conn, [first.story_id], None)[0].article_count == 4


def test_identical_text_from_before_the_window_starts_its_own_story(ingest: Ingest, store: Store) -> None:
    """A backfilled entry months old with the same text as today's (a recurring title-only item) is
    another story: the window applies to copies too, and today's story keeps its first outlet and time."""
    title = "Stock markets close higher as oil prices fall"
    _, today = ingest.new(title, "", "wire", T0)
    _, old = ingest.new(title, "", "archive", T0 - timedelta(days=200))
    _, ahead = ingest.new(title, "", "mirror", T0 + timedelta(days=6))
    assert old.created and old.story_id != today.story_id
    assert ahead.story_id == today.story_id and ahead.score == 1.0
    with store.reading() as conn:
        story = story_store.get_story(conn, today.story_id)
    assert story is not None
    assert (story["first_feed"], story["first_seen"]) == ("wire", to_iso(T0))
    assert {source["feed"] for source in story["sources"]} == {"wire", "mirror"}


def test_article_older_than_the_window_starts_a_new_story(ingest: Ingest) -> None:
    title, summary = QUAKE[0]
    _, first = ingest.new(title, summary, "outlet0", T0)
    title2, summary2 = QUAKE[1]
    _, late = ingest.new(title2, summary2, "outlet1", T0 + timedelta(days=8))
    _, inside = ingest.new(*QUAKE[2], "outlet2", T0 + timedelta(days=6))
    assert late.created and late.story_id != first.story_id
    assert inside.story_id in (first.story_id, late.story_id) and not inside.created


def test_same_article_from_another_feed_and_revised_stays(ingest: Ingest, store: Store) -> None:
    title, summary = QUAKE[0]
    url = "https://wire.example/quake"
    article_id, first = ingest(make_article(title, summary, url=url, published=T0), "wire")
    same_id, again = ingest(make_article(title, summary, url=url, published=T0), "wire")
    assert same_id == article_id
    assert again == StoryAssignment(first.story_id, created=False, joined=False, source_added=False)

    other_id, relayed = ingest(make_article(title, summary, url=url, published=T0, key="guid:relay-1"), "relay")
    assert other_id == article_id  # same canonical URL: one article linked to both feeds
    assert relayed.story_id == first.story_id and relayed.source_added and not relayed.joined

    revised = make_article("Vanuatu earthquake: magnitude revised to 6.1", "Unrelated words entirely now.",
                           url=url, published=T0)
    revised_id, after = ingest(revised, "wire")
    assert revised_id == article_id
    assert after.story_id == first.story_id and not after.created
    with store.reading() as conn:
        assert story_store.story_of_article(conn, article_id) == first.story_id
        story = story_store.get_story(conn, first.story_id)
    assert story is not None
    assert story["headline"] == "Vanuatu earthquake: magnitude revised to 6.1"
    assert {source["feed"] for source in story["sources"]} == {"wire", "relay"}


def test_get_story_shape_and_order(ingest: Ingest, store: Store) -> None:
    # the second outlet publishes earlier but arrives later: it reported first
    id0, first = ingest.new(*QUAKE[0], "late-poller", T0 + timedelta(hours=1))
    id1, _ = ingest.new(*QUAKE[1], "fast-outlet", T0)
    id2, _ = ingest.new(*QUAKE[2], "third", T0 + timedelta(hours=2))
    with store.reading() as conn:
        story = story_store.get_story(conn, first.story_id)
        assert story_store.get_story(conn, 999_999) is None
    assert story is not None
    assert {"id", "headline", "first_seen", "updated", "sources", "first_feed"} <= set(story)
    assert story["id"] == first.story_id
    assert story["first_feed"] == "fast-outlet"
    assert story["first_seen"] == "2026-02-17T08:00:00Z"
    assert story["updated"] == "2026-02-17T10:00:00Z"
    assert story["headline"] in {title for title, _ in QUAKE}
    assert [source["article_id"] for source in story["sources"]] == [id1, id0, id2]
    for source in story["sources"]:
        assert set(source) >= {"article_id", "url", "feed", "title", "published"}
        assert source["url"].startswith("https://")
    assert story["source_count"] == 3


def test_list_stories_filters(ingest: Ingest, store: Store) -> None:
    for n, (title, summary) in enumerate(QUAKE):
        ingest.new(title, summary, f"outlet{n}", T0 + timedelta(minutes=n))
    with store.reading() as conn:
        multi = story_store.list_stories(conn, since=None, rule=None, min_sources=2, limit=None)
        everything = story_store.list_stories(conn, since=None, rule=None, min_sources=1, limit=None)
        recent = story_store.list_stories(conn, since=T0 - timedelta(hours=1), rule=None, min_sources=1, limit=None)
        limited = story_store.list_stories(conn, since=None, rule=None, min_sources=1, limit=2)
        by_rule = story_store.list_stories(conn, since=None, rule="nothing-here", min_sources=1, limit=None)
    assert len(multi) == 1 and multi[0]["source_count"] == 3
    assert len(everything) == len(BACKGROUND) + 1
    assert [story["id"] for story in recent] == [multi[0]["id"]]
    assert len(limited) == 2
    assert by_rule == []


def test_list_stories_by_rule_uses_matches_table(ingest: Ingest, store: Store) -> None:
    article_id, first = ingest.new(*QUAKE[0], "outlet0", T0)
    with store.transaction() as conn:
        conn.execute(
            "INSERT INTO matches(article_id, rule, terms, matched_at) VALUES (?, 'quakes', '[]', ?)",
            (article_id, "2026-02-17T08:00:00Z"),
        )
    with store.reading() as conn:
        found = story_store.list_stories(conn, since=None, rule="quakes", min_sources=1, limit=None)
    assert [story["id"] for story in found] == [first.story_id]


def _plan_ancestors(plan: list[tuple]) -> dict[int, list[str]]:
    """EXPLAIN QUERY PLAN rows (id, parent, _, detail): each node's detail with its ancestors' details."""
    details = {row[0]: row[3] for row in plan}
    parents = {row[0]: row[1] for row in plan}
    chains: dict[int, list[str]] = {}
    for node in details:
        chain, current = [], parents[node]
        while current in details:
            chain.append(details[current])
            current = parents[current]
        chains[node] = [details[node], *chain]
    return chains


def test_list_stories_by_rule_reads_the_matches_once(ingest: Ingest, store: Store) -> None:
    """Stories of a rule come from one pass over its matches, not a look-up of all its matches per story
    (a year's archive with a common rule took minutes); the stories found are those of the matched articles."""
    ids = [ingest.new(title, summary, f"outlet{n}", T0 + timedelta(minutes=n))[0] for n, (title, summary) in
           enumerate(QUAKE)]
    ids += [ingest.new(title, summary, f"a{n}", T0 + timedelta(hours=1 + n))[0] for n, (title, summary) in
            enumerate(ARREST_A)]
    ids += [ingest.new(title, summary, f"b{n}", T0 + timedelta(hours=3 + n))[0] for n, (title, summary) in
            enumerate(ARREST_B)]
    with store.reading() as conn:
        background = [row[0] for row in conn.execute("SELECT id FROM articles ORDER BY id LIMIT 2")]
    matched = {"wanted": [background[1], ids[1], ids[2], ids[5]], "other": [background[0], ids[3]]}
    with store.transaction() as conn:
        conn.executemany("INSERT INTO matches(article_id, rule, terms, matched_at) VALUES (?, ?, '[]', ?)",
                         [(article_id, rule, "2026-02-17T08:00:00Z") for rule, chosen in matched.items()
                          for article_id in chosen])
    statements: list[str] = []
    with store.reading() as conn:
        expected_ids = {story_store.story_of_article(conn, article_id) for article_id in matched["wanted"]}
        everything = story_store.list_stories(conn, min_sources=1)
        several = story_store.list_stories(conn, min_sources=2)
        conn.set_trace_callback(statements.append)
        found = story_store.list_stories(conn, rule="wanted", min_sources=1)
        found_several = story_store.list_stories(conn, rule="wanted", min_sources=2)
        limited = story_store.list_stories(conn, rule="wanted", min_sources=1, limit=2)
        conn.set_trace_callback(None)
        plans = [conn.execute(f"EXPLAIN QUERY PLAN {sql}").fetchall() for sql in statements if " matches " in sql]
    assert len(expected_ids) == 3
    assert found == [story for story in everything if story["id"] in expected_ids]
    assert found_several == [story for story in several if story["id"] in expected_ids] != []
    assert limited == found[:2]
    assert plans
    for plan in plans:
        for chain in _plan_ancestors(plan).values():
            if chain[0].startswith(("SCAN m", "SEARCH m")):
                assert not any("CORRELATED" in detail for detail in chain[1:]), chain


def test_cross_language_report_joins_on_names_and_numbers(ingest: Ingest) -> None:
    _, english = ingest.new(*QUAKE[0], "outlet0", T0)
    ingest.new(*QUAKE[1], "outlet1", T0 + timedelta(minutes=10))
    _, french = ingest.new(
        "Vanuatu : un séisme de magnitude 6,4 secoue Port-Vila",
        "Un séisme de magnitude 6,4 a secoué le Vanuatu mardi près de Port-Vila, selon l'Institut "
        "géologique américain (USGS). Aucune alerte au tsunami n'a été émise.",
        "france-outlet", T0 + timedelta(minutes=30), language="fr",
    )
    assert french.story_id == english.story_id


def test_a_report_in_another_language_joins_but_leaves_the_headline(ingest: Ingest, store: Store) -> None:
    """An English story keeps an English headline when a French report joins it (the two titles'
    words cannot be compared); the French report is one of its sources."""
    title = "France arrests nine over killing of far-right activist Quentin Deranque in Lyon"
    summary = ("French police arrested nine people in Lyon over the killing of Quentin Deranque, a 23-year-old "
               "far-right activist, interior minister Laurent Nuñez said. Emmanuel Macron called for calm. "
               "La France Insoumise denied any link.")
    _, english = ingest.new(title, summary, "english", T0)
    french_title = "Mort de Quentin Deranque à Lyon : neuf interpellations, annonce Laurent Nuñez"
    _, french = ingest.new(
        french_title,
        "Neuf personnes ont été interpellées à Lyon après la mort de Quentin Deranque, militant d'extrême droite "
        "de 23 ans, a annoncé le ministre de l'Intérieur Laurent Nuñez. Emmanuel Macron a appelé au calme. "
        "La France insoumise dément tout lien.",
        "french", T0 + timedelta(hours=1), language="fr",
    )
    assert french.story_id == english.story_id and french.joined
    with store.reading() as conn:
        story = story_store.get_story(conn, english.story_id)
    assert story is not None
    assert story["headline"] == title
    assert [source["title"] for source in story["sources"]] == [title, french_title]


def test_features_fold_accents_and_keep_acronyms() -> None:
    assert fold("Élysée") == "elysee"
    assert fold("Œuvre") == "oeuvre"
    features = extract_features("The U.S. and France sign a deal", "Officials in Paris met US envoys on 12 May.",
                                Tuning(stem=False))
    assert "US" in features.counts and "US" in features.names
    assert "us" not in features.counts
    assert "paris" in features.names and "12" in features.names
    assert "officials" not in features.names  # opens a sentence on its own
    assert "the" not in features.counts


def test_stemming_lets_rewrites_share_words() -> None:
    """Plural and verb endings go (the same stripping for every word, names included, so a Headline
    Case title and its lead agree); acronyms and figures stay as written."""
    one = extract_features("Officials suspend talks", "The US suspended 12 envoys.", Tuning())
    two = extract_features("An official suspends the talk", "US suspending envoy 12.", Tuning())
    assert {"official", "suspend", "talk", "envoy", "US", "12"} <= one.counts.keys() & two.counts.keys()

def test_unknown_tuning_is_refused() -> None:
    with pytest.raises(TypeError):
        StoryClusterer(no_such_knob=1.0)


def test_centroid_encoding_round_trip() -> None:
    vector = {"vanuatu": 0.5, "US": 0.25, "séisme": 0.125, "port_vila": 1.0}
    names = {"vanuatu", "US", "port_vila", "not-in-vector"}
    headline = {"vanuatu": 0.75}
    decoded, decoded_names, decoded_headline = story_store.decode_vector(
        story_store.encode_vector(vector, names, headline)
    )
    assert decoded == vector  # weights are float32: these values are exact
    assert decoded_names == {"vanuatu", "US", "port_vila"}
    assert decoded_headline == headline
    assert story_store.decode_vector(story_store.encode_vector({}, set(), {})) == ({}, set(), {})


def test_prune_postings_keeps_recent_stories_findable(ingest: Ingest, store: Store) -> None:
    _, old = ingest.new(*QUAKE[0], "outlet0", T0 - timedelta(days=30))
    with store.transaction() as conn:
        removed = story_store.prune_postings(conn, before=T0 - timedelta(days=7))
        left = conn.execute("SELECT count(*) FROM story_postings WHERE story_id = ?", (old.story_id,)).fetchone()[0]
        recent = conn.execute("SELECT count(*) FROM story_postings").fetchone()[0]
    assert removed > 0 and left == 0
    assert recent > 0  # the background stories of the last days keep theirs
    _, again = ingest.new(*QUAKE[1], "outlet1", T0)
    assert again.created


def test_vector_cache_follows_the_stored_bytes(store: Store) -> None:
    """A cached decoding is reused only for the very blob it came from; the copy kept at write time
    is exactly what a fresh decoding of the written blob gives."""
    cache = story_store.VectorCache()
    first = story_store.encode_vector({"vanuatu": 0.3, "quake": 0.1}, {"vanuatu"}, {"vanuatu": 1.0})
    second = story_store.encode_vector({"vila": 0.7}, {"vila"}, {})
    assert cache.decode(5, first)[0].keys() == {"vanuatu", "quake"}
    assert cache.decode(5, second)[0].keys() == {"vila"}  # same story, changed elsewhere: decoded again
    with store.transaction() as conn:
        story_id = story_store.create_story(
            conn, headline="h", article_id=1, feed="f", published="2026-02-17T08:00:00Z",
            arrived="2026-02-17T08:00:00Z", language="en", vector={"vanuatu": 0.123456789, "quake": 0.3},
            names={"vanuatu"}, headline_vector={"quake": 1 / 3}, cache=cache,
        ).id
        blob = conn.execute("SELECT vector FROM stories WHERE id = ?", (story_id,)).fetchone()[0]
    assert cache.decode(story_id, blob) == story_store.decode_story_vector(blob)


def _quake_reported_by_two_writers(one: Ingest, two: Ingest) -> StoryAssignment:
    """Background news and the first and third quake reports through ``one``, the second through
    ``two``; all three reports must be one story. Returns the first report's assignment."""
    for index, (title, summary) in enumerate(BACKGROUND):
        one.new(title, summary, f"background{index}", T0 - timedelta(days=1, hours=index))
    _, first = one.new(*QUAKE[0], "outlet0", T0)
    _, second = two.new(*QUAKE[1], "outlet1", T0 + timedelta(minutes=20))
    _, third = one.new(*QUAKE[2], "outlet2", T0 + timedelta(minutes=40))
    assert first.story_id == second.story_id == third.story_id
    return first


def test_a_story_changed_by_another_writer_is_read_afresh(store: Store) -> None:
    """Two clusterers (two processes' worth of state) on one archive: each sees the other's joins."""
    first = _quake_reported_by_two_writers(Ingest(store, StoryClusterer(window=timedelta(days=7))),
                                           Ingest(store, StoryClusterer(window=timedelta(days=7))))
    with store.transaction() as conn:
        count, blob = conn.execute("SELECT article_count, vector FROM stories WHERE id = ?",
                                   (first.story_id,)).fetchone()
    assert count == 3
    centroid = story_store.decode_vector(blob)[0]
    assert stem("centred") in centroid  # only the second text (joined by the other clusterer) has it: not a stale copy


def test_one_line_texts_sharing_one_name_stay_apart(ingest: Ingest) -> None:
    """Two short summaries about one skater but different stories: a shared name (and a common word)
    give them a cosine above the plain threshold (0.37 here); short texts need more (``short_threshold``)."""
    _, backflip = ingest.new(
        "Kessler made history with his Olympic backflip, but some say the glory was owed to another skater",
        "Anton Kessler landed the first legal backflip at the Games.", "outlet0", T0)
    _, abuse = ingest.new("Anton Kessler hints at inevitable crash amid pressure and online hate",
                          "The skater said abuse from trolls was heavy.", "outlet1", T0 + timedelta(hours=5))
    assert abuse.created and abuse.story_id != backflip.story_id


def test_one_line_rewrites_still_join(ingest: Ingest) -> None:
    _, first = ingest.new("Accused Bondi Beach killer Naveed Akram appears in court by video link",
                          "", "outlet0", T0)
    _, second = ingest.new("Accused Bondi killer Naveed Akram appears in court by video link", "", "outlet1",
                           T0 + timedelta(hours=3))
    assert second.joined and second.story_id == first.story_id


def test_a_follow_up_with_new_figures_in_its_headline_joins(ingest: Ingest) -> None:
    """New figures in a headline (a toll, a count) are how a story moves on, not a sign of another event."""
    _, first = ingest.new(*QUAKE[0], "outlet0", T0)
    _, second = ingest.new(*QUAKE[1], "outlet1", T0 + timedelta(minutes=20))
    _, update = ingest.new(
        "Vanuatu quake: 3 dead, 40 hurt, 200 homes damaged",
        "Three people died and 40 were hurt when Tuesday's 6.4 magnitude earthquake shook Port Vila, Vanuatu "
        "officials said. Rescue teams searched damaged homes.",
        "outlet2", T0 + timedelta(hours=3),
    )
    assert second.story_id == first.story_id
    assert update.joined and update.story_id == first.story_id


def test_many_shared_names_lower_the_score_needed(store: Store) -> None:
    """An article naming many of a story's people, places and bodies joins at ``many_names_threshold``;
    one that shares a name or two still needs ``threshold``."""
    run = Ingest(store, StoryClusterer(window=timedelta(days=7), threshold=0.9, many_names=4,
                                       many_names_threshold=0.2))
    for index, (title, summary) in enumerate(BACKGROUND):
        run.new(title, summary, f"background{index}", T0 - timedelta(days=1, hours=index))
    _, story = run.new(*QUAKE[0], "outlet0", T0)
    _, named = run.new(
        "Port Vila residents describe the shaking",
        "In Port Vila, the capital of Vanuatu, shopkeepers swept up glass after the tremor that the US "
        "Geological Survey measured offshore; schools reopened in the afternoon.",
        "outlet1", T0 + timedelta(hours=1),
    )
    _, other = run.new(
        "Vanuatu tourism board reports record arrivals",
        "Visitor numbers to Vanuatu rose sharply last year as cruise ships returned, the tourism board said "
        "in its annual report, with hotels near the harbour fully booked through the winter.",
        "outlet2", T0 + timedelta(hours=2),
    )
    assert named.joined and named.story_id == story.story_id and named.score is not None and named.score < 0.9
    assert other.created


def test_stem_brings_word_forms_together() -> None:
    assert stem("quake") == stem("quakes") == stem("quaked")
    assert stem("raise") == stem("raised") == stem("raising")
    assert stem("churches") == "church" and stem("passes") == "pass"
    assert stem("business") == "business" and stem("2026") == "2026"


# --------------------------------------------------------------------------- the clusterer's memory


def _article_count(store: Store, story_id: int) -> int:
    with store.reading() as conn:
        return conn.execute("SELECT article_count FROM stories WHERE id = ?", (story_id,)).fetchone()[0]


def test_memory_drops_what_a_rolled_back_transaction_wrote(ingest: Ingest, store: Store) -> None:
    """A join made in a transaction that rolls back must not survive in the clusterer's memory: the
    next join starts from the archive (two articles), not from the lost three-article state."""
    _, first = ingest.new(*QUAKE[0], "outlet0", T0)
    article = make_article(*QUAKE[1], url="https://outlet1.example/news/rolled-back", published=T0 + timedelta(minutes=20))
    with pytest.raises(RuntimeError):
        with store.transaction() as conn:
            feed_id = store.ensure_feed(conn, "outlet1", "https://outlet1.example/rss", now=article.first_seen)
            write = store.write_article(conn, feed_id, article, now=article.first_seen)
            assert ingest.clusterer.assign(conn, write.article_id, article, "outlet1").story_id == first.story_id
            raise RuntimeError("the feed's transaction fails after clustering")
    _, third = ingest.new(*QUAKE[2], "outlet2", T0 + timedelta(minutes=40))
    assert third.story_id == first.story_id
    assert _article_count(store, first.story_id) == 2


def test_memory_follows_another_connections_commits(tmp_path: Path) -> None:
    """Two processes' worth of writers (two connections, two clusterers) on one archive: each sees
    the other's joins, whatever it holds in memory."""
    one_store, two_store = Store.open(tmp_path / "shared.db"), Store.open(tmp_path / "shared.db")
    try:
        with one_store.transaction() as conn:
            story_store.apply_schema(conn)
        first = _quake_reported_by_two_writers(Ingest(one_store, StoryClusterer(window=timedelta(days=7))),
                                               Ingest(two_store, StoryClusterer(window=timedelta(days=7))))
        assert _article_count(one_store, first.story_id) == 3  # a stale copy in `one` would write 2
    finally:
        one_store.close()
        two_store.close()


def test_memory_is_dropped_when_story_tables_change_under_it(ingest: Ingest, store: Store) -> None:
    """Code that edits story tables on the clusterer's own connection (retention) says so with
    ``forget_clusterer_state``; the next article reads the story afresh."""
    _, first = ingest.new(*QUAKE[0], "outlet0", T0)
    with store.transaction() as conn:
        conn.execute("UPDATE stories SET article_count = 10 WHERE id = ?", (first.story_id,))
        story_store.forget_clusterer_state(conn)
    _, second = ingest.new(*QUAKE[1], "outlet1", T0 + timedelta(minutes=20))
    assert second.story_id == first.story_id
    assert _article_count(store, first.story_id) == 11


def test_memory_finds_the_same_candidates_as_the_index_query(store: Store) -> None:
    """The in-memory postings give exactly what ``candidate_stories`` reads from the archive, for many
    articles and several windows (including a term with more stories than are held per term)."""
    clusterer = StoryClusterer(window=timedelta(days=7), per_term=4)
    run = Ingest(store, clusterer)
    words = ["sahel", "bamako", "niamey", "junta", "convoy", "drone", "border", "mine", "strike", "talks"]
    compared = 0
    for index in range(60):
        picked = [words[(index * k) % len(words)] for k in (1, 3, 7)]
        title = f"Story {index}: " + " ".join(picked)
        summary = " ".join(f"{word} {index}" for word in picked) + f" report number {index}"
        run.new(title, summary, f"outlet{index % 5}", T0 + timedelta(hours=index))
        with store.transaction() as conn:
            clusterer.memory.sync(conn)
            for days in (1, 2, 7):
                since = to_iso(T0 + timedelta(hours=index) - timedelta(days=days))
                weights = {word: 1.0 / (rank + 1) for rank, word in enumerate(words)}
                expected = story_store.candidate_stories(conn, weights, since=since, per_term=4, min_overlap=0.1,
                                                         limit=5)
                assert clusterer.memory.candidates(conn, weights, since=since, min_overlap=0.1, limit=5) == expected
                compared += 1
    assert compared == 180


def test_a_refreshed_story_is_read_once_per_term(store: Store) -> None:
    """A story refreshed under a term gets a second index entry; readers see only its newest, and
    ``limit`` counts stories, not rows. A write the story does not need (an entry at or after
    ``stale_before``) adds nothing."""
    times = [to_iso(T0 + timedelta(hours=hours)) for hours in range(10)]
    with store.transaction() as conn:
        story_store.post_terms(conn, 1, ["bamako"], last_published=times[0])
        story_store.post_terms(conn, 2, ["bamako"], last_published=times[1])
        story_store.post_terms(conn, 3, ["bamako"], last_published=times[2])
        story_store.post_terms(conn, 1, ["bamako"], last_published=times[7], stale_before=times[1])
        story_store.post_terms(conn, 1, ["bamako"], last_published=times[8], stale_before=times[2])  # 7 is fresh
        rows = conn.execute("SELECT last_published, story_id FROM story_postings ORDER BY 1").fetchall()
        assert rows == [(times[0], 1), (times[1], 2), (times[2], 3), (times[7], 1)]
        assert story_store.recent_postings(conn, "bamako", limit=2) == [(times[7], 1), (times[2], 3)]
        assert story_store.recent_postings(conn, "bamako", limit=5) == [(times[7], 1), (times[2], 3), (times[1], 2)]
        found = story_store.candidate_stories(conn, {"bamako": 1.0}, since=times[2], per_term=2, min_overlap=0.1,
                                              limit=5)
        assert found == [3, 1]  # equal overlap: the higher story id first
        # Retention's prune drops the stale entry and keeps the story findable under its newest.
        assert story_store.prune_postings(conn, before=T0 + timedelta(hours=1)) == 1
        assert story_store.recent_postings(conn, "bamako", limit=5) == [(times[7], 1), (times[2], 3), (times[1], 2)]


def test_memory_follows_the_index_through_refreshes_and_ties(store: Store) -> None:
    """Property: random posting (new stories, refreshes before and after ``stale_before``, equal
    times, terms never read) keeps the memory's postings equal to what the archive answers, with
    few entries held per term so that the oldest fall out. Reports how often each case came up."""
    import random

    hits = {"compared": 0, "duplicate rows": 0, "ties": 0, "refreshed": 0, "kept fresh": 0, "unsure": 0}
    terms = [f"term{index}" for index in range(12)]
    for seed in range(6):
        rng = random.Random(seed)
        with store.transaction() as conn:
            conn.execute("DELETE FROM story_postings")
        memory = StoryMemory(per_term=3)
        last: dict[int, int] = {}  # story -> its last publication time, in minutes after T0
        clock = 0
        for step in range(150):
            clock += rng.choice([0, 0, 10, 60, 400])  # equal times are frequent
            story = rng.randrange(1, 25)
            new_story = story not in last
            published = max(clock, last.get(story, 0))
            last[story] = published
            stale_before = to_iso(T0 + timedelta(minutes=published - 360))
            chosen = rng.sample(terms, 4)
            with store.transaction() as conn:
                memory.sync(conn)
                if rng.random() < 0.5:  # read some terms first, as candidate look-ups do
                    weights = {term: rng.random() for term in rng.sample(terms, 3)}
                    since = to_iso(T0 + timedelta(minutes=clock - rng.choice([60, 600, 6000])))
                    expected = story_store.candidate_stories(conn, weights, since=since, per_term=3,
                                                             min_overlap=0.2, limit=4)
                    assert memory.candidates(conn, weights, since=since, min_overlap=0.2, limit=4) == expected
                    hits["compared"] += 1
                for term in chosen:
                    held = memory._postings.get(term)
                    if held is None:
                        hits["unsure"] += not new_story
                    elif story in held[1]:
                        fresh = held[0][held[1].index(story)] >= stale_before
                        hits["kept fresh" if fresh else "refreshed"] += 1
                memory.post(conn, story, chosen, last_published=to_iso(T0 + timedelta(minutes=published)),
                            stale_before=stale_before, new_story=new_story)
                for term, (times, ids) in memory._postings.items():
                    stored = story_store.recent_postings(conn, term, limit=3)
                    assert list(zip(times, ids)) == stored[::-1], (seed, step, term)
                    hits["ties"] += len(set(times)) < len(times)
        with store.transaction() as conn:
            hits["duplicate rows"] += conn.execute(
                "SELECT count(*) - count(DISTINCT term || ' ' || story_id) FROM story_postings").fetchone()[0]
    print("memory/index property:", hits)
    assert all(count > 20 for count in hits.values()), hits


def test_an_archive_with_the_first_index_layout_is_upgraded(tmp_path: Path) -> None:
    """An archive of schema 1 (the story index keyed by term and story, a second index by time) is
    read as it is by read-only commands and upgraded, entries kept, by the first writer."""
    path = tmp_path / "old.db"
    Store.open(path).close()
    raw = sqlite3.connect(path)
    raw.executescript("""
        DROP TABLE story_postings;
        CREATE TABLE story_postings (term TEXT NOT NULL, story_id INTEGER NOT NULL, last_published TEXT NOT NULL,
                                     PRIMARY KEY (term, story_id)) WITHOUT ROWID;
        CREATE INDEX story_postings_recent ON story_postings(term, last_published);
        INSERT INTO story_postings VALUES ('mali', 1, '2026-02-17T08:00:00Z'), ('mali', 2, '2026-02-17T09:00:00Z'),
                                          ('niger', 1, '2026-02-17T08:00:00Z');
        PRAGMA user_version = 1;
    """)
    raw.close()
    reader = Store.open(path, readonly=True)
    assert reader.schema_version() == 1
    assert reader.conn.execute("SELECT count(*) FROM story_postings").fetchone()[0] == 3
    reader.close()
    writer = Store.open(path)
    assert writer.schema_version() == SCHEMA_VERSION
    with writer.transaction() as conn:
        assert story_store.recent_postings(conn, "mali", limit=5) == [("2026-02-17T09:00:00Z", 2),
                                                                      ("2026-02-17T08:00:00Z", 1)]
        indexes = {row[1] for row in conn.execute("PRAGMA index_list(story_postings)")}
        assert "story_postings_recent" not in indexes
        key = [row[1] for row in sorted(conn.execute("PRAGMA table_info(story_postings)"), key=lambda r: r[5])
               if row[5]]
        assert key == ["term", "last_published", "story_id"]
    writer.close()


def test_a_small_memory_gives_the_same_stories(tmp_path: Path) -> None:
    """The memory's bounds only cost reloads: with room for 1 story and 3 terms (evicting and
    reloading all the time) the stories are exactly those of an unbounded memory."""
    def cluster(path: Path, **bounds: int) -> list[int]:
        opened = Store.open(path)
        with opened.transaction() as conn:
            story_store.apply_schema(conn)
        clusterer = StoryClusterer(window=timedelta(days=7))
        if bounds:
            clusterer.memory.max_states = bounds["states"]
            clusterer.memory.max_terms = bounds["terms"]
        run = Ingest(opened, clusterer)
        texts = BACKGROUND + QUAKE + ARREST_A + ARREST_B + QUAKE[::-1] + ARREST_A[::-1]
        stories = [run.new(title, summary, f"outlet{index % 4}", T0 + timedelta(minutes=7 * index))[1].story_id
                   for index, (title, summary) in enumerate(texts)]
        opened.close()
        return stories

    unbounded = cluster(tmp_path / "unbounded.db")
    assert len(set(unbounded)) < len(unbounded)  # some articles joined stories
    assert cluster(tmp_path / "small.db", states=1, terms=3) == unbounded
