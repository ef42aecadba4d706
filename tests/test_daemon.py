"""The real daemon (``python -m monitor ... run``) as a subprocess against a loopback feed server.

Checked from what the server saw (request times) and what the archive holds: polling on schedule and
no burst after a restart, Retry-After and backoff, SIGTERM with an in-flight poll, SIGHUP reload,
``newsmon poll`` racing the daemon, the outage rule, sd_notify, backup while running, and the unit file.
Time limits below are generous upper bounds for a broken daemon, not performance thresholds.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from email.utils import format_datetime
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Callable, Iterator

import pytest

from monitor.sdnotify import Notifier, watchdog_interval
from tests.feedserver import FeedServer, RequestRecord, Response

REPO = Path(__file__).resolve().parents[1]
TICK = "0.25"


def newsmon_argv(*args: str) -> list[str]:
    """``python -m monitor ...``"""
    return [sys.executable, "-m", "monitor", *args]


def child_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NEWSMON_", "NOTIFY_SOCKET", "WATCHDOG_"))}
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    env["NEWSMON_TICK"] = TICK
    env["NEWSMON_DELIVER_EVERY"] = "1"
    env.update(extra or {})
    return env


def rss(*items: tuple[str, str]) -> str:
    entries = "".join(
        f"<item><title>{title}</title><link>http://news.example.org/{guid}</link><guid>{guid}</guid>"
        f"<pubDate>Tue, 17 Feb 2026 08:00:00 GMT</pubDate><description>{title} text</description></item>"
        for guid, title in items
    )
    return (f'<?xml version="1.0"?><rss version="2.0"><channel><title>T</title><link>http://news.example.org/</link>'
            f"{entries}</channel></rss>")


def feed_toml(name: str, url: str, interval: str | None = None) -> str:
    text = f'[[feeds]]\nname = "{name}"\nurl = "{url}"\n'
    return text + (f'interval = "{interval}"\n' if interval else "")


def config_text(*feeds: str, **monitor: object) -> str:
    settings = {"default_interval": "1s", "shutdown_grace": "10s", "backoff_max": "8s", "failing_after": 3}
    settings.update(monitor)
    lines = ["[monitor]"]
    for key, value in settings.items():
        lines.append(f"{key} = {value}" if isinstance(value, int) else f'{key} = "{value}"')
    return "\n".join(lines) + "\n\n" + "\n".join(feeds)


def wait_until(predicate: Callable[[], object], timeout: float = 20.0, what: str = "condition") -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def gaps(records: list[RequestRecord]) -> list[float]:
    return [b.time - a.time for a, b in zip(records, records[1:])]


class Newsmon:
    """One test's config, archive and daemon process."""

    def __init__(self, tmp_path: Path, config: str, env: dict[str, str] | None = None) -> None:
        self.dir = tmp_path
        self.config = tmp_path / "feeds.toml"
        self.db = tmp_path / "archive.db"
        self.config.write_text(config)
        self.env = child_env(env)
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = tmp_path / "daemon.log"
        self._log_file = None

    def argv(self, *args: str) -> list[str]:
        return newsmon_argv("--config", str(self.config), "--db", str(self.db), *args)

    def start(self) -> Newsmon:
        self._log_file = open(self.log_path, "ab")
        self.proc = subprocess.Popen(self.argv("run"), cwd=self.dir, env=self.env, stdout=subprocess.DEVNULL,
                                     stderr=self._log_file)
        wait_until(lambda: "daemon started" in self.log() or self.proc.poll() is not None, what="daemon start")
        assert self.proc.poll() is None, self.log()
        return self

    def signal(self, signum: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(signum)

    def stop(self, timeout: float = 60) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout=timeout)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
            if self._log_file is not None:
                self._log_file.close()
        return code

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(self.argv(*args), cwd=self.dir, env=self.env, capture_output=True, text=True,
                              timeout=120)
        if check:
            assert done.returncode == 0, done.stderr
        return done

    def status(self) -> dict:
        import json

        return json.loads(self.cli("status", "--format", "json").stdout)

    def feed(self, name: str) -> dict:
        conn = sqlite3.connect(f"file:{self.db}?mode=ro", uri=True, timeout=30)
        conn.row_factory = sqlite3.Row
        try:
            row = conn.execute("SELECT * FROM feeds WHERE name = ?", (name,)).fetchone()
            return dict(row) if row else {}
        finally:
            conn.close()

    def query(self, sql: str, *params: object) -> list[tuple]:
        conn = sqlite3.connect(f"file:{self.db}?mode=ro", uri=True, timeout=30)
        try:
            return conn.execute(sql, params).fetchall()
        finally:
            conn.close()


@pytest.fixture
def server() -> Iterator[FeedServer]:
    with FeedServer() as feed_server:
        yield feed_server


@pytest.fixture
def running() -> Iterator[list[Newsmon]]:
    """Collects daemons started by a test and makes sure none outlives it."""
    daemons: list[Newsmon] = []
    yield daemons
    for daemon in daemons:
        if daemon.proc is not None and daemon.proc.poll() is None:
            daemon.stop(timeout=30)


