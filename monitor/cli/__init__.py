"""The ``newsmon`` command: a thin click layer over the library.

Every ``MonitorError`` becomes ``error: <message>`` on stderr and its exit status (2 for bad
usage, config or query; 1 otherwise); never a traceback.
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
from importlib import resources
from pathlib import Path

import click

from monitor import __version__
from monitor.cli.common import AppContext, configure_logging, emit_json, format_option, pass_app
from monitor.errors import MonitorError, UsageError

log = logging.getLogger(__name__)


class NewsmonGroup(click.Group):
    """Turns every MonitorError raised by a command into a clean message and its exit status."""

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except MonitorError as exc:
            click.echo(f"error: {exc}", err=True)
            ctx.exit(exc.exit_code)
        except BrokenPipeError:
            # Output piped into `head` and closed early: not an error of ours.
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            ctx.exit(0)
        return None


@click.group(cls=NewsmonGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option("--config", "config_path", type=click.Path(path_type=Path, dir_okay=False),
              help="Config file [default: $NEWSMON_CONFIG or config/feeds.toml].")
@click.option("--db", "db_path", type=click.Path(path_type=Path, dir_okay=False),
              help="SQLite archive [default: $NEWSMON_DB, [monitor] database, or storage/newsmon.db].")
@click.option("-v", "--verbose", count=True, help="More log output on stderr (-vv for debug).")
@click.option("-q", "--quiet", is_flag=True, help="Only errors on stderr.")
@click.version_option(__version__, "--version", prog_name="newsmon", message="%(prog)s %(version)s")
@click.pass_context
def cli(ctx: click.Context, config_path: Path | None, db_path: Path | None, verbose: int, quiet: bool) -> None:
    """newsmon: poll news feeds, match keyword rules, group stories, archive, alert.

    Start with `newsmon init`, then `newsmon poll` once or `newsmon run` as a daemon.
    """
    verbosity = -1 if quiet else verbose
    configure_logging(verbosity)
    app = AppContext(config_option=config_path, db_option=db_path, verbosity=verbosity)
    ctx.obj = app
    ctx.call_on_close(app.close)


def main(argv: list[str] | None = None) -> None:
    """Console entry point."""
    cli.main(args=argv, prog_name="newsmon")


# --------------------------------------------------------------------------- init


@cli.command()
@pass_app
def init(app: AppContext) -> None:
    """Write a starter config where none exists, and create the archive."""
    path = app.config_path
    if path.exists():
        click.echo(f"{path} exists already; left as it is")
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        starter = resources.files("monitor").joinpath("data/feeds.toml")
        with resources.as_file(starter) as source:
            shutil.copyfile(source, path)
        click.echo(f"wrote a starter config to {path}: edit its feeds and rules")
    config = app.config()
    store = app.store()
    store.sync_feeds(config.feeds)
    click.echo(f"archive ready at {app.db_path} ({len(config.feeds)} feeds, {len(config.rules)} rules)")


# --------------------------------------------------------------------------- groups


@cli.group()
def feeds() -> None:
    """Feeds: list with health, check a URL, add, remove, import and export OPML."""


@cli.group()
def rules() -> None:
    """Rules: list, try on the archive, re-match after a change."""


@cli.group()
def channels() -> None:
    """Alert channels."""


def _attach_commands() -> None:
    from monitor.cli import alerts, archive, core, daemon_cmds, feeds_manage, rules_cmds, search, stories

    cli.add_command(core.poll)
    cli.add_command(daemon_cmds.run)
    cli.add_command(daemon_cmds.status)
    cli.add_command(daemon_cmds.backup)
    cli.add_command(stories.stories)
    cli.add_command(stories.story)
    cli.add_command(alerts.alerts)
    cli.add_command(search.search_cmd)
    cli.add_command(archive.export_cmd)
    cli.add_command(archive.import_cmd)
    rules.add_command(rules_cmds.rules_list)
    rules.add_command(rules_cmds.rules_test)
    rules.add_command(rules_cmds.rules_rematch)
    channels.add_command(alerts.channels_test)
    feeds.add_command(core.feeds_list)
    feeds.add_command(core.feeds_check)
    for command in (feeds_manage.feeds_add, feeds_manage.feeds_remove, feeds_manage.feeds_enable,
                    feeds_manage.feeds_disable, feeds_manage.feeds_import, feeds_manage.feeds_export):
        feeds.add_command(command)


_attach_commands()

__all__ = ["cli", "main", "emit_json", "format_option", "pass_app", "UsageError"]
