"""`newsmon search QUERY`: ranked, accent-insensitive search of the archive, for people and for tools."""

from __future__ import annotations

import csv
import json
import os
import sys
from datetime import datetime
from typing import Iterable, Iterator

import click

from monitor.cli.common import (ID, AppContext, QueryCommand, check_rule_name, count_type, emit_json_array, json_ascii,
                                 one_line, pass_app)
from monitor.errors import UsageError
from monitor.rules import Query, parse_query
from monitor.search import SORTS, SearchHit, count_hits_by_story, highlight, iter_search, positive_terms
from monitor.store import stories as story_queries
from monitor.timeutil import parse_since

PLAIN_MARK = ("[", "]")
TTY_MARK = ("\x1b[1;33m", "\x1b[0m")     # bold yellow, reset
CSV_COLUMNS = ("id", "title", "url", "feed", "published", "story_id", "snippet", "rules")
GROUP_SCAN_PAGES = 20                     # --group-stories reads at most this many pages of hits


def terminal_mark() -> tuple[str, str]:
    """Colour on a terminal, plain brackets when piped or redirected, or where colour is refused
    (``NO_COLOR`` set to anything but an empty string, https://no-color.org; ``TERM=dumb``)."""
    if os.environ.get("NO_COLOR") or os.environ.get("TERM") == "dumb":
        return PLAIN_MARK
    return TTY_MARK if sys.stdout.isatty() else PLAIN_MARK


