"""Disk trouble: a full disk and a read-only archive give a clear error and no corruption, and polling
resumes when space returns.

A full disk is simulated two ways: ``PRAGMA max_page_count`` just above the archive's size on the store's
own connection (the library path), and a real ``newsmon poll`` subprocess whose file-size limit
(``RLIMIT_FSIZE``) stops the archive and its WAL from growing (the command-line path). Read-only is
``mode=ro`` (as root, file permissions would not stop a write).
"""

from __future__ import annotations

import resource
import signal
import sqlite3
import subprocess
from pathlib import Path

import pytest

from monitor.config import Config, parse_config
from monitor.errors import ReadOnlyError, StoreError
from monitor.pipeline import build_context, poll_feeds
from monitor.store import Store
from tests.feedserver import FeedServer
from tests.test_robust_support import (
    article_keys, child_env, duplicates, integrity, newsmon_argv, rss_feed, run_newsmon, write_config,
)

FEEDS = 6
FIRST = 10
LATER = 300


def _serve(server: FeedServer, items: int) -> list[tuple[str, str]]:
    feeds = []
    for index in range(FEEDS):
        server.add(f"/f{index}.xml", rss_feed(f"f{index}", items))
        feeds.append((f"f{index}", server.url(f"/f{index}.xml")))
    return feeds


def _config(feeds: list[tuple[str, str]]) -> Config:
    return parse_config('[monitor]\ndefault_interval = "1s"\n' + "".join(
        f'[[feeds]]\nname = "{name}"\nurl = "{url}"\n' for name, url in feeds))


def _per_feed_counts(conn: sqlite3.Connection) -> dict[str, int]:
    return dict(conn.execute(
        "SELECT f.name, count(af.article_id) FROM feeds f LEFT JOIN article_feeds af ON af.feed_id = f.id "
        "GROUP BY f.name"))


def test_full_disk_during_poll_is_a_clear_error_then_polling_resumes(tmp_path: Path,
                                                                     feed_server: FeedServer) -> None:
    config = _config(_serve(feed_server, FIRST))
    names = [feed.name for feed in config.feeds]
    db = tmp_path / "archive.db"
    with Store.open(db) as store:
        store.sync_feeds(config.feeds)
        ctx = build_context(config, store)
        try:
            assert {result.status for result in poll_feeds(ctx, names, owner="disk")} == {"ok"}
            before = article_keys(db)
            pages = store.conn.execute("PRAGMA page_count").fetchone()[0]
            store.conn.execute(f"PRAGMA max_page_count = {pages + 250}")   # room for a feed or two, not six
            _serve(feed_server, LATER)

            with pytest.raises(StoreError) as caught:
                poll_feeds(ctx, names, owner="disk")
            assert "disk is full" in str(caught.value)
            # The poll stopped at the failure and says which feeds were done before it: those are stored.
            assert caught.value.poll_results is not None
            done = {result.feed for result in caught.value.poll_results if result.status == "ok"}
            assert 0 < len(done) < len(names)
            assert not store.conn.in_transaction
            assert integrity(db) == "ok"
            assert before <= article_keys(db)
            with store.reading() as conn:
                # one transaction per feed: a feed has all its new articles or none of them
                assert set(_per_feed_counts(conn).values()) <= {FIRST, LATER}
                assert all(_per_feed_counts(conn)[name] == LATER for name in done)
                assert conn.execute("SELECT count(*) FROM feeds WHERE lease_owner IS NOT NULL").fetchone()[0] == 0

            store.conn.execute("PRAGMA max_page_count = 1073741823")       # space is back
            results = poll_feeds(ctx, names, owner="disk")
            assert {result.feed for result in results if result.status == "unchanged"} == done
            assert {result.status for result in results if result.feed not in done} == {"ok"}
            with store.reading() as conn:
                assert set(_per_feed_counts(conn).values()) == {LATER}
        finally:
            ctx.fetcher.close()
    assert integrity(db) == "ok"
    assert duplicates(db) == {"keys": 0, "urls": 0, "links": 0}
    assert len(article_keys(db)) == FEEDS * LATER


def _limit_file_size(limit: int) -> None:
    """In the child, before exec: files may not grow past ``limit`` bytes; the write fails (EFBIG) instead
    of the process being killed by SIGXFSZ."""
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.RLIM_INFINITY))  # soft: can be lifted later


