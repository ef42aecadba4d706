"""End to end: real feeds served on 127.0.0.1, `newsmon poll`, a real SQLite archive."""

from __future__ import annotations

import json
import sqlite3
from datetime import datetime, timedelta
from pathlib import Path

import feedparser
import pytest
from click.testing import CliRunner, Result

from monitor.cli import cli
from monitor.normalize import canonical_url
from tests.feedserver import FeedServer

SAME_DAY = "*_2026-02-17.*"


def write_config(path: Path, feeds: list[tuple[str, str]], extra: str = "") -> Path:
    lines = ['[monitor]\ndefault_interval = "1s"\nconcurrency = 4\n']
    for name, url in feeds:
        lines.append(f'[[feeds]]\nname = "{name}"\nurl = "{url}"\n')
    path.write_text("\n".join(lines) + extra)
    return path


def run(*args: str) -> Result:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return result


@pytest.fixture
def real_feeds(corpora: Path) -> list[Path]:
    files = sorted((corpora / "real-feeds").glob(SAME_DAY))
    assert len(files) >= 20
    return files


def test_poll_stores_every_entry_then_conditional_get_stores_nothing(
    tmp_path: Path, real_feeds: list[Path], feed_server: FeedServer
) -> None:
    feeds = []
    for index, path in enumerate(real_feeds):
        route = f"/f{index}.xml"
        feed_server.add(route, path.read_bytes(), content_type="application/rss+xml", etag=f'"e{index}"')
        feeds.append((path.stem, feed_server.url(route)))
    config = write_config(tmp_path / "feeds.toml", feeds)
    db = tmp_path / "archive.db"

    first = run("--config", str(config), "--db", str(db), "poll")
    assert first.exit_code == 0, first.output
    assert first.output.count("ok ") == len(feeds)

    conn = sqlite3.connect(db)
    stored_urls = {row[0] for row in conn.execute("SELECT url FROM articles")}
    stored_titles = {row[0] for row in conn.execute("SELECT title FROM articles")}
    total_entries = 0
    for path in real_feeds:
        parsed = feedparser.parse(path.read_bytes())
        total_entries += len(parsed.entries)
        for entry in parsed.entries:
            link = canonical_url(entry.get("link") or "")
            assert link in stored_urls or entry.get("title", "").strip() in stored_titles, (path.name, entry.get("link"))
    count = conn.execute("SELECT count(*) FROM articles").fetchone()[0]
    assert 0.9 * total_entries <= count <= total_entries
    links = conn.execute("SELECT count(*) FROM article_feeds").fetchone()[0]
    assert links >= count

    second = run("--config", str(config), "--db", str(db), "poll")
    assert second.exit_code == 0, second.output
    assert second.output.count("not_modified") == len(feeds)
    for index in range(len(feeds)):
        requests = feed_server.requests_for(f"/f{index}.xml")
        assert len(requests) == 2
        assert requests[1].headers.get("if-none-match") == f'"e{index}"'
    assert conn.execute("SELECT count(*) FROM articles").fetchone()[0] == count


def test_identical_body_without_validators_parses_nothing(
    tmp_path: Path, real_feeds: list[Path], feed_server: FeedServer
) -> None:
    feed_server.add("/plain.xml", real_feeds[0].read_bytes())
    config = write_config(tmp_path / "feeds.toml", [("plain", feed_server.url("/plain.xml"))])
    db = tmp_path / "archive.db"
    assert run("--config", str(config), "--db", str(db), "poll").exit_code == 0
    again = run("--config", str(config), "--db", str(db), "poll")
    assert "unchanged" in again.output
    outcomes = [row[0] for row in sqlite3.connect(db).execute("SELECT outcome FROM fetch_log ORDER BY id")]
    assert outcomes == ["ok", "unchanged"]
    assert _leases_held(db) == 0


def _leases_held(db: Path) -> int:
    """Feeds whose poll lease is still taken (each refresh's last write gives its lease back)."""
    return sqlite3.connect(db).execute("SELECT count(*) FROM feeds WHERE lease_owner IS NOT NULL").fetchone()[0]


