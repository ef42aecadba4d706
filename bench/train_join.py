"""A learned join decision for the story clusterer, fitted and cross-validated on ECB+ (dev half).

The question: would a small learned classifier over features the clusterer has at hand decide
"does this article join this candidate story?" better than the hand-set rules of
``StoryClusterer._score`` (a cosine threshold plus the many-names, novel-headline-names,
missing-story-names and short-text guards)? The production code is not changed by this script:
``LearnedClusterer`` below is the production clusterer with ``_score`` replaced.

Features of an (article, candidate story) pair (``FEATURES``): the time-decayed cosine with the
centroid (the decay stays hand-set: the benchmark's publication times are random, so time carries
no signal here to learn from), the cosine of the article's title with the story's headline, the
shares of the headline's and of the article's name weight new to the story, the share of the
story's strongest names missing from the article, figures disagreeing, log counts of shared terms
and shared names, log story size, log article length; and, so that the learned decision can at
least express the current one, the current rules' four conditions as 0/1 values.

Training pairs come from replaying the online process through ``monitor.pipeline.ingest_articles``
(the ``refresh_feed`` path) in seeded shuffled orders (``cluster_quality.py``'s arrival model,
seeds ``TRAIN_SEEDS``; the quality benchmark reports seeds 1 and 2). Every candidate the clusterer
scores (same language, within the window, cosine >= 0.1, ``min_shared`` terms shared) is a pair,
labelled 1 when the article's gold cluster is the story's majority gold cluster. The first replay
uses the current decision; later rounds replay with the model fitted so far and add their pairs
(so that the model also sees the stories its own decisions build).

Two ways of fitting a linear decision ``sigmoid(w . x + b) >= threshold``:

- ``--method logistic``: L2-regularised logistic regression on the pairs (pure Python Newton
  steps on standardised features), the threshold chosen by cross-validation;
- ``--method search``: the same linear form, its weights chosen by coordinate search to maximise
  the B-cubed F1 of whole replays (the clustering objective itself rather than pair log-loss),
  starting from the weights that reproduce the current rules.

Honest estimate: leave-topics-out cross-validation over the 21 topics (``--folds``). For each fold
the model is fitted on replays of the other topics only; the whole set is then replayed with it on
seeds 1 and 2 and B-cubed precision and recall are averaged over the held-out topics' documents
(each document's predicted cluster counted whole, so a merge with any document counts). The
current decision is scored the same way on the same documents, in the same run.

Result (bench/RESULTS-stories.md, quality section): no learned form beats the current rules, even
in-sample, so the clusterer keeps them; this script records how that was measured.

    python bench/train_join.py [--method logistic|search] [--folds 5] [--l2 1.0]
                               [--thresholds 0.4 0.5 0.6] [--no-cv]
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
from collections import Counter, defaultdict
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Sequence

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from cluster_quality import CORPUS, arrivals, load_docs, to_article  # noqa: E402

from monitor.pipeline import ingest_articles  # noqa: E402
from monitor.store import Store  # noqa: E402
from monitor.store import stories as story_store  # noqa: E402
from monitor.stories import (  # noqa: E402
    StoryClusterer,
    Tuning,
    _lang,
    _missing_story_names,
    _normalised,
    _novel_title_names,
    _numbers_disagree,
    article_features,
    cosine,
)

TRAIN_SEEDS = (3, 4, 5, 6)
SEARCH_SEEDS = (3, 4)
EVAL_SEEDS = (1, 2)
ROUNDS = 3
MIN_COSINE = 0.1

FEATURES: tuple[str, ...] = (
    "cosine",             # cosine with the story centroid, time-decayed as in production
    "title_cosine",       # cosine of the article's title with the story's headline
    "novel_title_names",  # share of the headline's name weight the story never mentioned
    "novel_names",        # share of the article's name weight the story never mentioned
    "missing_names",      # share of the weight of the story's 8 strongest names the article lacks
    "numbers_disagree",   # 1 when both carry figures and the article's main ones are not the story's
    "shared_terms",       # log(1 + distinct terms shared with the centroid)
    "shared_names",       # log(1 + names, not figures, shared with the centroid)
    "story_size",         # log(articles in the story)
    "article_terms",      # log(1 + terms in the article vector)
    "rule_many_names",    # the current rules' conditions, 0/1: >= many_names names shared,
    "rule_novel_title",   # ... headline names mostly new to the story,
    "rule_conflict",      # ... and the story's main names missing too,
    "rule_short",         # ... a short text
)
PLAIN_FEATURES = FEATURES[:10]


@dataclass(frozen=True)
class Model:
    weights: tuple[float, ...]
    bias: float
    threshold: float = 0.5

    def probability(self, values: Sequence[float]) -> float:
        z = self.bias + sum(w * x for w, x in zip(self.weights, values))
        return 1.0 / (1.0 + math.exp(-max(-30.0, min(30.0, z))))


def current_rules_model() -> Model:
    """Weights that reproduce the current rules (up to max versus sum): join when
    cosine >= 0.30 - 0.05 many + 0.10 novel + 0.10 conflict + 0.10 short."""
    weights = [0.0] * len(FEATURES)
    scale = 200.0
    weights[FEATURES.index("cosine")] = scale
    for name, shift in (("rule_many_names", 0.05), ("rule_novel_title", -0.10), ("rule_conflict", -0.10),
                        ("rule_short", -0.10)):
        weights[FEATURES.index(name)] = scale * shift
    return Model(tuple(weights), -scale * 0.30 + 1e-6)


class LearnedClusterer(StoryClusterer):
    """The production clusterer; ``_score`` records pair features and, given a model, decides by it."""

    def __init__(self, gold: dict[str, str], model: Model | None, *, record: bool = False) -> None:
        super().__init__(window=timedelta(days=7))
        self.gold = gold
        self.model = model
        self.record = record
        self.doc = ""
        self.title_terms: set[str] = set()
        self.members: dict[int, Counter[str]] = defaultdict(Counter)
        self.pairs: list[tuple[list[float], int]] = []

    def assign(self, conn, article_id, article, feed_name, **kwargs):  # type: ignore[no-untyped-def]
        self.doc = article.url.rsplit("#", 1)[1]
        features = kwargs.pop("features", None) or article_features(article, self.tuning)
        self.title_terms = features.title_terms
        result = super().assign(conn, article_id, article, feed_name, features=features, **kwargs)
        self.members[result.story_id][self.gold[self.doc]] += 1
        return result

    def _score(self, vector, names, title_names, state, article, when):  # type: ignore[no-untyped-def]
        gap = self._gap(article.published, state, when)
        across = bool(article.language and state.language and _lang(article.language) != _lang(state.language))
        if gap is None or across:
            return super()._score(vector, names, title_names, state, article, when)
        similarity = cosine(vector, state.vector, state.norm) * (1.0 - self.tuning.time_decay * gap)
        values = None
        if similarity >= MIN_COSINE and sum(1 for t in vector if t in state.vector) >= self.tuning.min_shared:
            values = pair_features(similarity, vector, names, title_names, self.title_terms, state, self.tuning)
            if self.record:
                majority = self.members[state.id].most_common(1)[0][0]
                self.pairs.append((values, int(majority == self.gold[self.doc])))
        if self.model is None:
            return super()._score(vector, names, title_names, state, article, when)
        if values is None:
            return 0.0
        probability = self.model.probability(values)
        return probability if probability >= self.model.threshold else 0.0


def pair_features(
    similarity: float,
    vector: dict[str, float],
    names: set[str],
    title_names: set[str],
    title_terms: set[str],
    state: story_store.StoryState,
    tuning: Tuning,
) -> list[float]:
    """The values of ``FEATURES`` for one (article, candidate story) pair, in that order."""
    centroid = state.vector
    shared_terms = sum(1 for term in vector if term in centroid)
    name_total = name_novel = 0.0
    shared_names = 0
    for term in names:
        if term[0].isdigit():
            continue
        weight = vector.get(term, 0.0)
        name_total += weight
        if term in centroid:
            shared_names += 1
        else:
            name_novel += weight
    title_vector = _normalised({t: vector[t] for t in title_terms if t in vector})
    novel_title = _novel_title_names(vector, title_names, state)
    missing = _missing_story_names(vector, state, tuning.story_names)
    return [
        similarity,
        cosine(title_vector, state.headline_vector) if title_vector and state.headline_vector else 0.0,
        novel_title,
        name_novel / name_total if name_total else 0.0,
        missing,
        1.0 if _numbers_disagree(vector, centroid) else 0.0,
        math.log1p(shared_terms),
        math.log1p(shared_names),
        math.log(max(state.article_count, 1)),
        math.log1p(len(vector)),
        1.0 if shared_names >= tuning.many_names else 0.0,
        1.0 if novel_title > tuning.novel_names else 0.0,
        1.0 if novel_title > tuning.novel_names and missing > tuning.missing_names else 0.0,
        1.0 if len(vector) < tuning.short_terms else 0.0,
    ]


def replay(docs: list[dict], seed: int, model: Model | None, *, record: bool = False
           ) -> tuple[dict[str, int], list[tuple[list[float], int]]]:
    """(doc id -> story id, recorded pairs) of one online pass through the production ingest path."""
    gold = {d["doc_id"]: d["cluster"] for d in docs}
    clusterer = LearnedClusterer(gold, model, record=record)
    with tempfile.TemporaryDirectory() as tmp:
        store = Store.open(Path(tmp) / "train.db")
        with store.transaction() as conn:
            story_store.apply_schema(conn)
        for doc, published, outlet in arrivals(docs, seed):
            ingest_articles(store, outlet, [to_article(doc, published)], now=published + timedelta(minutes=5),
                            clusterer=clusterer)
        predicted = {url.rsplit("#", 1)[1]: story for url, story in store.conn.execute(
            "SELECT a.url, sa.story_id FROM story_articles sa JOIN articles a ON a.id = sa.article_id")}
        store.close()
    return predicted, clusterer.pairs


# --------------------------------------------------------------------------- fitting


def _solve(matrix: list[list[float]], rhs: list[float]) -> list[float]:
    """Gaussian elimination with partial pivoting (the systems here are at most 15 x 15)."""
    n = len(rhs)
    a = [row[:] + [rhs[i]] for i, row in enumerate(matrix)]
    for col in range(n):
        pivot = max(range(col, n), key=lambda r: abs(a[r][col]))
        a[col], a[pivot] = a[pivot], a[col]
        for r in range(col + 1, n):
            factor = a[r][col] / a[col][col]
            if factor:
                for c in range(col, n + 1):
                    a[r][c] -= factor * a[col][c]
    solution = [0.0] * n
    for r in range(n - 1, -1, -1):
        solution[r] = (a[r][n] - sum(a[r][c] * solution[c] for c in range(r + 1, n))) / a[r][r]
    return solution


def fit_logistic(pairs: list[tuple[list[float], int]], l2: float, use: list[int]) -> Model:
    """L2-regularised logistic regression on standardised features ``use`` (the others get weight 0)."""
    rows = [[values[i] for i in use] for values, _ in pairs]
    labels = [label for _, label in pairs]
    k = len(use)
    means = [sum(row[j] for row in rows) / len(rows) for j in range(k)]
    scales = [math.sqrt(sum((row[j] - means[j]) ** 2 for row in rows) / len(rows)) or 1.0 for j in range(k)]
    xs = [[1.0] + [(row[j] - means[j]) / scales[j] for j in range(k)] for row in rows]
    beta = [0.0] * (k + 1)
    for _ in range(50):
        gradient = [0.0] * (k + 1)
        hessian = [[0.0] * (k + 1) for _ in range(k + 1)]
        for x, y in zip(xs, labels):
            z = sum(b * v for b, v in zip(beta, x))
            p = 1.0 / (1.0 + math.exp(-max(-30.0, min(30.0, z))))
            w = p * (1.0 - p)
            for i in range(k + 1):
                gradient[i] += (y - p) * x[i]
                wi = w * x[i]
                for j in range(i, k + 1):
                    hessian[i][j] += wi * x[j]
        for i in range(k + 1):
            for j in range(i):
                hessian[i][j] = hessian[j][i]
            if i:  # the intercept is not penalised
                gradient[i] -= l2 * beta[i]
                hessian[i][i] += l2
        step = _solve(hessian, gradient)
        beta = [b + s for b, s in zip(beta, step)]
        if max(abs(s) for s in step) < 1e-8:
            break
    weights = [0.0] * len(FEATURES)
    bias = beta[0]
    for j, index in enumerate(use):
        weights[index] = beta[j + 1] / scales[j]
        bias -= beta[j + 1] * means[j] / scales[j]
    return Model(tuple(weights), bias)


def train_logistic(docs: list[dict], l2: float, use: list[int]) -> tuple[Model, int]:
    pairs: list[tuple[list[float], int]] = []
    model: Model | None = None  # first round: the current decision
    for _ in range(ROUNDS):
        for seed in TRAIN_SEEDS:
            pairs.extend(replay(docs, seed, model, record=True)[1])
        model = fit_logistic(pairs, l2, use)
    assert model is not None
    return model, len(pairs)


def f1_of(docs: list[dict], model: Model | None, seeds: Sequence[int]) -> float:
    gold = {d["doc_id"]: d["cluster"] for d in docs}
    total = 0.0
    for seed in seeds:
        predicted, _ = replay(docs, seed, model)
        p, r = item_scores(predicted, gold, set(gold))
        p, r = p / len(gold), r / len(gold)
        total += 2 * p * r / (p + r) if p + r else 0.0
    return total / len(seeds)


def train_search(docs: list[dict], use: list[int]) -> tuple[Model, int]:
    """Coordinate search on the weights (in cosine units) for the best mean B-cubed F1 of replays."""
    start = current_rules_model()
    scale = start.weights[0]
    shifts = {i: start.weights[i] / scale for i in use if i != 0}  # cosine needed moves by -shift * value
    offset = -start.bias / scale                                     # the plain cosine threshold
    means = {i: 0.0 if FEATURES[i].startswith("rule_") or i == FEATURES.index("numbers_disagree") else
             {"title_cosine": 0.3, "novel_title_names": 0.3, "novel_names": 0.3, "missing_names": 0.5,
              "shared_terms": 2.5, "shared_names": 1.5, "story_size": 1.0, "article_terms": 4.0}[FEATURES[i]]
             for i in shifts}

    def model_of(offset: float, shifts: dict[int, float]) -> Model:
        weights = [0.0] * len(FEATURES)
        weights[0] = scale
        bias = -scale * offset
        for i, shift in shifts.items():
            weights[i] = scale * shift
            bias -= scale * shift * means[i]
        return Model(tuple(weights), bias + 1e-6)

    best = f1_of(docs, model_of(offset, shifts), SEARCH_SEEDS)
    evaluations = 1
    for delta in (0.05, 0.02):
        improved = True
        while improved:
            improved = False
            for key in [None, *shifts]:
                for sign in (1.0, -1.0):
                    trial_offset, trial = offset, dict(shifts)
                    if key is None:
                        trial_offset += sign * delta / 2
                    else:
                        trial[key] += sign * delta
                    value = f1_of(docs, model_of(trial_offset, trial), SEARCH_SEEDS)
                    evaluations += 1
                    if value > best + 1e-4:
                        best, offset, shifts, improved = value, trial_offset, trial, True
    return model_of(offset, shifts), evaluations


# --------------------------------------------------------------------------- scoring


def item_scores(predicted: dict[str, int], gold: dict[str, str], items: set[str]) -> tuple[float, float]:
    """Sums over ``items`` of B-cubed precision and recall, each item's predicted cluster counted whole."""
    pair_sizes = Counter((predicted[d], gold[d]) for d in gold)
    predicted_sizes = Counter(predicted.values())
    gold_sizes = Counter(gold.values())
    precision = recall = 0.0
    for d in items:
        both = pair_sizes[(predicted[d], gold[d])]
        precision += both / predicted_sizes[predicted[d]]
        recall += both / gold_sizes[gold[d]]
    return precision, recall