def test_newsmon_poll_on_a_full_disk_exits_with_a_message_then_resumes(tmp_path: Path,
                                                                       feed_server: FeedServer) -> None:
    feeds = _serve(feed_server, FIRST)
    config = write_config(tmp_path / "feeds.toml", feeds)
    db = tmp_path / "archive.db"
    first = run_newsmon(config, db, "poll", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    before = article_keys(db)
    checkpoint = sqlite3.connect(db)
    checkpoint.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    checkpoint.close()
    limit = db.stat().st_size + 64 * 1024            # a little room, far from enough for 1,740 new articles
    _serve(feed_server, LATER)

    full = subprocess.run(
        newsmon_argv("--config", str(config), "--db", str(db), "poll"), cwd=tmp_path, env=child_env(),
        capture_output=True, text=True, timeout=300, preexec_fn=lambda: _limit_file_size(limit),
    )

    assert full.returncode == 1, (full.returncode, full.stdout, full.stderr)
    assert "Traceback" not in full.stderr
    assert "error: archive" in full.stderr
    assert "disk is full" in full.stderr or "disk I/O error" in full.stderr, full.stderr
    assert integrity(db) == "ok"
    assert before <= article_keys(db)
    # Each feed printed as done before the failure has all its new articles stored.
    stored = _per_feed_counts(sqlite3.connect(db))
    printed = [line.split()[1] for line in full.stdout.splitlines() if line.startswith("ok ")]
    assert all(stored[name] == LATER for name in printed), (printed, stored)

    again = run_newsmon(config, db, "poll", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert len(article_keys(db)) == FEEDS * LATER
    assert integrity(db) == "ok"
    assert duplicates(db) == {"keys": 0, "urls": 0, "links": 0}


def test_read_only_archive_refuses_writes_without_damage(tmp_path: Path, feed_server: FeedServer) -> None:
    config = _config(_serve(feed_server, FIRST))
    names = [feed.name for feed in config.feeds]
    db = tmp_path / "archive.db"
    with Store.open(db) as store:
        store.sync_feeds(config.feeds)
        ctx = build_context(config, store)
        try:
            poll_feeds(ctx, names, owner="ro")
        finally:
            ctx.fetcher.close()
    before = article_keys(db)
    _serve(feed_server, LATER)

    with Store.open(db, readonly=True) as store:
        with pytest.raises(ReadOnlyError, match="read-only"):
            with store.transaction():
                pass
        ctx = build_context(config, store)
        try:
            with pytest.raises(ReadOnlyError):
                poll_feeds(ctx, names, owner="ro")
        finally:
            ctx.fetcher.close()
        with pytest.raises(sqlite3.OperationalError, match="readonly"):
            store.conn.execute("DELETE FROM articles")     # even SQL behind our back cannot write
    assert article_keys(db) == before
    assert integrity(db) == "ok"
    # and a normal open afterwards writes again
    with Store.open(db) as store:
        ctx = build_context(config, store)
        try:
            assert {result.status for result in poll_feeds(ctx, names, owner="rw")} == {"ok"}
        finally:
            ctx.fetcher.close()
    assert len(article_keys(db)) == FEEDS * LATER


def test_read_only_commands_on_a_missing_archive_say_so(tmp_path: Path) -> None:
    config = write_config(tmp_path / "feeds.toml", [("a", "http://127.0.0.1:9/feed")])
    result = run_newsmon(config, tmp_path / "none.db", "status", cwd=tmp_path)
    assert result.returncode == 1
    assert "no archive" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "none.db").exists()


def test_daemon_survives_a_full_disk_and_resumes_when_space_returns(tmp_path: Path,
                                                                    feed_server: FeedServer) -> None:
    """The daemon under a file-size limit: each poll fails with a logged StoreError, the daemon keeps
    running; once the limit is lifted (prlimit on the live process) it stores everything."""
    import time

    feeds = _serve(feed_server, FIRST)
    config = write_config(tmp_path / "feeds.toml", feeds)
    db = tmp_path / "archive.db"
    assert run_newsmon(config, db, "poll", cwd=tmp_path).returncode == 0
    checkpoint = sqlite3.connect(db)
    checkpoint.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    checkpoint.close()
    limit = db.stat().st_size + 64 * 1024
    _serve(feed_server, LATER)
    log_path = tmp_path / "daemon.log"
    with log_path.open("w") as log_file:
        daemon = subprocess.Popen(
            newsmon_argv("--config", str(config), "--db", str(db), "run"), cwd=tmp_path,
            env=child_env({"NEWSMON_TICK": "0.25", "NEWSMON_DELIVER_EVERY": "1"}), stdout=subprocess.DEVNULL,
            stderr=log_file, preexec_fn=lambda: _limit_file_size(limit))
        try:
            deadline = time.monotonic() + 60
            while "disk is full" not in log_path.read_text() and "disk I/O error" not in log_path.read_text():
                assert daemon.poll() is None, log_path.read_text()[-3000:]
                assert time.monotonic() < deadline, log_path.read_text()[-3000:]
                time.sleep(0.2)
            time.sleep(1.0)
            assert daemon.poll() is None, "the daemon stopped on a full disk"
            assert integrity(db) == "ok"

            resource.prlimit(daemon.pid, resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
            deadline = time.monotonic() + 120
            while len(article_keys(db)) < FEEDS * LATER:
                assert daemon.poll() is None, log_path.read_text()[-3000:]
                assert time.monotonic() < deadline, "the daemon did not resume after space returned"
                time.sleep(0.25)
        finally:
            daemon.send_signal(signal.SIGTERM)
            code = daemon.wait(timeout=60)
    assert code == 0, log_path.read_text()[-3000:]
    # each failed poll was logged (with the archive's path and the cause), and the daemon carried on
    assert "error=archive" in log_path.read_text()
    assert integrity(db) == "ok"
    assert duplicates(db) == {"keys": 0, "urls": 0, "links": 0}
