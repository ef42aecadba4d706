"""The grammar of rules and search queries, and its error messages with positions."""

from __future__ import annotations

import pytest

from monitor.errors import QueryError
from monitor.rules import And, Meta, Near, Not, Or, Term, compile_sql, parse_query, query_from_keywords
from monitor.rules.query import MAX_DEPTH


def root(text: str):
    return parse_query(text).root


def test_words_are_folded_and_adjacent_terms_are_anded() -> None:
    assert root("Goïta Coopération") == And((Term(("goita",)), Term(("cooperation",))))


def test_operators_are_upper_case_only() -> None:
    assert root("Mali OR Niger") == Or((Term(("mali",)), Term(("niger",))))
    assert root("mali or niger et tchad") == And(tuple(Term((w,)) for w in ("mali", "or", "niger", "et", "tchad")))
    assert root("Mali AND NOT Niger") == And((Term(("mali",)), Not(Term(("niger",)))))


def test_precedence_not_then_and_then_or() -> None:
    assert root("a OR b c NOT d") == Or((Term(("a",)), And((Term(("b",)), Term(("c",)), Not(Term(("d",)))))))
    assert root("(a OR b) c") == And((Or((Term(("a",)), Term(("b",)))), Term(("c",))))


def test_minus_negates_only_at_the_start_of_a_word() -> None:
    assert root("Mali -sport") == And((Term(("mali",)), Not(Term(("sport",)))))
    assert root("Niger-Benue") == Term(("niger", "benue"))
    assert root("-(a OR b)") == Not(Or((Term(("a",)), Term(("b",)))))
    assert root("France - Mali") == And((Term(("france",)), Term(("mali",))))  # a lone dash is punctuation


def test_typographic_quotes_and_dashes() -> None:
    """What French and English keyboards and autocorrect type: « … », “ … ”, „ … “ are phrase quotes; an en
    dash or a minus sign before a word excludes it like a hyphen-minus does."""
    burkina = Term(("burkina", "faso"))
    for text in ("« Burkina Faso »", "«Burkina Faso»", "“Burkina Faso”", "„Burkina Faso“", "„Burkina Faso”",
                 "”Burkina Faso”"):
        assert root(text) == burkina, text
    assert root("Mali « Burkina Faso »*") == And((Term(("mali",)), Term(("burkina", "faso"), prefix=True)))
    assert root("NEAR(« Burkina Faso » Mali, 5)") == Near((burkina, Term(("mali",))), 5)
    assert root("Mali»") == Term(("mali",))                  # a stray closing guillemet is punctuation
    for dash in ("\u2013", "\u2212"):
        assert root(f"Mali {dash}football") == And((Term(("mali",)), Not(Term(("football",))))), dash
        assert root(f"Mali {dash} Niger") == And((Term(("mali",)), Term(("niger",)))), dash
        assert root(f"Mali{dash}Niger") == Term(("mali", "niger")), dash


def test_a_pasted_headline_colon_is_punctuation() -> None:
    """"Mali: la junte ..." pasted from a headline: a capitalised word, a colon and a space, and no field
    name it could be a typo of."""
    assert root("Mali: junte") == And((Term(("mali",)), Term(("junte",))))
    assert root('Niger: "coup d’État"') == And((Term(("niger",)), Term(("coup", "d", "etat"))))
    assert root("Burkina Faso:") == And((Term(("burkina",)), Term(("faso",))))


def test_words_with_separators_are_phrases() -> None:
    assert root("l’armée") == Term(("l", "armee"))
    assert root('"Burkina Faso"') == Term(("burkina", "faso"))
    assert root("France — Mali") == And((Term(("france",)), Term(("mali",))))


def test_prefixes() -> None:
    assert root("malien*") == Term(("malien",), prefix=True)
    assert root('"Burkina F"*') == Term(("burkina", "f"), prefix=True)
    assert root("Malién*") == Term(("malien",), prefix=True)


def test_field_scopes() -> None:
    assert root("title:Mali") == Term(("mali",), fields=("title",))
    assert root("TITLE:Mali") == Term(("mali",), fields=("title",))
    assert root("text:Mali") == Term(("mali",))
    assert root('summary:"Burkina Faso"') == Term(("burkina", "faso"), fields=("summary",))
    assert root("title:(Mali OR content:Niger)") == Or((Term(("mali",), fields=("title",)),
                                                       Term(("niger",), fields=("content",))))
    assert root("title:NEAR(Goïta junte, 3)") == Near((Term(("goita",)), Term(("junte",))), 3, ("title",))


def test_meta_fields() -> None:
    assert root('feed:"Al Jazeera"') == Meta("feed", "al jazeera")
    assert root("lang:FR") == Meta("lang", "fr")
    assert root("domain:www.LeMonde.fr") == Meta("domain", "lemonde.fr")
    assert root("tag:Afrique Mali") == And((Meta("tag", "afrique"), Term(("mali",))))


def test_near() -> None:
    assert root('NEAR(Goïta "junte militaire" malien*, 5)') == Near(
        (Term(("goita",)), Term(("junte", "militaire")), Term(("malien",), prefix=True)), 5)
    assert root("NEAR(a b,0)") == Near((Term(("a",)), Term(("b",))), 0)


def test_only_a_negation_is_allowed() -> None:
    assert root("NOT sport") == Not(Term(("sport",)))
    assert compile_sql(parse_query("NOT sport")).match is None


