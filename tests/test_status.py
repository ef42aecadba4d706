"""Status figures, heartbeat liveness, retention and backup on real SQLite archives."""

from __future__ import annotations

import dataclasses
import json
import os
import socket
import sqlite3
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from monitor.config import parse_config
from monitor.errors import UsageError
from monitor.models import Article
from monitor.pipeline import ingest_articles
from monitor.store import Store
from monitor.store.retention import delete_old_articles, run_retention
from monitor.store.schema import CORE_SCHEMA, FTS_SCHEMA, run_script
from monitor.store.status import (
    backup,
    collect_status,
    daemon_state,
    read_heartbeat,
    write_heartbeat,
)
from monitor.timeutil import to_iso

NOW = datetime(2026, 2, 17, 8, 0, 0, tzinfo=timezone.utc)
REPO = Path(__file__).resolve().parents[1]


def article(key: str, title: str, *, when: datetime) -> Article:
    return Article(
        key=f"guid:{key}", url=f"https://news.example.org/{key}", guid=key, title=title, summary=f"{title} summary",
        content="", published=when, published_source="published", undated=False, first_seen=when,
        language="en", domain="news.example.org", fingerprint=key,
    )


@pytest.fixture
def store(tmp_path: Path) -> Store:
    opened = Store.open(tmp_path / "archive.db")
    yield opened
    opened.close()


def add_feed(store: Store, name: str, **cols: object) -> None:
    values = {"name": name, "url": f"https://{name}.example.org/rss", "created": to_iso(NOW)}
    values.update(cols)
    with store.transaction() as conn:
        conn.execute(f"INSERT INTO feeds ({', '.join(values)}) VALUES ({', '.join('?' for _ in values)})",
                     tuple(values.values()))


# --------------------------------------------------------------------------- heartbeat


def test_heartbeat_round_trip_and_liveness(store: Store) -> None:
    with store.transaction() as conn:
        write_heartbeat(conn, {"pid": str(os.getpid()), "host": socket.gethostname(), "started": to_iso(NOW),
                               "last_tick": to_iso(NOW), "stats": {"polls": 3}})
    beat = read_heartbeat(store.conn)
    assert beat["pid"] == str(os.getpid()) and json.loads(beat["stats"]) == {"polls": 3}
    alive = daemon_state(beat, now=NOW + timedelta(seconds=5))
    assert alive.running and alive.stats == {"polls": 3}
    stale = daemon_state(beat, now=NOW + timedelta(minutes=10))
    assert not stale.running and "no heartbeat" in stale.reason
    with store.transaction() as conn:
        write_heartbeat(conn, {"pid": None, "stopped": to_iso(NOW)})
    stopped = daemon_state(read_heartbeat(store.conn), now=NOW)
    assert not stopped.running and stopped.reason == f"stopped at {to_iso(NOW)}"
    assert not daemon_state({}, now=NOW).running


def test_a_dead_pid_on_this_host_is_not_running() -> None:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    beat = {"pid": str(child.pid), "host": socket.gethostname(), "last_tick": to_iso(NOW)}
    state = daemon_state(beat, now=NOW)
    assert not state.running and "did not stop cleanly" in state.reason
    # on another host only the heartbeat's age can tell
    assert daemon_state({**beat, "host": "elsewhere"}, now=NOW).running


# --------------------------------------------------------------------------- status figures