# --------------------------------------------------------------------------- schedule


def test_polls_on_schedule_and_restart_causes_no_burst(tmp_path: Path, server: FeedServer, running: list) -> None:
    server.add("/fast.xml", rss(("f1", "Fast one")), etag='"fast"')
    server.add("/slow.xml", rss(("s1", "Slow one")), etag='"slow"')
    server.add("/lazy.xml", rss(("l1", "Lazy one")), etag='"lazy"')
    daemon = Newsmon(tmp_path, config_text(
        feed_toml("fast", server.url("/fast.xml"), "1s"),
        feed_toml("slow", server.url("/slow.xml"), "3s"),
        feed_toml("lazy", server.url("/lazy.xml"), "1h"),
    ))
    running.append(daemon.start())
    wait_until(lambda: len(server.requests_for("/slow.xml")) >= 4, timeout=30, what="four polls of slow")
    status = daemon.status()
    assert daemon.stop() == 0
    fast, slow = server.requests_for("/fast.xml"), server.requests_for("/slow.xml")
    # 1 s feeds are polled about every second, 3 s feeds every 3-4 s (jitter +/-10 %; the archive keeps whole
    # seconds, so the first gap after start may be up to one second short)
    assert all(0.1 < gap < 2.6 for gap in gaps(fast)), gaps(fast)
    assert all(0.7 < gap < 2.6 for gap in gaps(fast)[1:]), gaps(fast)
    assert all(1.9 < gap < 4.8 for gap in gaps(slow)), gaps(slow)
    assert all(2.5 < gap < 4.8 for gap in gaps(slow)[1:]), gaps(slow)
    assert len(server.requests_for("/lazy.xml")) == 1
    # conditional GET after the first poll
    assert all(r.headers.get("if-none-match") == '"fast"' for r in fast[1:])
    assert status["daemon"]["running"] and status["daemon"]["pid"] == daemon.proc.pid
    assert status["feeds"]["enabled"] == 3 and status["articles"] == 3

    # restart: the archive says what is due, so the hourly feed is not fetched again and nothing bursts
    before = {path: len(server.requests_for(path)) for path in ("/fast.xml", "/slow.xml", "/lazy.xml")}
    restarted = Newsmon(tmp_path, daemon.config.read_text())
    running.append(restarted.start())
    time.sleep(2.5)
    assert restarted.stop() == 0
    assert len(server.requests_for("/lazy.xml")) == before["/lazy.xml"]
    assert len(server.requests_for("/slow.xml")) - before["/slow.xml"] <= 1
    assert "network appears down" not in daemon.log() + restarted.log()


def test_a_check_scheduled_under_a_clock_that_was_ahead_is_due_at_the_next_start(
        tmp_path: Path, server: FeedServer, running: list) -> None:
    """A daemon that ran while the system clock was a year ahead left next checks a year away; once the clock
    is right again, a restart polls those feeds instead of leaving them a year. A check within the schedule's
    reach (an hourly feed due in 30 minutes) is left as it is."""
    server.add("/ahead.xml", rss(("a1", "Ahead")), etag='"a"')
    server.add("/hourly.xml", rss(("h1", "Hourly")), etag='"h"')
    daemon = Newsmon(tmp_path, config_text(feed_toml("ahead", server.url("/ahead.xml"), "1h"),
                                           feed_toml("hourly", server.url("/hourly.xml"), "1h"), cache_max="1h"))
    running.append(daemon.start())
    wait_until(lambda: server.requests_for("/ahead.xml") and server.requests_for("/hourly.xml"), what="first polls")
    assert daemon.stop() == 0
    now = datetime.now(timezone.utc)
    conn = sqlite3.connect(daemon.db)   # what the polls under a clock a year ahead wrote
    with conn:
        conn.execute("UPDATE feeds SET next_check = ? WHERE name = 'ahead'",
                     ((now + timedelta(days=365)).strftime("%Y-%m-%dT%H:%M:%SZ"),))
        conn.execute("UPDATE feeds SET next_check = ? WHERE name = 'hourly'",
                     ((now + timedelta(minutes=30)).strftime("%Y-%m-%dT%H:%M:%SZ"),))
    conn.close()
    restarted = Newsmon(tmp_path, daemon.config.read_text())
    running.append(restarted.start())
    wait_until(lambda: len(server.requests_for("/ahead.xml")) >= 2, what="the feed scheduled a year ahead")
    assert restarted.stop() == 0
    assert len(server.requests_for("/hourly.xml")) == 1
    assert "the system clock went back" in restarted.log()