def topic(cluster: str) -> str:
    return cluster.split("_")[0]


def train(docs: list[dict], method: str, l2: float, use: list[int]) -> tuple[Model, int]:
    return train_logistic(docs, l2, use) if method == "logistic" else train_search(docs, use)


def _fold_job(args: tuple) -> dict:
    docs, held, method, l2, use, thresholds = args
    gold = {d["doc_id"]: d["cluster"] for d in docs}
    train_docs = [d for d in docs if topic(d["cluster"]) not in held]
    items = {d["doc_id"] for d in docs if topic(d["cluster"]) in held}
    model, count = train(train_docs, method, l2, use)
    result: dict = {"count": count, "items": len(items), "scores": {}}
    for threshold in thresholds:
        for seed in EVAL_SEEDS:
            predicted, _ = replay(docs, seed, Model(model.weights, model.bias, threshold))
            result["scores"][(threshold, seed)] = item_scores(predicted, gold, items)
    for seed in EVAL_SEEDS:
        predicted, _ = replay(docs, seed, None)
        result["scores"][("current", seed)] = item_scores(predicted, gold, items)
    return result


def cross_validate(docs: list[dict], folds: int, method: str, l2: float, use: list[int],
                   thresholds: list[float], workers: int) -> None:
    topics = sorted({topic(d["cluster"]) for d in docs}, key=int)
    groups = [set(topics[k::folds]) for k in range(folds)]
    jobs = [(docs, held, method, l2, use, thresholds) for held in groups]
    with ProcessPoolExecutor(max_workers=workers) as pool:
        results = list(pool.map(_fold_job, jobs))
    total = sum(r["items"] for r in results)
    what = "training pairs" if method == "logistic" else "replayed F1 evaluations"
    print(f"leave-topics-out CV ({method}): {folds} folds over {len(topics)} topics, "
          f"features: {', '.join(FEATURES[i] for i in use)}" + (f", l2={l2}" if method == "logistic" else ""))
    for held, r in zip(groups, results):
        print(f"  held out topics {sorted(held, key=int)}: {r['items']} docs; {r['count']} {what}")
    for key in ["current", *thresholds]:
        cells = []
        for seed in EVAL_SEEDS:
            p = sum(r["scores"][(key, seed)][0] for r in results) / total
            rec = sum(r["scores"][(key, seed)][1] for r in results) / total
            f1 = 2 * p * rec / (p + rec) if p + rec else 0.0
            cells.append(f"seed {seed} P={p:.3f} R={rec:.3f} F1={f1:.3f}")
        label = "current decision" if key == "current" else f"learned, p >= {key}"
        print(f"  {label:<22} " + "   ".join(cells), flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", type=Path, default=CORPUS)
    parser.add_argument("--method", choices=["logistic", "search"], default="logistic")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--l2", type=float, default=1.0)
    parser.add_argument("--thresholds", type=float, nargs="+", default=[0.3, 0.4, 0.5, 0.6, 0.7])
    parser.add_argument("--features", nargs="+", default=list(FEATURES), choices=FEATURES)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--no-cv", action="store_true")
    args = parser.parse_args(argv)
    docs = load_docs(args.corpus)
    use = sorted(FEATURES.index(name) for name in args.features)
    if FEATURES.index("cosine") not in use:
        parser.error("the features must include cosine")
    if not args.no_cv:
        cross_validate(docs, args.folds, args.method, args.l2, use, args.thresholds, args.workers)
    model, count = train(docs, args.method, args.l2, use)
    print(f"fitted on all topics ({args.method}; {count} "
          f"{'pairs' if args.method == 'logistic' else 'replayed F1 evaluations'}):")
    for name, weight in zip(FEATURES, model.weights):
        print(f"  {name:<18} {weight:+.4f}")
    print(f"  {'bias':<18} {model.bias:+.4f}")
    gold = {d["doc_id"]: d["cluster"] for d in docs}
    for key in ["current", *args.thresholds]:
        cells = []
        for seed in EVAL_SEEDS:
            chosen = None if key == "current" else Model(model.weights, model.bias, key)
            predicted, _ = replay(docs, seed, chosen)
            p, r = item_scores(predicted, gold, set(gold))
            p, r = p / len(gold), r / len(gold)
            cells.append(f"seed {seed} P={p:.3f} R={r:.3f} F1={2 * p * r / (p + r):.3f}")
        label = "current decision" if key == "current" else f"in-sample, p >= {key}"
        print(f"  {label:<22} " + "   ".join(cells), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