def test_collect_status_counts_feeds_by_health(store: Store, tmp_path: Path) -> None:
    polled = {"last_fetch": to_iso(NOW - timedelta(minutes=10))}
    add_feed(store, "ok", last_success=to_iso(NOW), next_check=to_iso(NOW + timedelta(minutes=5)), **polled)
    add_feed(store, "due", next_check=to_iso(NOW - timedelta(minutes=1)))
    add_feed(store, "new")
    add_feed(store, "flaky", consecutive_errors=2, last_error="timed out", last_error_kind="timeout",
             next_check=to_iso(NOW + timedelta(minutes=5)), **polled)
    add_feed(store, "dead", consecutive_errors=7, last_error="HTTP 500", last_error_kind="http_status",
             last_status=500, next_check=to_iso(NOW + timedelta(hours=1)), **polled)
    add_feed(store, "gone", gone=1, last_error="HTTP 410", **polled)
    add_feed(store, "moved", permanent_url="https://moved.example.net/rss", next_check=to_iso(NOW + timedelta(hours=1)),
             **polled)
    add_feed(store, "unchanged", last_status=304, next_check=to_iso(NOW + timedelta(hours=1)), **polled)
    add_feed(store, "off", enabled=0)
    ingest_articles(store, "ok", [article("a", "Alpha", when=NOW)], now=NOW)
    report = collect_status(store.conn, db_path=tmp_path / "archive.db", now=NOW, failing_after=5)
    assert report["feeds"] == {
        "total": 9, "enabled": 8, "ok": 3, "erroring": 1, "failing": 1, "due": 2, "polling": 0, "gone": 1,
        "never_polled": 2, "disabled": 1,
    }
    feeds = report["feeds"]
    assert feeds["ok"] + feeds["never_polled"] + feeds["erroring"] + feeds["failing"] + feeds["gone"] == feeds["enabled"]
    assert [f["name"] for f in report["failing"]] == ["dead"]
    assert report["failing"][0]["last_error"] == "HTTP 500"
    assert [f["name"] for f in report["erroring"]] == ["flaky"]
    assert report["gone"][0]["name"] == "gone"
    assert report["moved"] == [{"name": "moved", "url": "https://moved.example.org/rss",
                                "permanent_url": "https://moved.example.net/rss"}]
    assert report["articles"] == 1 and report["stories"] == 1
    assert report["alerts"] == {"pending": 0, "sent": 0, "failed": 0, "held": 0}
    assert report["database"]["bytes"] > 0 and report["database"]["schema"] >= 1
    assert not report["daemon"]["running"]
    json.dumps(report)


def test_feeds_taken_out_of_the_config_are_not_reported_gone_or_moved(store: Store, tmp_path: Path) -> None:
    # status said "gone ... remove it from the config" (and "moved ... update the config") about feeds the
    # user had already removed, and counted them among the enabled feeds' states.
    polled = {"last_fetch": to_iso(NOW - timedelta(minutes=10))}
    add_feed(store, "kept", last_success=to_iso(NOW), next_check=to_iso(NOW + timedelta(minutes=5)), **polled)
    add_feed(store, "gone", gone=1, last_error="HTTP 410", **polled)
    add_feed(store, "moved", permanent_url="https://moved.example.net/rss", **polled)
    config = parse_config('[[feeds]]\nname = "kept"\nurl = "https://kept.example.org/rss"\n', "feeds.toml")
    store.sync_feeds(config.feeds, now=NOW)             # what a reload or `newsmon init` does after the edit
    report = collect_status(store.conn, db_path=tmp_path / "archive.db", now=NOW, failing_after=5)
    feeds = report["feeds"]
    assert (feeds["enabled"], feeds["ok"], feeds["gone"], feeds["disabled"]) == (1, 1, 0, 2)
    assert report["gone"] == [] and report["moved"] == []


def test_feeds_list_after_a_url_edit_shows_the_new_url_without_the_old_ones_advice(tmp_path: Path) -> None:
    """`feeds list` right after the URL is edited (no poll or reload yet): the old URL's 410, redirect and
    errors are not the new URL's; the row shows what the next poll will start from."""
    from click.testing import CliRunner

    from monitor.cli import cli

    db = tmp_path / "archive.db"
    with Store.open(db) as store:
        add_feed(store, "desk", url="https://old.example.org/rss", gone=1, last_error="HTTP 410 Gone",
                 consecutive_errors=3, permanent_url="https://elsewhere.example.org/rss",
                 next_check=to_iso(NOW + timedelta(hours=6)))
        add_feed(store, "kept", consecutive_errors=2, last_error="HTTP 500")
    config = tmp_path / "feeds.toml"
    config.write_text('[[feeds]]\nname = "desk"\nurl = "https://new.example.org/rss"\n'
                      '[[feeds]]\nname = "kept"\nurl = "https://kept.example.org/rss"\n', encoding="utf-8")
    result = CliRunner().invoke(cli, ["--config", str(config), "--db", str(db), "feeds", "list", "--format", "json"])
    assert result.exit_code == 0, result.output
    listed = {feed["name"]: feed for feed in json.loads(result.output)}
    desk = listed["desk"]
    assert desk["url"] == "https://new.example.org/rss"
    assert (desk["gone"], desk["moved_to"], desk["consecutive_errors"], desk["next_check"]) == (False, None, 0, None)
    assert listed["kept"]["consecutive_errors"] == 2                 # an unchanged URL keeps its health
    table = CliRunner().invoke(cli, ["--config", str(config), "--db", str(db), "feeds", "list"]).output
    assert "gone" not in table.splitlines()[0].lower() and "elsewhere" not in table


