"""SIGKILL a real ``newsmon poll`` between storing an alert and delivering it; a restart delivers it once.

The webhook's port first belongs to a socket that listens but never accepts: the poll stores the article and
its alert, claims the alert and blocks in the send. The test kills the process there (SIGKILL: no cleanup),
puts a real receiver on that port, and polls again: the dead process's claim is released, the alert goes out
exactly once, and a third poll sends nothing.
"""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from pathlib import Path

import pytest

from tests.feedserver import FeedServer
from tests.http_receiver import HttpReceiver

REPO = Path(__file__).resolve().parents[1]


def _env() -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("NEWSMON_")}
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def _rss(published: datetime) -> str:
    date = format_datetime(published, usegmt=True)
    return ('<?xml version="1.0"?><rss version="2.0"><channel><title>Desk</title><link>http://news.example.org/</link>'
            '<item><title>Mali: the junta announces elections in Bamako for 2027</title>'
            '<link>http://news.example.org/mali-elections</link><guid>mali-elections</guid>'
            f'<pubDate>{date}</pubDate><description>Elections in Mali, Bamako says.</description></item>'
            '</channel></rss>')


def _claimed(db: Path) -> bool:
    if not db.exists():
        return False
    try:
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1)
        try:
            row = conn.execute("SELECT COUNT(*) FROM alerts WHERE claimed_by IS NOT NULL").fetchone()
        finally:
            conn.close()
    except sqlite3.OperationalError:
        return False
    return bool(row and row[0])


def _alert_rows(db: Path) -> list[tuple]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return conn.execute("SELECT status, attempts, claimed_by FROM alerts").fetchall()
    finally:
        conn.close()


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
def test_sigkill_between_storing_and_delivering_then_restart_delivers_once(tmp_path: Path) -> None:
    black_hole = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    black_hole.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    black_hole.bind(("127.0.0.1", 0))
    black_hole.listen(8)                         # accepts nothing: a send to it blocks until its timeout
    port = black_hole.getsockname()[1]
    db = tmp_path / "newsmon.db"
    with FeedServer() as feeds:
        feeds.add("/feed.xml", _rss(datetime.now(timezone.utc) - timedelta(hours=1)))
        config = tmp_path / "feeds.toml"
        config.write_text(
            f'[[feeds]]\nname = "Desk"\nurl = "{feeds.url("/feed.xml")}"\n'
            '[[rules]]\nname = "mali"\nquery = "Mali"\nchannels = ["hook"]\n'
            f'[[channels]]\nname = "hook"\nurl = "webhook:http://127.0.0.1:{port}/hook"\ntimeout = "60s"\n',
            encoding="utf-8")
        argv = [sys.executable, "-m", "monitor", "--config", str(config), "--db", str(db), "poll"]
        first = subprocess.Popen(argv, cwd=tmp_path, env=_env(), stdout=subprocess.DEVNULL,
                                 stderr=subprocess.PIPE)
        try:
            deadline = time.monotonic() + 60
            while not _claimed(db):
                assert first.poll() is None, first.stderr.read().decode() if first.stderr else ""
                assert time.monotonic() < deadline, "the poll never reached delivery"
                time.sleep(0.05)
            time.sleep(0.2)                          # it is now blocked in the send
        finally:
            first.send_signal(signal.SIGKILL)
            first.wait(timeout=10)
            if first.stderr:
                first.stderr.close()
        black_hole.close()
        assert [row[0] for row in _alert_rows(db)] == ["pending"]
        with HttpReceiver(port=port) as receiver:
            second = subprocess.run(argv, cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=120)
            assert second.returncode == 0, second.stderr
            assert len(receiver.accepted("/hook")) == 1
            body = receiver.accepted("/hook")[0].json()
            assert body["rule"] == "mali" and body["kind"] == "new"
            third = subprocess.run(argv, cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=120)
            assert third.returncode == 0, third.stderr
            assert len(receiver.requests) == 1
    assert _alert_rows(db) == [("sent", 1, None)]
