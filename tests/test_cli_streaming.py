"""The read commands on a large archive: hits and stories are written as they are read (in chunks, inside
one read transaction), so that memory does not grow with the output, and the output is the same as the
library's full lists. Memory is the peak resident size of a real `newsmon` process."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import tempfile
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from monitor.cli.common import emit_json, emit_json_array, emit_json_object
from monitor.models import Article
from monitor.rules import RuleSet
from monitor.search import search
from monitor.store import Store
from monitor.store import stories as story_store
from monitor.store.bulk import BulkArticle, FeedLink, bulk_insert
from monitor.stories import StoryClusterer

ARTICLES = 10_000
# Long distinct words: each article's title and summary are ~1.5 KB, so the full output is tens of MB.
WORDS = [f"longword{n:04d}abcdefghijklmno" for n in range(3000)]
GROWTH_LIMIT_KB = 16 * 1024     # peak memory above the same command's one-row run
END = datetime(2026, 2, 17, tzinfo=timezone.utc)


def build_archive(path: Path, count: int) -> None:
    """``count`` articles, each its own story, all matching the rule and the query ``wide``."""
    rng = random.Random(11)
    items = []
    for index in range(count):
        published = END - timedelta(minutes=count - index)
        title = "wide " + " ".join(rng.choices(WORDS, k=60))
        article = Article(key=f"k{index}", url=f"https://x.example.org/{index}", guid=None, title=title,
                          summary=title, content="", published=published, published_source="published",
                          undated=False, first_seen=published, language="en")
        items.append(BulkArticle(article, (FeedLink(f"feed{index % 3}"),)))
    with Store.open(path) as store:
        bulk_insert(store, items, batch_size=500, clusterer=StoryClusterer(),
                    ruleset=RuleSet.compile([("wide", "wide")]))


@pytest.fixture(scope="module")
def large_archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("large") / "large.db"
    build_archive(path, ARTICLES)
    return path


# Runs argv[2:] and writes its peak resident size (KB) to argv[1]. A child of this test process would
# report at least the test process's own size (Linux keeps the peak of the memory it was forked from), so
# the command is started by this small process instead.
MEASURE = ("import os, subprocess, sys; process = subprocess.Popen(sys.argv[2:]); "
           "_, status, usage = os.wait4(process.pid, 0); "
           "open(sys.argv[1], 'w').write(f'{usage.ru_maxrss} {os.waitstatus_to_exitcode(status)}')")


def run_newsmon(db: Path, args: list[str]) -> tuple[int, bytes]:
    """Run `newsmon --db DB ARGS` in a folder without a config; (its peak resident memory in KB, stdout)."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("NEWSMON_")}
    with tempfile.TemporaryDirectory() as folder:
        report = Path(folder) / "peak"
        with open(Path(folder) / "out", "wb+") as out:
            done = subprocess.run([sys.executable, "-c", MEASURE, str(report), sys.executable, "-m", "monitor",
                                   "--db", str(db), *args], cwd=folder, env=env, stdin=subprocess.DEVNULL,
                                  stdout=out, stderr=subprocess.PIPE, check=False)
            out.seek(0)
            output = out.read()
        peak, code = report.read_text().split()
        assert done.returncode == 0 and code == "0", done.stderr.decode()
        return int(peak), output


@pytest.mark.parametrize("command", [
    ["search", "wide", "--format", "json"],
    ["search", "wide", "--format", "jsonl"],
    ["search", "wide", "--format", "csv"],
    ["search", "wide"],
    ["stories", "--all", "--format", "json"],
    ["stories", "--all"],
    ["rules", "test", "wide", "--format", "json"],
    ["rules", "test", "wide"],
], ids=" ".join)
def test_memory_does_not_grow_with_the_output(large_archive: Path, command: list[str]) -> None:
    small_peak, small = run_newsmon(large_archive, [*command, "--limit", "1"])
    large_peak, large = run_newsmon(large_archive, [*command, "--limit", str(ARTICLES * 2)])
    assert len(large) > 10_000_000 > 100 * len(small)
    assert large_peak - small_peak < GROWTH_LIMIT_KB, (
        f"{' '.join(command)}: {large_peak} KB for {len(large)} bytes of output, {small_peak} KB for one row")


def test_streamed_output_is_the_library_lists(large_archive: Path) -> None:
    """Chunks (of 500) make up exactly the full lists: every story and hit, in order, once."""
    _, stories_out = run_newsmon(large_archive, ["stories", "--all", "--format", "json"])
    _, hits_out = run_newsmon(large_archive, ["search", "wide", "--sort", "date", "--limit", "100000",
                                              "--format", "json"])
    with Store.open(large_archive, readonly=True) as store, store.reading() as conn:
        stories = story_store.list_stories(conn)
        hits = [hit.to_dict() for hit in search(conn, "wide", sort="date", limit=None)]
    assert len(stories) > 1000 and len(hits) == ARTICLES
    assert json.loads(stories_out) == stories
    assert json.loads(hits_out) == hits


