"""The whole feedparser corpus (../shared/corpora/feedparser-tests) through the full pipeline.

Every file is served on 127.0.0.1 with the ``Header:`` lines of its leading comment as response headers,
and polled by ``poll_feeds`` (fetch, parse, clean, normalise, stories, rules, one transaction) into a real
archive, a few hundred feeds per poll. Zero unhandled exceptions: every feed ends ok, not_modified or
unchanged, or with an error of a documented kind recorded on the feed. A second poll of the same batch
must store nothing new (conditional GET or an unchanged body). The archive passes ``integrity_check``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import pytest

from monitor.config import parse_config
from monitor.models import FeedPollResult
from monitor.pipeline import build_context, poll_feeds, refresh_feed
from monitor.store import Store
from tests.corpus_support import corpus_headers
from tests.feedserver import FeedServer
from tests.test_robust_support import CORPORA, integrity

FEEDPARSER_TESTS = CORPORA / "feedparser-tests"
BATCH = 400
FINAL = {"ok", "not_modified", "unchanged"}
ERROR_KINDS = {"empty", "not_a_feed", "html_page", "invalid_json", "malformed",   # ParseError kinds
               "http_status", "gone", "rate_limited", "unavailable"}             # a Header: line can set these
RULES = """
[[rules]]
name = "any-sports"
query = '(sports OR football) AND NOT rugby'

[[rules]]
name = "kw"
keywords = ["example", "entry"]
"""


def corpus_files() -> list[Path]:
    if not FEEDPARSER_TESTS.is_dir():
        return []
    return sorted(path for path in FEEDPARSER_TESTS.rglob("*")
                  if path.is_file() and path.suffix in (".xml", ".json"))


def _serve(server: FeedServer, index: int, path: Path) -> str:
    body = path.read_bytes()
    headers = corpus_headers(body)
    if any(name.lower() == "content-type" for name in headers):
        content_type = None
    else:
        content_type = "application/json" if path.suffix == ".json" else "application/xml"
    route = f"/c{index}{path.suffix}"
    server.add(route, body, headers=headers, content_type=content_type)
    return route


def _config_text(server: FeedServer, routes: list[tuple[str, str]]) -> str:
    lines = ['[monitor]', 'default_interval = "1s"', "concurrency = 8", "per_host = 8", 'fetch_deadline = "20s"', ""]
    for name, route in routes:
        lines.append(f'[[feeds]]\nname = "{name}"\nurl = "{server.url(route)}"\n')
    return "\n".join(lines) + RULES


def _poll_batch(store: Store, config_text: str, names: list[str]) -> list[FeedPollResult]:
    config = parse_config(config_text)
    store.sync_feeds(config.feeds)
    ctx = build_context(config, store)
    try:
        try:
            return poll_feeds(ctx, names, owner="corpus")
        except Exception as exc:  # noqa: BLE001 - the test's job: name the file that raised, then fail
            culprit = _first_raising(ctx, names)
            pytest.fail(f"unhandled {type(exc).__name__} in the pipeline: {exc!r} (first raising feed: {culprit})")
    finally:
        ctx.fetcher.close()


def _first_raising(ctx: object, names: list[str]) -> str | None:
    for name in names:
        try:
            refresh_feed(ctx, name, owner="corpus-diagnosis")  # type: ignore[arg-type]
        except Exception:  # noqa: BLE001 - diagnosis only
            return name
    return None


def _check(results: list[FeedPollResult], names: dict[str, Path]) -> dict[str, int]:
    outcomes: dict[str, int] = {}
    for result in results:
        if result.status == "error":
            assert result.error_kind in ERROR_KINDS, (names[result.feed], result.error_kind, result.error)
            key = f"error:{result.error_kind}"
        else:
            assert result.status in FINAL, (names[result.feed], result.status, result.error)
            key = result.status
        outcomes[key] = outcomes.get(key, 0) + 1
    assert {result.feed for result in results} == set(names)
    return outcomes


def test_whole_feedparser_corpus_through_the_pipeline(
    corpora: Path, tmp_path: Path, record_property: Callable[[str, object], None],
) -> None:
    files = corpus_files()
    assert len(files) > 2000
    db = tmp_path / "archive.db"
    totals: dict[str, int] = {}
    with FeedServer() as server, Store.open(db) as store:
        for start in range(0, len(files), BATCH):
            batch = files[start:start + BATCH]
            names = {f"c{start + offset}": path for offset, path in enumerate(batch)}
            routes = [(name, _serve(server, start + offset, path))
                      for offset, (name, path) in enumerate(names.items())]
            config_text = _config_text(server, routes)
            for key, count in _check(_poll_batch(store, config_text, list(names)), names).items():
                totals[key] = totals.get(key, 0) + count
            before = store.counts()["articles"]
            second = _check(_poll_batch(store, config_text, list(names)), names)
            assert store.counts()["articles"] == before
            assert "ok" not in second, second  # the bodies did not change: nothing is parsed again
        articles = store.counts()["articles"]
        with store.reading() as conn:
            stored_errors = dict(conn.execute(
                "SELECT last_error_kind, count(*) FROM feeds WHERE last_error_kind IS NOT NULL GROUP BY 1"))
    assert integrity(db) == "ok"
    assert sum(totals.values()) == len(files)
    assert totals.get("ok", 0) > 1500
    assert sum(stored_errors.values()) == sum(count for key, count in totals.items() if key.startswith("error:"))
    assert articles > 50, totals   # most corpus files test channel elements and carry no entry
    record_property("outcomes", totals)
    record_property("articles", articles)
