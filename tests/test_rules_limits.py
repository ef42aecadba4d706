"""Every query the parser accepts is one SQLite can run: the largest accepted query of each shape
runs through ``search()`` on a real archive (and agrees with the in-memory matcher), and one just
over a limit is a clean QueryError, never SQLite's own error.

The limits were measured with this project's SQLite: before the compiler grouped exclusions, FTS5's
parser overflowed at 100 negated words and SQLite's expression depth (1000) at 1000 ``NOT w``; nested
groups overflow SQLite's parsers at 29 levels (SQL around feed:/lang:) to 34 (FTS5 alone)."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import pytest
from click.testing import CliRunner

from monitor.cli import cli
from monitor.errors import QueryError
from monitor.rules import MatchDoc, parse_query
from monitor.rules.query import MAX_DEPTH, MAX_WORDS
from monitor.search import count_hits
from tests.feedserver import FeedServer
from tests.test_cli_search import labelled_rss
from tests.test_pipeline import write_config
from tests.test_rules_property import Archive, agree, archive  # noqa: F401  (fixture)

DOCS = [
    MatchDoc(title="Trump speaks in Iran", summary="w7 and w8 are here", feeds=["RFI"], language="fr"),
    MatchDoc(title="Trump in Paris", summary="nothing else", language="en", domain="lemonde.fr"),
    MatchDoc(title="Iran talks", content="w0 w1 w2 w3 w4", feeds=["Al Jazeera"]),
    MatchDoc(title="Sahel", summary="Bamako"),
]


def words(count: int, start: int = 0) -> list[str]:
    return [f"w{i}" for i in range(start, start + count)]


# shape name -> query of n words and field values in all
SIZES: dict[str, Callable[[int], str]] = {
    "negated words": lambda n: "Trump " + " ".join("-" + w for w in words(n - 1)),
    "OR NOT chain": lambda n: "Trump OR " + " ".join("NOT " + w for w in words(n - 1)),
    "group then exclusions": lambda n: "(Trump OR Iran) " + " ".join("-" + w for w in words(n - 2)),
    "only exclusions": lambda n: " ".join("-" + w for w in words(n)),
    "long OR": lambda n: " OR ".join(["Trump", *words(n - 1)]),
    "long AND": lambda n: " ".join(words(n)),
    "excluded languages": lambda n: "Trump " + " ".join(f"-lang:x{i}" for i in range(n - 1)),
    "OR of text and fields": lambda n: " OR ".join(f"(w{i} feed:f{i})" for i in range(n // 2)),
    "long phrase": lambda n: '"' + " ".join(words(n)) + '"',
    "wide NEAR": lambda n: "NEAR(" + " ".join(words(n)) + ", 5)",
}


@pytest.mark.parametrize("shape", sorted(SIZES))
def test_the_largest_query_of_each_shape_runs_and_one_more_word_is_refused(archive: Archive, shape: str) -> None:
    largest = SIZES[shape](MAX_WORDS)
    same, _ = agree(archive, largest, DOCS)
    assert same, f"matcher and search() disagree on the largest {shape}"
    count_hits(archive.conn, largest)
    with pytest.raises(QueryError) as info:
        parse_query(SIZES[shape](MAX_WORDS + 2))
    assert f"more than {MAX_WORDS} words" in info.value.reason


def test_exclusions_that_overflowed_fts5_find_what_they_should(archive: Archive) -> None:
    """100 negated words were the first to overflow FTS5's parser; 1000 NOT w SQLite's depth."""
    assert agree(archive, "Trump " + " ".join("-" + w for w in words(100)), DOCS) == (True, 1)
    assert agree(archive, "Trump " + " ".join("-" + w for w in words(100, start=10)), DOCS) == (True, 2)
    assert agree(archive, "Trump OR " + " ".join("NOT " + w for w in words(1000)), DOCS) == (True, 3)


def nest(step: Callable[[int, str], str]) -> Callable[[int], str]:
    def build(levels: int) -> str:
        text = "Trump"
        for i in range(levels):
            text = step(i, text)
        return text
    return build


NESTINGS: dict[str, Callable[[int], str]] = {
    "AND in OR": nest(lambda i, s: f"w{i} OR ({s})" if i % 2 else f"w{i} ({s})"),
    "AND in OR with feeds": nest(lambda i, s: f"feed:f{i} OR ({s})" if i % 2 else f"w{i} ({s})"),
    "languages": nest(lambda i, s: f"lang:l{i} OR ({s})" if i % 2 else f"lang:m{i} ({s})"),
    "NOT in AND": nest(lambda i, s: f"w{i} -({s})"),
    "NOT in OR": nest(lambda i, s: f"w{i} OR -({s})"),
    "NOT in OR with languages": nest(lambda i, s: f"lang:x{i} OR -({s})"),
    "NOT of NOT": nest(lambda i, s: f"-({s})"),
    "scopes": nest(lambda i, s: f"title:({s}) OR w{i}"),
    "mixed": nest(lambda i, s: [f"w{i} ({s})", f"lang:x OR ({s})", f"-({s})", f"title:({s}) w{i}"][i % 4]),
    "parentheses only": lambda n: "(" * n + "Trump" + ")" * n,
}


@pytest.mark.parametrize("shape", sorted(NESTINGS))
def test_the_deepest_query_of_each_shape_runs_and_one_deeper_is_refused(archive: Archive, shape: str) -> None:
    build = NESTINGS[shape]
    levels = 1
    while True:
        try:
            parse_query(build(levels + 1))
        except QueryError as exc:
            assert f"nested too deeply (more than {MAX_DEPTH} levels)" in exc.reason
            break
        levels += 1
    assert levels >= MAX_DEPTH // 2 - 1
    same, _ = agree(archive, build(levels), DOCS)
    assert same, f"matcher and search() disagree on the deepest {shape}"


RULES = """
[[rules]]
name = "wide"
query = \"\"\"(Bamako OR Goïta) """ + " ".join("-" + w for w in words(120)) + """\"\"\"

[[rules]]
name = "shorthand"
keywords = ["Bamako", "Goïta"]
exclude = [""" + ", ".join(f'"{w}"' for w in words(1200)) + """]
"""


