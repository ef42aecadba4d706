"""Story clustering quality on ECB+ (development half): B-cubed P/R/F1 for two seeds.

Each document becomes an article of one of 20 outlets; the documents arrive in a seeded shuffled
order, with publication times spread uniformly at random (same seed) over 72 hours from
2026-02-10T00:00Z, in arrival order (the set has no dates, so time carries no signal here).
Every article goes through ``monitor.pipeline.ingest_articles`` (the path ``refresh_feed`` uses)
into a real SQLite archive in a temporary folder. A TF-IDF nearest-neighbour baseline (online,
same order, threshold tuned on this same data) is printed beside it.

    python bench/cluster_quality.py [--seeds 1 2] [--corpus PATH]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import random
import re
import sys
import tempfile
import time
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from monitor.evaluation import BCubed, bcubed  # noqa: E402
from monitor.models import Article  # noqa: E402
from monitor.store import Store  # noqa: E402
from monitor.store import stories as story_store  # noqa: E402
from monitor.stories import StoryClusterer  # noqa: E402

CORPUS = ROOT.parent / "shared" / "corpora" / "clustering" / "ecbplus_dev.jsonl"
START = datetime(2026, 2, 10, tzinfo=timezone.utc)
SPAN = timedelta(hours=72)
OUTLETS = [f"outlet-{n:02d}" for n in range(20)]


def load_docs(path: Path) -> list[dict]:
    with path.open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def fingerprint(title: str, summary: str) -> str:
    text = " ".join(f"{title} {summary}".lower().split())
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def arrivals(docs: list[dict], seed: int) -> list[tuple[dict, datetime, str]]:
    """Docs in a seeded shuffled order with ascending publication times and an outlet each."""
    rng = random.Random(seed)
    order = docs[:]
    rng.shuffle(order)
    offsets = sorted(rng.uniform(0, SPAN.total_seconds()) for _ in order)
    return [(doc, START + timedelta(seconds=int(offset)), rng.choice(OUTLETS)) for doc, offset in zip(order, offsets)]


def to_article(doc: dict, published: datetime) -> Article:
    url = doc.get("source_url") or f"https://ecbplus.example/{doc['doc_id']}"
    title = doc.get("title_guess") or ""
    text = doc["text"]
    return Article(
        key=f"url:{url}#{doc['doc_id']}", url=f"{url}#{doc['doc_id']}", guid=None, title=title, summary=text,
        content="", published=published, published_source="published", undated=False,
        first_seen=published + timedelta(minutes=5), language="en", fingerprint=fingerprint(title, text),
    )


def _ingest_path():  # type: ignore[no-untyped-def]
    """The pipeline's ``ingest_articles`` (the path ``refresh_feed`` uses) and its name."""
    from monitor.pipeline import ingest_articles

    return ingest_articles, "monitor.pipeline.ingest_articles"


def run_clusterer(docs: list[dict], seed: int, folder: Path, **tuning: float) -> tuple[dict[str, int], float]:
    ingest, _ = _ingest_path()
    store = Store.open(folder / f"quality-{seed}.db")
    with store.transaction() as conn:
        story_store.apply_schema(conn)
    clusterer = StoryClusterer(window=timedelta(days=7), **tuning)
    started = time.perf_counter()
    for doc, published, outlet in arrivals(docs, seed):
        ingest(store, outlet, [to_article(doc, published)], now=published + timedelta(minutes=5),
               clusterer=clusterer)
    elapsed = time.perf_counter() - started
    predicted: dict[str, int] = {}
    rows = store.conn.execute(
        "SELECT a.url, sa.story_id FROM story_articles sa JOIN articles a ON a.id = sa.article_id"
    )
    for url, story_id in rows:
        predicted[url.rsplit("#", 1)[1]] = story_id
    store.close()
    return predicted, elapsed


# --------------------------------------------------------------------------- baseline