@pytest.mark.parametrize("items", [[], [1], [{}], [{"a": [], "b": {}, "c": "line\nbreak, \"quoted\", é ✓"},
                                               [1, [2, {"d": None}]], "z", 1.5, None, True]])
def test_streamed_json_is_the_json_document(items: list, capsys: pytest.CaptureFixture[str]) -> None:
    emit_json(items)
    expected_array = capsys.readouterr().out
    emit_json_array(iter(items))
    assert capsys.readouterr().out == expected_array
    head = {"rule": "r", "query": "q é", "count": len(items)}
    emit_json({**head, "hits": items})
    expected_object = capsys.readouterr().out
    emit_json_object(head, "hits", iter(items))
    assert capsys.readouterr().out == expected_object


def test_stories_are_read_in_one_transaction(tmp_path: Path) -> None:
    """A commit while the stories are being written does not show in the chunks read after it."""
    path = tmp_path / "small.db"
    build_archive(path, 30)
    with Store.open(path, readonly=True) as reader, reader.snapshot() as conn:
        before = story_store.list_stories(conn)
        oldest = before[-1]["sources"][0]["article_id"]
        streamed = story_store.iter_stories(conn, chunk=5)
        first = next(streamed)
        with Store.open(path) as writer, writer.transaction() as write:
            write.execute("UPDATE articles SET title = 'changed' WHERE id = ?", (oldest,))
        rest = list(streamed)
    assert [first, *rest] == before


def test_group_stories_keeps_only_the_hits_it_shows(large_archive: Path) -> None:
    """`--group-stories --limit N` reads up to 5 N hits to find N stories: it keeps the best hit of the
    stories it shows, not every hit read, and writes each story's row as it reads the story."""
    command = ["search", "wide", "--group-stories", "--format", "jsonl"]
    small_peak, _ = run_newsmon(large_archive, [*command, "--limit", "1"])
    large_peak, large = run_newsmon(large_archive, [*command, "--limit", "1000"])
    assert large.count(b"\n") == 1000
    assert large_peak - small_peak < GROWTH_LIMIT_KB, f"{large_peak} KB for 1000 stories, {small_peak} KB for one"


def test_alerts_memory_does_not_grow_with_the_outbox(tmp_path: Path) -> None:
    """A year's outbox (each alert's payload holds its story's sources) is listed alert by alert."""
    from monitor.store.alerts import insert_alert

    path = tmp_path / "outbox.db"
    sources = [{"article_id": n, "url": f"https://x.example.org/{n}", "feed": f"feed{n}",
                "title": " ".join(WORDS[n:n + 40]), "published": "2026-02-17T00:00:00Z"} for n in range(12)]
    with Store.open(path) as store, store.transaction() as conn:
        for number in range(6000):
            insert_alert(conn, rule="wide", story_id=number + 1, channel="log", kind="new",
                         status="sent" if number % 3 else "failed",
                         payload={"headline": f"story {number}", "url": f"https://x.example.org/{number}",
                                  "sources": sources}, now=END + timedelta(seconds=number))
    for command in (["alerts", "--format", "json"], ["alerts"]):
        small_peak, _ = run_newsmon(path, [*command, "--limit", "1"])
        large_peak, large = run_newsmon(path, command)
        assert large.count(b"story ") == 6000
        assert large_peak - small_peak < GROWTH_LIMIT_KB, (
            f"{' '.join(command)}: {large_peak} KB for 6000 alerts, {small_peak} KB for one")


def test_export_is_one_point_in_time(tmp_path: Path) -> None:
    """`export` reads the archive in pages: an article committed while it writes (the daemon polls meanwhile)
    is not in the pages read after it, so an export is the archive at one moment. The export's stdout is a
    pipe read only after the commit: it waits on the full pipe, pages still to read."""
    path = tmp_path / "archive.db"
    build_archive(path, 3000)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    export = subprocess.Popen([sys.executable, "-m", "monitor", "--db", str(path), "export"], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, env=env)
    assert export.stdout is not None
    first = export.stdout.readline()                     # it has begun: the snapshot is taken
    assert first, export.communicate(timeout=60)[1]
    assert json.loads(first)["key"] == "k0"
    late = Article(key="late", url="https://x.example.org/late", guid=None, title="committed during the export",
                   summary="", content="", published=END, published_source="published", undated=False,
                   first_seen=END, language="en")
    with Store.open(path) as writer, writer.transaction() as conn:
        feed_id = writer.ensure_feed(conn, "feed0", "urn:newsmon:feed:feed0", now=END)
        writer.write_article(conn, feed_id, late, now=END)
    rest = export.stdout.read()                          # through the reader's buffer, as readline was
    assert export.wait(timeout=120) == 0, export.communicate()[1]
    keys = [json.loads(line)["key"] for line in [first, *rest.splitlines()]]
    assert len(keys) == 3000 and "late" not in keys
