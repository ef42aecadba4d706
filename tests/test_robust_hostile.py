"""Hostile and broken feeds through the WHOLE pipeline: a real ``newsmon poll`` subprocess over a config
with two good feeds and one hostile one, all served on 127.0.0.1.

Each case asserts the error kind recorded on the hostile feed (``feeds.last_error_kind``), that the poll
exited 0 within a bound derived from the config (``fetch_deadline``) plus the time a poll of the good
feeds alone took in the same run, that peak RSS stayed within a bound derived from ``max_body`` above that
same baseline (the command's own VmHWM, and the sum over it and its parser worker processes, which are
sampled from /proc while it runs), and that the good feeds were stored in full.

The fetch layer's own hostile-server tests are in ``test_fetch_hostile.py``; these are the end-to-end
counterpart (what a user sees in the archive and in ``feeds list``).
"""

from __future__ import annotations

import secrets
import struct
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import pytest

from tests.feedserver import FeedServer, repeat_chunks
from tests.test_robust_support import (
    Run, feed_errors, integrity, read_only, rss_feed, run_newsmon, write_config,
)

MB = 1_000_000
MAX_BODY = 2 * MB
DEADLINE = 3.0
MONITOR = f"""
connect_timeout = "2s"
read_timeout = "2s"
fetch_deadline = "{DEADLINE:g}s"
max_body = "{MAX_BODY // MB}MB"
concurrency = 4
"""
GOOD_ITEMS = 25
# Peak memory a hostile body may add to a good poll: a few copies of max_body (the decoded body, feedparser's
# working copies) plus allocator slack. A 50 MB body or a 1 GB bomb read whole would be far above it.
MEMORY_ALLOWANCE_KB = (6 * MAX_BODY) // 1000 + 20_000
SLACK = 5.0  # seconds: subprocess start-up jitter on a loaded 2-core machine
LOAD = 3.0   # the baseline poll may have run while the machine was quieter: allow it to take this many times longer
# (the bounds still catch what they are for: a hostile feed holding the poll for a default 30-60 s timeout)


def deflate_bomb(decompressed: int) -> bytes:
    """A gzip stream of ``decompressed`` zero bytes, built block by block (after a full flush deflate
    output repeats), so the test never holds the expanded data."""
    block_size = 1 << 20
    compressor = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    block = compressor.compress(bytes(block_size)) + compressor.flush(zlib.Z_FULL_FLUSH)
    blocks = decompressed // block_size
    crc = 0
    zeros = bytes(block_size)
    for _ in range(blocks):
        crc = zlib.crc32(zeros, crc)
    trailer = struct.pack("<II", crc, (blocks * block_size) & 0xFFFFFFFF)
    return b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff" + block * blocks + compressor.flush() + trailer


def billion_laughs() -> bytes:
    entities = ['<!ENTITY lol0 "lol">']
    entities += [f'<!ENTITY lol{n} "{("&lol" + str(n - 1) + ";") * 10}">' for n in range(1, 10)]
    return ('<?xml version="1.0"?>\n<!DOCTYPE rss [\n' + "\n".join(entities) + "\n]>\n"
            '<rss version="2.0"><channel><title>laughs</title><link>http://laughs.example.org/</link>'
            "<item><title>&lol9;</title><link>http://laughs.example.org/1</link>"
            "<description>&lol9;</description></item></channel></rss>").encode()


def external_entities(secret_path: Path) -> bytes:
    return ('<?xml version="1.0"?>\n<!DOCTYPE rss [\n'
            '<!ENTITY host SYSTEM "file:///etc/hostname">\n'
            f'<!ENTITY secret SYSTEM "file://{secret_path}">\n'
            '<!ENTITY % remote SYSTEM "file:///etc/hostname">\n'
            "]>\n"
            '<rss version="2.0"><channel><title>xxe &host;</title><link>http://xxe.example.org/</link>'
            "<item><title>Leak &secret; here</title><link>http://xxe.example.org/1</link>"
            "<description>Host &host; secret &secret;</description></item></channel></rss>").encode()


LATIN1_SAFE_TITLE = "Café à Bamako : élections, grève et théâtre"


