"""Core commands: poll, feeds list, feeds check."""

from __future__ import annotations

import json
import logging
import sys
from typing import Any

import click

from monitor.cli.common import AppContext, count_type, feed_url_argument, emit_json, format_option, one_line, pass_app
from monitor.errors import UsageError
from monitor.models import FeedPollResult
from monitor.timeutil import utcnow

log = logging.getLogger(__name__)


# Worker processes cost about a second and tens of MB to start: worth it for a large poll only.
PARALLEL_PARSE_FROM = 16


def _describe(result: FeedPollResult) -> str:
    if result.status == "ok":
        detail = f"new={result.new} updated={result.updated}"
        if result.alerts:
            detail += f" alerts={result.alerts}"
        if result.held_back:
            detail += f" held_back={result.held_back}"
    elif result.status in ("not_modified", "unchanged"):
        detail = "nothing new"
    else:
        detail = f"{result.error_kind or 'error'}: {result.error}" if result.error_kind else str(result.error)
    http = f" http={result.http_status}" if result.http_status else ""
    return one_line(f"{result.status:<12} {result.feed}  {detail}{http} ({result.elapsed:.1f}s)")


@click.command()
@click.option("--feed", "feed_names", multiple=True, metavar="NAME",
              help="Poll only this feed (repeatable); default: every enabled feed.")
@pass_app
def poll(app: AppContext, feed_names: tuple[str, ...]) -> None:
    """Poll feeds once, store what is new, deliver the alerts it made, exit.

    Exits 0 also when some feeds fail: each feed gets one line (status, new, updated, error).
    """
    config = app.config()
    names = _select_feeds(config, feed_names)
    parallel_parse = len(names) >= PARALLEL_PARSE_FROM
    if parallel_parse:
        from monitor.parserserver import start_parser_server

        start_parser_server()  # its imports overlap with the pipeline's, just below

    from monitor import alerts
    from monitor.errors import PollInterrupted, StoreError
    from monitor.pipeline import build_context, poll_feeds
    from monitor.store import leases

    store = app.store()
    store.sync_feeds(config.feeds)
    # Leases of a poll or daemon of this host that was killed would hold their feeds back until expiry.
    leases.release_dead_owners(store, ("poll", "daemon"))
    ctx = build_context(config, store, parallel_parse=parallel_parse)
    show_progress = sys.stderr.isatty() and app.verbosity >= 0 and len(names) > 1
    owner = leases.owner_id("poll")
    try:
        if show_progress:
            with click.progressbar(length=len(names), label="polling", file=sys.stderr) as bar:
                results = poll_feeds(ctx, names, owner=owner, on_result=lambda _: bar.update(1))
        else:
            results = poll_feeds(ctx, names, owner=owner)
    except (StoreError, PollInterrupted) as exc:
        for result in exc.poll_results or []:  # what was stored before the archive failed or Ctrl-C
            click.echo(_describe(result))
        raise
    finally:
        ctx.close()
    for result in results:
        click.echo(_describe(result))
    alerts.run_digests(store, config, now=utcnow())
    report = alerts.deliver_pending(store, config, now=utcnow())
    failed = sum(1 for result in results if result.status == "error")
    new = sum(result.new for result in results)
    summary = f"{len(results)} feeds: {new} new articles, {failed} failed"
    if getattr(report, "sent", 0) or getattr(report, "failed", 0) or getattr(report, "retrying", 0):
        summary += f"; alerts sent={report.sent} retrying={getattr(report, 'retrying', 0)} failed={report.failed}"
    click.echo(summary, err=True)


