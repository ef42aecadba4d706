"""Shared helpers for the alert tests: a real archive, the real ingest path, articles and configs.

``World`` wraps a real SQLite archive (``Store.open`` in tmp_path, full migrations), the real rule matcher and
story clusterer, and ``monitor.pipeline.ingest_articles`` (the path ``refresh_feed`` uses), so alerts are
enqueued exactly as in production.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from monitor.config import Config, parse_config
from monitor.models import Article
from monitor.pipeline import IngestResult, ingest_articles
from monitor.rules import RuleSet
from monitor.store import Store
from monitor.store import alerts as outbox_sql
from monitor.stories import StoryClusterer

NOW = datetime(2026, 2, 17, 8, 0, tzinfo=timezone.utc)


def make_article(key: str, title: str, *, summary: str = "", published: datetime | None = None,
                 url: str | None = None, undated: bool = False, seen: datetime | None = None) -> Article:
    seen = seen or NOW
    published = published or seen
    return Article(
        key=f"url:{key}", url=url or f"https://news.example.org/{key}", guid=None, title=title, summary=summary,
        content="", published=published, published_source="first_seen" if undated else "published",
        undated=undated, first_seen=seen, language="en", domain="news.example.org",
        fingerprint=hashlib.sha1(f"{title}\n{summary}".encode()).hexdigest(),
    )


class World:
    def __init__(self, tmp_path: Path, config_text: str) -> None:
        self.tmp_path = tmp_path
        self.config_path = tmp_path / "feeds.toml"
        self.config_path.write_text(config_text, encoding="utf-8")
        self.config: Config = parse_config(config_text, self.config_path)
        self.db_path = tmp_path / "newsmon.db"
        self.store = Store.open(self.db_path)
        self.ruleset = RuleSet.compile([(rule.name, rule.query) for rule in self.config.rules])
        self.clusterer = StoryClusterer(window=self.config.monitor.story_window)

    def ingest(self, feed: str, *articles: Article, now: datetime = NOW, catch_up: bool = False) -> IngestResult:
        return ingest_articles(self.store, feed, list(articles), now=now, clusterer=self.clusterer,
                               ruleset=self.ruleset, config=self.config, catch_up=catch_up)

    def alerts(self, **filters: Any) -> list[dict[str, Any]]:
        with self.store.reading() as conn:
            return list(outbox_sql.iter_alerts(conn, **filters))[::-1]

    def close(self) -> None:
        self.store.close()


def config_text(*, rules: str, channels: str = "", monitor: str = "") -> str:
    return f"[monitor]\n{monitor}\n{channels}\n{rules}\n"


def later(minutes: float = 0, hours: float = 0, days: float = 0) -> datetime:
    return NOW + timedelta(minutes=minutes, hours=hours, days=days)
