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
import time
from dataclasses import dataclass
from email.utils import format_datetime
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Sequence

REPO = Path(__file__).resolve().parents[1]
CORPORA = REPO.parent / "shared" / "corpora"

# Runs the real root command. Until the lead attaches every command group to it, the ones that exist in
# the package but are not attached yet (run, status, backup, feeds add ...) are added in this process only.
# At exit it writes the process's own peak RSS (VmHWM, kB) to $ROBUST_HWM_FILE when that is set.
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
from monitor.cli import cli, main
try:
    from monitor.cli.daemon_cmds import COMMANDS as _daemon
except ImportError:
    _daemon = ()
for _command in _daemon:
    cli.commands.get(_command.name) or cli.add_command(_command)
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
    peak_kb: int


def run_newsmon(config: Path, db: Path, *args: str, cwd: Path, timeout: float = 300,
                extra_env: dict[str, str] | None = None) -> Run:
    """``newsmon --config CONFIG --db DB ARGS`` in a fresh subprocess; its exit, output, time and peak RSS."""
    hwm = cwd / f".hwm-{os.getpid()}-{time.monotonic_ns()}"
    env = child_env({"ROBUST_HWM_FILE": str(hwm), **(extra_env or {})})
    started = time.monotonic()
    done = subprocess.run(newsmon_argv("--config", str(config), "--db", str(db), *args), cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)
    elapsed = time.monotonic() - started
    peak = int(hwm.read_text()) if hwm.exists() else 0
    hwm.unlink(missing_ok=True)
    return Run(done.returncode, done.stdout, done.stderr, elapsed, peak)


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
