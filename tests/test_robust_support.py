"""Helpers shared by the robustness tests (``tests/test_robust_*.py``) and ``bench/crash.py``.

Nothing here is a test. The helpers run the real ``newsmon`` command in a fresh subprocess (so its peak
memory is its own), write configs, generate feeds and read an archive the way a user's tools would
(a plain read-only ``sqlite3`` connection, never our own store code).
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from email.utils import format_datetime
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Sequence

REPO = Path(__file__).resolve().parents[1]
CORPORA = REPO.parent / "shared" / "corpora"

# The real root command (`python -m monitor` does the same). At exit it writes the process's own peak RSS
# (VmHWM, kB) to $ROBUST_HWM_FILE when that is set.
_SHIM = """
import atexit, os
def _hwm():
    target = os.environ.get("ROBUST_HWM_FILE")
    if not target:
        return
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                with open(target, "w") as out:
                    out.write(line.split()[1])
atexit.register(_hwm)
from monitor.cli import main
main()
"""


def newsmon_argv(*args: str) -> list[str]:
    return [sys.executable, "-c", _SHIM, *args]


def child_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("NEWSMON_", "NOTIFY_SOCKET", "WATCHDOG_", "ROBUST_"))}
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    env.update(extra or {})
    return env


@dataclass
class Run:
    returncode: int
    stdout: str
    stderr: str
    elapsed: float
    peak_kb: int          # the newsmon process's own peak RSS (VmHWM at exit)
    tree_peak_kb: int = 0  # sum over the process and its helpers (parser pool, forkserver) of each one's peak


def _vm_hwm_kb(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def _watch_tree(folder: Path, peaks: dict[int, int], stop: threading.Event) -> None:
    """Every 20 ms, the peak RSS of each process working in ``folder`` (the subprocess and the helpers it
    starts inherit its working directory)."""
    while not stop.is_set():
        for pid in processes_under(folder, by_cwd_only=True):
            peaks[pid] = max(peaks.get(pid, 0), _vm_hwm_kb(pid))
        stop.wait(0.02)


def run_newsmon(config: Path, db: Path, *args: str, cwd: Path, timeout: float = 300,
                extra_env: dict[str, str] | None = None) -> Run:
    """``newsmon --config CONFIG --db DB ARGS`` in a fresh subprocess; its exit, output, time and peak RSS
    (its own, and summed over the helper processes it starts)."""
    hwm = cwd / f".hwm-{os.getpid()}-{time.monotonic_ns()}"
    env = child_env({"ROBUST_HWM_FILE": str(hwm), **(extra_env or {})})
    peaks: dict[int, int] = {}
    stop = threading.Event()
    watcher = threading.Thread(target=_watch_tree, args=(cwd, peaks, stop), daemon=True)
    started = time.monotonic()
    proc = subprocess.Popen(newsmon_argv("--config", str(config), "--db", str(db), *args), cwd=cwd, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    watcher.start()
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    finally:
        stop.set()
        watcher.join(timeout=5)
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    elapsed = time.monotonic() - started
    own = int(hwm.read_text()) if hwm.exists() else 0
    hwm.unlink(missing_ok=True)
    peaks[proc.pid] = max(peaks.get(proc.pid, 0), own)
    return Run(proc.returncode, stdout, stderr, elapsed, own, sum(peaks.values()))


def write_config(path: Path, feeds: Sequence[tuple[str, str]], *, monitor: str = "", extra: str = "") -> Path:
    lines = ["[monitor]", 'default_interval = "1s"', monitor.strip(), ""]
    for name, url in feeds:
        lines.append(f'[[feeds]]\nname = "{name}"\nurl = "{url}"\n')
    path.write_text("\n".join(lines) + extra, encoding="utf-8")
    return path


def rss_feed(feed_id: str, count: int, *, start: int = 0, published: datetime | None = None,
             topic: str = "") -> bytes:
    """A well-formed RSS 2.0 feed of ``count`` distinct items (distinct titles, links and guids)."""
    published = published or datetime(2026, 2, 17, 8, 0, tzinfo=timezone.utc)
    items = []
    for number in range(start, start + count):
        date = format_datetime(published + timedelta(minutes=number), usegmt=True)
        title = f"{topic}Report {feed_id} number {number}: harvest, roads and schools in district {number * 7 % 97}"
        items.append(
            f"<item><title>{title}</title><link>http://news{feed_id}.example.org/story/{number}</link>"
            f"<guid isPermaLink=\"false\">{feed_id}-{number}</guid><pubDate>{date}</pubDate>"
            f"<description>Body of {feed_id} item {number}. Officials met on day {number}.</description></item>"
        )
    return (f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>Feed {feed_id}</title>'
            f"<link>http://news{feed_id}.example.org/</link>{''.join(items)}</channel></rss>").encode("utf-8")


def read_only(db: Path) -> sqlite3.Connection:
    return sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)


def integrity(db: Path) -> str:
    conn = read_only(db)
    try:
        return ";".join(row[0] for row in conn.execute("PRAGMA integrity_check"))
    finally:
        conn.close()


def article_keys(db: Path) -> set[str]:
    conn = read_only(db)
    try:
        return {row[0] for row in conn.execute("SELECT key FROM articles")}
    finally:
        conn.close()


def duplicates(db: Path) -> dict[str, int]:
    """Rows sharing a key, or a URL (our generated feeds give every item its own URL)."""
    conn = read_only(db)
    try:
        keys = conn.execute("SELECT count(*) - count(DISTINCT key) FROM articles").fetchone()[0]
        urls = conn.execute("SELECT count(url) - count(DISTINCT url) FROM articles").fetchone()[0]
        links = conn.execute(
            "SELECT count(*) FROM (SELECT article_id, feed_id FROM article_feeds "
            "GROUP BY article_id, feed_id HAVING count(*) > 1)").fetchone()[0]
    finally:
        conn.close()
    return {"keys": int(keys), "urls": int(urls), "links": int(links)}


def feed_errors(db: Path) -> dict[str, tuple[str | None, int | None, int]]:
    """name -> (last_error_kind, last_status, consecutive_errors)."""
    conn = read_only(db)
    try:
        return {row[0]: (row[1], row[2], row[3]) for row in conn.execute(
            "SELECT name, last_error_kind, last_status, consecutive_errors FROM feeds")}
    finally:
        conn.close()


# --------------------------------------------------------------------------- SIGKILL campaign


class SlowReceiver:
    """A loopback webhook receiver that keeps each alert it receives (on arrival) and answers 200 only
    after ``delay`` seconds, so a kill can land while a send is in flight: after the receiver has the alert
    and before the sender could mark it sent (the documented duplicate window)."""

    def __init__(self, delay: float = 0.0) -> None:
        import http.server
        import json

        self.delay = delay
        self.bodies: list[tuple[str, dict]] = []
        self.in_flight = 0
        self._lock = threading.Lock()
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # noqa: N802 (http.server naming)
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                with receiver._lock:
                    receiver.bodies.append((self.path.split("?")[0], body))
                    receiver.in_flight += 1
                try:
                    time.sleep(receiver.delay)
                    self.send_response(200)
                    self.send_header("Content-Length", "2")
                    self.end_headers()
                    self.wfile.write(b"ok")
                except OSError:
                    self.close_connection = True     # the sender was killed while waiting
                finally:
                    with receiver._lock:
                        receiver.in_flight -= 1

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - quiet test server
                return

        class Server(http.server.ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request: object, client_address: object) -> None:
                return  # a killed sender hanging up is the point of these tests

        self.server = Server(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self._thread = threading.Thread(target=self.server.serve_forever, name="slow-receiver", daemon=True)

    def url(self, path: str = "/") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def json_bodies(self, path: str) -> list[dict]:
        with self._lock:
            return [body for where, body in self.bodies if where == path]

    def start(self) -> "SlowReceiver":
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(timeout=5)
# Used by tests/test_robust_crash.py (a few kills) and bench/crash.py (the full campaign).


@dataclass
class CrashTally:
    """What a campaign saw. Every count but ``kills``, ``survived`` and ``alerts_in_window`` must be 0."""

    mode: str
    kills: int = 0                  # SIGKILLs delivered while the process was running
    finished_first: int = 0         # rounds where the process ended before its kill moment
    survived: int = 0               # kills after which the archive was intact and held every committed article
    integrity_failures: int = 0     # PRAGMA integrity_check not "ok" after a kill
    lost: int = 0                   # articles seen committed before a kill and missing afterwards
    duplicated: int = 0             # duplicate article keys, URLs or feed links
    alerts_duplicated: int = 0      # an alert received twice outside the send-then-mark window
    alerts_in_window: int = 0       # duplicates explained by a kill between a channel's acceptance and the mark
    alerts_lost: int = 0            # alert rows never received (or not marked sent) after completion
    orphans: int = 0                # processes of a killed run (parser workers, forkserver) still alive 5 s later
    skipped_after: int = 0          # feeds the first poll after the last kill skipped (a dead process's lease)
    reference_missing: int = 0      # articles of the clean reference run missing from the crashed archive
    reference_extra: int = 0        # articles in the crashed archive the reference run does not have
    articles: int = 0
    alerts_received: int = 0
    kill_moments: list[float] | None = None   # seconds after start
    articles_at_kill: list[int] | None = None  # articles a reader saw committed when the kill landed
    full_poll_seconds: float = 0.0            # an uninterrupted poll of the first round (the kill moments' range)


class CrashCampaign:
    """SIGKILL ``newsmon poll`` (mode ``poll``) or the daemon ``newsmon run`` (mode ``run``) at random moments
    while it ingests many loopback feeds that grow every round and delivers alerts to a loopback webhook;
    check the archive after every kill; finish with uninterrupted polls and compare with a clean reference
    run over the same final feeds."""

    RULE_TOPIC = "Mali: "

    def __init__(self, workdir: Path, *, mode: str = "poll", feeds: int = 40, items: int = 30, growth: int = 5,
                 new_feeds: int | None = None, seed: int = 0, max_delay: float | None = None,
                 send_delay: float = 0.3) -> None:
        import random

        from tests.feedserver import FeedServer

        self.workdir = workdir
        self.mode = mode
        self.feed_count = feeds
        # Feeds added every round: a killed process's feed leases keep those feeds from the next polls for
        # fetch_deadline + 60 s, so new feeds keep every round ingesting.
        self.new_feeds = feeds // 3 if new_feeds is None else new_feeds
        self.items = items
        self.growth = growth
        self.random = random.Random(seed)
        self.max_delay = max_delay
        self.round = 0
        self.server = FeedServer()
        self.receiver = SlowReceiver(send_delay)
        self.db = workdir / "crash.db"
        self.config = workdir / "feeds.toml"
        self.published = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(hours=8)
        self.committed: set[str] = set()
        self.window: dict[tuple, int] = {}
        self.kills_by_mode: dict[str, int] = {}
        self.tally = CrashTally(mode=mode, kill_moments=[], articles_at_kill=[])

    # ---------------------------------------------------------------- set-up
    def __enter__(self) -> "CrashCampaign":
        self.server.start()
        self.receiver.start()
        self._serve_round()
        if self.max_delay is None:
            self.max_delay = self._calibrate(self._feeds())
        return self

    def _feeds(self) -> list[tuple[str, str]]:
        return [(f"f{index}", self.server.url(f"/f{index}.xml")) for index in range(self._feed_total())]

    def _feed_total(self) -> int:
        return self.feed_count + self.round * self.new_feeds

    def _calibrate(self, feeds: Sequence[tuple[str, str]]) -> float:
        """The time an uninterrupted poll of the first round takes here (start-up included)."""
        scratch = self.workdir / "calibration"
        scratch.mkdir(exist_ok=True)
        config = scratch / "feeds.toml"
        self._write_config(config, feeds, "/calibration")
        done = run_newsmon(config, scratch / "calibration.db", "poll", cwd=scratch)
        if done.returncode != 0:
            raise RuntimeError(f"calibration poll failed: {done.stderr[-2000:]}")
        self.tally.full_poll_seconds = round(done.elapsed, 2)
        return done.elapsed * 0.9

    def __exit__(self, *exc_info: object) -> None:
        self.receiver.stop()
        self.server.stop()

    def _write_config(self, path: Path, feeds: Sequence[tuple[str, str]], hook: str) -> None:
        monitor = ('concurrency = 4\nper_host = 4\nfetch_deadline = "3s"\nread_timeout = "3s"\n'
                   'connect_timeout = "2s"\n'
                   'default_channels = ["hook"]\n')
        rules = ('\n[[rules]]\nname = "mali"\nquery = "Mali"\n'
                 f'\n[[channels]]\nname = "hook"\nurl = "webhook:{self.receiver.url(hook)}"\n')
        write_config(path, feeds, monitor=monitor, extra=rules)

    def _serve_round(self) -> None:
        count = self.items + self.round * self.growth
        for index in range(self._feed_total()):
            topic = self.RULE_TOPIC if index % 4 == 0 else ""
            body = rss_feed(f"f{index}", count, published=self.published, topic=topic)
            self.server.add(f"/f{index}.xml", body, etag=f'"f{index}-r{self.round}"')
        self._write_config(self.config, self._feeds(), "/hook")

    # ---------------------------------------------------------------- one kill
    def _start(self, mode: str) -> subprocess.Popen:
        command = "run" if mode == "run" else "poll"
        env = child_env({"NEWSMON_TICK": "0.25", "NEWSMON_DELIVER_EVERY": "0.5"})
        return subprocess.Popen(newsmon_argv("--config", str(self.config), "--db", str(self.db), command),
                                cwd=self.workdir, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def _sample(self, proc: subprocess.Popen, seen: set[str], stop: threading.Event) -> None:
        """Keys visible to a reader while the process runs: committed, so they must survive the kill."""
        while not stop.is_set() and proc.poll() is None:
            if self.db.exists():
                try:
                    conn = read_only(self.db)
                    try:
                        seen.update(row[0] for row in conn.execute("SELECT key FROM articles"))
                    finally:
                        conn.close()
                except sqlite3.Error:
                    pass  # the archive is being created, or has no articles table yet
            stop.wait(0.05)

    def kill_once(self, mode: str | None = None) -> None:
        """One round: start the process, SIGKILL it, check the archive. ``mode`` overrides the campaign's
        (``poll`` or ``run``) for this round. Rounds take turns: kill at a random moment of the run (start-up,
        fetching, parsing, writing, delivering); wait until a reader sees the run's first commit and kill a
        random moment after it (ingest); wait until an alert is in flight to the receiver and kill while
        it waits for the answer (delivery)."""
        import signal

        mode = mode or self.mode
        strategy = ("random", "after_commit", "during_send")[self.round % 3]
        after_commit = strategy == "after_commit"
        if strategy == "random":
            delay = self.random.uniform(0.3, self.max_delay or 3.0)
        elif after_commit:
            delay = self.random.uniform(0.0, 0.5 * (self.max_delay or 3.0))
        else:
            delay = self.random.uniform(0.0, self.receiver.delay)
        sends_before = len(self.receiver.bodies)
        proc = self._start(mode)
        started = time.monotonic()
        seen: set[str] = set()
        stop = threading.Event()
        sampler = threading.Thread(target=self._sample, args=(proc, seen, stop), daemon=True)
        sampler.start()
        limit = time.monotonic() + 120
        if after_commit:
            while proc.poll() is None and len(seen) <= len(self.committed) and time.monotonic() < limit:
                time.sleep(0.02)
        elif strategy == "during_send":  # a run with nothing to send is killed at a random moment after all
            limit = time.monotonic() + 3 * (self.max_delay or 3.0)
            while proc.poll() is None and len(self.receiver.bodies) <= sends_before and time.monotonic() < limit:
                time.sleep(0.01)
        try:
            code = proc.wait(timeout=delay)
            if code != 0:
                raise RuntimeError(f"newsmon {mode} exited {code} before its kill moment")
            self.tally.finished_first += 1
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=30)
            self.tally.kills += 1
            self.kills_by_mode[mode] = self.kills_by_mode.get(mode, 0) + 1
            self.tally.kill_moments.append(round(time.monotonic() - started, 2))
            self.tally.articles_at_kill.append(len(seen))
        stop.set()
        sampler.join(timeout=10)
        self.tally.orphans += len(self._orphans())
        self.committed |= seen
        self._check_after_kill()
        self.round += 1
        self._serve_round()

    def _orphans(self, grace: float = 5.0) -> list[int]:
        """Processes still running from this campaign's folder (their command line or working directory)
        ``grace`` seconds after the kill: leftovers a SIGKILL should not leave."""
        deadline = time.monotonic() + grace
        while True:
            left = processes_under(self.workdir)
            if not left or time.monotonic() >= deadline:
                return left
            time.sleep(0.2)

    def _check_after_kill(self) -> None:
        if not self.db.exists():
            self.tally.survived += 1
            return
        ok = True
        if integrity(self.db) != "ok":
            self.tally.integrity_failures += 1
            ok = False
        keys = article_keys(self.db)
        missing = self.committed - keys
        if missing:
            self.tally.lost += len(missing)
            ok = False
        self.committed |= keys
        dup = duplicates(self.db)
        if any(dup.values()):
            self.tally.duplicated += sum(dup.values())
            ok = False
        self._note_window()
        self.tally.survived += int(ok)

    def _note_window(self) -> None:
        """Alerts a channel accepted that the archive does not mark sent: the documented window."""
        received = {self._identity(body) for body in self.receiver.json_bodies("/hook")}
        conn = read_only(self.db)
        try:
            rows = conn.execute("SELECT rule, story_id, kind FROM alerts WHERE status != 'sent'").fetchall() \
                if _has_table(conn, "alerts") else []
        finally:
            conn.close()
        for row in rows:
            identity = (row[0], row[1], row[2])
            if identity in received:
                self.window[identity] = self.window.get(identity, 0) + 1

    @staticmethod
    def _identity(body: dict) -> tuple:
        return (body.get("rule"), body.get("story_id"), body.get("kind"))

    # ---------------------------------------------------------------- completion and reference
    def finish(self, *, lease_wait: bool = False) -> CrashTally:
        """Uninterrupted polls until every feed is stored, then the checks against a clean reference run over
        the same feeds. The first of them must skip no feed: `newsmon poll` frees the leases of a dead poll or
        daemon of this host (``lease_wait`` waits for them to expire instead, for builds that do not)."""
        self.receiver.delay = 0.0
        if lease_wait:
            self._wait_for_leases()
        for attempt in range(3):
            done = run_newsmon(self.config, self.db, "poll", cwd=self.workdir)
            if done.returncode != 0:
                raise RuntimeError(f"completion poll failed: {done.stderr[-2000:]}")
            if attempt == 0:
                self.tally.skipped_after = sum(1 for line in done.stdout.splitlines() if line.startswith("skipped"))
            if not any(line.startswith(("skipped", "error")) for line in done.stdout.splitlines()):
                break
        self._check_after_kill()
        self.tally.survived -= 1          # that check was not after a kill
        self._count_alerts()
        reference = self._reference_keys()
        keys = article_keys(self.db)
        self.tally.reference_missing = len(reference - keys)
        self.tally.reference_extra = len(keys - reference)
        self.tally.articles = len(keys)
        return self.tally

    def _wait_for_leases(self) -> None:
        from monitor.timeutil import from_iso

        if not self.db.exists():
            return
        conn = read_only(self.db)
        try:
            latest = conn.execute("SELECT max(lease_until) FROM feeds WHERE lease_owner IS NOT NULL").fetchone()[0]
        finally:
            conn.close()
        until = from_iso(latest) if latest else None
        if until is not None:
            time.sleep(max(0.0, (until - datetime.now(timezone.utc)).total_seconds()) + 0.5)

    def _count_alerts(self) -> None:
        bodies = self.receiver.json_bodies("/hook")
        self.tally.alerts_received = len(bodies)
        counts: dict[tuple, int] = {}
        for body in bodies:
            identity = self._identity(body)
            counts[identity] = counts.get(identity, 0) + 1
        for identity, count in counts.items():
            extra = count - 1
            allowed = min(extra, self.window.get(identity, 0))
            self.tally.alerts_in_window += allowed
            self.tally.alerts_duplicated += extra - allowed
        conn = read_only(self.db)
        try:
            rows = conn.execute("SELECT rule, story_id, kind, status FROM alerts WHERE folded_into IS NULL").fetchall()
        finally:
            conn.close()
        for rule, story_id, kind, status in rows:
            if status != "sent" or (rule, story_id, kind) not in counts:
                self.tally.alerts_lost += 1

    def _reference_keys(self) -> set[str]:
        reference_dir = self.workdir / "reference"
        reference_dir.mkdir(exist_ok=True)
        config = reference_dir / "feeds.toml"
        self._write_config(config, self._feeds(), "/reference")
        db = reference_dir / "reference.db"
        done = run_newsmon(config, db, "poll", cwd=reference_dir)
        if done.returncode != 0:
            raise RuntimeError(f"reference poll failed: {done.stderr[-2000:]}")
        return article_keys(db)


def processes_under(folder: Path, *, by_cwd_only: bool = False) -> list[int]:
    """Pids (other than ours) whose working directory is ``folder`` or whose command line names it."""
    found = []
    needle = str(folder).encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cwd = os.readlink(entry / "cwd")
            cmdline = b"" if by_cwd_only else (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if cwd == str(folder) or (not by_cwd_only and needle in cmdline):
            found.append(int(entry.name))
    return found


def _has_table(conn: sqlite3.Connection, name: str) -> bool:
    return conn.execute("SELECT 1 FROM sqlite_master WHERE name = ?", (name,)).fetchone() is not None
