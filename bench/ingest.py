"""Ingest benchmark: newsmon beside feed2exec and newsboat on the same loopback feeds, in one run.

The real feeds of ../shared/corpora/real-feeds are copied N times (default 5) with every link and
GUID made unique per copy, served on 127.0.0.1 with ETags, and each tool does

- a cold ingest (empty database, every item new), then
- a warm poll (same feeds, nothing changed: a tool that sends conditional headers gets 304s).

For each it prints items stored, wall time, items/s, CPU time (user+system) and peak memory (max RSS).
CPU time counts every process the tool started, helpers that outlive it included (newsmon's parser
workers are children of multiprocessing's forkserver, which ends just after newsmon does): this
process becomes their reaper and waits for them all. Peak memory is the tool's own process.
newsmon runs its production path: `newsmon poll`. Its modules' bytecode is compiled first, as pip
does when it installs a package (feed2exec's was compiled when it was installed): an editable checkout
under PYTHONDONTWRITEBYTECODE would otherwise compile every module again in each run.

Competitors are used when found: feed2exec (`pip install feed2exec`, set FEED2EXEC=/path/to/feed2exec if it
lives in another venv) and newsboat (`apt-get install newsboat`). A missing one is reported, not faked.

    python bench/ingest.py [--copies 5] [--runs 1]
"""

from __future__ import annotations

import argparse
import compileall
import ctypes
import os
import re
import resource
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.feedserver import FeedServer  # noqa: E402

CORPUS = REPO.parent / "shared" / "corpora" / "real-feeds"
FEED_SUFFIXES = {".xml", ".rss", ".atom"}


@dataclass
class Measure:
    tool: str
    phase: str
    items: int | None
    wall: float
    cpu: float
    peak_mb: float
    note: str = ""

    def line(self) -> str:
        rate = f"{self.items / self.wall:>9.0f}" if self.items is not None and self.wall > 0 else f"{'-':>9}"
        items = f"{self.items:>7}" if self.items is not None else f"{'-':>7}"
        return (f"{self.tool:<10} {self.phase:<5} items={items} wall={self.wall:7.2f}s items/s={rate} "
                f"cpu={self.cpu:7.2f}s peak={self.peak_mb:7.1f}MB {self.note}")


GNU_TIME = shutil.which("time") if Path("/usr/bin/time").exists() else None


def _become_subreaper() -> bool:
    """Orphaned descendants of the tools measured are re-parented to this process (Linux), so that
    their CPU time is counted when it waits for them."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(36, 1, 0, 0, 0) == 0  # PR_SET_CHILD_SUBREAPER
    except (OSError, AttributeError):
        return False


SUBREAPER = _become_subreaper()


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _reap_descendants(limit: float = 60.0) -> None:
    """Wait for every process left over by the tool (they end on their own once it has exited); after
    ``limit`` seconds warn and go on (the CPU of those still running is then not counted)."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return  # none left
        if pid == 0:
            time.sleep(0.02)
    print(f"warning: processes left by the tool still run after {limit:.0f} s; their CPU is not counted",
          file=sys.stderr)


def run_measured(command: list[str], *, cwd: Path, env: dict[str, str] | None = None) -> tuple[float, float, float, str]:
    """Run a command; return wall seconds, CPU seconds, peak RSS in MB and its stderr tail.

    The figures come from GNU time (`apt-get install time`), which forks the command from its own
    small process: Linux carries a process's peak RSS across exec, so a child spawned straight from
    this Python process would report at least this process's size. Without GNU time, wait4() is used
    and peak memory is an upper bound.
    """
    with tempfile.NamedTemporaryFile() as stderr, tempfile.NamedTemporaryFile("r") as report:
        wrapped = ["/usr/bin/time", "-o", report.name, "-f", "%e %U %S %M", *command] if GNU_TIME else command
        started, cpu_before = time.perf_counter(), _children_cpu()
        process = subprocess.Popen(wrapped, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=stderr)
        _, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
        wall = time.perf_counter() - started
        _reap_descendants()
        cpu = _children_cpu() - cpu_before  # the tool, its children and any orphans of it reaped here
        stderr.seek(0)
        tail = stderr.read().decode("utf-8", "replace")[-400:]
        if process.returncode != 0:
            raise RuntimeError(f"{command[0]} exited {process.returncode}: {tail}")
        if GNU_TIME:
            elapsed, _, _, peak_kb = report.read().split()[-4:]
            return float(elapsed), cpu, int(peak_kb) / 1024, tail
    return wall, cpu, usage.ru_maxrss / 1024, tail


def unique_copy(data: bytes, copy: int) -> bytes:
    """The feed with every URL host and every GUID/id made unique to this copy."""
    data = data.replace(b"://", f"://c{copy}.".encode())
    data = re.sub(rb"(<guid[^>]*>)([^<]+)(</guid>)", lambda m: m.group(1) + m.group(2) + f"-c{copy}".encode() + m.group(3), data)
    data = re.sub(rb"(<id>)([^<]+)(</id>)", lambda m: m.group(1) + m.group(2) + f"-c{copy}".encode() + m.group(3), data)
    return data