def latin1_feed() -> bytes:
    return ('<rss version="2.0"><channel><title>Journal été</title><link>http://latin.example.org/</link>'
            f"<item><title>{LATIN1_SAFE_TITLE}</title><link>http://latin.example.org/1</link>"
            "<description>Déjà vu à Ségou, où l'été est chaud.</description></item>"
            "</channel></rss>").encode("latin-1")


@dataclass
class Case:
    name: str
    install: Callable[[FeedServer, Path], str]           # adds the routes, returns the hostile feed's path
    kinds: set[str | None]                              # acceptable last_error_kind (None: polled fine)
    extra_time: float = 0.0                             # beyond the baseline poll (plus SLACK)
    checks: list[Callable[[Path, Path], None]] = field(default_factory=list)


def _route(path: str, body: bytes = b"", **options: object) -> Callable[[FeedServer, Path], str]:
    def install(server: FeedServer, tmp: Path) -> str:
        server.add(path, body, **options)  # type: ignore[arg-type]
        return path
    return install


def _xxe(server: FeedServer, tmp: Path) -> str:
    secret = tmp / "secret.txt"
    secret.write_text(f"TOPSECRET{secrets.token_hex(8)}\n")
    server.add("/xxe.xml", external_entities(secret))
    return "/xxe.xml"


def _redirect_loop(server: FeedServer, tmp: Path) -> str:
    server.redirect("/loop-a", "/loop-b", 302)
    server.redirect("/loop-b", "/loop-a", 302)
    return "/loop-a"


def _no_secret_in_archive(db: Path, tmp: Path) -> None:
    token = (tmp / "secret.txt").read_text().strip()
    hostname = Path("/etc/hostname").read_text().strip() if Path("/etc/hostname").exists() else ""
    for path in db.parent.glob(db.name + "*"):                       # the archive, its WAL and shm
        assert token.encode() not in path.read_bytes(), f"secret file content reached {path.name}"
    conn = read_only(db)
    try:
        texts = [" ".join(str(value) for value in row) for row in conn.execute(
            "SELECT title, summary, content FROM articles UNION ALL SELECT title, '', '' FROM feeds "
            "WHERE title IS NOT NULL")]
    finally:
        conn.close()
    for text in texts:
        assert token not in text
        if hostname:
            assert f" {hostname} " not in f" {text} ", "the contents of /etc/hostname reached the archive"


def _no_huge_text(db: Path, tmp: Path) -> None:
    conn = read_only(db)
    try:
        longest = conn.execute(
            "SELECT max(length(title) + length(summary) + length(content)) FROM articles").fetchone()[0] or 0
    finally:
        conn.close()
    assert longest < 100_000, f"an entity expansion was stored ({longest} characters)"


def _accents_kept(db: Path, tmp: Path) -> None:
    conn = read_only(db)
    try:
        titles = [row[0] for row in conn.execute(
            "SELECT a.title FROM articles a JOIN feeds f ON f.id = a.feed_id WHERE f.name = 'hostile'")]
        feed_title = conn.execute("SELECT title FROM feeds WHERE name = 'hostile'").fetchone()[0]
    finally:
        conn.close()
    assert titles == [LATIN1_SAFE_TITLE]
    assert feed_title == "Journal été"