def test_one_failing_feed_does_not_stop_the_others(tmp_path: Path, real_feeds: list[Path],
                                                   feed_server: FeedServer) -> None:
    feed_server.add("/good.xml", real_feeds[1].read_bytes())
    feed_server.add("/broken.xml", b"<html><body>Not a feed</body></html>", content_type="text/html")
    feed_server.add("/missing.xml", b"no", status=404)
    config = write_config(tmp_path / "feeds.toml", [
        ("good", feed_server.url("/good.xml")),
        ("broken", feed_server.url("/broken.xml")),
        ("missing", feed_server.url("/missing.xml")),
    ])
    db = tmp_path / "archive.db"
    result = run("--config", str(config), "--db", str(db), "poll")
    assert result.exit_code == 0
    listing = run("--config", str(config), "--db", str(db), "feeds", "list", "--format", "json")
    health = {item["name"]: item for item in json.loads(listing.output)}
    assert health["good"]["last_error"] is None and health["good"]["last_status"] == 200
    assert health["broken"]["consecutive_errors"] == 1
    assert health["missing"]["last_status"] == 404 and health["missing"]["consecutive_errors"] == 1
    kinds = dict(sqlite3.connect(db).execute("SELECT name, last_error_kind FROM feeds"))
    assert kinds["missing"] == "http_status"
    assert kinds["broken"] in {"html_page", "not_a_feed"}
    assert _leases_held(db) == 0


@pytest.mark.parametrize("wait", ["99999999999999999999", "1" + "0" * 400, "Fri, 31 Dec 9999 23:59:59 GMT"])
def test_an_absurd_retry_after_is_a_recorded_rate_limit(tmp_path: Path, feed_server: FeedServer, wait: str) -> None:
    """A server may ask for any wait: the poll records the error and backs off no longer than ``backoff_max``."""
    feed_server.add("/busy.xml", b"slow down", status=429, headers={"Retry-After": wait}, content_type="text/plain")
    feed_server.add("/good.xml", _one_item_feed(1))
    config = write_config(tmp_path / "feeds.toml", [("busy", feed_server.url("/busy.xml")),
                                                    ("good", feed_server.url("/good.xml"))])
    db = tmp_path / "archive.db"
    result = run("--config", str(config), "--db", str(db), "poll")
    assert result.exit_code == 0, result.output
    assert "busy" in result.output and "HTTP 429" in result.output
    row = sqlite3.connect(db).execute(
        "SELECT last_error_kind, consecutive_errors, retry_after, next_check, last_fetch FROM feeds WHERE name = 'busy'"
    ).fetchone()
    assert row[:2] == ("rate_limited", 1)
    fetched, retry_at, next_check = (datetime.fromisoformat(v.replace("Z", "+00:00")) for v in (row[4], row[2], row[3]))
    assert retry_at - fetched == timedelta(days=365)
    assert timedelta(0) < next_check - fetched <= timedelta(hours=6, seconds=1)  # backoff_max's default
    assert sqlite3.connect(db).execute("SELECT count(*) FROM articles").fetchone()[0] == 1


def _one_item_feed(index: int) -> bytes:
    return (f'<rss version="2.0"><channel><title>f{index}</title><item><title>Item {index}</title>'
            f"<link>https://example.org/{index}</link></item></channel></rss>").encode()


def _most_at_once(times: list[float], duration: float) -> int:
    """The most requests in flight at once, each taking ``duration`` (the server's delay)."""
    times = sorted(times)
    return max(sum(1 for other in times if start <= other < start + duration * 0.9) for start in times)


def test_poll_fetches_at_most_concurrency_and_per_host_at_once(tmp_path: Path, feed_server: FeedServer) -> None:
    """``concurrency`` and ``per_host`` bound the fetches in flight (the feeds parsed and waiting for
    the writer do not count), and both limits are reached."""
    delay = 0.4
    with FeedServer() as other:
        feeds = []
        for index in range(20):  # enough feeds for the parser processes too
            server = feed_server if index % 2 else other
            server.add(f"/f{index}.xml", _one_item_feed(index), delay=delay)
            url = server.url(f"/f{index}.xml")  # two host names (per_host counts names, not ports)
            feeds.append((f"f{index:02d}", url if server is feed_server else url.replace("127.0.0.1", "localhost")))
        config = write_config(tmp_path / "feeds.toml", feeds)
        config.write_text(config.read_text().replace("concurrency = 4", "concurrency = 3\nper_host = 2"))
        db = tmp_path / "archive.db"
        assert run("--config", str(config), "--db", str(db), "poll").exit_code == 0
        one = [record.time for record in feed_server.requests]
        both = one + [record.time for record in other.requests]
    assert len(both) == 20
    assert _most_at_once(one, delay) == 2  # per_host
    assert _most_at_once(both, delay) == 3  # concurrency
    assert sqlite3.connect(db).execute("SELECT count(*) FROM articles").fetchone()[0] == 20


