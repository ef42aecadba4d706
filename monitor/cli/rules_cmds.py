"""`newsmon rules list | test | rematch`: see the rules, try one on the archive, re-match after a change.

(Named rules_cmds, not rules: a submodule `monitor.cli.rules` would replace the `rules` group
object in the package namespace the moment it is imported.)
"""

from __future__ import annotations

from typing import Iterable

import click

from monitor.cli.common import (AppContext, QueryCommand, count_type, emit_json, emit_json_object, format_option,
                                one_line, pass_app)
from monitor.cli.search import parse_time_option, short_time, terminal_mark, PLAIN_MARK
from monitor.config import Config, RuleConfig
from monitor.errors import UsageError
from monitor.rules import RuleSet
from monitor.search import SearchHit, iter_test_rule, resolve_rule_or_query
from monitor.store.matches import apply_evaluation, evaluate_rules, match_counts
from monitor.timeutil import utcnow


def _mode(rule: RuleConfig) -> str:
    if rule.mode != "digest":
        return rule.mode
    if rule.every is not None:
        return f"digest every {int(rule.every.total_seconds() // 60)}m"
    zone = f" {rule.timezone}" if rule.timezone else ""
    return f"digest at {rule.at.strftime('%H:%M') if rule.at else '?'}{zone}"


def _stored_counts(app: AppContext) -> dict[str, int] | None:
    """Matches stored per rule; None when there is no archive yet."""
    if not app.db_path.exists():
        return None
    store = app.store(readonly=True)
    with store.reading() as conn:
        return match_counts(conn)


@click.command("list")
@format_option()
@pass_app
def rules_list(app: AppContext, output_format: str) -> None:
    """Each rule: name, query, channels, delivery mode and matches stored."""
    config = app.config()
    counts = _stored_counts(app)
    rows = [
        {"name": rule.name, "query": rule.query, "channels": list(config.rule_channels(rule)),
         "mode": _mode(rule), "notify_on_update": rule.notify_on_update,
         "matches": (counts or {}).get(rule.name, 0)}
        for rule in config.rules
    ]
    if output_format == "json":
        emit_json(rows)
        return
    if not rows:
        click.echo(f"no rules in {app.config_path}")
        return
    for row in rows:
        click.echo(f"{row['name']}  ({row['mode']} -> {', '.join(row['channels'])}; "
                   f"{row['matches']} matches stored)")
        click.echo(f"    {row['query']}")
    if counts:
        orphans = sorted(set(counts) - {rule.name for rule in config.rules})
        if orphans:
            click.echo("matches stored for rules no longer configured: "
                       + ", ".join(f"{name} ({counts[name]})" for name in orphans)
                       + " (`newsmon rules rematch` removes them)")


def _rule_queries(app: AppContext) -> dict[str, str]:
    config = app.optional_config()
    return {rule.name: rule.query for rule in config.rules} if config is not None else {}


@click.command("test", cls=QueryCommand)
@click.argument("rule_or_query")
@click.option("--since", help="Only articles published since: a duration (30d) or a date.")
@click.option("--limit", type=count_type(1), default=20, show_default=True, help="Hits shown (newest first).")
@format_option()
@pass_app
def rules_test(app: AppContext, rule_or_query: str, since: str | None, limit: int, output_format: str) -> None:
    """Run a rule (by name) or any query over the archive: a count, and the newest hits with the
    matched terms highlighted. Sends nothing."""
    name, query = resolve_rule_or_query(rule_or_query, _rule_queries(app))
    since_time = parse_time_option("--since", since)
    mark = terminal_mark() if output_format == "table" else PLAIN_MARK
    store = app.store(readonly=True)
    with store.snapshot() as conn:   # hits are written as they are read, chunk by chunk
        total, hits = iter_test_rule(conn, query, since_time, limit=limit, mark=mark)
        if output_format == "json":
            emit_json_object({"rule": name, "query": query.text, "count": total}, "hits",
                             (hit.to_dict() for hit in hits))
            return
        _print_rule_test(name, since, total, min(total, limit), hits, mark)


def _print_rule_test(name: str | None, since: str | None, total: int, shown: int, hits: Iterable[SearchHit],
                     mark: tuple[str, str]) -> None:
    label = f"rule {name}" if name else "query"
    window = f" published since {since}" if since else ""
    click.echo(f"{total} article{'s' if total != 1 else ''} match {label}{window}"
               + (f" (newest {shown} shown)" if total > shown else ""))
    for hit in hits:
        title = one_line(hit.title_marked or hit.title, marks=mark)
        snippet = one_line(hit.snippet, marks=mark)
        click.echo("")
        click.echo(f"{hit.id:>8}  {title}")
        click.echo(f"{'':8}  {short_time(hit.published)}  {one_line(hit.feed or '?')}")
        if snippet and snippet != title:
            click.echo(f"{'':8}  {snippet}")
        if hit.terms:
            click.echo(f"{'':8}  matched: " + ", ".join(f"{t.term} ({t.field})" for t in hit.terms))
        if hit.url:
            click.echo(f"{'':8}  {one_line(hit.url)}")


def _selected_rules(config: Config, rule: str | None) -> list[RuleConfig]:
    if rule is None:
        return list(config.rules)
    found = config.rule(rule)
    if found is None:
        raise UsageError(f"no rule named {rule!r} in {config.path}")
    return [found]


@click.command("rematch")
@click.argument("rule", required=False)
@pass_app
def rules_rematch(app: AppContext, rule: str | None) -> None:
    """Re-evaluate every stored article against the current rule(s) and replace their stored matches.

    Fetches nothing and creates no alert (old articles never alert). Without RULE, every rule is
    re-matched and the matches of rules no longer in the config are removed.
    """
    config = app.config()
    selected = _selected_rules(config, rule)
    ruleset = RuleSet.compile([(item.name, item.query) for item in selected])
    store = app.store()
    with store.reading() as conn:
        evaluation = evaluate_rules(conn, ruleset)
    with store.transaction() as conn:
        result = apply_evaluation(conn, evaluation, now=utcnow(), drop_other_rules=rule is None)
    click.echo(f"re-matched {result.articles} articles against {len(selected)} rule{'s' if len(selected) != 1 else ''} "
               "(no alerts created)")
    for name, change in result.rules.items():
        click.echo(f"  {name}: {change.matches} matches ({change.added} added, {change.removed} removed)")
    for name, removed in result.dropped.items():
        click.echo(f"  {name}: no longer configured, {removed} matches removed")