CASES = [
    Case("billion_laughs", _route("/laughs.xml", billion_laughs()), {None, "not_a_feed", "malformed"},
         checks=[_no_huge_text]),
    Case("external_entity", _xxe, {None, "not_a_feed", "malformed"}, checks=[_no_secret_in_archive]),
    Case("html_page", _route("/page.html", b"<!DOCTYPE html><html><head><title>Home</title></head>"
                             b"<body><p>Welcome</p></body></html>", content_type="text/html"), {"html_page"}),
    Case("empty_body", _route("/empty.xml", b""), {"empty"}),
    Case("json_garbage", _route("/feed.json", b'{"version": "https://jsonfeed.org/version/1", "items": [tru',
                                content_type="application/json"), {"invalid_json"}),
    Case("latin1_undeclared", _route("/latin.xml", latin1_feed(), content_type="application/rss+xml"), {None},
         checks=[_accents_kept]),
    Case("body_50mb_streamed", _route("/big.xml", chunks=repeat_chunks(b"<x>" + b"a" * 65530 + b"</x>", 50 * MB)),
         {"too_large"}),
    Case("body_50mb_with_length", _route("/big2.xml", b"<rss>" + b" " * (50 * MB) + b"</rss>"), {"too_large"}),
    Case("gzip_bomb_1gb", _route("/bomb.xml", deflate_bomb(1 << 30), headers={"Content-Encoding": "gzip"}),
         {"too_large"}),
    Case("trickle", _route("/slow.xml", rss_feed("slow", 3), trickle=0.5), {"deadline", "timeout"},
         extra_time=DEADLINE),
    Case("silent", _route("/silent.xml", rss_feed("silent", 3), delay=30), {"deadline", "timeout"},
         extra_time=DEADLINE),
    Case("reset_before_answer", _route("/reset.xml", reset=True), {"connect", "protocol"}),
    Case("reset_mid_body", _route("/reset2.xml", rss_feed("reset", 50), reset=True), {"connect", "protocol"}),
    Case("redirect_loop", _redirect_loop, {"redirect"}),
    Case("http_404", _route("/404.xml", b"not here", status=404, content_type="text/plain"), {"http_status"}),
    Case("http_410", _route("/410.xml", b"gone", status=410, content_type="text/plain"), {"gone"}),
    Case("http_429", _route("/429.xml", b"slow down", status=429, headers={"Retry-After": "120"},
                            content_type="text/plain"), {"rate_limited"}),
    Case("http_500", _route("/500.xml", b"oops", status=500, content_type="text/plain"), {"http_status"}),
    Case("http_503", _route("/503.xml", b"later", status=503, content_type="text/plain"), {"unavailable"}),
    Case("http_500_huge_error_page", _route("/500big.xml", status=500,
                                            chunks=repeat_chunks(b"e" * 65536, 50 * MB)), {"http_status"}),
]


def _good_routes(server: FeedServer) -> list[tuple[str, str]]:
    feeds = []
    for index in range(2):
        path = f"/good{index}.xml"
        server.add(path, rss_feed(f"good{index}", GOOD_ITEMS), etag=f'"g{index}"')
        feeds.append((f"good{index}", server.url(path)))
    return feeds


def _assert_good_stored(db: Path) -> None:
    conn = read_only(db)
    try:
        counts = dict(conn.execute(
            "SELECT f.name, count(af.article_id) FROM feeds f LEFT JOIN article_feeds af ON af.feed_id = f.id "
            "WHERE f.name LIKE 'good%' GROUP BY f.name"))
    finally:
        conn.close()
    assert counts == {"good0": GOOD_ITEMS, "good1": GOOD_ITEMS}
    errors = feed_errors(db)
    for name in ("good0", "good1"):
        kind, status, count = errors[name]
        assert kind is None and status in (200, 304) and count == 0, (name, errors[name])


def _good_only_poll(tmp: Path, count: int) -> Run:
    """A poll of ``count`` good feeds (same shape as the test's poll: the parser runs in worker processes
    from a number of feeds on, so the baseline has as many feeds as the poll it is compared with)."""
    with FeedServer() as server:
        feeds = []
        for index in range(count):
            path = f"/good{index}.xml"
            server.add(path, rss_feed(f"good{index}", GOOD_ITEMS))
            feeds.append((f"good{index}", server.url(path)))
        config = write_config(tmp / "feeds.toml", feeds, monitor=MONITOR)
        runs = [run_newsmon(config, tmp / f"archive{n}.db", "poll", cwd=tmp) for n in range(2)]
    for run in runs:
        assert run.returncode == 0, run.stderr
    return Run(0, "", "", max(run.elapsed for run in runs), max(run.peak_kb for run in runs),
               max(run.tree_peak_kb for run in runs))


@pytest.fixture(scope="module")
def baseline(tmp_path_factory: pytest.TempPathFactory) -> Run:
    """Good feeds alone, as many as a single-case poll (same machine, same run): the reference for time
    and memory."""
    return _good_only_poll(tmp_path_factory.mktemp("baseline"), 3)


