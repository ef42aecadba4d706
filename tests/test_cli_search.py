"""`newsmon search` over a real archive: the same-day real feeds and a small labelled feed, polled
from 127.0.0.1 by `newsmon poll`; every output format parsed back with the standard modules."""

from __future__ import annotations

import csv
import io
import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Iterator

import pytest
import sqlite_utils
from click.testing import CliRunner, Result

from monitor.cli import cli
from tests.conftest import CORPORA
from tests.feedserver import FeedServer
from tests.test_pipeline import SAME_DAY, write_config


# (guid, title, summary, pubDate): the labelled items of the "Desk" feed.
LABELLED = [
    ("d1", "Le Mali et la France relancent la coopération militaire",
     "À Bamako, la junte du général Goïta reçoit une délégation.", "Mon, 16 Feb 2026 08:00:00 GMT"),
    ("d2", "Somalia: al-Shabaab attack near Mogadishu",
     "Somali forces repelled the assault on a base.", "Mon, 16 Feb 2026 09:00:00 GMT"),
    ("d3", "Malibu wildfire forces evacuations",
     "Firefighters battled the flames along the coast overnight.", "Mon, 16 Feb 2026 10:00:00 GMT"),
    ("d4", "Sahel security summit opens in Dakar",
     "Delegates from Mali and Niger did not attend the talks.", "Mon, 16 Feb 2026 11:00:00 GMT"),
    ("d5", "Senegal and Ghana sign a cooperation agreement",
     "The deal covers trade and energy.", "Mon, 16 Feb 2026 12:00:00 GMT"),
]
RULES = """
[[rules]]
name = "mali"
query = 'Mali OR Bamako'

[[rules]]
name = "coop"
query = 'cooperation'
"""


def labelled_rss() -> bytes:
    items = "".join(
        f"<item><title>{title}</title><link>https://desk.example.org/{guid}</link><guid>{guid}-guid</guid>"
        f"<description>{summary}</description><pubDate>{date}</pubDate></item>"
        for guid, title, summary, date in LABELLED
    )
    return (f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>Desk</title>'
            f"<link>https://desk.example.org/</link><description>test</description>{items}</channel></rss>"
            ).encode("utf-8")


def build_archive(folder: Path, server: FeedServer, *, real: bool = True, rules: str = RULES) -> list[str]:
    """Serve the feeds, write a config, poll once; returns the base arguments (--config, --db)."""
    feeds = []
    server.add("/desk.xml", labelled_rss())
    feeds.append(("Desk", server.url("/desk.xml")))
    if real:
        for index, path in enumerate(sorted((CORPORA / "real-feeds").glob(SAME_DAY))):
            server.add(f"/f{index}.xml", path.read_bytes())
            feeds.append((path.stem, server.url(f"/f{index}.xml")))
    config = write_config(folder / "feeds.toml", feeds, extra=rules)
    base = ["--config", str(config), "--db", str(folder / "archive.db")]
    polled = CliRunner().invoke(cli, [*base, "poll"])
    assert polled.exit_code == 0, polled.output
    return base


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[str]]:
    if not CORPORA.is_dir():
        pytest.skip("../shared/corpora is not present beside the repository")
    folder = tmp_path_factory.mktemp("search")
    with FeedServer() as server:
        yield build_archive(folder, server)


def invoke(base: list[str], *args: str) -> Result:
    return CliRunner().invoke(cli, [*base, *args])


def titles(result: Result) -> list[str]:
    assert result.exit_code == 0, result.output
    return [hit["title"] for hit in json.loads(result.output)]


def test_accents_fold_and_words_are_whole(archive: list[str]) -> None:
    found = titles(invoke(archive, "search", "cooperation", "--feed", "Desk", "--format", "json"))
    assert "Le Mali et la France relancent la coopération militaire" in found
    assert "Senegal and Ghana sign a cooperation agreement" in found

    mali = titles(invoke(archive, "search", "Mali", "--feed", "Desk", "--format", "json"))
    assert set(mali) == {LABELLED[0][1], LABELLED[3][1]}
    assert not any("Somalia" in t or "Malibu" in t for t in mali)


