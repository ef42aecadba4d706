"""Concurrent use: read-only commands (`feeds list`, `status`, `search`) in a loop while a real
``newsmon poll`` subprocess writes many feeds into the same archive. No "database is locked", every
reader exits 0, and a library reader (``Store.open(readonly=True)`` + ``search()``) in a thread of the
test process sees a consistent archive all along (article count never goes down, integrity ok).
"""

from __future__ import annotations

import json
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import Callable

import pytest

from monitor.search import search
from monitor.store import Store
from tests.feedserver import FeedServer
from tests.test_robust_support import (
    article_keys, child_env, integrity, newsmon_argv, rss_feed, run_newsmon, write_config,
)

FEEDS = 80
ITEMS = 50


def _reader_commands(config: Path, db: Path) -> list[list[str]]:
    base = ["--config", str(config), "--db", str(db)]
    return [
        newsmon_argv(*base, "feeds", "list", "--format", "json"),
        newsmon_argv(*base, "status", "--format", "json"),
        newsmon_argv(*base, "search", "Report AND harvest", "--format", "json", "--limit", "5"),
    ]


def _loop_readers(commands: list[list[str]], cwd: Path, writer: subprocess.Popen,
                  results: list[tuple[str, int, str]]) -> None:
    index = 0
    while writer.poll() is None:
        command = commands[index % len(commands)]
        index += 1
        done = subprocess.run(command, cwd=cwd, env=child_env(), capture_output=True, text=True, timeout=120)
        results.append((" ".join(command[7:9]), done.returncode, done.stderr))
        if done.returncode == 0 and "--format" in command:
            json.loads(done.stdout)   # a whole JSON document, never a torn one


def _stop_daemon_when_stored(daemon: subprocess.Popen, db: Path, total: int) -> None:
    deadline = time.monotonic() + 300
    while daemon.poll() is None and time.monotonic() < deadline:
        if db.exists() and len(article_keys(db)) >= total:
            break
        time.sleep(0.25)
    time.sleep(3.0)                       # a few more ticks: re-polls (unchanged) and upkeep write too
    daemon.send_signal(signal.SIGTERM)


def _library_reader(db: Path, writer: subprocess.Popen, counts: list[int], errors: list[str]) -> None:
    while writer.poll() is None:
        if not db.exists():
            time.sleep(0.05)
            continue
        try:
            with Store.open(db, readonly=True) as store:
                counts.append(store.counts()["articles"])
                with store.reading() as conn:
                    search(conn, "harvest AND roads", limit=3)
        except Exception as exc:  # noqa: BLE001 - the test records any failure to report it below
            errors.append(f"{type(exc).__name__}: {exc}")
        time.sleep(0.02)


@pytest.mark.parametrize("writer_command", ["poll", "run"])
def test_readers_while_newsmon_writes(writer_command: str, tmp_path: Path, feed_server: FeedServer,
                                      record_property: Callable[[str, object], None]) -> None:
    """The writer is `newsmon poll` (one pass) or the daemon `newsmon run` (stopped with SIGTERM once it
    has stored everything and polled again)."""
    feeds = []
    for index in range(FEEDS):
        route = f"/f{index}.xml"
        feed_server.add(route, rss_feed(f"f{index}", ITEMS))
        feeds.append((f"f{index}", feed_server.url(route)))
    config = write_config(tmp_path / "feeds.toml", feeds, monitor="concurrency = 4\nper_host = 4")
    db = tmp_path / "archive.db"
    # The archive exists (migrated) before the readers start: read-only commands never create it.
    assert run_newsmon(config, db, "init", cwd=tmp_path).returncode == 0

    writer = subprocess.Popen(newsmon_argv("--config", str(config), "--db", str(db), writer_command),
                              cwd=tmp_path, env=child_env({"NEWSMON_TICK": "0.25"}), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    results: list[tuple[str, int, str]] = []
    counts: list[int] = []
    errors: list[str] = []
    commands = _reader_commands(config, db)
    threads = [threading.Thread(target=_loop_readers, args=(commands[i:] + commands[:i], tmp_path, writer, results))
               for i in range(2)]
    threads.append(threading.Thread(target=_library_reader, args=(db, writer, counts, errors)))
    for thread in threads:
        thread.start()
    if writer_command == "run":
        _stop_daemon_when_stored(writer, db, FEEDS * ITEMS)
    out, err = writer.communicate(timeout=600)
    for thread in threads:
        thread.join(timeout=180)

    assert writer.returncode == 0, err
    assert "database is locked" not in err.lower() and "is busy" not in err.lower(), err
    assert results, "no reader ran while the poll wrote"
    for name, code, stderr in results:
        assert code == 0, (name, stderr)
        assert "locked" not in stderr.lower() and "Traceback" not in stderr, (name, stderr)
    assert errors == []
    assert counts == sorted(counts), "a reader saw the article count go down"
    assert counts[0] < counts[-1], "the library reader never overlapped the writes"
    assert len(results) >= 4 and {name for name, _, _ in results} >= {"feeds list", "status --format"}
    record_property("readers", len(results))
    record_property("library_reads", len(counts))
    assert counts and counts[-1] <= FEEDS * ITEMS
    assert integrity(db) == "ok"
    final = Store.open(db, readonly=True)
    try:
        assert final.counts()["articles"] == FEEDS * ITEMS
    finally:
        final.close()