_WORDS = re.compile(r"[a-z0-9]+")
_BASELINE_STOP = frozenset(
    "the a an and or of to in on at for with by from as is was were be been are it its that this he she they "
    "his her their has have had not but said says will would".split()
)


def _baseline_vectors(docs: list[dict]) -> dict[str, dict[str, float]]:
    tokens = {d["doc_id"]: [w for w in _WORDS.findall(d["text"].lower()) if w not in _BASELINE_STOP]
              for d in docs}
    df = Counter(term for words in tokens.values() for term in set(words))
    count = len(docs)
    vectors = {}
    for doc_id, words in tokens.items():
        tf = Counter(words)
        weights = {t: (1 + math.log(n)) * math.log(count / df[t]) for t, n in tf.items()}
        norm = math.sqrt(sum(w * w for w in weights.values())) or 1.0
        vectors[doc_id] = {t: w / norm for t, w in weights.items()}
    return vectors


def baseline(docs: list[dict], seed: int, thresholds: list[float]) -> tuple[float, BCubed]:
    """Online TF-IDF nearest neighbour (idf over the whole set): join the most similar earlier
    document's cluster when the cosine reaches the threshold. Returns the best threshold."""
    vectors = _baseline_vectors(docs)
    order = [doc["doc_id"] for doc, _, _ in arrivals(docs, seed)]
    gold = {d["doc_id"]: d["cluster"] for d in docs}
    nearest: dict[str, tuple[str | None, float]] = {}
    for index, doc_id in enumerate(order):
        best, best_sim = None, 0.0
        vector = vectors[doc_id]
        for other in order[:index]:
            other_vector = vectors[other]
            sim = sum(w * other_vector.get(t, 0.0) for t, w in vector.items())
            if sim > best_sim:
                best, best_sim = other, sim
        nearest[doc_id] = (best, best_sim)
    results = []
    for threshold in thresholds:
        label: dict[str, str] = {}
        for doc_id in order:
            best, sim = nearest[doc_id]
            label[doc_id] = label[best] if best is not None and sim >= threshold else doc_id
        results.append((threshold, bcubed(label, gold)))
    return max(results, key=lambda item: item[1].f1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--corpus", type=Path, default=CORPUS)
    parser.add_argument("--no-baseline", action="store_true")
    parser.add_argument("--tune", action="append", default=[], help="NAME=VALUE tuning override")
    args = parser.parse_args(argv)
    if not args.corpus.exists():
        print(f"corpus not found: {args.corpus}", file=sys.stderr)
        return 1
    tuning = {}
    for item in args.tune:
        name, value = item.split("=", 1)
        tuning[name] = float(value) if "." in value else int(value)
    docs = load_docs(args.corpus)
    gold = {d["doc_id"]: d["cluster"] for d in docs}
    _, path = _ingest_path()
    print(f"corpus: {args.corpus.name}, {len(docs)} docs, {len(set(gold.values()))} gold clusters")
    print(f"path: {path}")
    print(f"times: uniform random over {SPAN} from {START.isoformat()} (seeded), arrival in time order; "
          f"window 7d; {len(OUTLETS)} outlets at random")
    thresholds = [round(0.05 * n, 2) for n in range(2, 13)]
    with tempfile.TemporaryDirectory() as tmp:
        for seed in args.seeds:
            predicted, elapsed = run_clusterer(docs, seed, Path(tmp), **tuning)
            score = bcubed(predicted, gold)
            stories = len(set(predicted.values()))
            print(f"seed {seed}: newsmon   P={score.precision:.3f} R={score.recall:.3f} F1={score.f1:.3f} "
                  f"stories={stories} ({len(docs) / elapsed:.0f} docs/s through ingest)")
            if not args.no_baseline:
                threshold, base = baseline(docs, seed, thresholds)
                print(f"seed {seed}: baseline  P={base.precision:.3f} R={base.recall:.3f} F1={base.f1:.3f} "
                      f"(TF-IDF nearest neighbour, best threshold {threshold})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
