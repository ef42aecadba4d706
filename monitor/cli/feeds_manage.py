"""``newsmon feeds add | import | export | remove | enable | disable``: editing the feed list.

These commands edit the config file (``--config``) through ``monitor.configedit``: comments and
formatting are kept, the result is validated before it replaces the file, and the replacement is
atomic. They do not touch the archive; the daemon picks the change up when it reloads its config.
The ``feeds`` group of ``monitor.cli`` loads them from here when they are used.
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
from pathlib import Path
from typing import Any

import click

from monitor.cli.common import AppContext, count_type, feed_url_argument, emit_json, pass_app
from monitor.configedit import (
    FeedChange, add_feed, add_feeds, name_key, remove_feed, set_feed_enabled, url_keys,
)
from monitor.errors import MonitorError, OPMLError, ParseError, UsageError
from monitor.opml import OpmlEntry, read_opml, write_opml
from monitor.timeutil import format_duration, parse_duration

_LANGUAGE = re.compile(r"^[A-Za-z]{2,3}([-_][A-Za-z0-9]{1,8})*$")


# --------------------------------------------------------------------------- add


@click.command("add")
@click.argument("url")
@click.option("--name", help="Name of the feed (its identity) [default: the feed's title].")
@click.option("--interval", metavar="DURATION", help='Polling interval, such as "10m" [default: default_interval].')
@click.option("--tag", "tags", multiple=True, metavar="TAG", help="A tag (repeatable).")
@click.option("--language", metavar="CODE", help='Language of the feed, such as "en" or "fr".')
@click.option("--choose", type=count_type(1), metavar="N", help="When several feeds are found, take number N.")
@click.option("-y", "--yes", is_flag=True, help="When several feeds are found, take the first without asking.")
@pass_app
def feeds_add(app: AppContext, url: str, name: str | None, interval: str | None, tags: tuple[str, ...],
              language: str | None, choose: int | None, yes: bool) -> None:
    """Add a feed by its URL or by the URL of a web page that announces feeds.

    The URL is fetched: a feed is added as it is; on a web page, the feeds announced in
    <link rel="alternate"> and common feed paths (/feed, /rss.xml ...) are tried, and only
    those that parse as feeds are offered. With several, choose one (asked on a terminal,
    else --choose N or --yes). A URL already in the config is refused.
    """
    from monitor.discover import explore
    from monitor.fetch import Fetcher, FetchSettings

    url = feed_url_argument(url, bare_host=True)
    _check_interval(interval)
    _check_language(language)
    config = app.config()
    _refuse_known_url(config.feeds, url)
    if name is not None and name_key(name.strip()) in {name_key(feed.name) for feed in config.feeds}:
        raise UsageError(f"the name {name.strip()!r} is already used by another feed; choose another with --name")
    with Fetcher(FetchSettings.from_monitor(config.monitor)) as fetcher:
        discovery = explore(url, fetcher)
    if not discovery.candidates:
        for tried_url, reason in discovery.tried:
            click.echo(f"  not a feed: {tried_url}: {reason}", err=True)
        raise ParseError(f"no working feed found at {discovery.url} (not a feed itself, no feed link that works, "
                         "no feed at the common paths)", kind="not_a_feed")
    candidate = _pick(discovery.candidates, choose, yes, _configured_names(config.feeds))
    change = add_feed(app.config_path, {
        "name": name, "title": candidate.title, "url": candidate.url, "interval": interval,
        "language": language, "tags": list(tags),
    })
    click.echo(f"added feed {change.name!r}: {change.url} ({candidate.type}) to {app.config_path}")


def _check_interval(interval: str | None) -> None:
    if interval is None:
        return
    try:
        parse_duration(interval)
    except ValueError as exc:
        raise UsageError(f"--interval: {exc}") from None


def _check_language(language: str | None) -> None:
    if language is not None and not _LANGUAGE.match(language):
        raise UsageError(f"--language: {language!r} is not a language code such as \"en\" or \"fr\"")


def _refuse_known_url(feeds: Any, url: str) -> None:
    keys = url_keys(url)
    for feed in feeds:
        if keys & url_keys(feed.url):
            raise UsageError(f"{url} is already configured as feed {feed.name!r}")


def _configured_names(feeds: Any) -> dict[str, str]:
    return {key: feed.name for feed in feeds for key in url_keys(feed.url)}


def _pick(candidates: list[Any], choose: int | None, yes: bool, configured: dict[str, str]) -> Any:
    if len(candidates) == 1 and choose in (None, 1):
        return candidates[0]
    if choose is not None:
        if choose > len(candidates):
            _list_candidates(candidates, configured)
            raise UsageError(f"--choose {choose}: only {len(candidates)} feed(s) were found")
        return candidates[choose - 1]
    if yes:
        return candidates[0]
    _list_candidates(candidates, configured)
    if not sys.stdin.isatty():
        raise UsageError(f"{len(candidates)} feeds found: run again with --choose N (1 to {len(candidates)}) "
                         "or --yes for the first")
    number = click.prompt("Add which feed", type=click.IntRange(1, len(candidates)), default=1)
    return candidates[number - 1]


def _list_candidates(candidates: list[Any], configured: dict[str, str]) -> None:
    for number, candidate in enumerate(candidates, start=1):
        title = candidate.title or "(untitled)"
        known = next((configured[key] for key in url_keys(candidate.url) if key in configured), None)
        note = f"  (already configured as {known!r})" if known else ""
        click.echo(f"{number:>3}. {title}  {candidate.url}  [{candidate.type}, {candidate.source}]{note}")


# --------------------------------------------------------------------------- import


@click.command("import")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--dry-run", is_flag=True, help="Show what would change; leave the config as it is.")
@click.option("--format", "output_format", type=click.Choice(["table", "json"]), default="table",
              show_default=True, help="Output format; json prints one JSON document on stdout.")
@pass_app
def feeds_import(app: AppContext, file: Path, dry_run: bool, output_format: str) -> None:
    """Add the feeds of an OPML file (from another reader, or a published list).

    Folders become tags. Feeds whose URL is already configured are skipped, so importing
    the same file twice adds nothing; a name already used gets a number. Outlines that are
    not usable feeds are reported with the reason. Files that are not well-formed XML are
    read leniently. The feeds are NOT fetched now (for a large list that would take hours):
    each one is checked at its first poll (`newsmon feeds list` then shows its health;
    `newsmon feeds check URL` tries one at once).
    """
    try:
        data = file.read_bytes()
    except OSError as exc:
        raise OPMLError(f"{file}: cannot be read: {exc.strerror or exc}") from exc
    result = read_opml(data, source=str(file))
    feeds = [{"title": e.title, "url": e.xml_url, "tags": list(e.tags), "language": e.language,
              "enabled": e.enabled, "interval": e.interval} for e in result.entries]
    changes = add_feeds(app.config_path, feeds, rename=True, dry_run=dry_run) if feeds else []
    report = _import_report(file, result, changes, dry_run)
    if output_format == "json":
        emit_json(report)
        return
    _print_import_report(report)


def _import_report(file: Path, result: Any, changes: list[FeedChange], dry_run: bool) -> dict[str, Any]:
    added = [{"name": c.name, "url": c.url} for c in changes if c.status == "added"]
    skipped = [{"name": c.name, "url": c.url, "reason": c.reason} for c in changes if c.status == "skipped"]
    rejected = [{"name": r.title, "url": r.url, "reason": r.reason} for r in result.rejected]
    rejected += [{"name": c.name, "url": c.url, "reason": c.reason} for c in changes if c.status == "rejected"]
    return {
        "file": str(file),
        "dry_run": dry_run,
        "lenient": result.lenient,
        "counts": {"added": len(added), "skipped": len(skipped), "rejected": len(rejected),
                   "merged_duplicates": result.duplicates},
        "added": added,
        "skipped": skipped,
        "rejected": rejected,
    }


def _print_import_report(report: dict[str, Any]) -> None:
    verb = "would add" if report["dry_run"] else "added"
    for item in report["added"]:
        click.echo(f"{verb:<9} {item['name']}  {item['url']}")
    for item in report["skipped"]:
        click.echo(f"skipped   {item['name']}  {item['url']}: {item['reason']}")
    for item in report["rejected"]:
        click.echo(f"rejected  {item['name'] or '(untitled)'}  {item['url'] or '-'}: {item['reason']}")
    counts = report["counts"]
    line = f"{verb} {counts['added']}, skipped {counts['skipped']}, rejected {counts['rejected']}"
    if counts["merged_duplicates"]:
        line += f" ({counts['merged_duplicates']} outlines listed a URL again and were merged)"
    if report["lenient"]:
        line += "; the file is not well-formed XML and was read leniently"
    if report["dry_run"]:
        line += "; dry run: the config was not changed"
    click.echo(line)


# --------------------------------------------------------------------------- export


@click.command("export")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              help="Write to this file [default: standard output].")
@pass_app
def feeds_export(app: AppContext, output: Path | None) -> None:
    """Write the configured feeds as OPML 2.0 (titles, tags as folders, languages, intervals).

    `newsmon feeds import` of the result gives back the same names, URLs, tags, intervals and
    disabled feeds (tags are read back in their normal form: lower-case words joined by "-";
    a disabled feed is an outline with isComment="true").
    """
    config = app.config()
    entries = [OpmlEntry(title=feed.name, xml_url=feed.url, tags=feed.tags, language=feed.language,
                         enabled=feed.enabled, interval=format_duration(feed.interval) if feed.interval else None)
               for feed in config.feeds]
    data = write_opml(entries, title="newsmon feeds")
    if output is None:
        click.echo(data, nl=False)  # bytes go to the binary stdout as they are
        return
    _write_file(output, data)
    click.echo(f"exported {len(entries)} feeds to {output}", err=True)


def _write_file(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` in one step (a temporary file beside it, renamed over it): a failed write
    (a full disk) leaves the earlier file as it was and no temporary file behind. The file gets the
    permissions a new file gets (the umask's), or those of the file it replaces; a symbolic link stays
    one (the file it points to is replaced)."""
    temp_name: str | None = None
    try:
        target = path.resolve()
        handle, temp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        os.chmod(temp_name, _new_file_mode(target))
        os.replace(temp_name, target)
        temp_name = None
    except OSError as exc:
        raise MonitorError(f"{path}: cannot be written: {exc.strerror or exc}") from exc
    finally:
        if temp_name is not None:
            Path(temp_name).unlink(missing_ok=True)


def _new_file_mode(path: Path) -> int:
    """The permission bits of the file at ``path``, else those a new file gets under the umask."""
    try:
        return path.stat().st_mode & 0o7777
    except FileNotFoundError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


# --------------------------------------------------------------------------- remove, enable, disable


@click.command("remove")
@click.argument("name")
@pass_app
def feeds_remove(app: AppContext, name: str) -> None:
    """Remove the feed NAME from the config (its articles stay in the archive)."""
    change = remove_feed(app.config_path, name)
    click.echo(f"removed feed {change.name!r} ({change.url}) from {app.config_path}")


@click.command("enable")
@click.argument("name")
@pass_app
def feeds_enable(app: AppContext, name: str) -> None:
    """Enable the feed NAME (it is polled again)."""
    changed = set_feed_enabled(app.config_path, name, True)
    click.echo(f"enabled feed {name!r}" if changed else f"feed {name!r} was already enabled")


@click.command("disable")
@click.argument("name")
@pass_app
def feeds_disable(app: AppContext, name: str) -> None:
    """Disable the feed NAME (kept in the config and the archive, not polled)."""
    changed = set_feed_enabled(app.config_path, name, False)
    click.echo(f"disabled feed {name!r}" if changed else f"feed {name!r} was already disabled")

