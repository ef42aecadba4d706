"""Story clustering speed: articles/s with 10,000 and with 100,000 articles already stored.

Synthetic articles take their vocabulary from the real feeds in ../shared/corpora/real-feeds:
each is a real entry's title and summary with about a third of its words swapped for random
words, names and numbers of the same corpus (so stories recur, but most articles are new).
Publication times advance 20 s per article (about 4,300 a day, so a 7-day window holds ~30,000).
The archive is filled through the ingest path in batches of 500; then 2,000 more articles are
timed one per transaction with the same long-lived clusterer (as in the daemon), measuring the
whole ingest call and the time inside ``StoryClusterer.assign``, as CPU time of this process (the
machine is shared: wall-clock figures, printed beside, swing with other people's jobs). The baseline
printed beside is the article write alone (``Store.write_article``: row, FTS index, feed link) measured
in the same run. A third batch of 2,000 is timed with each article's story features computed before
the call, as ``newsmon poll`` does in its parser workers and the daemon in its polling threads
(before the feed's write transaction): the writer's share of clustering.

    python bench/cluster_speed.py [--sizes 10000 100000] [--measure 2000]
"""

from __future__ import annotations

import argparse
import glob
import hashlib
import random
import re
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import feedparser  # noqa: E402
from bs4 import BeautifulSoup  # noqa: E402

from cluster_quality import _ingest_path  # noqa: E402
from monitor.models import Article  # noqa: E402
from monitor.store import Store  # noqa: E402
from monitor.store import stories as story_store  # noqa: E402
from monitor.stories import StoryClusterer, article_features  # noqa: E402

FEEDS = ROOT.parent / "shared" / "corpora" / "real-feeds"
START = datetime(2026, 1, 1, tzinfo=timezone.utc)
STEP = timedelta(seconds=20)
_WORD = re.compile(r"\S+")


def real_entries() -> list[tuple[str, str]]:
    entries = []
    for path in sorted(glob.glob(str(FEEDS / "*_2026-02-17.*"))):
        with open(path, "rb") as handle:
            parsed = feedparser.parse(handle.read())
        for entry in parsed.entries:
            summary = BeautifulSoup(entry.get("summary", "") or "", "html.parser").get_text(" ")
            title = entry.get("title", "") or ""
            if title:
                entries.append((title, " ".join(summary.split())[:600]))
    return entries


class Generator:
    def __init__(self, entries: list[tuple[str, str]], seed: int) -> None:
        self.rng = random.Random(seed)
        self.entries = entries
        words = [w for title, summary in entries for w in _WORD.findall(f"{title} {summary}")]
        self.words = words
        self.names = [w for w in words if w[:1].isupper() and len(w) > 3]
        self.count = 0

    def _mutate(self, text: str) -> str:
        out = []
        for word in _WORD.findall(text):
            roll = self.rng.random()
            if roll < 0.2:
                word = self.rng.choice(self.words)
            elif roll < 0.28:
                word = self.rng.choice(self.names)
            elif roll < 0.33:
                word = str(self.rng.randint(2, 5000))
            out.append(word)
        return " ".join(out)

    def article(self) -> tuple[str, Article]:
        title, summary = self.rng.choice(self.entries)
        title, summary = self._mutate(title), self._mutate(summary)
        published = START + STEP * self.count
        self.count += 1
        url = f"https://synthetic.example/{self.count}"
        fingerprint = hashlib.sha256(f"{title} {summary}".lower().encode()).hexdigest()[:32]
        feed = f"feed-{self.rng.randrange(40):02d}"
        return feed, Article(
            key=f"url:{url}", url=url, guid=None, title=title, summary=summary, content="", published=published,
            published_source="published", undated=False, first_seen=published, language="en",
            fingerprint=fingerprint,
        )


class TimedClusterer(StoryClusterer):
    """The real clusterer, with the wall and CPU time spent in ``assign`` added up."""

    spent = 0.0
    cpu = 0.0

    def assign(self, conn, article_id, article, feed_name, **kwargs):  # type: ignore[no-untyped-def]
        started, started_cpu = time.perf_counter(), time.process_time()
        try:
            return super().assign(conn, article_id, article, feed_name, **kwargs)
        finally:
            self.spent += time.perf_counter() - started
            self.cpu += time.process_time() - started_cpu