def test_title_scope_finds_titles_only(archive: list[str]) -> None:
    hits = json.loads(invoke(archive, "search", "title:Mali", "--format", "json", "--limit", "100").output)
    assert hits and all("mali" in hit["title"].lower() for hit in hits)
    assert LABELLED[3][1] not in [hit["title"] for hit in hits]     # Mali only in its summary


def test_json_shape_and_rules_and_snippet_marks(archive: list[str]) -> None:
    hits = json.loads(invoke(archive, "search", "Bamako", "--feed", "Desk", "--format", "json").output)
    assert len(hits) == 1
    hit = hits[0]
    assert {"id", "title", "url", "feed", "published", "story_id", "snippet", "rules"} <= set(hit)
    assert hit["feed"] == "Desk" and hit["url"] == "https://desk.example.org/d1"
    assert hit["published"] == "2026-02-16T08:00:00Z"
    assert "[Bamako]" in hit["snippet"]
    assert hit["rules"] == ["coop", "mali"]
    assert isinstance(hit["story_id"], int)


def test_jsonl_and_csv_parse(archive: list[str]) -> None:
    jsonl = invoke(archive, "search", "the", "--format", "jsonl", "--limit", "15")
    lines = [json.loads(line) for line in jsonl.output.splitlines()]
    assert len(lines) == 15
    table = invoke(archive, "search", "the", "--format", "csv", "--limit", "15")
    rows = list(csv.DictReader(io.StringIO(table.output)))
    assert [int(row["id"]) for row in rows] == [line["id"] for line in lines]
    assert set(rows[0]) == {"id", "title", "url", "feed", "published", "story_id", "snippet", "rules"}
    assert [row["title"] for row in rows] == [line["title"] for line in lines]


def test_table_plain_brackets_when_not_a_terminal(archive: list[str]) -> None:
    result = invoke(archive, "search", "Goita")
    assert result.exit_code == 0
    assert "[coopération]" not in result.output
    assert "[Goïta]" in result.output and "\x1b[" not in result.output


def test_no_results_is_not_an_error(archive: list[str]) -> None:
    result = invoke(archive, "search", "zzyzxqwv")
    assert result.exit_code == 0 and result.output.strip() == "no results"
    assert invoke(archive, "search", "zzyzxqwv", "--format", "json").output.strip() == "[]"
    csv_out = invoke(archive, "search", "zzyzxqwv", "--format", "csv").output
    assert csv_out.strip() == "id,title,url,feed,published,story_id,snippet,rules"


@pytest.mark.parametrize("query, position", [("(Mali OR Niger", 1), ('"Bamako', 1), ("Mali AND", 6),
                                              ("colour:red", 1), ("NEAR(Mali Bamako)", 1)])
def test_malformed_query_exit_2_with_position(archive: list[str], query: str, position: int) -> None:
    result = invoke(archive, "search", query)
    assert result.exit_code == 2
    assert result.output.startswith("error: ")
    assert "position" in result.output and "^" in result.output
    assert "Traceback" not in result.output and "sqlite" not in result.output.lower()


