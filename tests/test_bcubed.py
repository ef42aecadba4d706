"""B-cubed scorer on a small example worked by hand."""

from __future__ import annotations

import pytest

from monitor.evaluation import bcubed


def test_hand_worked_example() -> None:
    # gold: {a, b, c} and {d, e}; predicted: {a, b} and {c, d, e}
    gold = {"a": 1, "b": 1, "c": 1, "d": 2, "e": 2}
    predicted = {"a": "x", "b": "x", "c": "y", "d": "y", "e": "y"}
    # precision per item: a 2/2, b 2/2, c 1/3, d 2/3, e 2/3 -> (1 + 1 + 1/3 + 2/3 + 2/3) / 5 = 11/15
    # recall per item:    a 2/3, b 2/3, c 1/3, d 2/2, e 2/2 -> (2/3 + 2/3 + 1/3 + 1 + 1) / 5 = 11/15
    score = bcubed(predicted, gold)
    assert score.precision == pytest.approx(11 / 15)
    assert score.recall == pytest.approx(11 / 15)
    assert score.f1 == pytest.approx(11 / 15)


def test_all_singletons_have_full_precision() -> None:
    gold = {1: "g", 2: "g", 3: "h"}
    predicted = {1: 1, 2: 2, 3: 3}
    score = bcubed(predicted, gold)
    assert score.precision == 1.0
    # recall: 1/2, 1/2, 1/1 -> 2/3
    assert score.recall == pytest.approx(2 / 3)
    assert score.f1 == pytest.approx(0.8)


def test_one_big_cluster_has_full_recall() -> None:
    gold = {1: "g", 2: "g", 3: "h", 4: "h"}
    predicted = {1: 0, 2: 0, 3: 0, 4: 0}
    score = bcubed(predicted, gold)
    assert score.recall == 1.0
    assert score.precision == pytest.approx(0.5)


def test_label_names_do_not_matter() -> None:
    gold = {1: "a", 2: "a", 3: "b"}
    assert bcubed({1: 7, 2: 7, 3: 9}, gold) == bcubed({1: "q", 2: "q", 3: "r"}, gold)
    assert bcubed({1: 7, 2: 7, 3: 9}, gold).f1 == 1.0


def test_items_must_match() -> None:
    with pytest.raises(ValueError):
        bcubed({1: 1}, {2: 1})