def test_retry_after_is_honoured_and_errors_back_off(tmp_path: Path, server: FeedServer, running: list) -> None:
    server.add("/busy.xml", "busy", status=503, headers={"Retry-After": "4"}, content_type="text/plain")

    def slow_down(record: RequestRecord) -> Response:
        later = format_datetime(datetime.now(timezone.utc) + timedelta(seconds=6), usegmt=True)
        return Response(status=429, body="slow down", headers={"Retry-After": later}, content_type="text/plain")

    server.add("/dated.xml", handler=slow_down)
    server.add("/broken.xml", "oops", status=500, content_type="text/plain")
    daemon = Newsmon(tmp_path, config_text(
        feed_toml("busy", server.url("/busy.xml")),
        feed_toml("dated", server.url("/dated.xml")),
        feed_toml("broken", server.url("/broken.xml")),
        backoff_max="8s", failing_after=3,
    ))
    running.append(daemon.start())
    wait_until(lambda: len(server.requests_for("/broken.xml")) >= 5, timeout=60, what="five polls of broken")
    wait_until(lambda: len(server.requests_for("/busy.xml")) >= 3, timeout=30, what="three polls of busy")
    status = daemon.status()
    assert daemon.stop() == 0

    busy = gaps(server.requests_for("/busy.xml"))
    assert all(gap >= 3.9 for gap in busy), busy            # Retry-After: 4 (seconds)
    dated = server.requests_for("/dated.xml")
    # Retry-After as an HTTP date 6 s ahead (whole seconds, so 5-6 s)
    assert len(dated) >= 2 and all(gap >= 4.9 for gap in gaps(dated)), gaps(dated)
    broken = gaps(server.requests_for("/broken.xml"))
    # interval 1 s, then 2, 4, 8, capped at backoff_max 8 s (each +/-10 % and whole seconds)
    assert broken[0] < 2.6 and 1.5 < broken[1] < 3.6 and 3.4 < broken[2] < 5.6, broken
    assert all(gap < 10.5 for gap in broken), broken
    assert broken[3] > 6.5, broken
    failing = {feed["name"]: feed for feed in status["failing"]}
    assert "broken" in failing and failing["broken"]["last_status"] == 500
    assert failing["broken"]["last_error_kind"] == "http_status"
    text = daemon.cli("status").stdout
    assert "failing   broken" in text


# --------------------------------------------------------------------------- signals


def test_sigterm_lets_the_inflight_poll_commit(tmp_path: Path, server: FeedServer, running: list) -> None:
    server.add("/slow.xml", rss(("a1", "Slow answer")), delay=2.0)
    daemon = Newsmon(tmp_path, config_text(feed_toml("slow", server.url("/slow.xml"), "1h"), shutdown_grace="15s"))
    running.append(daemon.start())
    wait_until(lambda: server.requests_for("/slow.xml"), what="the poll to start")
    started = time.monotonic()
    daemon.signal(signal.SIGTERM)
    assert daemon.stop() == 0
    assert time.monotonic() - started >= 1.0                      # it waited for the answer
    assert daemon.feed("slow")["last_success"] is not None         # and committed it
    assert daemon.query("SELECT title FROM articles") == [("Slow answer",)]
    assert daemon.feed("slow")["lease_owner"] is None
    status = daemon.status()
    assert not status["daemon"]["running"] and status["daemon"]["stopped"]
    assert "stopped cleanly" in daemon.log()


def test_sigterm_gives_up_after_the_grace(tmp_path: Path, server: FeedServer, running: list) -> None:
    server.add("/stuck.xml", rss(("x", "Never")), delay=40.0)
    daemon = Newsmon(tmp_path, config_text(feed_toml("stuck", server.url("/stuck.xml")), shutdown_grace="1s"))
    running.append(daemon.start())
    wait_until(lambda: server.requests_for("/stuck.xml"), what="the poll to start")
    started = time.monotonic()
    assert daemon.stop(timeout=30) == 0
    assert time.monotonic() - started < 20
    assert "abandoning polls" in daemon.log()
    assert "stopped at the grace, work abandoned" in daemon.log() and "stopped cleanly" not in daemon.log()
    assert daemon.feed("stuck")["lease_owner"] is None


def test_sigterm_names_the_job_that_outlasts_the_grace(tmp_path: Path, server: FeedServer, running: list) -> None:
    """A job still running when the grace is over (a delivery to a slow webhook) is named in the log line, so
    an operator knows what held the shutdown."""
    from tests.http_receiver import HttpReceiver

    now = format_datetime(datetime.now(timezone.utc), usegmt=True)
    server.add("/sahel.xml", rss(("m1", "Bamako talks: France and Mali agree")).replace(
        "Tue, 17 Feb 2026 08:00:00 GMT", now))
    with HttpReceiver() as receiver:
        receiver.delay = 30.0
        config = config_text(feed_toml("sahel", server.url("/sahel.xml"), "1h"), shutdown_grace="1s") + (
            "\n[[rules]]\nname = \"france-mali\"\nquery = 'France AND Mali'\nchannels = [\"hook\"]\n"
            f'\n[[channels]]\nname = "hook"\nurl = "webhook:{receiver.url("/hook")}"\ntimeout = "60s"\n'
        )
        daemon = Newsmon(tmp_path, config)
        running.append(daemon.start())
        assert receiver.arrived.wait(30), daemon.log()               # the delivery job waits for the answer
        assert daemon.stop(timeout=30) == 0
    line = next(line for line in daemon.log().splitlines() if "while a job was still running" in line)
    assert "jobs=deliver" in line, line
    assert "stopped at the grace, work abandoned" in daemon.log()