def test_ctrl_c_stops_a_poll_after_the_feeds_in_flight(tmp_path: Path, feed_server: FeedServer) -> None:
    """SIGINT to the whole command (as a terminal's Ctrl-C sends it, parser processes included): the
    feeds in flight finish and are reported, the others are left for the next poll, exit 130, no
    lease left taken; the next poll does the rest."""
    import os
    import signal
    import subprocess
    import sys
    import time

    count = 20  # enough for the parser processes
    feeds = []
    for index in range(count):
        feed_server.add(f"/f{index}.xml", _one_item_feed(index), delay=1.0)
        feeds.append((f"f{index:02d}", feed_server.url(f"/f{index}.xml")))
    config = write_config(tmp_path / "feeds.toml", feeds)
    config.write_text(config.read_text().replace("concurrency = 4", "concurrency = 2\nper_host = 2"))
    db = tmp_path / "archive.db"
    command = [sys.executable, "-m", "monitor", "--config", str(config), "--db", str(db), "poll"]
    repo = Path(__file__).resolve().parents[1]
    # SIGINT at its default in the child: a shell that starts these tests in the background without job
    # control ignores it, and Python then never turns it into KeyboardInterrupt.
    process = subprocess.Popen(command, cwd=repo, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               start_new_session=True,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 30
    while len(feed_server.requests) < 3 and time.monotonic() < deadline:  # the first two done, the next in flight
        time.sleep(0.05)
    os.killpg(process.pid, signal.SIGINT)
    interrupted = time.monotonic()
    out, err = process.communicate(timeout=30)
    assert process.returncode == 130, err
    assert time.monotonic() - interrupted < 5  # the feeds in flight (1 s each), not the 18 left (9 s)
    polled = [line.split()[1] for line in out.splitlines()]  # "ok f00 new=1 updated=0"
    assert 3 <= len(polled) <= 4, out  # the two done and the two being fetched; none that waited for a slot
    assert "error: interrupted:" in err and "Traceback" not in err
    rows = dict(sqlite3.connect(db).execute("SELECT name, last_fetch IS NOT NULL FROM feeds"))
    assert sorted(name for name, done in rows.items() if done) == sorted(polled)
    assert sqlite3.connect(db).execute("SELECT count(*) FROM articles").fetchone()[0] == len(polled)
    assert _leases_held(db) == 0
    config.write_text(config.read_text().replace("concurrency = 2\nper_host = 2", "concurrency = 8\nper_host = 8"))
    rest = subprocess.run(command, cwd=repo, capture_output=True, text=True, timeout=60)
    assert rest.returncode == 0, rest.stderr
    assert sqlite3.connect(db).execute("SELECT count(*) FROM articles").fetchone()[0] == count


@pytest.mark.parametrize("content_type", ["application/rss+xml; charset=windows-1252", "text/html; charset=ISO-8859-1"])
def test_utf8_feed_served_with_a_latin_charset_is_stored_with_its_accents(
    tmp_path: Path, corpora: Path, feed_server: FeedServer, content_type: str
) -> None:
    """Le Monde's UTF-8 feed behind a server whose default charset is Windows-1252 or Latin-1: the titles
    were stored as mojibake ("Open dâ€™AustralieÂ : la FranÃ§aise"), so searches for their words failed."""
    body = (corpora / "real-feeds" / "lemonde_une_2024-01-18.xml").read_bytes()
    feed_server.add("/une.xml", body, content_type=content_type)
    config = write_config(tmp_path / "feeds.toml", [("Le Monde", feed_server.url("/une.xml"))])
    db = tmp_path / "archive.db"
    result = run("--config", str(config), "--db", str(db), "poll")
    assert result.exit_code == 0, result.output
    titles = {row[0] for row in sqlite3.connect(db).execute("SELECT title FROM articles")}
    expected = {" ".join(entry.title.split()) for entry in feedparser.parse(body).entries}
    assert titles == expected
    assert any("Française Clara Burel" in title for title in titles)
    search = run("--db", str(db), "search", "title:Française", "--format", "json")
    assert search.exit_code == 0 and len(json.loads(search.output)) >= 1, search.output


def _guid_feed(site: str, items: list[tuple[str, str, str]]) -> bytes:
    body = "".join(f"<item><title>{title}</title><link>https://{site}/{slug}</link>"
                   f"<guid isPermaLink='false'>{guid}</guid><description>{title} text</description></item>"
                   for guid, slug, title in items)
    return (f'<?xml version="1.0"?><rss version="2.0"><channel><title>{site}</title><link>https://{site}/</link>'
            f"{body}</channel></rss>").encode()


def test_two_sites_using_one_guid_for_two_stories_keep_both(tmp_path: Path, feed_server: FeedServer) -> None:
    """Two CMSs number their articles alike: the second site's story with the same GUID was taken for the
    first's (poll said new=0) and lost; `newsmon search` never found it."""
    feed_server.add("/alpha.xml", _guid_feed("alpha.example", [("article-1234", "mali", "Junta talks in Bamako")]))
    feed_server.add("/beta.xml", _guid_feed("beta.example", [("article-1234", "niger", "Floods in Niamey")]))
    config = write_config(tmp_path / "feeds.toml", [("alpha", feed_server.url("/alpha.xml")),
                                                    ("beta", feed_server.url("/beta.xml"))])
    db = tmp_path / "archive.db"
    assert run("--config", str(config), "--db", str(db), "poll").exit_code == 0
    for query, feed in (("Niamey", "beta"), ("Bamako", "alpha")):
        hits = json.loads(run("--db", str(db), "search", query, "--format", "json").output)
        assert [hit["feed"] for hit in hits] == [feed], query
    feed_server.add("/beta.xml", _guid_feed("beta.example", [("article-1234", "niger", "Floods in Niamey"),
                                                             ("article-5678", "chad", "Vote in Chad")]))
    assert run("--config", str(config), "--db", str(db), "poll").exit_code == 0
    rows = sqlite3.connect(db).execute("SELECT title FROM articles ORDER BY id").fetchall()
    assert sorted(rows) == [("Floods in Niamey",), ("Junta talks in Bamako",), ("Vote in Chad",)]


def test_permanent_redirect_and_gone_are_recorded(tmp_path: Path, real_feeds: list[Path],
                                                  feed_server: FeedServer) -> None:
    feed_server.add("/new.xml", real_feeds[2].read_bytes())
    feed_server.add("/old.xml", status=301, headers={"Location": "/new.xml"})
    feed_server.add("/gone.xml", b"", status=410)
    config = write_config(tmp_path / "feeds.toml", [
        ("moved", feed_server.url("/old.xml")), ("gone", feed_server.url("/gone.xml")),
    ])
    db = tmp_path / "archive.db"
    assert run("--config", str(config), "--db", str(db), "poll").exit_code == 0
    rows = {row[0]: row[1:] for row in sqlite3.connect(db).execute("SELECT name, permanent_url, gone, next_check FROM feeds")}
    assert rows["moved"][0] == feed_server.url("/new.xml")
    assert rows["gone"][1] == 1 and rows["gone"][2] is None
    # The next poll goes straight to the new URL.
    before = len(feed_server.requests_for("/old.xml"))
    run("--config", str(config), "--db", str(db), "poll", "--feed", "moved")
    assert len(feed_server.requests_for("/old.xml")) == before


def test_bad_config_is_exit_2_without_traceback(tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text('[[feeds]]\nname = "x"\nurl = "https://example.org/"\ninterval = "often"\n')
    result = CliRunner().invoke(cli, ["--config", str(config), "--db", str(tmp_path / "a.db"), "poll"])
    assert result.exit_code == 2
    assert "feeds[0].interval" in result.output and "Traceback" not in result.output


@pytest.mark.parametrize("workers", [1, 2])
def test_parser_workers_compute_the_story_features_assign_would(workers: int) -> None:
    """`newsmon poll` of many feeds computes each article's story features in the parser processes,
    the daemon and a poll of few feeds in the polling thread (``workers`` 1); they must be exactly
    what the clusterer computes itself (same order as the articles)."""
    from datetime import datetime, timezone

    from monitor.config import FeedConfig
    from monitor.models import FetchResult
    from monitor.pipeline import FeedParser
    from monitor.stories import Tuning, article_features

    items = "".join(
        f"<item><title>Mali : la junte reçoit l'ONU à Bamako ({n})</title><link>https://example.org/a/{n}</link>"
        f"<description>&lt;p&gt;Le colonel Assimi Goïta a reçu le 12 février une délégation de l'ONU. "
        f"Les États-Unis et la France suivent.&lt;/p&gt;</description></item>"
        for n in range(5)
    )
    body = f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>t</title>{items}</channel></rss>'
    result = FetchResult(requested_url="https://example.org/rss", url="https://example.org/rss", status=200,
                         headers={"content-type": "application/rss+xml"}, body=body.encode())
    tuning = Tuning()
    parser = FeedParser(workers, tuning=tuning)
    try:
        _, articles, _, features = parser.parse(result, FeedConfig(name="f", url="https://example.org/rss"),
                                                now=datetime(2026, 2, 17, tzinfo=timezone.utc))
    finally:
        parser.close()
    assert len(articles) == 5 and features is not None and len(features) == 5
    for article, computed in zip(articles, features):
        assert computed == article_features(article, tuning)
    assert {"goita", "bamako", "ONU"} <= features[0].names


def test_a_poll_of_few_feeds_computes_story_features_before_its_transaction(tmp_path: Path) -> None:
    """Without parser processes the features are still computed with the parsing (in the polling
    thread, before the feed's write transaction), with the clusterer's tuning."""
    from monitor.config import load_config
    from monitor.pipeline import build_context
    from monitor.store import Store

    config = load_config(write_config(tmp_path / "feeds.toml", [("one", "https://example.org/rss")]))
    store = Store.open(tmp_path / "archive.db")
    ctx = build_context(config, store)
    try:
        assert ctx.parser is not None and ctx.parser.workers == 1
        assert ctx.parser.tuning is ctx.clusterer.tuning
    finally:
        ctx.close()
        store.close()


def test_parser_workers_start_early_and_a_killed_worker_fails_only_its_feed() -> None:
    """``start`` brings the worker processes up before any feed is parsed; a worker killed (as by the
    kernel's OOM killer) fails the feed it was given with ``parser_crash``, and the next feed gets a
    new pool."""
    import multiprocessing
    import os
    import signal
    import time
    from datetime import datetime, timezone

    from monitor.config import FeedConfig
    from monitor.errors import ParseError
    from monitor.models import FetchResult
    from monitor.pipeline import FeedParser

    def workers() -> list[multiprocessing.process.BaseProcess]:
        return [child for child in multiprocessing.active_children() if child.is_alive()]

    body = b"<rss version='2.0'><channel><title>t</title><item><title>a</title><link>https://example.org/a</link>" \
           b"</item></channel></rss>"
    result = FetchResult(requested_url="https://example.org/rss", url="https://example.org/rss", status=200,
                         headers={"content-type": "application/rss+xml"}, body=body)
    feed = FeedConfig(name="f", url="https://example.org/rss")
    now = datetime(2026, 2, 17, tzinfo=timezone.utc)
    before = {child.pid for child in workers()}
    parser = FeedParser(2)
    try:
        parser.start()
        deadline = time.monotonic() + 30
        while len({child.pid for child in workers()} - before) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        started = [child for child in workers() if child.pid not in before]
        assert len(started) == 2  # up before the first parse
        assert [article.title for article in parser.parse(result, feed, now=now)[1]] == ["a"]
        for child in started:
            os.kill(child.pid, signal.SIGKILL)
        for child in started:
            child.join(10)
        with pytest.raises(ParseError) as failed:
            parser.parse(result, feed, now=now)
        assert failed.value.kind == "parser_crash"
        assert [article.title for article in parser.parse(result, feed, now=now)[1]] == ["a"]
    finally:
        parser.close()


def test_parser_server_started_ahead_is_the_one_the_pool_forks_from() -> None:
    """``newsmon poll`` starts the fork server before it imports the pipeline: the server is up at
    once (its imports still running), and the parser processes are its children, not new servers.
    In a fresh interpreter, since the server is a per-process singleton."""
    import subprocess
    import sys

    code = (
        "import multiprocessing.forkserver as fs, os, sys\n"
        "from monitor.parserserver import start_parser_server\n"
        "start_parser_server()\n"
        "server = fs._forkserver._forkserver_pid\n"
        "assert server and 'monitor.pipeline' not in sys.modules and 'feedparser' not in sys.modules\n"
        "from monitor.pipeline import FeedParser\n"
        "parser = FeedParser(2)\n"
        "pool = parser._pool()\n"
        "print(server, pool.submit(os.getppid).result())\n"
        "parser.close()\n"
        "print(fs._forkserver._forkserver_pid == server)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                          cwd=Path(__file__).resolve().parents[1])
    assert done.returncode == 0, done.stderr
    first, second = done.stdout.split("\n")[:2]
    server, parent = first.split()
    assert server == parent  # the worker was forked by the server started ahead
    assert second == "True"  # and no other server was started


def test_parser_processes_that_cannot_start_fail_the_feed_with_a_message() -> None:
    """When no worker process can be started (here: multiprocessing pointed at a missing interpreter, in a
    fresh process so that no forkserver already runs), the early start only logs, and each feed fails
    with ``parser_crash`` and the cause: no traceback."""
    import subprocess
    import sys

    script = """
import logging, multiprocessing, sys, time
from datetime import datetime, timezone
from monitor.config import FeedConfig
from monitor.errors import ParseError
from monitor.models import FetchResult
from monitor.pipeline import FeedParser
logging.basicConfig(level=logging.WARNING, stream=sys.stdout, format="%(levelname)s %(message)s")
multiprocessing.set_executable("/nonexistent/python")
body = b"<rss version='2.0'><channel><title>t</title><item><title>a</title></item></channel></rss>"
result = FetchResult(requested_url="https://e.example/r", url="https://e.example/r", status=200, headers={}, body=body)
parser = FeedParser(2)
parser.start()
time.sleep(0.5)
for _ in range(2):
    try:
        parser.parse(result, FeedConfig(name="f", url="https://e.example/r"), now=datetime.now(timezone.utc))
    except ParseError as exc:
        print("failed", exc.kind, exc.message)
parser.close()
"""
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    # The missing interpreter also breaks multiprocessing's own resource tracker, whose finalizers may
    # report that ("Exception ignored in: <Finalize object>"); nothing may escape from our threads or code.
    assert "Exception in thread" not in run.stderr and "monitor/" not in run.stderr, run.stderr
    failures = [line for line in run.stdout.splitlines() if line.startswith("failed ")]
    assert len(failures) == 2
    assert all(line.startswith("failed parser_crash the parser processes could not be started") for line in failures)
    assert "parser processes could not be started ahead" in run.stdout


def test_a_poll_leaves_the_document_counts_of_every_article_it_clustered(
    tmp_path: Path, feed_server: FeedServer
) -> None:
    """Story statistics are counted in memory and written in batches; a poll writes the rest when it
    ends, so the archive's document count is the number of articles clustered (no corpus needed)."""
    items = "".join(
        f"<item><title>Niger: report {n} on the Tillabéri convoy</title><link>https://example.org/n/{n}</link>"
        f"<description>Attack number {n} near Tillabéri, officials in Niamey said.</description></item>"
        for n in range(7)
    )
    feed_server.add("/niger.xml", f"<rss version='2.0'><channel><title>n</title>{items}</channel></rss>".encode())
    config = write_config(tmp_path / "feeds.toml", [("niger", feed_server.url("/niger.xml"))])
    db = tmp_path / "archive.db"
    assert run("--config", str(config), "--db", str(db), "poll").exit_code == 0
    conn = sqlite3.connect(db)
    documents = conn.execute("SELECT value FROM story_stats WHERE key = 'documents'").fetchone()
    assert documents == (7,)
    assert conn.execute("SELECT df FROM story_df WHERE term = 'niamey'").fetchone() == (7,)
