"""`newsmon export` and `newsmon import`: move an archive's articles between machines, or backfill one.

The format is JSON Lines: one article per line with its columns and the feeds it appeared in
(``feeds``: [{name, url, first_seen}], the origin feed first). Import goes through the store's
bulk path (many articles per transaction, feed links, stories, rule matches, never an alert)
and is idempotent: importing the same file twice adds nothing the second time.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import sys
from pathlib import Path
from typing import IO, Iterator

import click

from monitor.cli.common import AppContext, count_type, is_utf8, pass_app
from monitor.errors import StoreError, UsageError
from monitor.store.bulk import BulkArticle, RecordError, bulk_insert, export_records, record_to_bulk
from monitor.timeutil import parse_since

log = logging.getLogger(__name__)


@click.command("export")
@click.option("--since", help="Only articles published since: a duration (30d) or a date (2026-02-01).")
@click.option("--format", "output_format", type=click.Choice(["jsonl"]), default="jsonl", show_default=True,
              help="Output format: one JSON object per line.")
@click.option("--output", "-o", type=click.Path(path_type=Path, dir_okay=False, allow_dash=True), default="-",
              help="Write to this file instead of stdout.")
@pass_app
def export_cmd(app: AppContext, since: str | None, output_format: str, output: Path) -> None:
    """Export stored articles as JSON Lines (with their feeds, dates, language, authors, categories)."""
    since_time = None
    if since is not None:
        try:
            since_time = parse_since(since)
        except ValueError as exc:
            raise UsageError(f"--since: {exc}") from None
    store = app.store(readonly=True)
    count = 0
    with store.snapshot() as conn, _open_output(output) as stream:  # the archive at one moment
        ascii_only = not is_utf8(stream)   # a stdout that is not UTF-8 gets \u escapes: the same JSON, no text lost
        for record in export_records(conn, since=since_time):
            stream.write(json.dumps(record, ensure_ascii=ascii_only, separators=(",", ":")) + "\n")
            count += 1
    log.info("export done articles=%d output=%s", count, output)
    if str(output) != "-":
        click.echo(f"exported {count} articles to {output}", err=True)


class _open_output:
    """stdout for "-", else a file written through a temporary name (no half file on failure)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.temp = path.with_name(path.name + ".part") if str(path) != "-" else None
        self.stream: IO[str] | None = None

    def __enter__(self) -> IO[str]:
        if self.temp is None:
            self.stream = sys.stdout
            return sys.stdout
        try:
            self.stream = open(self.temp, "w", encoding="utf-8")
        except OSError as exc:
            raise UsageError(f"cannot write {self.path}: {exc.strerror}") from exc
        return self.stream

    def __exit__(self, exc_type: object, *rest: object) -> None:
        if self.temp is None or self.stream is None:
            if self.stream is not None:
                self.stream.flush()
            return
        self.stream.close()
        if exc_type is not None:
            self.temp.unlink(missing_ok=True)
            return
        try:
            self.temp.replace(self.path)
        except OSError as exc:
            raise StoreError(f"cannot write {self.path}: {exc.strerror}") from exc


def read_jsonl(stream: IO[str], source: str) -> Iterator[BulkArticle]:
    """Articles of an export file, their text cleaned as a poll cleans it (a file anyone can write may hold
    control characters); a bad line raises UsageError naming the file and line number."""
    from monitor.normalize import clean_plain_article

    for number, line in enumerate(stream, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise UsageError(f"{source} line {number}: not valid JSON ({exc.msg} at column {exc.colno})") from None
        except (ValueError, RecursionError) as exc:  # a number of 4300+ digits; arrays nested thousands deep
            reason = "nested too deeply" if isinstance(exc, RecursionError) else str(exc).split(";")[0]
            raise UsageError(f"{source} line {number}: not valid JSON ({reason})") from None
        try:
            bulk = record_to_bulk(record)
        except RecordError as exc:
            raise UsageError(f"{source} line {number}: not an exported article: {exc}") from None
        yield dataclasses.replace(bulk, article=clean_plain_article(bulk.article))


def _open_input(path: Path) -> IO[str]:
    if str(path) == "-":
        return sys.stdin
    try:
        return open(path, encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror}") from exc


def _check_file(path: Path) -> int:
    """Validate every line before anything is written (a bad line stores nothing); returns the count."""
    with _open_input(path) as stream:
        try:
            return sum(1 for _ in read_jsonl(stream, str(path)))
        except UnicodeDecodeError as exc:
            raise UsageError(f"{path}: not UTF-8 text ({exc.reason})") from None


@click.command("import")
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--batch", type=count_type(1), default=2000, show_default=True,
              help="Articles per transaction.")
@pass_app
def import_cmd(app: AppContext, file: Path, batch: int) -> None:
    """Import articles from a JSON Lines export (idempotent; creates no alerts).

    Every line is checked first: a bad line stops the import before anything is stored.
    Imported articles are indexed for search, grouped into stories and matched against the
    configured rules, but old articles never send alerts.
    """
    if str(file) == "-":
        raise UsageError("import reads a file (it is read twice: checked first, then stored), not stdin")
    if not file.exists():
        raise UsageError(f"no file {file}")
    expected = _check_file(file)
    from monitor.pipeline import compile_ruleset
    from monitor.stories import StoryClusterer

    config = app.optional_config()
    clusterer = StoryClusterer(window=config.monitor.story_window) if config else StoryClusterer()
    ruleset = compile_ruleset(config) if config else None
    store = app.store()
    if config is not None:
        store.sync_feeds(config.feeds)
    with _open_input(file) as stream:
        result = bulk_insert(store, read_jsonl(stream, str(file)), batch_size=batch, clusterer=clusterer,
                             ruleset=ruleset)
    click.echo(f"imported {result.new} new articles from {file} ({result.existing} already stored, "
               f"{result.links} feed links added, {result.feeds_created} new feeds, "
               f"{result.stories_created} new stories; {expected} lines)")