def test_sighup_reloads_and_rejects_a_bad_config(tmp_path: Path, server: FeedServer, running: list) -> None:
    server.add("/one.xml", rss(("o1", "One")), etag='"1"')
    server.add("/two.xml", rss(("t1", "Two")), etag='"2"')
    server.add("/hourly.xml", rss(("h1", "Hourly")), etag='"h"')
    daemon = Newsmon(tmp_path, config_text(feed_toml("one", server.url("/one.xml")),
                                           feed_toml("hourly", server.url("/hourly.xml"), "1h")))
    running.append(daemon.start())
    wait_until(lambda: len(server.requests_for("/one.xml")) >= 2, what="polls of one")
    assert len(server.requests_for("/hourly.xml")) == 1

    # one removed, two added, hourly's interval shortened: applied without waiting out the old hour
    daemon.config.write_text(config_text(feed_toml("two", server.url("/two.xml")),
                                         feed_toml("hourly", server.url("/hourly.xml"), "2s")))
    daemon.signal(signal.SIGHUP)
    wait_until(lambda: "config reloaded" in daemon.log(), what="reload")
    wait_until(lambda: len(server.requests_for("/two.xml")) >= 2, what="polls of the added feed")
    wait_until(lambda: len(server.requests_for("/hourly.xml")) >= 2, what="the shortened interval")
    one_after = len(server.requests_for("/one.xml"))
    time.sleep(1.5)
    assert len(server.requests_for("/one.xml")) <= one_after   # removed: no more polls
    assert daemon.feed("one")["enabled"] == 0

    # another archive named in the config: kept as it is until a restart, and said so
    daemon.config.write_text(config_text(feed_toml("two", server.url("/two.xml")),
                                         feed_toml("hourly", server.url("/hourly.xml"), "2s"),
                                         database=str(tmp_path / "other.db")))
    daemon.signal(signal.SIGHUP)
    wait_until(lambda: "monitor.database changed in the config" in daemon.log(), what="the restart warning")
    assert not (tmp_path / "other.db").exists()

    daemon.config.write_text("[monitor]\ndefault_interval = \"soon\"\n" + feed_toml("two", server.url("/two.xml")))
    daemon.signal(signal.SIGHUP)
    wait_until(lambda: "config reload rejected" in daemon.log(), what="rejection")
    count = len(server.requests_for("/two.xml"))
    wait_until(lambda: len(server.requests_for("/two.xml")) >= count + 2, what="polling to carry on")
    assert daemon.proc.poll() is None
    assert daemon.stop() == 0
    rejected = [line for line in daemon.log().splitlines() if "config reload rejected" in line]
    assert len(rejected) == 1 and "default_interval" in rejected[0]


# --------------------------------------------------------------------------- leases


