"""Scoring a clustering against reference labels (B-cubed), for benchmarks and tests."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Hashable, Mapping


@dataclass(frozen=True)
class BCubed:
    precision: float
    recall: float

    @property
    def f1(self) -> float:
        total = self.precision + self.recall
        return 2 * self.precision * self.recall / total if total else 0.0


def bcubed(predicted: Mapping[Hashable, Hashable], gold: Mapping[Hashable, Hashable]) -> BCubed:
    """B-cubed precision and recall (Bagga & Baldwin) of ``predicted`` against ``gold``.

    Both map item -> cluster label and must cover the same items. For each item, precision is
    the share of its predicted cluster that shares its gold label, recall the share of its gold
    cluster that shares its predicted cluster; both are averaged over items.
    """
    if set(predicted) != set(gold):
        raise ValueError("predicted and gold must label the same items")
    if not gold:
        return BCubed(1.0, 1.0)
    pair_sizes = Counter((predicted[item], gold[item]) for item in gold)
    predicted_sizes = Counter(predicted.values())
    gold_sizes = Counter(gold.values())
    precision = recall = 0.0
    for item in gold:
        both = pair_sizes[(predicted[item], gold[item])]
        precision += both / predicted_sizes[predicted[item]]
        recall += both / gold_sizes[gold[item]]
    count = len(gold)
    return BCubed(precision / count, recall / count)