def fill(store: Store, generator: Generator, clusterer: StoryClusterer, count: int, ingest) -> None:  # type: ignore[no-untyped-def]
    batch: dict[str, list[Article]] = {}
    for done in range(count):
        feed, article = generator.article()
        batch.setdefault(feed, []).append(article)
        if (done + 1) % 500 == 0 or done + 1 == count:
            for name, articles in batch.items():
                ingest(store, name, articles, now=articles[-1].first_seen, clusterer=clusterer)
            batch = {}


def measure(store: Store, generator: Generator, clusterer: TimedClusterer, count: int, ingest  # type: ignore[no-untyped-def]
            ) -> dict[str, float]:
    """Articles/s, wall and CPU, of the ingest call, of ``assign`` inside it, and of the article write
    alone (the baseline), with the daemon's long-lived clusterer."""
    clusterer.spent = clusterer.cpu = 0.0
    started, started_cpu = time.perf_counter(), time.process_time()
    for _ in range(count):
        feed, article = generator.article()
        ingest(store, feed, [article], now=article.first_seen, clusterer=clusterer)
    total, total_cpu = time.perf_counter() - started, time.process_time() - started_cpu
    started, started_cpu = time.perf_counter(), time.process_time()
    for _ in range(count):
        feed, article = generator.article()
        with store.transaction() as conn:
            feed_id = store.ensure_feed(conn, feed, f"urn:newsmon:feed:{feed}", now=article.first_seen)
            store.write_article(conn, feed_id, article, now=article.first_seen)
    write, write_cpu = time.perf_counter() - started, time.process_time() - started_cpu
    assign, assign_cpu = clusterer.spent, clusterer.cpu
    # As in `newsmon poll` and the daemon: parsing computes each article's features, assign gets them.
    clusterer.spent = clusterer.cpu = 0.0
    for _ in range(count):
        feed, article = generator.article()
        features = article_features(article, clusterer.tuning)
        ingest(store, feed, [article], now=article.first_seen, clusterer=clusterer, features=[features])
    return {
        "assign": count / assign, "assign_cpu": count / assign_cpu,
        "ahead": count / clusterer.spent, "ahead_cpu": count / clusterer.cpu,
        "ingest": count / total, "ingest_cpu": count / total_cpu,
        "write": count / write, "write_cpu": count / write_cpu,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--measure", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    if not FEEDS.exists():
        print(f"corpus not found: {FEEDS}", file=sys.stderr)
        return 1
    ingest, path = _ingest_path()
    generator = Generator(real_entries(), args.seed)
    print(f"path: {path}")
    print(f"vocabulary: {len(generator.entries)} real entries, {len(set(generator.words))} distinct words")
    with tempfile.TemporaryDirectory() as tmp:
        store = Store.open(Path(tmp) / "speed.db")
        with store.transaction() as conn:
            story_store.apply_schema(conn)
        clusterer = TimedClusterer(window=timedelta(days=7))
        stored = 0
        for size in sorted(args.sizes):
            started = time.perf_counter()
            fill(store, generator, clusterer, size - stored, ingest)
            fill_rate = (size - stored) / (time.perf_counter() - started)
            stored = size
            rates = measure(store, generator, clusterer, args.measure, ingest)
            stored += 3 * args.measure
            stories = store.conn.execute("SELECT count(*) FROM stories").fetchone()[0]
            print(f"{size:>7} stored ({stories} stories), articles/s as CPU time (wall clock):")
            print(f"          assign {rates['assign_cpu']:,.0f} ({rates['assign']:,.0f}); "
                  f"ingest call incl. write and commit {rates['ingest_cpu']:,.0f} ({rates['ingest']:,.0f}); "
                  f"baseline, article write alone {rates['write_cpu']:,.0f} ({rates['write']:,.0f}); "
                  f"batched fill {fill_rate:,.0f} wall")
            print(f"          assign given the features computed ahead (the path of newsmon poll and the daemon: "
                  f"parsing computes them) {rates['ahead_cpu']:,.0f} ({rates['ahead']:,.0f})")
        store.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