def _select_feeds(config: Any, feed_names: tuple[str, ...]) -> list[str]:
    if not feed_names:
        return [feed.name for feed in config.feeds if feed.enabled]
    names = []
    for name in feed_names:
        feed = config.feed(name)
        if feed is None:
            import difflib

            close = difflib.get_close_matches(name, [f.name for f in config.feeds], n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise UsageError(f"no feed named {name!r} in {config.path}{hint}")
        if not feed.enabled:
            raise UsageError(f"feed {name!r} is disabled in {config.path}: enable it first")
        names.append(name)
    return names


@click.command("list")
@format_option()
@pass_app
def feeds_list(app: AppContext, output_format: str) -> None:
    """Each configured feed with its health (last status, errors, next check); without a config, the feeds
    the archive knows."""
    from monitor.config import MonitorSettings
    from monitor.schedule import is_failing
    from monitor.store import feeds_as_configured

    config = app.optional_config()
    if config is None and not app.db_path.exists():
        config = app.config()  # neither a config nor an archive: the config's error says what to do
    rows: list[dict[str, Any]] = []
    if app.db_path.exists():
        rows = app.store(readonly=True).feed_rows()
    if config is not None:  # the URL edited or the feed added, not yet seen by a poll, shows as configured
        settings = config.monitor
        rows = feeds_as_configured(config.feeds, rows)
    else:  # a bare archive (a copy, a backup): the feeds it holds, as last configured
        settings = MonitorSettings()
    listing = []
    for row in rows:
        errors = int(row.get("consecutive_errors") or 0)
        listing.append({
            "name": row["name"],
            "url": row["url"],
            "enabled": bool(row["enabled"]),
            "tags": json.loads(row["tags"] or "[]"),
            "last_status": row.get("last_status"),
            "last_error": row.get("last_error"),
            "last_error_kind": row.get("last_error_kind"),
            "consecutive_errors": errors,
            "failing": is_failing(errors, settings),
            "gone": bool(row.get("gone")),
            "moved_to": row.get("permanent_url"),
            "last_fetch": row.get("last_fetch"),
            "last_success": row.get("last_success"),
            "next_check": row.get("next_check"),
        })
    if output_format == "json":
        emit_json(listing)
        return
    for item in listing:
        click.echo(_feed_line(item))


def _feed_line(item: dict[str, Any]) -> str:
    if not item["enabled"]:
        health = "disabled"
    elif item["gone"]:
        health = "GONE (410)"
    elif item["failing"]:
        health = f"FAILING x{item['consecutive_errors']}"
    elif item["last_error"] and item["consecutive_errors"] == 0:
        health = "error (outage)"  # the network was down: not counted against the feed
    elif item["last_error"]:
        health = f"error x{item['consecutive_errors']}"
    elif item["last_success"]:
        health = "ok"
    else:
        health = "never polled"
    line = f"{health:<14} {item['name']:<28} last={item['last_success'] or '-':<20} next={item['next_check'] or '-'}"
    if item["last_error"]:
        line += f"\n{'':15}{item['last_error_kind']}: {one_line(item['last_error'])}"
    if item["moved_to"]:
        line += f"\n{'':15}moved permanently to {one_line(item['moved_to'])} (update the config)"
    return line


@click.command("check")
@click.argument("url")
@click.option("--limit", type=count_type(0), default=10, show_default=True, help="Entries to show.")
@format_option()
@pass_app
def feeds_check(app: AppContext, url: str, limit: int, output_format: str) -> None:
    """Fetch and parse one URL and show what would be stored (stores nothing)."""
    from monitor.config import FeedConfig
    from monitor.fetch import Fetcher, FetchSettings
    from monitor.parse import parse_feed
    from monitor.parsejob import normalize_feed
    from monitor.pipeline import fetch_settings

    url = feed_url_argument(url)
    config = app.optional_config()
    settings = fetch_settings(config) if config is not None else FetchSettings.default()
    with Fetcher(settings) as fetcher:
        result = fetcher.fetch(url)
    parsed = parse_feed(result.body, result.headers, result.url)
    articles, single_link = normalize_feed(parsed, FeedConfig(name="check", url=url), base_url=result.url,
                                           now=utcnow())
    summary = {
        "url": result.url,
        "status": result.status,
        "moved_to": result.permanent_url,
        "format": parsed.format,
        "title": parsed.title,
        "language": parsed.language,
        "bozo": parsed.bozo,
        "entries": len(parsed.entries),
        "articles": len(articles),
        "single_link": single_link,
        "sample": [
            {"title": a.title, "url": a.url, "published": a.published, "undated": a.undated, "key": a.key,
             "language": a.language}
            for a in articles[:limit]
        ],
    }
    if output_format == "json":
        emit_json(summary)
        return
    click.echo(f"{summary['title'] or '(untitled)'}  [{parsed.format}] HTTP {result.status}, "
               f"{len(parsed.entries)} entries, {len(articles)} distinct articles")
    if result.permanent_url:
        click.echo(f"moved permanently to {result.permanent_url}")
    if parsed.bozo:
        click.echo(f"warning: not well-formed: {parsed.bozo}")
    for article in articles[:limit]:
        date = "undated" if article.undated else article.published.strftime("%Y-%m-%d %H:%M")
        click.echo(f"  {date:<16} {article.title[:90]}")
        if article.url:
            click.echo(f"  {'':16} {article.url}")