ERRORS = [
    ("(Mali OR Niger", "unbalanced parenthesis", 0),
    ("Mali OR Niger)", "has no (", 13),
    ("a (b (c)", "never closed", 2),
    ('"Burkina Faso', "unbalanced quote", 0),
    ('Mali "Burkina', "unbalanced quote", 5),
    ("Mali « Burkina", "this « is never closed", 5),
    ("“Burkina Faso", "this “ is never closed", 0),
    ("Mali AND", "AND needs a term", 5),
    ("Mali OR", "OR needs a term", 5),
    ("OR Mali", "OR needs a term before", 0),
    ("Mali OR OR Niger", "OR needs a term", 5),
    ("Mali NOT", "NOT needs a term", 5),
    ("Mali -", "", None),  # a lone dash is punctuation: not an error
    ("titel:Mali", "did you mean title:?", 0),
    ("Mali langue:fr", "did you mean lang:?", 5),
    ("summry:x", "did you mean summary:?", 0),
    ("colour:red", "unknown field colour:", 0),
    ("Mali:junte", "unknown field Mali:", 0),
    ("Titel: Mali", "did you mean title:?", 0),
    ("source: RFI", "unknown field source:", 0),
    ("NEAR(Goïta junte)", "NEAR needs a distance", 16),
    ("NEAR(Goïta junte, )", "NEAR needs a distance", 16),
    ("NEAR(Goïta junte, ten)", "whole number", 18),
    ("NEAR(Goïta, 3)", "at least two", 0),
    ("NEAR(a b, 3", "never closed", 0),
    ("Mali near(Goïta junte, 5)", "NEAR is written in capitals", 5),
    ("Near(a b, 3)", "NEAR is written in capitals", 0),
    ("title:near(a b, 3)", "NEAR is written in capitals", 6),
    ("title:\u2013Niger", "put the - before the field", 6),   # an en dash there is a minus too
    ("ma*li", "wildcard", 2),
    ("*", "wildcard", 0),
    ("()", "empty parentheses", 0),
    ("(", "this ( is never closed", 0),
    ("Mali (", "this ( is never closed", 5),
    ("Mali AND (", "this ( is never closed", 9),
    ("title:(", "this ( is never closed", 6),
    ("title:-Niger", "put the - before the field: -title:Niger", 6),
    ("title: -Niger", "put the - before the field: -title:Niger", 7),
    ("title:NOT Niger", "", None),  # NOT glued to the colon is the word "not"
    ("title: NOT Niger", "put the - before the field: -title:Niger", 7),
    ("lang:-fr", "put the - before the field: -lang:fr", 5),
    ("", "empty query", 0),
    ("   ", "empty query", 0),
    ("feed:", "needs a value", 0),
    ("title:", "needs a word", 0),
    ('""', "no words", 0),
]


@pytest.mark.parametrize("text, message, position", ERRORS)
def test_errors_mark_the_position(text: str, message: str, position: int | None) -> None:
    if position is None:
        parse_query(text)
        return
    with pytest.raises(QueryError) as info:
        parse_query(text)
    error = info.value
    assert message in error.reason
    assert error.position == position
    assert error.exit_code == 2
    lines = str(error).splitlines()
    assert lines[1].strip() == text.strip() or not text.strip()
    assert lines[2].index("^") - 2 == position  # the caret sits under the fault


def test_query_from_keywords() -> None:
    text = query_from_keywords(["Goïta", "Burkina Faso", "malien*", 'say "hi"'], ["sport", "Ligue 1"])
    assert text == '("Goïta" OR "Burkina Faso" OR "malien"* OR "say  hi") NOT ("sport" OR "Ligue 1")'
    assert parse_query(text).root == And((
        Or((Term(("goita",)), Term(("burkina", "faso")), Term(("malien",), prefix=True), Term(("say", "hi")))),
        Not(Or((Term(("sport",)), Term(("ligue", "1"))))),
    ))
    assert query_from_keywords([], ["sport"]) == 'NOT ("sport")'
    assert query_from_keywords(["AND", "OR"], []) == '("AND" OR "OR")'
    parse_query(query_from_keywords(["AND", "OR"], []))


def test_compiled_match_holds_only_folded_quoted_tokens() -> None:
    query = parse_query('title:"l’armée" OR NEAR(Goïta junte, 2) OR malien* -"Niger Delta"')
    sql = compile_sql(query)
    assert sql.match == '(title : "l armee" OR NEAR("goita" "junte", 2) OR ("malien"* NOT "niger delta"))'
    assert sql.where == "1"


def test_meta_fields_compile_to_sql_around_the_match() -> None:
    sql = compile_sql(parse_query('Mali feed:"RFI Afrique" -lang:en'))
    assert sql.match == '"mali"'
    assert "article_feeds" in sql.where and "a.language" in sql.where
    assert sql.params == ("rfi afrique", "en", 3, "en-")


@pytest.mark.parametrize("text, message", [
    ("(" * 2000 + "a" + ")" * 2000, "nested too deeply"),
    ("NOT " * 2000 + "a", "nested too deeply"),
    ("-" + "(-" * 1000 + "a" + ")" * 1000, "nested too deeply"),
    ("title: " * 2000 + "a", "nested too deeply"),
    ("NEAR(a b, 2147483648)", "at most 100000"),
    ("NEAR(a b, ٣)", "whole number"),
])
def test_hostile_queries_are_query_errors(text: str, message: str) -> None:
    with pytest.raises(QueryError) as info:
        parse_query(text)
    assert message in info.value.reason


def test_deep_but_reasonable_nesting_works() -> None:
    parse_query("(" * MAX_DEPTH + "a" + ")" * MAX_DEPTH)
    parse_query(" OR ".join(f"w{i}" for i in range(5000)))


def test_a_negated_scope_is_written_before_the_field() -> None:
    assert root("-title:Niger") == Not(Term(("niger",), fields=("title",)))
    assert root("title:(-Niger)") == Not(Term(("niger",), fields=("title",)))
    assert root("title:Niger-Benue") == Term(("niger", "benue"), fields=("title",))
