"""The starter rules of config/feeds.toml agree with every label of a hand-written fixture of
English and French headlines full of traps (Somalia, Malibu, Nigeria, Niger Delta, Paris in
Texas, French rugby, AES the company, Wagner the composer), accents and apostrophes."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest

from monitor.rules import MatchDoc, RuleSet, parse_query, query_from_keywords

REPO = Path(__file__).resolve().parents[1]
FIXTURE = REPO / "tests" / "fixtures" / "headlines.jsonl"
STARTER = ("france-mali", "sahel")


def starter_rules() -> list[tuple[str, str]]:
    config = tomllib.loads((REPO / "config" / "feeds.toml").read_text(encoding="utf-8"))
    rules = []
    for table in config.get("rules", []):
        if table["name"] in STARTER:
            query = table.get("query") or query_from_keywords(table.get("keywords", []), table.get("exclude", []))
            rules.append((table["name"], query))
    return rules


HEADLINES = [json.loads(line) for line in FIXTURE.read_text(encoding="utf-8").splitlines() if line.strip()]
RULESET = RuleSet.compile(starter_rules())


def test_the_starter_rules_are_there() -> None:
    assert [name for name, _ in starter_rules()] == list(STARTER)
    for _, query in starter_rules():
        parse_query(query)


def test_fixture_is_large_and_bilingual() -> None:
    assert len(HEADLINES) >= 60
    languages = {row["lang"] for row in HEADLINES}
    assert languages == {"en", "fr"}
    for rule in STARTER:
        labels = [row["labels"][rule] for row in HEADLINES]
        assert 10 <= sum(labels) <= len(labels) - 10, rule


@pytest.mark.parametrize("row", HEADLINES, ids=[f"{r['id']}-{r['title'][:30]}" for r in HEADLINES])
def test_starter_rules_agree_with_label(row: dict) -> None:
    doc = MatchDoc(title=row["title"], summary=row["summary"], language=row["lang"])
    matched = {match.rule for match in RULESET.match(doc)}
    expected = {rule for rule in STARTER if row["labels"][rule]}
    assert matched == expected, row.get("why")


def test_matches_explain_terms_and_fields() -> None:
    doc = MatchDoc(title="Le Mali exige le départ de l’ambassadeur de France",
                   summary="La junte au pouvoir à Bamako a donné 72 heures au diplomate français.")
    found = {m.rule: m.terms for m in RULESET.match(doc)}
    terms = {(t.term, t.field) for t in found["france-mali"]}
    assert {("france", "title"), ("francai*", "summary"), ("mali", "title"), ("bamako", "summary")} <= terms