def test_filters_sort_limit_offset(archive: list[str]) -> None:
    by_date = json.loads(invoke(archive, "search", "Mali OR Malibu OR Somalia", "--feed", "Desk", "--sort", "date",
                                "--format", "json").output)
    dates = [hit["published"] for hit in by_date]
    assert dates == sorted(dates, reverse=True) and len(dates) == 4
    page = json.loads(invoke(archive, "search", "Mali OR Malibu OR Somalia", "--feed", "Desk", "--sort", "date",
                             "--limit", "2", "--offset", "1", "--format", "json").output)
    assert [hit["id"] for hit in page] == [hit["id"] for hit in by_date[1:3]]
    recent = titles(invoke(archive, "search", "Mali", "--feed", "Desk", "--since", "2026-02-16T10:30",
                           "--format", "json"))
    assert recent == [LABELLED[3][1]]
    early = titles(invoke(archive, "search", "Mali", "--feed", "Desk", "--until", "2026-02-16T10:30",
                          "--format", "json"))
    assert early == [LABELLED[0][1]]
    ruled = titles(invoke(archive, "search", "Dakar OR Goita", "--rule", "mali", "--format", "json"))
    assert set(ruled) == {LABELLED[0][1], LABELLED[3][1]}
    unknown = invoke(archive, "search", "Mali", "--rule", "nope")
    assert unknown.exit_code == 2 and "no rule named" in unknown.output
    bad = invoke(archive, "search", "Mali", "--since", "last tuesday")
    assert bad.exit_code == 2 and "--since" in bad.output
    assert titles(invoke(archive, "search", "Mali", "--feed", "Desk", "--lang", "de", "--format", "json")) == []


def test_story_filter_and_group_stories(archive: list[str]) -> None:
    grouped = json.loads(invoke(archive, "search", "the", "--group-stories", "--limit", "50",
                                "--format", "json").output)
    story_ids = [row["story_id"] for row in grouped if row["story_id"] is not None]
    assert len(story_ids) == len(set(story_ids)), "one row per story"
    assert all(row["source_count"] >= 1 and row["hit_count"] >= 1 for row in grouped)
    multi = [row for row in grouped if row["hit_count"] > 1]
    assert multi, "some stories hold several hits of a common word"
    story = multi[0]["story_id"]
    inside = json.loads(invoke(archive, "search", "the", "--story", str(story), "--limit", "100",
                               "--format", "json").output)
    assert len(inside) == multi[0]["hit_count"] and {hit["story_id"] for hit in inside} == {story}
    table = invoke(archive, "search", "the", "--group-stories", "--limit", "3")
    assert table.exit_code == 0 and "outlet" in table.output


def test_readonly_archive_is_not_written(archive: list[str]) -> None:
    db = Path(archive[3])
    before = db.stat().st_mtime_ns
    assert invoke(archive, "search", "Mali").exit_code == 0
    assert db.stat().st_mtime_ns == before


def test_missing_archive_is_a_clean_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # no config/feeds.toml: search needs only the archive (a named config must exist)
    monkeypatch.delenv("NEWSMON_CONFIG", raising=False)
    result = CliRunner().invoke(cli, ["--db", str(tmp_path / "none.db"), "search", "Mali"])
    assert result.exit_code == 1 and result.output.startswith("error: no archive")


def test_sqlite_utils_search_works_on_the_archive(archive: list[str]) -> None:
    """What `sqlite-utils search storage/newsmon.db articles cooperation` runs."""
    conn = sqlite3.connect(f"file:{Path(archive[3]).resolve()}?mode=ro", uri=True)
    db = sqlite_utils.Database(conn)
    assert db["articles"].detect_fts() == "articles_fts"
    rows = list(db["articles"].search("cooperation", columns=["title"]))
    found = {row["title"] for row in rows}
    assert LABELLED[0][1] in found and LABELLED[4][1] in found
    assert not any("Somalia" in t for t in {row["title"] for row in db["articles"].search("Mali", columns=["title"])})


# --------------------------------------------------------------------------- the windowed fast path

WORDS = ("mali bamako sahel niger junte armée coopération france paris dakar accord sécurité élection "
         "président ministre gouvernement attaque village réfugiés aide économie").split()


