"""The ``newsmon`` command: a thin click layer over the library.

Every ``MonitorError`` becomes ``error: <message>`` on stderr and its exit status (2 for bad
usage, config or query; 1 otherwise); never a traceback.

Commands live in the modules of this package and are imported when first used (``LazyGroup``):
`newsmon search` does not import the poll pipeline, the HTML cleaner or the alert channels.
"""

from __future__ import annotations

import importlib
import logging
import os
import sys
from importlib import resources
from pathlib import Path

import click

from monitor import __version__
from monitor.cli.common import AppContext, configure_logging, configure_output, emit_json, format_option, pass_app
from monitor.errors import ConfigError, MonitorError, UsageError

log = logging.getLogger(__name__)


class LazyGroup(click.Group):
    """A group whose subcommands ``lazy`` (name -> "module:attribute") are imported when first
    looked up: to run one, or to list them in ``--help``."""

    def __init__(self, *args: object, lazy: dict[str, str] | None = None, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.lazy = dict(lazy or {})

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*self.commands, *self.lazy})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in self.lazy:
            module, _, attribute = self.lazy[cmd_name].partition(":")
            self.add_command(getattr(importlib.import_module(module), attribute), cmd_name)
        return self.commands.get(cmd_name)


class NewsmonGroup(LazyGroup):
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


def _lazy(module: str, **commands: str) -> dict[str, str]:
    """Command name -> "monitor.cli.module:attribute" (a trailing "_" lets a name be a keyword: ``import_``)."""
    return {name.rstrip("_"): f"monitor.cli.{module}:{attribute}" for name, attribute in commands.items()}


@click.group(cls=NewsmonGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
             lazy={**_lazy("core", poll="poll"), **_lazy("daemon_cmds", run="run", status="status", backup="backup"),
                   **_lazy("stories", stories="stories", story="story"), **_lazy("alerts", alerts="alerts"),
                   **_lazy("search", search="search_cmd"), **_lazy("archive", export="export_cmd", import_="import_cmd")})
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
    configure_output()
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
        _write_starter(path)
        click.echo(f"wrote a starter config to {path}: edit its feeds and rules")
    config = app.config()
    store = app.store()
    store.sync_feeds(config.feeds)
    feeds, rules = len(config.feeds), len(config.rules)
    click.echo(f"archive ready at {app.db_path} ({feeds} feed{'' if feeds == 1 else 's'}, "
               f"{rules} rule{'' if rules == 1 else 's'})")


def _write_starter(path: Path) -> None:
    """Write the starter config at ``path`` (through a symbolic link, to its target) in one step: a temporary
    file beside it, renamed, so an interrupted or failed write leaves no half config behind."""
    starter = resources.files("monitor").joinpath("data/feeds.toml").read_bytes()
    try:
        target = path.resolve()
    except RuntimeError:  # Python < 3.13
        target = path
    if target.is_symlink():  # still a link once every link is followed: they form a loop
        raise ConfigError("cannot be written: it is a symbolic link in a loop of links", path=str(path))
    temp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            with open(temp, "xb") as handle:
                handle.write(starter)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temp, target)
        finally:
            temp.unlink(missing_ok=True)
    except OSError as exc:
        raise ConfigError(f"cannot be written: {exc.strerror or exc}", path=str(path)) from None


# --------------------------------------------------------------------------- groups


@cli.group(cls=LazyGroup, lazy={
    **_lazy("core", list="feeds_list", check="feeds_check"),
    **_lazy("feeds_manage", add="feeds_add", remove="feeds_remove", enable="feeds_enable", disable="feeds_disable",
            import_="feeds_import", export="feeds_export"),
})
def feeds() -> None:
    """Feeds: list with health, check a URL, add, remove, import and export OPML."""


@cli.group(cls=LazyGroup, lazy=_lazy("rules_cmds", list="rules_list", test="rules_test", rematch="rules_rematch"))
def rules() -> None:
    """Rules: list, try on the archive, re-match after a change."""


@cli.group(cls=LazyGroup, lazy=_lazy("alerts", test="channels_test"))
def channels() -> None:
    """Alert channels."""


__all__ = ["cli", "main", "emit_json", "format_option", "pass_app", "UsageError"]