@pytest.fixture(scope="module")
def baseline_all(tmp_path_factory: pytest.TempPathFactory) -> Run:
    """Good feeds alone, as many as the poll of every hostile case at once."""
    return _good_only_poll(tmp_path_factory.mktemp("baseline_all"), len(CASES) + 2)


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_hostile_feed_through_poll(case: Case, baseline: Run, tmp_path: Path, feed_server: FeedServer,
                                  record_property: Callable[[str, object], None]) -> None:
    feeds = _good_routes(feed_server)
    hostile_path = case.install(feed_server, tmp_path)
    feeds.insert(1, ("hostile", feed_server.url(hostile_path)))
    config = write_config(tmp_path / "feeds.toml", feeds, monitor=MONITOR)
    db = tmp_path / "archive.db"

    run = run_newsmon(config, db, "poll", cwd=tmp_path)
    record_property("elapsed_s", round(run.elapsed, 2))
    record_property("baseline_elapsed_s", round(baseline.elapsed, 2))
    record_property("peak_kb", run.peak_kb)
    record_property("baseline_peak_kb", baseline.peak_kb)
    record_property("tree_peak_kb", run.tree_peak_kb)
    record_property("baseline_tree_peak_kb", baseline.tree_peak_kb)

    assert run.returncode == 0, run.stderr
    assert "Traceback" not in run.stderr and "Traceback" not in run.stdout
    kind, _status, errors = feed_errors(db)["hostile"]
    assert kind in case.kinds, (kind, run.stdout)
    assert errors == (0 if kind is None else 1)
    _assert_good_stored(db)
    assert integrity(db) == "ok"
    assert run.elapsed <= LOAD * baseline.elapsed + case.extra_time + SLACK, (run.elapsed, baseline.elapsed)
    assert run.peak_kb and baseline.peak_kb
    assert run.peak_kb <= baseline.peak_kb + MEMORY_ALLOWANCE_KB, (run.peak_kb, baseline.peak_kb)
    assert run.tree_peak_kb <= baseline.tree_peak_kb + MEMORY_ALLOWANCE_KB, (run.tree_peak_kb, baseline.tree_peak_kb)
    for check in case.checks:
        check(db, tmp_path)


def test_every_hostile_feed_in_one_poll(baseline_all: Run, tmp_path: Path, feed_server: FeedServer,
                                       record_property: Callable[[str, object], None]) -> None:
    """All the hostile feeds at once beside the good ones: each recorded, the good ones stored, and memory
    still bounded (at most ``concurrency`` bodies are in flight at a time)."""
    feeds = _good_routes(feed_server)
    for case in CASES:
        feeds.append((case.name, feed_server.url(case.install(feed_server, tmp_path))))
    config = write_config(tmp_path / "feeds.toml", feeds, monitor=MONITOR)
    db = tmp_path / "archive.db"

    run = run_newsmon(config, db, "poll", cwd=tmp_path)
    record_property("elapsed_s", round(run.elapsed, 2))
    record_property("peak_kb", run.peak_kb)
    record_property("tree_peak_kb", run.tree_peak_kb)
    record_property("baseline_tree_peak_kb", baseline_all.tree_peak_kb)
    record_property("baseline_elapsed_s", round(baseline_all.elapsed, 2))

    assert run.returncode == 0, run.stderr
    recorded = feed_errors(db)
    for case in CASES:
        assert recorded[case.name][0] in case.kinds, (case.name, recorded[case.name])
    _assert_good_stored(db)
    assert integrity(db) == "ok"
    slow_cases = sum(1 for case in CASES if case.extra_time)
    assert run.elapsed <= LOAD * baseline_all.elapsed + slow_cases * DEADLINE + SLACK
    assert run.peak_kb <= baseline_all.peak_kb + 4 * MEMORY_ALLOWANCE_KB, (run.peak_kb, baseline_all.peak_kb)
    assert run.tree_peak_kb <= baseline_all.tree_peak_kb + 4 * MEMORY_ALLOWANCE_KB, (run.tree_peak_kb,
                                                                                  baseline_all.tree_peak_kb)
    # a second poll changes nothing for the good feeds and records a second error for the failing ones
    again = run_newsmon(config, db, "poll", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    _assert_good_stored(db)
    later = feed_errors(db)
    assert later["http_404"][2] == 2
    assert later["http_410"][2] >= 1