def synthetic_archive(path: Path, count: int = 3000) -> None:
    """``count`` articles over two years in arrival order (ids grow with time) from a small vocabulary,
    through the bulk path, so that common words have many hits of every age."""
    import random
    from datetime import datetime, timedelta, timezone

    from monitor.models import Article
    from monitor.store import Store
    from monitor.store.bulk import BulkArticle, FeedLink, bulk_insert

    rng = random.Random(7)
    end = datetime(2026, 2, 17, tzinfo=timezone.utc)
    items = []
    for index in range(count):
        published = end - timedelta(days=730 * (1 - index / count), hours=rng.random() * 12)
        article = Article(
            key=f"k{index}", url=f"https://x.example.org/{index}", guid=None,
            title=" ".join(rng.choices(WORDS, k=rng.randint(3, 8))),
            summary=" ".join(rng.choices(WORDS, k=rng.randint(5, 30))), content="",
            published=published, published_source="published", undated=False, first_seen=published,
            language="fr")
        items.append(BulkArticle(article, (FeedLink(f"feed{index % 3}"),)))
    with Store.open(path) as store:
        bulk_insert(store, items, batch_size=700)


@pytest.mark.parametrize("sort", ["relevance", "date"])
def test_window_fast_path_gives_the_answers_of_ranking_every_hit(tmp_path: Path, sort: str,
                                                                 monkeypatch: pytest.MonkeyPatch,
                                                                 caplog: pytest.LogCaptureFixture) -> None:
    import logging

    from datetime import datetime, timezone

    import monitor.search as library

    synthetic_archive(tmp_path / "w.db")
    conn = sqlite3.connect(tmp_path / "w.db")
    now = datetime(2026, 2, 17, 12, tzinfo=timezone.utc)
    caplog.set_level(logging.DEBUG, logger="monitor.search")
    queries = ["mali", "mali sahel", '"mali bamako"', "mali NOT niger", "title:france", "sécu*", "mali OR dakar",
               "NEAR(mali niger, 3)", "(mali OR niger) AND accord -paris", "feed:feed1 AND armée",
               "mali -armée", "mali NOT title:niger", "mali NOT (niger OR paris)", "title:mali summary:dakar",
               "mali NOT (niger sahel)", "président*"]
    pages = [(20, 0), (5, 7), (50, 30)]
    for query in queries:
        for limit, offset in pages:
            for filters in ({}, {"since": "2025-11-01T00:00:00Z"}, {"until": "2026-02-10T00:00:00Z"},
                            {"feeds": ["feed2"]}):
                monkeypatch.setattr(library, "WINDOW_MIN_HITS", 10**9)
                every = library.search(conn, query, sort=sort, limit=limit, offset=offset, now=now, **filters)
                monkeypatch.setattr(library, "WINDOW_MIN_HITS", 5)
                fast = library.search(conn, query, sort=sort, limit=limit, offset=offset, now=now, **filters)
                assert [h.id for h in fast] == [h.id for h in every], (query, limit, offset, filters)
                assert [h.score for h in fast] == [h.score for h in every]
    windowed = [r for r in caplog.records if "ranked within window" in r.getMessage()]
    assert len(windowed) >= 10, "the fast path was taken, not only the fallback"


def test_datasette_full_text_search_works_on_the_archive(archive: list[str]) -> None:
    """`datasette storage/newsmon.db`: the articles table page searches through articles_fts."""
    import asyncio

    from datasette.app import Datasette

    async def query() -> list[dict]:
        app = Datasette([archive[3]])
        name = Path(archive[3]).stem
        response = await app.client.get(f"/{name}/articles.json?_search=cooperation&_shape=array&_col=title")
        assert response.status_code == 200, response.text
        return response.json()

    found = {row["title"] for row in asyncio.run(query())}
    assert LABELLED[0][1] in found and LABELLED[4][1] in found


GAO_STORY = {"title": "Convoy attacked near Gao, Malian army says",
             "summary": "Soldiers escorting a Bamako convoy near Gao repelled the attack, the Malian army said."}
NEWSMON_ENV = {key: value for key, value in os.environ.items() if not key.startswith("NEWSMON_")} | {
    "PYTHONPATH": str(Path(__file__).resolve().parents[1])}