def parse_time_option(name: str, value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        return parse_since(value)
    except ValueError as exc:
        raise UsageError(f"{name}: {exc}") from None


def short_time(iso: str | None) -> str:
    return (iso or "")[:16].replace("T", " ")


@click.command("search", cls=QueryCommand)
@click.argument("query")
@click.option("--since", help="Published since: a duration (7d) or a date (2026-02-01).")
@click.option("--until", help="Published before: a duration back from now (1d) or a date.")
@click.option("--feed", "feeds", multiple=True, help="Only articles from this feed (repeatable).")
@click.option("--lang", "languages", multiple=True, help="Only this language, e.g. fr (repeatable; fr covers fr-FR).")
@click.option("--rule", help="Only articles that matched this rule.")
@click.option("--story", "story_id", type=ID, help="Only articles of this story.")
@click.option("--sort", type=click.Choice(SORTS), default="relevance", show_default=True,
              help="relevance: BM25 (title above summary above content) damped by age; date: newest first.")
@click.option("--limit", type=count_type(1), default=20, show_default=True, help="At most this many rows.")
@click.option("--offset", type=count_type(0), default=0, show_default=True, help="Skip this many rows.")
@click.option("--group-stories", is_flag=True, help="One row per story (its best hit) with its source count.")
@click.option("--format", "output_format", type=click.Choice(["table", "json", "jsonl", "csv"]), default="table",
              show_default=True, help="table for people; json (one array), jsonl or csv for tools.")
@pass_app
def search_cmd(
    app: AppContext, query: str, since: str | None, until: str | None, feeds: tuple[str, ...],
    languages: tuple[str, ...], rule: str | None, story_id: int | None, sort: str, limit: int, offset: int,
    group_stories: bool, output_format: str,
) -> None:
    """Search the archive. QUERY uses the rules' language: words, "phrases", prefix*, AND/OR/NOT,
    -word, title:/summary:/content:/feed:/lang:/tag:/domain:, NEAR(a b, 5).

    Accents and case do not matter (cooperation finds coopération); words are whole words
    (Mali never finds Somalia or Malibu).
    """
    parsed = parse_query(query)                          # QueryError (exit 2) before touching the archive
    filters = dict(since=parse_time_option("--since", since), until=parse_time_option("--until", until),
                   feeds=_names("--feed", feeds), languages=_names("--lang", languages), rule=rule,
                   story_id=story_id)
    check_rule_name(app, rule)
    mark = terminal_mark() if output_format == "table" else PLAIN_MARK
    store = app.store(readonly=True)
    with store.snapshot() as conn:   # hits are written as they are read, chunk by chunk
        rows: Iterable[tuple[SearchHit, dict | None]]
        if group_stories:
            rows = _grouped(conn, parsed, filters, sort=sort, limit=limit, offset=offset, mark=mark)
        else:
            hits = iter_search(conn, parsed, sort=sort, limit=limit, offset=offset, mark=mark, **filters)
            rows = ((hit, None) for hit in hits)
        _emit(rows, parsed, output_format, mark, grouped=group_stories)


def _names(option: str, values: tuple[str, ...]) -> list[str] | None:
    """The values of a repeatable filter; an empty one is bad usage (``--lang ''`` matched every article and
    ``--feed ''`` none)."""
    if any(not value.strip() for value in values):
        raise UsageError(f"{option} needs a value (it was empty)")
    return list(values) or None


def _grouped(conn: object, parsed: Query, filters: dict, *, sort: str, limit: int, offset: int,
             mark: tuple[str, str]) -> Iterator[tuple[SearchHit, dict]]:
    """The best hit of each story, in rank order, with the story's outlets and the hits it holds.

    Hits without a story form a row each. Reads pages of hits until enough stories are found
    (at most ``GROUP_SCAN_PAGES`` pages, so a very common word stays fast). When hits remain past
    the pages read, a story shown may hold some of them: its hits are then counted in the archive.
    """
    wanted = offset + limit
    page = max(100, wanted * 5)
    order: list[int | str] = []
    best: dict[int | str, SearchHit] = {}
    counts: dict[int | str, int] = {}
    every_hit_read = False
    for number in range(GROUP_SCAN_PAGES):
        read = 0
        for hit in iter_search(conn, parsed, sort=sort, limit=page, offset=number * page, mark=mark,  # type: ignore[arg-type]
                               **filters):
            read += 1
            key: int | str = hit.story_id if hit.story_id is not None else f"article:{hit.id}"
            if key not in counts:
                order.append(key)
                if len(order) <= wanted:   # only the hits that can be shown are kept
                    best[key] = hit
            counts[key] = counts.get(key, 0) + 1
        every_hit_read = read < page
        if every_hit_read or len(order) >= wanted + 1:
            break
    shown = order[offset:wanted]
    in_archive: dict[int, int] = {}
    if not every_hit_read:
        in_archive = count_hits_by_story(conn, parsed, [key for key in shown if isinstance(key, int)],  # type: ignore[arg-type]
                                         **filters)
    for key in shown:   # each story is read as its row is written
        hit = best.pop(key)
        story = story_queries.get_story(conn, hit.story_id) if hit.story_id is not None else None  # type: ignore[arg-type]
        hit_count = counts[key]
        if story is not None and not every_hit_read:
            hit_count = in_archive.get(hit.story_id, hit_count)  # type: ignore[arg-type]
        info = {
            "story_id": hit.story_id,
            "headline": story["headline"] if story else hit.title,
            "sources": story["source_count"] if story else 1,
            "hits": hit_count,
        }
        yield hit, info


def _hit_dict(hit: SearchHit, info: dict | None) -> dict[str, object]:
    data = hit.to_dict()
    if info is not None:
        data["headline"] = info["headline"]
        data["source_count"] = info["sources"]
        data["hit_count"] = info["hits"]
    return data


def _emit(rows: Iterable[tuple[SearchHit, dict | None]], parsed: Query, output_format: str,
          mark: tuple[str, str], *, grouped: bool) -> None:
    """Write each row as it comes (memory does not grow with the number of rows)."""
    if output_format == "json":
        emit_json_array(_hit_dict(hit, info) for hit, info in rows)
    elif output_format == "jsonl":
        for hit, info in rows:
            click.echo(json.dumps(_hit_dict(hit, info), ensure_ascii=json_ascii()))
    elif output_format == "csv":
        columns = CSV_COLUMNS + (("headline", "source_count", "hit_count") if grouped else ())
        writer = csv.DictWriter(_Echo(), fieldnames=columns, lineterminator="\n", extrasaction="ignore")
        writer.writeheader()
        for hit, info in rows:
            data = _hit_dict(hit, info)
            data["rules"] = ";".join(hit.rules)
            writer.writerow(data)
    else:
        _table(rows, parsed, mark, grouped=grouped)


class _Echo:
    """What ``csv`` writes to: stdout, through click."""

    def write(self, text: str) -> None:
        click.echo(text, nl=False)


def _table(rows: Iterable[tuple[SearchHit, dict | None]], parsed: Query, mark: tuple[str, str], *,
           grouped: bool) -> None:
    terms = positive_terms(parsed.root)
    shown = 0
    for hit, info in rows:
        shown += 1
        title = highlight(one_line(hit.title or "(no title)"), terms, field="title", mark=mark)
        head = f"{short_time(hit.published)}  {one_line(hit.feed or '?')}"
        if info is not None:
            outlets = info["sources"]
            head += f"  [story {hit.story_id}: {outlets} outlet{'s' if outlets != 1 else ''}, {info['hits']} hits]" \
                if hit.story_id is not None else ""
        elif hit.story_id is not None:
            head += f"  story {hit.story_id}"
        if hit.rules:
            head += "  rules: " + ", ".join(hit.rules)
        click.echo(f"{hit.id:>8}  {title}")
        click.echo(f"{'':8}  {head}")
        snippet = one_line(hit.snippet, marks=mark)
        if snippet and snippet != title:
            click.echo(f"{'':8}  {snippet}")
        if hit.url:
            click.echo(f"{'':8}  {one_line(hit.url)}")
        click.echo("")
    if not shown:
        click.echo("no results")