def test_feeds_list_of_a_bare_archive_lists_its_feeds(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An archive without its config (a copy, a backup on another machine): `feeds list` lists the feeds the
    archive holds with their health, as `status` and `search` work there; it said the config was missing."""
    from click.testing import CliRunner

    from monitor.cli import cli

    db = tmp_path / "archive.db"
    with Store.open(db) as store:
        add_feed(store, "wire", last_status=200, last_success=to_iso(NOW), tags='["sahel"]')
        add_feed(store, "desk", consecutive_errors=6, last_error="HTTP 500", enabled=0)
    runner = CliRunner()
    monkeypatch.chdir(tmp_path)                               # no config/feeds.toml here
    result = runner.invoke(cli, ["--db", str(db), "feeds", "list", "--format", "json"])
    table = runner.invoke(cli, ["--db", str(db), "feeds", "list"])
    missing = runner.invoke(cli, ["--db", str(tmp_path / "none.db"), "feeds", "list"])
    assert result.exit_code == 0, result.output
    listed = {feed["name"]: feed for feed in json.loads(result.output)}
    assert set(listed) == {"wire", "desk"}
    assert (listed["wire"]["url"], listed["wire"]["tags"], listed["wire"]["last_status"]) == (
        "https://wire.example.org/rss", ["sahel"], 200)
    assert (listed["desk"]["enabled"], listed["desk"]["failing"], listed["desk"]["consecutive_errors"]) == (False, True, 6)
    assert table.exit_code == 0 and "wire" in table.output and "disabled" in table.output
    assert missing.exit_code == 2 and "no such file" in missing.output   # neither config nor archive


def test_status_of_an_older_archive_without_story_and_alert_tables(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "old.db")
    run_script(conn, CORE_SCHEMA)
    run_script(conn, FTS_SCHEMA)
    conn.commit()
    report = collect_status(conn, db_path=tmp_path / "old.db", now=NOW, failing_after=5)
    assert report["articles"] == 0 and report["stories"] is None and report["alerts"] is None
    # retention copes too
    result = delete_old_articles(lambda: _autocommit(conn), now=NOW, retention=timedelta(days=1))
    assert result.articles == 0
    conn.close()


class _autocommit:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def __enter__(self) -> sqlite3.Connection:
        return self.conn

    def __exit__(self, *exc: object) -> None:
        self.conn.commit()


# --------------------------------------------------------------------------- retention


def test_retention_keeps_recent_and_alerted_articles(store: Store) -> None:
    old = NOW - timedelta(days=400)
    ingest_articles(store, "wire", [article("old1", "Ancient harvest", when=old),
                                    article("old2", "Forgotten treaty", when=old),
                                    article("new1", "Fresh harvest", when=NOW)], now=old)
    with store.transaction() as conn:
        story_of = dict(conn.execute(
            "SELECT a.guid, sa.story_id FROM articles a JOIN story_articles sa ON sa.article_id = a.id"))
        conn.execute("INSERT INTO alerts (rule, story_id, channel, kind, status, created) "
                     "VALUES ('treaty', ?, 'log', 'new', 'sent', ?)", (story_of["old2"], to_iso(old)))
        conn.execute("INSERT INTO fetch_log (feed_id, at, outcome) SELECT id, ?, 'ok' FROM feeds", (to_iso(old),))
    result = run_retention(store, now=NOW, retention=timedelta(days=365))
    assert result.articles == 1 and result.fetch_log == 1 and result.stories >= 1
    rows = store.conn.execute("SELECT guid FROM articles ORDER BY guid").fetchall()
    assert rows == [("new1",), ("old2",)]
    # the FTS index follows (delete trigger), and no story row points at a deleted article
    fts = store.conn.execute("SELECT rowid FROM articles_fts WHERE articles_fts MATCH 'harvest'").fetchall()
    assert len(fts) == 1
    assert store.conn.execute(
        "SELECT COUNT(*) FROM story_articles WHERE article_id NOT IN (SELECT id FROM articles)").fetchone() == (0,)
    assert store.conn.execute("SELECT COUNT(*) FROM article_feeds WHERE article_id NOT IN "
                              "(SELECT id FROM articles)").fetchone() == (0,)
    assert store.conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    store.conn.execute("INSERT INTO articles_fts(articles_fts) VALUES ('integrity-check')")
    # idempotent
    assert run_retention(store, now=NOW, retention=timedelta(days=365)).articles == 0


def test_retention_takes_a_story_whole_once_its_newest_article_is_old(store: Store) -> None:
    """A story is never cut in two: while its newest article is within retention, its older ones stay (the
    story's headline, first outlet and article count go on describing articles the archive holds); once
    every article is older than the cutoff, the story goes whole."""
    text = "Niger junta suspends uranium exports to France after the Orano mine dispute"
    first, later = NOW - timedelta(days=367), NOW - timedelta(days=363)
    ingest_articles(store, "wire", [dataclasses.replace(article("early", text, when=first), fingerprint="same")],
                    now=first)
    ingest_articles(store, "desk", [dataclasses.replace(article("late", text, when=later), fingerprint="same")],
                    now=later)
    stories = store.conn.execute("SELECT DISTINCT story_id FROM story_articles").fetchall()
    assert len(stories) == 1                                           # one story, reported 4 days apart
    result = run_retention(store, now=NOW, retention=timedelta(days=365))
    assert result.articles == 0 and result.stories == 0
    story = store.conn.execute("SELECT first_feed, article_count FROM stories").fetchone()
    assert story == ("wire", 2)
    assert store.conn.execute("SELECT COUNT(*) FROM story_sources").fetchone() == (2,)
    result = run_retention(store, now=NOW + timedelta(days=3), retention=timedelta(days=365))
    assert result.articles == 2 and result.stories == 1
    assert store.conn.execute("SELECT COUNT(*) FROM stories").fetchone() == (0,)
    assert store.conn.execute("SELECT COUNT(*) FROM articles").fetchone() == (0,)


def test_retention_works_in_batches(store: Store) -> None:
    old = NOW - timedelta(days=30)
    ingest_articles(store, "wire", [article(f"k{i}", f"Item number {i}", when=old) for i in range(23)], now=old)
    result = delete_old_articles(store.transaction, now=NOW, retention=timedelta(days=7), batch=5)
    assert result.articles == 23
    assert store.conn.execute("SELECT COUNT(*) FROM articles").fetchone() == (0,)


# --------------------------------------------------------------------------- backup


def test_backup_refuses_to_overwrite_and_is_consistent(store: Store, tmp_path: Path) -> None:
    ingest_articles(store, "wire", [article("b1", "Backup me", when=NOW)], now=NOW)
    reader = Store.open(tmp_path / "archive.db", readonly=True)
    target = tmp_path / "copy.db"
    size = backup(reader.conn, target)
    assert size == target.stat().st_size > 0
    with pytest.raises(UsageError, match="--force"):
        backup(reader.conn, target)
    ingest_articles(store, "wire", [article("b2", "Second", when=NOW)], now=NOW)
    backup(reader.conn, target, force=True)
    copy = sqlite3.connect(target)
    assert copy.execute("SELECT COUNT(*) FROM articles").fetchone() == (2,)
    copy.close()
    with pytest.raises(UsageError, match="does not exist"):
        backup(reader.conn, tmp_path / "no" / "such" / "dir.db")
    assert not list(tmp_path.glob(".*.partial"))
    reader.close()


def test_status_command_without_a_daemon(store: Store, tmp_path: Path) -> None:
    add_feed(store, "wire", last_success=to_iso(NOW))
    config = tmp_path / "feeds.toml"
    config.write_text('[[feeds]]\nname = "wire"\nurl = "https://wire.example.org/rss"\n')
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    from tests.test_daemon import newsmon_argv

    done = subprocess.run(newsmon_argv("--config", str(config), "--db", str(tmp_path / "archive.db"), "status"),
                          capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "not running (no daemon has run on this archive)" in done.stdout
    assert "1 enabled: 1 ok, 0 never polled," in done.stdout
    missing = subprocess.run(newsmon_argv("--config", str(config), "--db", str(tmp_path / "none.db"), "status"),
                             capture_output=True, text=True, env=env, timeout=120)
    assert missing.returncode == 1 and missing.stderr.startswith("error:") and "Traceback" not in missing.stderr


def test_status_after_init_counts_no_feed_as_ok(tmp_path: Path) -> None:
    """A fresh archive's feeds have never been polled: none of them is ok yet (text and JSON agree)."""
    from tests.test_daemon import newsmon_argv

    env = {**os.environ, "PYTHONPATH": str(REPO)}
    base = ("--config", str(tmp_path / "feeds.toml"), "--db", str(tmp_path / "archive.db"))
    init = subprocess.run(newsmon_argv(*base, "init"), capture_output=True, text=True, env=env, timeout=120)
    assert init.returncode == 0, init.stderr
    done = subprocess.run(newsmon_argv(*base, "status", "--format", "json"), capture_output=True, text=True,
                          env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    feeds = json.loads(done.stdout)["feeds"]
    assert feeds["enabled"] > 0
    assert feeds["ok"] == 0 and feeds["never_polled"] == feeds["enabled"] == feeds["due"]
    text = subprocess.run(newsmon_argv(*base, "status"), capture_output=True, text=True, env=env, timeout=120)
    assert f"{feeds['enabled']} enabled: 0 ok, {feeds['enabled']} never polled, 0 with errors" in text.stdout


def test_status_counts_a_feed_just_added_as_feeds_list_does(tmp_path: Path) -> None:
    """Right after `feeds add` (no poll or reload yet) status counted the feeds the archive held: one fewer
    than `feeds list`. It counts the configured feeds, as `feeds list` lists them; a bare archive's as held."""
    from tests.feedserver import FeedServer
    from tests.test_daemon import child_env, newsmon_argv

    env = child_env()
    config = tmp_path / "feeds.toml"
    base = ("--config", str(config), "--db", str(tmp_path / "archive.db"))

    def newsmon(*args: str, cwd: Path = tmp_path) -> str:
        done = subprocess.run(newsmon_argv(*args), capture_output=True, text=True, env=env, timeout=120, cwd=cwd)
        assert done.returncode == 0, done.stderr
        return done.stdout

    newsmon(*base, "init")
    with FeedServer() as server:
        server.add("/extra.xml", '<?xml version="1.0"?><rss version="2.0"><channel><title>Extra</title>'
                   "<link>http://e.org/</link><description>d</description><item><title>a</title>"
                   "<link>http://e.org/a</link></item></channel></rss>")
        newsmon(*base, "feeds", "add", server.url("/extra.xml"), "--name", "Extra desk")
    listed = json.loads(newsmon(*base, "feeds", "list", "--format", "json"))
    feeds = json.loads(newsmon(*base, "status", "--format", "json"))["feeds"]
    assert "Extra desk" in {feed["name"] for feed in listed}
    assert feeds["total"] == feeds["enabled"] == feeds["never_polled"] == len(listed)
    text = newsmon(*base, "status")
    assert f"{len(listed)} enabled: 0 ok, {len(listed)} never polled" in text
    bare = json.loads(newsmon("--db", str(tmp_path / "archive.db"), "status", "--format", "json"))["feeds"]
    assert bare["total"] == bare["enabled"] == len(listed) - 1           # without the config: the archive's


def test_upkeep_checkpoint_and_optimize(store: Store, tmp_path: Path) -> None:
    from monitor.store.status import checkpoint, optimize

    ingest_articles(store, "wire", [article("c1", "Checkpoint", when=NOW)], now=NOW)
    assert (tmp_path / "archive.db-wal").stat().st_size > 0
    other = sqlite3.connect(tmp_path / "archive.db", isolation_level=None)
    busy, _, _ = checkpoint(other)
    other.close()
    assert busy == 0
    assert (tmp_path / "archive.db-wal").stat().st_size == 0     # TRUNCATE
    optimize(store.conn)