def newsmon_on(db: Path, *args: str) -> str:
    """A real `newsmon --db DB ARGS` process; its stdout (it must succeed)."""
    done = subprocess.run([sys.executable, "-m", "monitor", "--db", str(db), *args], capture_output=True,
                          text=True, env=NEWSMON_ENV, cwd=db.parent, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout


def gao_story_among_other_hits(tmp_path: Path, *, others: int, day: int) -> Path:
    """An archive (made by `newsmon import`) where the query Bamako hits one story of three reports of the
    Gao convoy (February 17, 14 and 13) and ``others`` unrelated articles, each its own story, published on
    February ``day``, between the story's newest report and its older ones."""
    lines = [dict(GAO_STORY, key=f"guid:gao-{report}", url=f"https://example.org/gao/{report}",
                  published=f"2026-02-{report}T12:00:00Z") for report in (17, 14, 13)]
    for number in range(others):
        words = " ".join(f"w{number}x{index}" for index in range(8))
        lines.append({"key": f"guid:other-{number}", "url": f"https://example.org/other/{number}",
                      "title": f"Bamako {words}", "summary": words,
                      "published": f"2026-02-{day}T{number // 60:02d}:{number % 60:02d}:00Z"})
    dump = tmp_path / "articles.jsonl"
    dump.write_text("".join(json.dumps({**line, "feeds": [{"name": "Desk"}]}) + "\n" for line in lines),
                    encoding="utf-8")
    db = tmp_path / "archive.db"
    newsmon_on(db, "import", str(dump))
    return db


def test_group_stories_counts_every_hit_of_a_story_also_past_the_pages_read(tmp_path: Path) -> None:
    """A story whose newest article is the newest hit and whose older copies sort after 150 other
    hits: `--group-stories --limit 1` reads one page of hits, and still counts the story's three."""
    db = gao_story_among_other_hits(tmp_path, others=150, day=16)
    grouped = json.loads(newsmon_on(db, "search", "Bamako", "--sort", "date", "--group-stories", "--limit", "1",
                                    "--format", "json"))
    assert [row["title"] for row in grouped] == [GAO_STORY["title"]]
    inside = json.loads(newsmon_on(db, "search", "Bamako", "--story", str(grouped[0]["story_id"]), "--format", "json"))
    assert len(inside) == 3
    assert grouped[0]["hit_count"] == 3
    assert "[story 1: 1 outlet, 3 hits]" in newsmon_on(db, "search", "Bamako", "--sort", "date", "--group-stories",
                                                        "--limit", "1")


def test_group_stories_counts_the_hits_of_all_stories_shown_in_one_pass(tmp_path: Path) -> None:
    """The hit counts of the stories shown are read in one pass over the hits, not one pass for each story
    (`--group-stories --limit 1000` of a common word on a 100,000-article archive took 20 s), and they
    count every hit of each story, also past the pages read."""
    from monitor.cli.search import PLAIN_MARK, _grouped
    from monitor.rules import parse_query
    from monitor.store import Store

    db = gao_story_among_other_hits(tmp_path, others=400, day=15)
    filters = dict(since=None, until=None, feeds=None, languages=None, rule=None, story_id=None)
    statements: list[str] = []
    with Store.open(db, readonly=True) as store, store.snapshot() as conn:
        conn.set_trace_callback(statements.append)
        rows = list(_grouped(conn, parse_query("Bamako"), filters, sort="date", limit=60, offset=0,
                             mark=PLAIN_MARK))
        conn.set_trace_callback(None)
    assert len(rows) == 60
    assert rows[0][0].title == GAO_STORY["title"] and rows[0][1]["hits"] == 3
    assert all(info["hits"] == 1 for _, info in rows[1:])
    searches = [sql for sql in statements if " MATCH " in sql and not sql.startswith("--")]
    assert len(searches) <= 3, f"{len(searches)} queries of the index for {len(rows)} stories"
