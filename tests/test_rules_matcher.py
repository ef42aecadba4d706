"""The in-memory matcher on hand-made cases: fields, phrases, NEAR, prefixes, meta fields,
explanations, the trigger index, the token memo and threads."""

from __future__ import annotations

import threading

import pytest

from monitor.errors import QueryError
from monitor.rules import MatchDoc, MatchedTerm, RuleSet, matches_query, parse_query
from monitor.rules.matcher import _MEMO_LIMIT, trigger_clauses


def doc(title: str = "", summary: str = "", content: str = "", **meta) -> MatchDoc:
    return MatchDoc(title=title, summary=summary, content=content, **meta)


@pytest.mark.parametrize("query, article, expected", [
    ("Mali", doc("Somalia, Somali and Malibu"), False),
    ("Mali", doc("Mali’s junta"), True),
    ("Niger", doc("Nigeria and nigérien"), False),
    ("nigérien*", doc("les autorités nigériennes"), True),
    ("cooperation", doc(summary="la coopération franco-malienne"), True),
    ("armée", doc("l’armée malienne"), True),
    ("coeur", doc("cœur"), False),                                # œ is not expanded, as in FTS5
    ('"Burkina Faso"', doc("Burkina Faso"), True),
    ('"Burkina Faso"', doc("Burkina", "Faso"), False),              # a phrase never spans fields
    ('"Burkina Faso"', doc("Faso Burkina"), False),
    ("Niger-Benue", doc("the Niger–Benue confluence"), True),
    ("title:Bamako", doc(summary="Bamako"), False),
    ("summary:(Bamako OR Gao)", doc(summary="Gao"), True),
    ("NEAR(Goïta junte, 2)", doc("Goïta dirige la junte"), True),   # two words between: 2
    ("NEAR(Goïta junte, 1)", doc("Goïta dirige la junte"), False),
    ("NEAR(junte Goïta, 2)", doc("Goïta dirige la junte"), True),   # order does not matter
    ('NEAR("la junte" Goïta, 1)', doc("Goïta dirige la junte"), True),
    ("NEAR(Goïta junte, 5)", doc("Goïta", "junte"), False),         # one field
    ("NOT sport", doc("Mali"), True),
    ("NOT sport", doc("sport"), False),
    ('feed:"RFI Afrique"', doc(feeds=["rfi AFRIQUE"]), True),
    ("lang:fr", doc(language="fr-FR"), True),
    ("lang:fr", doc(language="fra"), False),
    ("domain:lemonde.fr", doc(domain="afrique.lemonde.fr"), True),
    ("domain:lemonde.fr", doc(domain="notlemonde.fr"), False),
    ("tag:afrique -lang:en", doc(tags=["Afrique"], language=None), True),
])
def test_semantics(query: str, article: MatchDoc, expected: bool) -> None:
    assert matches_query(query, article) is expected
    assert bool(RuleSet.compile([("r", query)]).match(article)) is expected


def test_explanations_name_terms_and_fields_once() -> None:
    ruleset = RuleSet.compile([("r", '(Mali OR malien* OR "Burkina Faso") AND (France OR Paris) NOT sport')])
    (match,) = ruleset.match(doc("Le Mali et la France", "Paris, Bamako, l’armée malienne, Mali",
                                 "Burkina Faso"))
    assert match.rule == "r"
    assert match.terms == [
        MatchedTerm("mali", "title"), MatchedTerm("mali", "summary"), MatchedTerm("malien*", "summary"),
        MatchedTerm('"burkina faso"', "content"), MatchedTerm("france", "title"), MatchedTerm("paris", "summary"),
    ]


def test_trigger_clauses() -> None:
    clauses = trigger_clauses(parse_query('(Mali OR malien*) AND "Burkina Faso" NOT sport').root)
    assert clauses == [frozenset({"mali", "malien*"}), frozenset({"burkina"}), frozenset({"faso"})]
    assert trigger_clauses(parse_query("NOT sport").root) == []
    assert trigger_clauses(parse_query("Mali OR lang:fr").root) == []


def test_rule_errors_name_the_rule() -> None:
    with pytest.raises(QueryError) as info:
        RuleSet.compile([("good", "Mali"), ("bad", "(Mali")])
    assert "rule bad:" in str(info.value) and info.value.position == 0


def test_memo_restarts_without_losing_matches() -> None:
    ruleset = RuleSet.compile([("mali", "Mali OR malien*"), ("all", "NOT zzz")])
    flood = doc(content=" ".join(f"w{i}" for i in range(_MEMO_LIMIT + 10)))
    assert [m.rule for m in ruleset.match(flood)] == ["all"]
    assert [m.rule for m in ruleset.match(doc("Maliens"))] == ["mali", "all"]
    assert [m.rule for m in ruleset.match(flood)] == ["all"]
    assert [m.rule for m in ruleset.match(doc("Mali"))] == ["mali", "all"]


def test_one_ruleset_shared_by_threads() -> None:
    ruleset = RuleSet.compile([("mali", "Mali OR malien*"), ("niger", "Niger AND junte")])
    articles = [a for i in range(300)
                for a in (doc(f"Mali {i}"), doc(f"Niger junte {i}"), doc(f"malienne x{i}"), doc(f"rien y{i}"))]
    expected = [[m.rule for m in ruleset.match(a)] for a in articles]
    errors: list[BaseException] = []

    def work() -> None:
        try:
            fresh = RuleSet.compile([("mali", "Mali OR malien*"), ("niger", "Niger AND junte")])
            for shared in (ruleset, fresh):
                assert [[m.rule for m in shared.match(a)] for a in articles] == expected
        except BaseException as exc:  # noqa: BLE001 - reported to the main thread below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