def test_concurrent_poll_never_double_polls(tmp_path: Path, server: FeedServer, running: list) -> None:
    active = {"now": 0, "max": 0}
    lock = threading.Lock()

    def slow_feed(record: RequestRecord) -> Response:
        with lock:
            active["now"] += 1
            active["max"] = max(active["max"], active["now"])
        time.sleep(2.0)  # long enough for the other pollers to start meanwhile and find the lease taken
        with lock:
            active["now"] -= 1
        return Response(body=rss(("p1", "Popular")))

    server.add("/popular.xml", handler=slow_feed)
    daemon = Newsmon(tmp_path, config_text(feed_toml("popular", server.url("/popular.xml"))))
    running.append(daemon.start())
    polls = [subprocess.Popen(daemon.argv("poll"), cwd=tmp_path, env=daemon.env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(3)]
    outputs = [p.communicate(timeout=120) for p in polls]
    # The daemon polls the feed again at its next check (1 s interval): one after the other, never at once.
    wait_until(lambda: len(server.requests_for("/popular.xml")) >= 2, timeout=30, what="a later poll")
    assert daemon.stop() == 0
    assert all(p.returncode == 0 for p in polls), outputs
    assert active["max"] == 1
    assert len(server.requests_for("/popular.xml")) >= 2
    assert any("skipped" in out for out, _ in outputs)   # someone found the lease taken
    assert daemon.query("SELECT COUNT(*) FROM articles") == [(1,)]


# --------------------------------------------------------------------------- outage


def test_a_second_daemon_on_the_same_archive_is_refused(tmp_path: Path, server: FeedServer, running: list) -> None:
    server.add("/a.xml", rss(("a1", "Alpha")))
    first = Newsmon(tmp_path, config_text(feed_toml("a", server.url("/a.xml"))))
    running.append(first.start())
    wait_until(lambda: first.status()["daemon"]["running"], what="the first daemon's heartbeat")

    second = Newsmon(tmp_path, first.config.read_text())
    second.log_path = tmp_path / "second.log"
    running.append(second)
    with open(second.log_path, "wb") as log_file:
        second.proc = subprocess.Popen(second.argv("run"), cwd=tmp_path, env=second.env, stdout=subprocess.DEVNULL,
                                       stderr=log_file)
        wait_until(lambda: second.proc.poll() is not None or "daemon started" in second.log(), what="second daemon")
    assert "daemon started" not in second.log()
    assert second.proc.wait(timeout=60) == 1, second.log()
    assert second.log().startswith("error: another newsmon daemon runs on the archive")
    assert f"pid {first.proc.pid}" in second.log() and "Traceback" not in second.log()

    # the running daemon is still the archive's daemon, and after it stops one may start again
    state = first.status()["daemon"]
    assert state["running"] and state["pid"] == first.proc.pid
    assert first.stop() == 0
    third = Newsmon(tmp_path, first.config.read_text())
    third.log_path = tmp_path / "third.log"
    running.append(third.start())
    assert third.status()["daemon"]["pid"] == third.proc.pid
    assert third.stop() == 0


def test_network_outage_is_one_log_line_and_no_backoff(tmp_path: Path, server: FeedServer, running: list) -> None:
    port = server.base_url.rsplit(":", 1)[1]
    hosts = ["127.0.0.1", "localhost"]
    for index, host in enumerate(hosts):
        server.add(f"/down{index}.xml", reset=True)
    feeds = [feed_toml(f"feed{index}", f"http://{host}:{port}/down{index}.xml") for index, host in enumerate(hosts)]
    daemon = Newsmon(tmp_path, config_text(*feeds, failing_after=3, backoff_max="30s"))
    running.append(daemon.start())
    wait_until(lambda: all(len(server.requests_for(f"/down{i}.xml")) >= 6 for i in range(2)), timeout=40,
               what="polls during the outage")
    during = [daemon.feed(f"feed{i}") for i in range(2)]
    status = daemon.status()
    for index in range(2):
        server.add(f"/down{index}.xml", rss((f"n{index}", f"Back {index}")))
    wait_until(lambda: "network is back" in daemon.log(), what="recovery")
    wait_until(lambda: daemon.query("SELECT COUNT(*) FROM articles") == [(2,)], what="articles after recovery")
    assert daemon.stop() == 0
    for index in range(2):
        assert gaps(server.requests_for(f"/down{index}.xml"))[-2] < 2.6   # normal interval throughout
    assert all(feed["consecutive_errors"] <= 1 for feed in during), during
    assert status["feeds"]["failing"] == 0
    log = daemon.log()
    assert log.count("network appears down") == 1
    # The failures that declared the outage are logged; those while it lasts add nothing (debug level)
    # and are counted in the line that ends it.
    warned = log.count("warning monitor.pipeline: poll failed")
    assert 1 <= warned <= 4, log
    back = re.search(r"network is back: .* failed_polls=(\d+)", log)
    assert back is not None and int(back.group(1)) >= 12 - warned, log


# --------------------------------------------------------------------------- status, backup


def test_status_truth_and_backup_while_running(tmp_path: Path, server: FeedServer, running: list) -> None:
    server.add("/a.xml", rss(("a1", "Alpha"), ("a2", "Beta")), etag='"a"')
    server.add("/gone.xml", "gone", status=410, content_type="text/plain")
    daemon = Newsmon(tmp_path, config_text(feed_toml("a", server.url("/a.xml")),
                                           feed_toml("old", server.url("/gone.xml"))))
    running.append(daemon.start())
    wait_until(lambda: daemon.query("SELECT COUNT(*) FROM articles") == [(2,)], what="articles")
    wait_until(lambda: daemon.feed("old").get("gone") == 1, what="410 recorded")
    status = daemon.status()
    assert status["daemon"]["running"] and status["daemon"]["host"] == socket.gethostname()
    assert status["articles"] == 2 and status["feeds"]["gone"] == 1
    assert status["gone"][0]["name"] == "old"
    assert status["database"]["bytes"] > 0
    assert "running, pid" in daemon.cli("status").stdout

    copy = tmp_path / "copy.db"
    daemon.cli("backup", str(copy))
    with sqlite3.connect(copy) as conn:
        assert conn.execute("SELECT COUNT(*) FROM articles").fetchone() == (2,)
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert conn.execute("SELECT COUNT(*) FROM articles_fts WHERE articles_fts MATCH 'alpha'").fetchone() == (1,)
    refused = daemon.cli("backup", str(copy), check=False)
    assert refused.returncode == 2 and "--force" in refused.stderr
    daemon.cli("backup", "--force", str(copy))
    assert len(server.requests_for("/gone.xml")) == 1        # 410: polling stopped

    # killed without a chance to clean up: status must not claim it runs
    daemon.signal(signal.SIGKILL)
    daemon.proc.wait(timeout=30)
    status = daemon.status()
    assert not status["daemon"]["running"]
    assert "not running" in status["daemon"]["reason"]

    # a lease the dead daemon held is freed by the next start, not left to expire
    with sqlite3.connect(daemon.db) as conn:
        conn.execute("UPDATE feeds SET lease_owner = ?, lease_until = '2999-01-01T00:00:00Z', next_check = NULL "
                     "WHERE name = 'a'", (f"daemon-{socket.gethostname()}-{daemon.proc.pid}",))
    polls = len(server.requests_for("/a.xml"))
    restarted = Newsmon(tmp_path, daemon.config.read_text())
    running.append(restarted.start())
    wait_until(lambda: len(server.requests_for("/a.xml")) > polls, what="the leased feed to be polled again")
    assert restarted.stop() == 0
    assert "released leases of a daemon that did not stop cleanly" in restarted.log()


# --------------------------------------------------------------------------- sd_notify


class NotifyListener:
    def __init__(self, address: str | bytes) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(address)
        self.sock.settimeout(0.2)
        self.messages: list[str] = []

    def drain(self) -> list[str]:
        while True:
            try:
                self.messages.append(self.sock.recv(4096).decode())
            except (socket.timeout, BlockingIOError):
                return self.messages

    def close(self) -> None:
        self.sock.close()


def test_sdnotify_path_socket(tmp_path: Path) -> None:
    path = tmp_path / "notify.sock"
    listener = NotifyListener(str(path))
    notifier = Notifier(str(path))
    assert notifier.ready("up") and notifier.watchdog() and notifier.status("a\nb") and notifier.stopping()
    messages = listener.drain()
    assert messages[0].splitlines()[0] == "READY=1" and "STATUS=up" in messages[0]
    assert messages[1:] == ["WATCHDOG=1", "STATUS=a b", "STOPPING=1"]
    notifier.close()
    listener.close()


def test_sdnotify_abstract_socket() -> None:
    name = f"newsmon-test-{os.getpid()}-{time.monotonic_ns()}"
    listener = NotifyListener(b"\0" + name.encode())
    assert Notifier("@" + name).notify("READY=1")
    assert listener.drain() == ["READY=1"]
    listener.close()


def test_sdnotify_is_a_noop_without_socket(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    notifier = Notifier()
    assert not notifier.enabled and not notifier.ready()
    # a socket that vanished is logged, never raised
    assert not Notifier(str(tmp_path / "missing.sock")).watchdog()
    monkeypatch.setenv("WATCHDOG_USEC", "30000000")
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid()))
    assert watchdog_interval() == 30.0
    monkeypatch.setenv("WATCHDOG_PID", "1")
    assert watchdog_interval() is None


