"""`newsmon export` / `newsmon import`: a real polled archive exported, imported into an empty one
(articles and feed links reproduced, searchable, grouped, no alerts), imported twice (nothing added),
and bad lines refused with their line number before anything is stored."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Iterator

import pytest
from click.testing import CliRunner, Result

from monitor.cli import cli
from tests.conftest import CORPORA
from tests.feedserver import FeedServer
from tests.test_cli_search import LABELLED, build_archive

ARTICLE_COLUMNS = ("key", "url", "guid", "title", "summary", "content", "published", "published_source", "undated",
                   "first_seen", "language", "authors", "categories", "domain", "fingerprint")


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[str]]:
    if not CORPORA.is_dir():
        pytest.skip("../shared/corpora is not present beside the repository")
    folder = tmp_path_factory.mktemp("export")
    with FeedServer() as server:
        yield build_archive(folder, server)


def invoke(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args))


def articles(db: Path) -> set[tuple]:
    conn = sqlite3.connect(db)
    try:
        return set(conn.execute(f"SELECT {', '.join(ARTICLE_COLUMNS)} FROM articles"))
    finally:
        conn.close()


def links(db: Path) -> set[tuple]:
    conn = sqlite3.connect(db)
    try:
        return set(conn.execute(
            "SELECT a.key, f.name, f.url, af.first_seen FROM article_feeds af JOIN articles a ON a.id = af.article_id "
            "JOIN feeds f ON f.id = af.feed_id"))
    finally:
        conn.close()


def count(db: Path, table: str) -> int:
    conn = sqlite3.connect(db)
    try:
        return conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
    finally:
        conn.close()


def test_export_then_import_reproduces_articles_and_feed_links(source: list[str], tmp_path: Path) -> None:
    config, db = source[1], Path(source[3])
    dump = tmp_path / "dump.jsonl"
    exported = invoke(*source, "export", "--format", "jsonl", "--output", str(dump))
    assert exported.exit_code == 0, exported.output
    lines = [json.loads(line) for line in dump.read_text(encoding="utf-8").splitlines()]
    assert len(lines) == count(db, "articles") > 500
    first = lines[0]
    assert {"key", "url", "guid", "title", "published", "language", "authors", "categories", "feeds"} <= set(first)
    assert {"name", "url", "first_seen"} <= set(first["feeds"][0])

    target = tmp_path / "copy.db"
    imported = invoke("--config", config, "--db", str(target), "import", str(dump))
    assert imported.exit_code == 0, imported.output
    assert f"imported {len(lines)} new articles" in imported.output
    assert articles(target) == articles(db)
    assert links(target) == links(db)
    assert count(target, "alerts") == 0, "old articles never alert"
    assert count(target, "story_articles") == count(target, "articles"), "every imported article is in a story"
    assert count(target, "matches") == count(db, "matches")

    found = invoke("--config", config, "--db", str(target), "search", "Bamako", "--feed", "Desk", "--format", "json")
    assert [hit["title"] for hit in json.loads(found.output)] == [LABELLED[0][1]]

    again = invoke("--config", config, "--db", str(target), "import", str(dump))
    assert again.exit_code == 0 and "imported 0 new articles" in again.output
    assert f"{len(lines)} already stored" in again.output
    assert articles(target) == articles(db) and links(target) == links(db)


def test_import_twice_changes_nothing(source: list[str], tmp_path: Path) -> None:
    config = source[1]
    dump = tmp_path / "dump.jsonl"
    assert invoke(*source, "export", "--output", str(dump)).exit_code == 0
    target = tmp_path / "twice.db"
    assert invoke("--config", config, "--db", str(target), "import", str(dump)).exit_code == 0
    tables = ("articles", "article_feeds", "feeds", "stories", "story_articles", "story_sources", "matches", "alerts")
    before = {table: count(target, table) for table in tables}
    assert invoke("--config", config, "--db", str(target), "import", str(dump)).exit_code == 0
    assert {table: count(target, table) for table in tables} == before
    # into the very archive it came from: nothing either
    original = {table: count(Path(source[3]), table) for table in tables}
    assert invoke(*source, "import", str(dump)).exit_code == 0
    assert {table: count(Path(source[3]), table) for table in tables} == original


def test_export_since_and_stdout(source: list[str]) -> None:
    everything = invoke(*source, "export")
    recent = invoke(*source, "export", "--since", "2026-02-16T12:00")
    assert everything.exit_code == 0 and recent.exit_code == 0
    all_lines = [json.loads(line) for line in everything.output.splitlines()]
    recent_lines = [json.loads(line) for line in recent.output.splitlines()]
    assert 0 < len(recent_lines) < len(all_lines)
    assert all(line["published"] >= "2026-02-16T12:00:00Z" for line in recent_lines)
    bad = invoke(*source, "export", "--since", "soon")
    assert bad.exit_code == 2 and "--since" in bad.output


GOOD = {"key": "guid:x1", "url": "https://x.example.org/1", "guid": "x1", "title": "Bamako: un accord",
        "summary": "", "content": "", "published": "2026-02-17T08:00:00Z", "first_seen": "2026-02-17T08:05:00Z",
        "language": "fr", "authors": [], "categories": [], "feeds": [{"name": "X", "url": "https://x.example.org/f"}]}


@pytest.mark.parametrize("bad_line, message", [
    ("{not json", "line 2: not valid JSON"),
    (json.dumps({**GOOD, "key": "guid:x2", "published": "yesterday"}), "line 2: not an exported article: 'published'"),
    (json.dumps({**GOOD, "key": "guid:x2", "feeds": []}), "line 2: not an exported article: 'feeds'"),
    (json.dumps(["a list"]), "line 2: not an exported article: expected a JSON object"),
    (json.dumps({**GOOD, "key": None}), "line 2: not an exported article: missing 'key'"),
])
def test_bad_line_is_named_and_nothing_is_stored(source: list[str], tmp_path: Path, bad_line: str,
                                                 message: str) -> None:
    db = Path(source[3])
    before = (count(db, "articles"), count(db, "article_feeds"), count(db, "feeds"))
    dump = tmp_path / "bad.jsonl"
    dump.write_text(json.dumps(GOOD) + "\n" + bad_line + "\n", encoding="utf-8")
    result = invoke(*source, "import", str(dump))
    assert result.exit_code == 2, result.output
    assert message in result.output and "Traceback" not in result.output
    assert (count(db, "articles"), count(db, "article_feeds"), count(db, "feeds")) == before


def test_import_missing_file_and_not_utf8(source: list[str], tmp_path: Path) -> None:
    missing = invoke(*source, "import", str(tmp_path / "nope.jsonl"))
    assert missing.exit_code == 2 and "no file" in missing.output
    latin = tmp_path / "latin.jsonl"
    latin.write_bytes(json.dumps({**GOOD, "title": "é"}, ensure_ascii=False).encode("latin-1") + b"\n")
    result = invoke(*source, "import", str(latin))
    assert result.exit_code == 2 and "not UTF-8" in result.output


# Control characters (an ESC sequence, BEL), invisible ones (zero-width space, soft hyphen, BOM) and runs of
# white space, in text with no markup. (feedparser reads a C1 control as the windows-1252 character.)
DIRTY_TEXT = "Bamako\x1b[31m talks\x07 zero\u200bwidth soft\u00adhyphen \ufeffbom  two\tspaces"


def test_import_stores_the_text_a_poll_stores(tmp_path: Path) -> None:
    """The same title and summary, polled from a feed and imported from a file, are stored the same: import
    stored control and invisible characters as given, where a poll cleans them."""
    config, db = tmp_path / "feeds.toml", tmp_path / "archive.db"
    summary = f"{DIRTY_TEXT}\r\n\r\n  second\x1b paragraph "
    with FeedServer() as server:
        server.add("/dirty.xml", '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>T</title>'
                   "<link>http://news.example.org/</link><description>d</description><item>"
                   f"<title>{DIRTY_TEXT}</title><link>http://news.example.org/polled</link>"
                   f"<guid>polled-article-1</guid><description>{summary}</description></item></channel></rss>")
        config.write_text(f'[[feeds]]\nname = "dirty"\nurl = "{server.url("/dirty.xml")}"\n', encoding="utf-8")
        polled = invoke("--config", str(config), "--db", str(db), "poll")
        assert polled.exit_code == 0, polled.output
    dump = tmp_path / "dirty.jsonl"
    dump.write_text(json.dumps({
        "key": "guid:imported-article-1", "url": "http://news.example.org/imported", "title": DIRTY_TEXT,
        "summary": summary, "published": "2026-02-17T08:00:00Z", "authors": [f"A.\x9b {DIRTY_TEXT}"],
        "feeds": [{"name": "dirty", "url": server.url("/dirty.xml")}],
    }) + "\n", encoding="utf-8")
    imported = invoke("--config", str(config), "--db", str(db), "import", str(dump))
    assert imported.exit_code == 0, imported.output
    conn = sqlite3.connect(db)
    try:
        rows = dict(conn.execute("SELECT key, json_array(title, summary, content) FROM articles"))
        authors = conn.execute("SELECT authors FROM articles WHERE key = 'guid:imported-article-1'").fetchone()[0]
    finally:
        conn.close()
    assert rows["guid:imported-article-1"] == rows["guid:polled-article-1"]
    title, text, _ = json.loads(rows["guid:imported-article-1"])
    assert title == "Bamako[31m talks zerowidth softhyphen bom two spaces"
    assert text == f"{title}\nsecond paragraph"
    assert json.loads(authors) == [f"A. {title}"]