def test_search_and_rules_test_run_large_queries_and_refuse_larger_ones(tmp_path: Path) -> None:
    with FeedServer() as server:
        server.add("/desk.xml", labelled_rss())
        config = write_config(tmp_path / "feeds.toml", [("Desk", server.url("/desk.xml"))], extra=RULES)
        base = ["--config", str(config), "--db", str(tmp_path / "archive.db")]
        assert CliRunner().invoke(cli, [*base, "poll"]).exit_code == 0
    runner = CliRunner()
    for rule in ("wide", "shorthand"):
        tested = runner.invoke(cli, [*base, "rules", "test", rule, "--format", "json"])
        assert tested.exit_code == 0, tested.output
        assert '"count": 1' in tested.output
    hundred = runner.invoke(cli, [*base, "search", "Bamako " + " ".join("-" + w for w in words(100))])
    assert hundred.exit_code == 0, hundred.output
    assert "Mali" in hundred.output
    too_long = runner.invoke(cli, [*base, "search", SIZES["negated words"](MAX_WORDS + 1)])
    assert too_long.exit_code == 2
    assert f"more than {MAX_WORDS} words" in too_long.output and "SQLite" not in too_long.output
    too_deep = runner.invoke(cli, [*base, "search", NESTINGS["NOT in OR"](MAX_DEPTH)])
    assert too_deep.exit_code == 2 and "nested too deeply" in too_deep.output


def test_a_rule_over_a_limit_is_a_config_error_naming_the_rule(tmp_path: Path) -> None:
    big = SIZES["negated words"](MAX_WORDS + 1)
    config = write_config(tmp_path / "feeds.toml", [("Desk", "https://desk.example.org/feed")],
                          extra=f'[[rules]]\nname = "huge"\nquery = """{big}"""\n')
    result = CliRunner().invoke(cli, ["--config", str(config), "--db", str(tmp_path / "a.db"), "rules", "list"])
    assert result.exit_code == 2
    assert "rules[0].query" in result.output and "'huge'" in result.output and "too long" in result.output