def test_daemon_talks_to_systemd(tmp_path: Path, server: FeedServer, running: list) -> None:
    server.add("/a.xml", rss(("a1", "Alpha")))
    listener = NotifyListener(str(tmp_path / "notify.sock"))
    daemon = Newsmon(tmp_path, config_text(feed_toml("a", server.url("/a.xml"))),
                     env={"NOTIFY_SOCKET": str(tmp_path / "notify.sock")})
    running.append(daemon.start())
    wait_until(lambda: sum("WATCHDOG=1" in m for m in listener.drain()) >= 3, what="watchdog pings")
    daemon.signal(signal.SIGHUP)
    wait_until(lambda: "config reloaded" in daemon.log(), what="reload")
    assert daemon.stop() == 0
    messages = listener.drain()
    listener.close()
    assert messages[0].startswith("READY=1")
    reloading = [m for m in messages if m.startswith("RELOADING=1")]
    assert len(reloading) == 1
    usec = reloading[0].split("\n")[1].removeprefix("MONOTONIC_USEC=")
    assert usec.isdigit() and 0 < time.monotonic() * 1e6 - int(usec) < 120e6   # the same clock, a moment ago
    assert any(m.startswith("STOPPING=1") for m in messages)
    assert any(m.startswith("STATUS=") for m in messages)


def old_articles_jsonl(path: Path, count: int) -> Path:
    """``count`` articles of 2020 in the ``newsmon export`` format, each its own story."""
    import json

    with path.open("w") as out:
        for i in range(count):
            out.write(json.dumps({
                "key": f"url:http://old.example.org/{i}", "url": f"http://old.example.org/{i}", "guid": None,
                "title": f"Archived report {i} term{i % 997}", "summary": f"summary {i} word{i % 313}", "content": "",
                "published": "2020-01-01T08:00:00Z", "published_source": "published", "undated": False,
                "first_seen": "2020-01-01T08:00:00Z", "updated_at": None, "language": "en", "authors": [],
                "categories": [], "domain": "old.example.org", "fingerprint": f"{i:040x}",
                "feeds": [{"name": "old", "url": "http://old.example.org/feed", "first_seen": "2020-01-01T08:00:00Z"}],
            }) + "\n")
    return path


