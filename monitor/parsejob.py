"""The parser workers' job: fetched bytes to normalised articles and their story features.

It runs in the worker processes of ``monitor.pipeline.FeedParser`` (and inline when a poll parses in
its own threads). Kept apart from the pipeline so that a worker imports only what parsing needs: the
forkserver preloads this module, and the first feeds of a poll wait for that import.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from monitor import normalize
from monitor.config import FeedConfig
from monitor.errors import ParseError
from monitor.models import Article, ParsedFeed
from monitor.parse import parse_feed
from monitor.stories import Tuning, article_features

log = logging.getLogger(__name__)

WORKER_NICENESS = 10  # parser workers yield the CPU to the writer (see init_worker)


def normalize_feed(parsed: ParsedFeed, feed: FeedConfig, *, base_url: str, now: datetime) -> tuple[list[Article], bool]:
    """Normalised articles of a parsed feed, de-duplicated by key (first wins), and whether URL
    merging is off for it (every entry shares one link, such as a homepage)."""
    articles: dict[str, Article] = {}
    for article in normalize.normalize_feed(parsed, seen_at=now, feed_url=base_url, config_language=feed.language):
        articles.setdefault(article.key, article)
    return list(articles.values()), normalize.feed_has_single_link(parsed.entries)


@dataclass(frozen=True)
class FeedMeta:
    """What the pipeline keeps of a parsed feed besides its articles (small, cheap to send between processes)."""

    format: str
    title: str
    language: str | None
    ttl_minutes: int | None
    bozo: str | None
    entries: int


def parse_job(
    body: bytes, headers: dict[str, str], url: str, feed: FeedConfig, now: datetime, tuning: Tuning | None = None,
) -> tuple[Any, ...]:
    """Parse and normalise one fetched feed; runs in a worker process, so errors travel as values.
    With ``tuning``, each article's story features are computed here too (off the writer's path)."""
    try:
        parsed = parse_feed(body, headers, url)
    except ParseError as exc:
        return ("error", exc.kind, exc.message)
    articles, single_link = normalize_feed(parsed, feed, base_url=url, now=now)
    meta = FeedMeta(parsed.format, parsed.title, parsed.language, parsed.ttl_minutes, parsed.bozo,
                    len(parsed.entries))
    features = [article_features(article, tuning) for article in articles] if tuning is not None else None
    return ("ok", meta, articles, single_link, features)


def init_worker(parent_pid: int) -> None:
    """Pool initializer: a lower CPU priority (the one writer, in the parent, is what a poll waits
    for: when the cores are busy it must not queue behind parsing), Ctrl-C left to the parent (a
    terminal sends SIGINT to every process of the command; the parent decides what stops), and exit
    with the parent."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        os.nice(WORKER_NICENESS)
    except OSError as exc:  # not allowed here (some sandboxes): parse at the same priority
        log.debug("parser worker keeps its priority error=%s", exc)
    _exit_with_parent(parent_pid)


def _exit_with_parent(parent_pid: int) -> None:
    """End this worker once the process that made the pool is gone. After a SIGKILL nobody shuts the
    pool down, and idle workers (which hold the forkserver's liveness pipe) would wait for work
    forever, keeping the forkserver alive too."""

    def watch() -> None:
        while True:
            time.sleep(1.0)
            try:
                os.kill(parent_pid, 0)
            except (ProcessLookupError, PermissionError):  # gone (or its pid reused by another user)
                os._exit(0)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()
