"""Multi-outlet stories found in the 23 outlets captured on 2026-02-17 (../shared/corpora/real-feeds).

Each file is parsed and normalised by the project's own stages (``parse_feed``, ``normalize_feed``),
then every article goes through ``ingest_articles`` one at a time in publication order (as if each
had been polled as soon as it appeared), into a real SQLite archive in a temporary folder.
Prints every story carried by two or more outlets, with its sources.

    python bench/cluster_realfeeds.py [--sample 30 --seed 1] [--min-sources 2]
"""

from __future__ import annotations

import argparse
import glob
import random
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from monitor.config import FeedConfig  # noqa: E402
from monitor.errors import ParseError  # noqa: E402
from monitor.models import Article  # noqa: E402
from monitor.parse import parse_feed  # noqa: E402
from monitor.parsejob import normalize_feed  # noqa: E402
from monitor.pipeline import ingest_articles  # noqa: E402
from monitor.store import Store  # noqa: E402
from monitor.store import stories as story_store  # noqa: E402
from monitor.stories import StoryClusterer  # noqa: E402

FEEDS = ROOT.parent / "shared" / "corpora" / "real-feeds"
CAPTURED = datetime(2026, 2, 18, 3, 0, tzinfo=timezone.utc)


def load_articles() -> list[tuple[str, Article]]:
    found: list[tuple[str, Article]] = []
    for path in sorted(glob.glob(str(FEEDS / "*_2026-02-17.*"))):
        outlet = Path(path).name.split("_2026-02-17")[0]
        body = Path(path).read_bytes()
        try:
            parsed = parse_feed(body, {}, f"https://{outlet}.example/feed")
        except ParseError as exc:
            print(f"skipped {outlet}: {exc}", file=sys.stderr)
            continue
        feed = FeedConfig(name=outlet, url=f"https://{outlet}.example/feed")
        articles, _ = normalize_feed(parsed, feed, base_url=feed.url, now=CAPTURED)
        found.extend((outlet, article) for article in articles)
    found.sort(key=lambda item: (item[1].published, item[0]))
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--min-sources", type=int, default=2)
    parser.add_argument("--sample", type=int, default=0, help="print only this many stories, chosen at random")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    if not FEEDS.exists():
        print(f"corpus not found: {FEEDS}", file=sys.stderr)
        return 1
    items = load_articles()
    with tempfile.TemporaryDirectory() as tmp:
        store = Store.open(Path(tmp) / "realfeeds.db")
        clusterer = StoryClusterer(window=timedelta(days=7))
        started = time.perf_counter()
        for outlet, article in items:
            ingest_articles(store, outlet, [article], now=max(article.published, article.first_seen)
                            if article.published <= CAPTURED else CAPTURED, clusterer=clusterer)
        elapsed = time.perf_counter() - started
        with store.reading() as conn:
            stories = story_store.list_stories(conn, since=None, rule=None, min_sources=args.min_sources, limit=None)
            total = conn.execute("SELECT count(*) FROM stories").fetchone()[0]
        store.close()
    outlets = len({outlet for outlet, _ in items})
    print(f"{len(items)} articles from {outlets} outlets in {elapsed:.1f}s; {total} stories, "
          f"{len(stories)} carried by {args.min_sources}+ outlets")
    shown = stories
    if args.sample and args.sample < len(stories):
        shown = random.Random(args.seed).sample(stories, args.sample)
        shown.sort(key=lambda story: story["id"])
    for story in shown:
        print(f"\n#{story['id']} [{story['source_count']} outlets] {story['headline']}")
        for source in story["sources"]:
            print(f"    {source['published']}  {source['feed']:<26} {source['title'][:110]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
