"""`newsmon stories` and `newsmon story ID`."""

from __future__ import annotations

import click

from monitor.cli.common import (ID, AppContext, check_rule_name, count_type, emit_json, emit_json_array,
                                 format_option, one_line, pass_app)
from monitor.errors import UsageError
from monitor.store import stories as story_queries
from monitor.timeutil import parse_duration, parse_since

DEFAULT_SINCE = "7d"


@click.command("stories")
@click.option("--since", help="Stories updated since: a duration (7d) or a date.  [default: 7d]")
@click.option("--all", "show_all", is_flag=True, help="Every story, however old (instead of --since).")
@click.option("--rule", help="Only stories with an article that matched this rule.")
@click.option("--min-sources", type=count_type(1), default=1, show_default=True,
              help="Only stories reported by at least this many outlets (feeds).")
@click.option("--limit", type=count_type(1), default=None, help="At most this many stories.")
@format_option()
@pass_app
def stories(app: AppContext, since: str | None, show_all: bool, rule: str | None, min_sources: int, limit: int | None,
            output_format: str) -> None:
    """Stories (the same news from several outlets), newest first, with their source counts."""
    if show_all and since is not None:
        raise UsageError("--since and --all exclude each other: give one of them")
    if since is None:
        since = DEFAULT_SINCE
    try:
        since_time = None if show_all else parse_since(since)
    except ValueError as exc:
        raise UsageError(f"--since: {exc}") from None
    check_rule_name(app, rule)
    store = app.store(readonly=True)
    with store.snapshot() as conn:   # written as read, chunk by chunk
        found = story_queries.iter_stories(conn, since=since_time, rule=rule, min_sources=min_sources, limit=limit)
        if output_format == "json":
            emit_json_array(found)
            return
        shown = 0
        for story in found:
            outlets = story["source_count"]
            click.echo(f"{story['id']:>7}  {outlets:>2} outlet{'s' if outlets != 1 else ' '}  "
                       f"{story['first_seen']}  {one_line(story['headline'] or '')}")
            shown += 1
    if not shown:
        click.echo("no stories" + ("" if show_all else f" updated {_since_phrase(since)}"))


def _since_phrase(since: str) -> str:
    """"in the last 7d" for a duration, "since 2026-02-17" for a date."""
    try:
        parse_duration(since)
    except ValueError:
        return f"since {since}"
    return f"in the last {since}"


@click.command("story")
@click.argument("story_id", type=ID)
@format_option()
@pass_app
def story(app: AppContext, story_id: int, output_format: str) -> None:
    """One story: every source in time order, and which outlet reported first."""
    store = app.store(readonly=True)
    with store.reading() as conn:
        found = story_queries.get_story(conn, story_id)
    if found is None:
        raise UsageError(f"no story with id {story_id}")
    if output_format == "json":
        emit_json(found)
        return
    click.echo(f"story {found['id']}: {one_line(found['headline'] or '')}")
    click.echo(f"first seen {found['first_seen']} ({one_line(found.get('first_feed') or '?')} first), "
               f"updated {found['updated']}, {found['source_count']} outlet{'' if found['source_count'] == 1 else 's'}")
    for source in found["sources"]:
        click.echo(f"  {source['published']}  {one_line(source['feed'] or '?'):<24} {one_line(source['title'] or '')}")
        if source.get("url"):
            click.echo(f"  {'':20}  {one_line(source['url'])}")