def test_sigterm_during_a_retention_prune_stops_between_batches(tmp_path: Path, server: FeedServer,
                                                                running: list) -> None:
    server.add("/a.xml", rss(("a1", "Alpha")))
    text = config_text(feed_toml("a", server.url("/a.xml"), "1h"), retention="30d")
    daemon = Newsmon(tmp_path, text, env={"NEWSMON_RETENTION_FIRST": "0.1"})
    total = 30000
    daemon.cli("import", str(old_articles_jsonl(tmp_path / "old.jsonl", total)))
    old = "SELECT COUNT(*) FROM articles WHERE published < '2021'"
    running.append(daemon.start())
    wait_until(lambda: daemon.query(old)[0][0] < total, timeout=120, what="the prune to start")
    assert daemon.stop() == 0
    left = daemon.query(old)[0][0]
    assert 0 < left < total                                   # stopped between two batches, not at the end
    assert "interrupted" in daemon.log() and "Traceback" not in daemon.log()
    with sqlite3.connect(daemon.db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        conn.execute("INSERT INTO articles_fts(articles_fts) VALUES ('integrity-check')")
        assert conn.execute("SELECT COUNT(*) FROM story_articles WHERE article_id NOT IN "
                            "(SELECT id FROM articles)").fetchone() == (0,)

    # the next run deletes the rest
    again = Newsmon(tmp_path, text, env={"NEWSMON_RETENTION_FIRST": "0.1"})
    again.log_path = tmp_path / "again.log"
    running.append(again.start())
    wait_until(lambda: daemon.query(old)[0][0] == 0, timeout=120, what="the rest of the prune")
    wait_until(lambda: daemon.query("SELECT COUNT(*) FROM stories WHERE NOT EXISTS (SELECT 1 FROM story_articles "
                                    "sa WHERE sa.story_id = stories.id)") == [(0,)], timeout=120,
               what="the empty stories to go")
    assert again.stop() == 0
    assert [line for line in daemon.cli("search", "Alpha").stdout.splitlines() if "Alpha" in line]


def test_restore_a_backup_onto_the_archive_of_a_killed_daemon(tmp_path: Path, server: FeedServer,
                                                                running: list) -> None:
    server.add("/a.xml", rss(("a1", "Alpha"), ("a2", "Beta")))
    daemon = Newsmon(tmp_path, config_text(feed_toml("a", server.url("/a.xml"))))
    running.append(daemon.start())
    wait_until(lambda: daemon.query("SELECT COUNT(*) FROM articles") == [(2,)], what="articles")
    copy = tmp_path / "copy.db"
    daemon.cli("backup", str(copy))
    restore = newsmon_argv("--config", str(daemon.config), "--db", str(copy), "backup", "--force", str(daemon.db))
    refused = subprocess.run(restore, cwd=tmp_path, env=daemon.env, capture_output=True, text=True, timeout=120)
    assert refused.returncode == 1 and "running daemon" in refused.stderr, refused.stderr
    assert daemon.query("SELECT COUNT(*) FROM articles") == [(2,)]
    server.set_body("/a.xml", rss(("a1", "Alpha"), ("a2", "Beta"), ("a3", "Gamma"), ("a4", "Delta")))
    wait_until(lambda: daemon.query("SELECT COUNT(*) FROM articles") == [(4,)], what="articles after the backup")

    # killed (OOM, power cut): its -wal stays beside the archive; restoring the backup must not pair them
    daemon.signal(signal.SIGKILL)
    daemon.proc.wait(timeout=30)
    assert Path(f"{daemon.db}-wal").exists()
    restored = subprocess.run(restore, cwd=tmp_path, env=daemon.env, capture_output=True, text=True, timeout=120)
    assert restored.returncode == 0, restored.stderr
    with sqlite3.connect(daemon.db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        assert conn.execute("SELECT COUNT(*) FROM articles").fetchone() == (2,)
    again = Newsmon(tmp_path, daemon.config.read_text())
    again.log_path = tmp_path / "again.log"
    running.append(again.start())
    polls = len(server.requests_for("/a.xml"))
    wait_until(lambda: len(server.requests_for("/a.xml")) > polls + 1, what="polls on the restored archive")
    assert again.stop() == 0
    assert "Traceback" not in again.log() and "malformed" not in again.log()


# --------------------------------------------------------------------------- systemd unit


def test_unit_file_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed")
    unit = (REPO / "systemd" / "newsmon.service").read_text()
    assert "ExecStart=/usr/local/bin/newsmon run" in unit
    # verify checks that ExecStart's program exists: point it at this interpreter for the check
    local = tmp_path / "newsmon.service"
    local.write_text(unit.replace("/usr/local/bin/newsmon run", f"{sys.executable} -m monitor run"))
    done = subprocess.run([analyze, "verify", str(local)], capture_output=True, text=True, timeout=120)
    output = (done.stdout + done.stderr).strip()
    relevant = [line for line in output.splitlines() if "newsmon.service" in line or "Unknown" in line]
    assert done.returncode == 0 and not relevant, output
    for key in ("Type=notify", "WatchdogSec=", "Restart=on-failure", "NoNewPrivileges=yes", "ProtectSystem=strict",
                "ProtectHome=yes", "PrivateTmp=yes", "StateDirectory=newsmon", "ConfigurationDirectory=newsmon"):
        assert key in unit


def test_sigint_stops_cleanly_too(tmp_path: Path, server: FeedServer, running: list) -> None:
    server.add("/a.xml", rss(("a1", "Alpha")))
    daemon = Newsmon(tmp_path, config_text(feed_toml("a", server.url("/a.xml"))))
    running.append(daemon.start())
    wait_until(lambda: server.requests_for("/a.xml"), what="a poll")
    daemon.signal(signal.SIGINT)
    assert daemon.stop() == 0
    assert "stopped cleanly" in daemon.log() and "Traceback" not in daemon.log()


def test_run_with_a_bad_config_exits_2_without_traceback(tmp_path: Path) -> None:
    daemon = Newsmon(tmp_path, '[monitor]\nconcurrency = "many"\n')
    done = daemon.cli("run", check=False)
    assert done.returncode == 2
    assert done.stderr.startswith("error:") and "concurrency" in done.stderr and "Traceback" not in done.stderr


def test_daemon_delivers_alerts(tmp_path: Path, server: FeedServer, running: list) -> None:
    import json

    now = format_datetime(datetime.now(timezone.utc), usegmt=True)
    body = rss(("m1", "Bamako talks: France and Mali agree on a plan")).replace(
        "Tue, 17 Feb 2026 08:00:00 GMT", now)
    server.add("/sahel.xml", body)
    alerts = tmp_path / "alerts.jsonl"
    config = config_text(feed_toml("sahel", server.url("/sahel.xml"), "1h")) + (
        "\n[[rules]]\nname = \"france-mali\"\nquery = 'France AND Mali'\nchannels = [\"file\"]\n"
        f"\n[[channels]]\nname = \"file\"\nurl = \"jsonl://{alerts}\"\n"
    )
    daemon = Newsmon(tmp_path, config)
    running.append(daemon.start())
    wait_until(lambda: alerts.exists() and alerts.read_text().strip(), what="the alert in the jsonl channel")
    assert daemon.stop() == 0
    alert = json.loads(alerts.read_text().splitlines()[0])
    assert alert["rule"] == "france-mali" and "Bamako" in alert["headline"]
    assert daemon.status()["alerts"]["sent"] == 1


def test_jobs_run_on_whole_seconds() -> None:
    """Feeds fall due on whole seconds (next_check is stored to the second), so the daemon's jobs run on the
    second: a tick at an arbitrary phase would dispatch every due feed up to a second late. The first tick
    still runs at once when the daemon starts."""
    from monitor.scheduler import JobScheduler, JobSpec, next_whole_second

    started = datetime(2026, 2, 17, 8, 0, 5, 250_000, tzinfo=timezone.utc)
    assert next_whole_second(started) == datetime(2026, 2, 17, 8, 0, 6, tzinfo=timezone.utc)
    assert next_whole_second(started.replace(microsecond=0)) == started.replace(microsecond=0)

    runs: list[float] = []
    scheduler = JobScheduler([
        JobSpec("tick", lambda: runs.append(time.time()), timedelta(seconds=1)),
        JobSpec("later", lambda: None, timedelta(seconds=60), timedelta(seconds=2)),
    ])
    now = datetime.now(timezone.utc)
    begun = time.time()
    scheduler.start(now)
    try:
        assert scheduler.next_runs()["later"] == now + timedelta(seconds=2)
        deadline = time.monotonic() + 10
        while len(runs) < 4 and time.monotonic() < deadline:
            time.sleep(0.05)
        planned = scheduler.next_runs()
    finally:
        scheduler.shutdown()
    assert len(runs) >= 4, runs
    assert runs[0] - begun < 0.5, (begun, runs)           # at once, not on the next second
    assert planned["tick"].microsecond == 0, planned      # from then on, on whole seconds
    # Each later run starts just after its second (scheduling delay only); the median keeps one late
    # wake-up on a busy machine from deciding the test.
    phases = sorted(at % 1.0 for at in runs[1:4])
    assert phases[1] < 0.5, phases


def test_url_changed_while_its_feed_is_polled_is_fetched_at_once(tmp_path: Path, server: FeedServer,
                                                                  running: list) -> None:
    # The poll of the old URL is in flight when the reload changes the URL: its result must not put back the old
    # URL's validators and schedule (the new URL would wait out the hour, asked with the old URL's ETag).
    server.add("/old.xml", rss(("o1", "Old")), etag='"old"', delay=2.0)
    server.add("/new.xml", rss(("n1", "New")), etag='"new"')
    daemon = Newsmon(tmp_path, config_text(feed_toml("desk", server.url("/old.xml"), "1h")))
    running.append(daemon.start())
    wait_until(lambda: server.requests_for("/old.xml"), what="the poll of the old URL to start")
    daemon.config.write_text(config_text(feed_toml("desk", server.url("/new.xml"), "1h")))
    daemon.signal(signal.SIGHUP)
    wait_until(lambda: "config reloaded" in daemon.log(), what="reload")
    wait_until(lambda: daemon.feed("desk").get("lease_owner") is None and daemon.feed("desk").get("last_fetch"),
               what="the old poll to end")
    wait_until(lambda: server.requests_for("/new.xml"), timeout=10, what="the new URL to be polled")
    assert "if-none-match" not in server.requests_for("/new.xml")[0].headers
    wait_until(lambda: daemon.feed("desk").get("etag") == '"new"', what="the new URL's validators")
    assert daemon.stop() == 0