def build_server(copies: int) -> tuple[FeedServer, list[tuple[str, str]], int]:
    import feedparser

    server = FeedServer().start()
    feeds: list[tuple[str, str]] = []
    expected = 0
    files = sorted(p for p in CORPUS.iterdir() if p.suffix in FEED_SUFFIXES)
    for copy in range(copies):
        for index, path in enumerate(files):
            body = unique_copy(path.read_bytes(), copy)
            route = f"/c{copy}/f{index}.xml"
            server.add(route, body, content_type="application/xml", etag=f'"c{copy}-{index}"',
                       last_modified="Tue, 17 Feb 2026 08:00:00 GMT")
            feeds.append((f"{path.stem}-c{copy}", server.url(route)))
            expected += len(feedparser.parse(body).entries)
    return server, feeds, expected


# --------------------------------------------------------------------------- tools


def cold_and_warm(tool: str, command: list[str], *, cwd: Path, db: Path, table: str, note: str = "",
                  env: dict[str, str] | None = None) -> list[Measure]:
    """Run the same command twice (empty database, then nothing changed), counting the rows of ``table``."""
    results = []
    for phase in ("cold", "warm"):
        wall, cpu, peak, _ = run_measured(command, cwd=cwd, env=env)
        items = sqlite3.connect(db).execute(f"SELECT count(*) FROM {table}").fetchone()[0]
        results.append(Measure(tool, phase, items, wall, cpu, peak, note))
    return results


def bench_newsmon(work: Path, feeds: list[tuple[str, str]]) -> list[Measure]:
    folder = work / "newsmon"
    folder.mkdir()
    config = folder / "feeds.toml"
    lines = ['[monitor]\ndefault_interval = "1s"\nconcurrency = 8\nper_host = 8\n']
    for name, url in feeds:
        lines.append(f'[[feeds]]\nname = "{name}"\nurl = "{url}"\n')
    config.write_text("\n".join(lines))
    db = folder / "archive.db"
    compileall.compile_dir(REPO / "monitor", quiet=1)  # writes the .pyc files whatever PYTHONDONTWRITEBYTECODE says
    command = [sys.executable, "-m", "monitor", "-q", "--config", str(config), "--db", str(db), "poll"]
    return cold_and_warm("newsmon", command, cwd=REPO, db=db, table="articles")


def find_feed2exec() -> str | None:
    return os.environ.get("FEED2EXEC") or shutil.which("feed2exec")


def bench_feed2exec(work: Path, feeds: list[tuple[str, str]]) -> list[Measure]:
    executable = find_feed2exec()
    if executable is None:
        return [Measure("feed2exec", "-", None, 0, 0, 0, "not installed (pip install feed2exec; or set FEED2EXEC)")]
    folder = work / "feed2exec"
    folder.mkdir()
    ini = folder / "feed2exec.ini"
    ini.write_text("".join(f"[{name}]\nurl = {url}\noutput = feed2exec.plugins.null\n\n" for name, url in feeds))
    db = folder / "feed2exec.db"
    command = [executable, "--config", str(ini), "--database", str(db), "fetch", "--parallel"]
    # feed2exec remembers every item it has seen in its table feedcache.
    return cold_and_warm("feed2exec", command, cwd=folder, db=db, table="feedcache", note="fetch --parallel")


def bench_newsboat(work: Path, feeds: list[tuple[str, str]]) -> list[Measure]:
    executable = shutil.which("newsboat")
    if executable is None:
        return [Measure("newsboat", "-", None, 0, 0, 0, "not installed (apt-get install newsboat)")]
    folder = work / "newsboat"
    folder.mkdir()
    urls = folder / "urls"
    urls.write_text("".join(f"{url}\n" for _, url in feeds))
    config = folder / "config"
    config.write_text("reload-threads 8\nshow-read-feeds yes\n")
    cache = folder / "cache.db"
    env = dict(os.environ, HOME=str(folder))
    command = [executable, "-u", str(urls), "-c", str(cache), "-C", str(config), "-x", "reload"]
    return cold_and_warm("newsboat", command, cwd=folder, db=cache, table="rss_item", note="reload-threads 8",
                         env=env)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--copies", type=int, default=5)
    parser.add_argument("--runs", type=int, default=1, help="repeat the whole comparison")
    parser.add_argument("--only", choices=("newsmon", "feed2exec", "newsboat"), action="append")
    args = parser.parse_args()
    if not CORPUS.is_dir():
        sys.exit(f"missing corpus {CORPUS}")
    server, feeds, expected = build_server(args.copies)
    print(f"{len(feeds)} feeds, {expected} entries (feedparser count) on {server.base_url}; {os.cpu_count()} cores; "
          f"CPU counts orphaned helper processes: {'yes' if SUBREAPER else 'no (not Linux)'}")
    tools = args.only or ["newsmon", "feed2exec", "newsboat"]
    runners = {"newsmon": bench_newsmon, "feed2exec": bench_feed2exec, "newsboat": bench_newsboat}
    try:
        for run in range(args.runs):
            for tool in tools:
                with tempfile.TemporaryDirectory(prefix=f"bench-{tool}-") as work:
                    for measure in runners[tool](Path(work), feeds):
                        print(f"run {run + 1}  {measure.line()}", flush=True)
    finally:
        server.stop()


if __name__ == "__main__":
    main()
