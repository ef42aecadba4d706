"""What every command shares: resolved paths, the loaded config, the store, output helpers."""

from __future__ import annotations

import codecs
import json
import logging
import os
import re
import shlex
import sys
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any, Callable, Iterable, TypeVar

import click

from monitor.config import DEFAULT_CONFIG_PATH, DEFAULT_DB_PATH, Config, load_config
from monitor.errors import UsageError
from monitor.store import Store

F = TypeVar("F", bound=Callable[..., Any])

# SQLite stores integers in 64 bits: a larger id or count would fail inside the query (OverflowError).
SQLITE_INT_MAX = 2**63 - 1
# Row counts (--limit, --offset, --min-sources, --batch) are capped well below it, so that sums and
# multiples of them (offset + limit, pages of hits) stay within SQLite's range too.
COUNT_MAX = 1_000_000_000
ID = click.IntRange(1, SQLITE_INT_MAX)


def count_type(minimum: int = 1) -> click.IntRange:
    """A count option from ``minimum`` to ``COUNT_MAX`` (click shows the range in --help and in errors)."""
    return click.IntRange(minimum, COUNT_MAX)


@dataclass
class AppContext:
    config_option: Path | None = None
    db_option: Path | None = None
    verbosity: int = 0
    _config: Config | None = field(default=None, repr=False)
    _stores: list[Store] = field(default_factory=list, repr=False)

    @property
    def config_path(self) -> Path:
        """``--config`` > ``NEWSMON_CONFIG`` > ``config/feeds.toml``."""
        if self.config_option is not None:
            return self.config_option
        if os.environ.get("NEWSMON_CONFIG"):
            return Path(os.environ["NEWSMON_CONFIG"])
        return DEFAULT_CONFIG_PATH

    @property
    def config_named(self) -> bool:
        """Whether the config file was named (``--config`` or ``NEWSMON_CONFIG``) rather than the default."""
        return self.config_option is not None or bool(os.environ.get("NEWSMON_CONFIG"))

    def config(self) -> Config:
        """The loaded config; ConfigError (exit 2) when it is missing or invalid."""
        if self._config is None:
            self._config = load_config(self.config_path)
        return self._config

    def optional_config(self) -> Config | None:
        """The config, or None when the default config file does not exist (the reading commands work
        on a bare archive). A named config file must exist: a missing one is ConfigError."""
        if self.config_named or self.config_path.exists():
            return self.config()
        return None

    def check_named_config(self) -> None:
        """ConfigError when the config file was named but does not exist: a typo in ``--config`` is
        reported by every command, also one that would not read the config (``--db`` given)."""
        if self.config_named and not self.config_path.exists():
            self.config()

    @property
    def db_path(self) -> Path:
        """``--db`` > ``NEWSMON_DB`` > ``[monitor] database`` > ``storage/newsmon.db``."""
        if self.db_option is not None:
            return self.db_option
        if os.environ.get("NEWSMON_DB"):
            return Path(os.environ["NEWSMON_DB"])
        config = self.optional_config()
        if config is not None and config.monitor.database is not None:
            return config.monitor.database
        return DEFAULT_DB_PATH

    def store(self, *, readonly: bool = False) -> Store:
        self.check_named_config()
        store = Store.open(self.db_path, readonly=readonly)
        self._stores.append(store)
        return store

    def close(self) -> None:
        for store in self._stores:
            store.close()
        self._stores.clear()


pass_app = click.make_pass_decorator(AppContext)


def check_rule_name(app: AppContext, rule: str | None) -> None:
    """UsageError when ``--rule`` names a rule the config does not have (not checked without a config)."""
    if rule is None:
        return
    config = app.optional_config()
    if config is not None and config.rule(rule) is None:
        raise UsageError(f"no rule named {rule!r} in {app.config_path}")


def feed_url_argument(url: str, *, bare_host: bool = False) -> str:
    """A URL argument (`feeds check`, `feeds add`) checked before anything is fetched: an http(s) URL with
    a host, ``feed:`` forms rewritten; UsageError (exit 2) for anything else. ``bare_host``: an address
    without a scheme whose host has a dot (www.example.org/news), or localhost, means https://."""
    from monitor.opml import check_feed_url

    text = url.strip()
    if bare_host and text and "://" not in text and not text.lower().startswith("feed:"):
        host = text.lstrip("/").split("/", 1)[0].rpartition("@")[2].lower()
        if "." in host or ":" in host or host.split(":", 1)[0] == "localhost":
            text = "https://" + text.lstrip("/")
    checked, reason = check_feed_url(text)
    if checked is None:
        if "://" not in text:
            reason = "write an address such as https://www.example.org/feed.xml"
        raise UsageError(f"not a feed URL: {url!r}: {reason}")
    return checked


# What a terminal acts on instead of showing: C0 and C1 control characters (ESC opens the sequences that
# recolour, clear the screen, retitle the window or set the clipboard; BEL ends some of them) and the
# Unicode line and paragraph separators, and the bidirectional embeddings, overrides and isolates (U+202E turns
# the rest of a line around: "Mali \u202eevil" shows as "Mali live"). A feed server's error text or an imported
# file can hold them.
_TERMINAL_CONTROLS = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_LINE_BREAKS = frozenset("\t\n\x0b\x0c\r\x85\u2028\u2029")


def _control_as_shown(match: re.Match[str]) -> str:
    return " " if match.group() in _LINE_BREAKS else ""


def one_line(text: str, *, marks: tuple[str, str] | None = None) -> str:
    """``text`` as one line of table output: control characters dropped, tabs and line breaks as spaces.

    ``marks``: the highlight marks newsmon put into ``text`` (colour codes on a terminal), kept as they are.
    """
    if not marks or not marks[0]:
        return _TERMINAL_CONTROLS.sub(_control_as_shown, text)
    pieces = re.split(f"({re.escape(marks[0])}|{re.escape(marks[1])})", text)
    return "".join(piece if index % 2 else _TERMINAL_CONTROLS.sub(_control_as_shown, piece)
                   for index, piece in enumerate(pieces))


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        from monitor.timeutil import to_iso

        return to_iso(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    if hasattr(value, "__dataclass_fields__"):
        from dataclasses import asdict

        return asdict(value)
    raise TypeError(f"cannot encode {type(value).__name__} as JSON")


def is_utf8(stream: Any) -> bool:
    """Whether ``stream`` encodes text as UTF-8 (not so under LANG=C without UTF-8 mode, PYTHONIOENCODING=ascii...)."""
    try:
        return codecs.lookup(getattr(stream, "encoding", None) or "ascii").name == "utf-8"
    except LookupError:
        return False


def configure_output() -> None:
    """On a terminal that is not UTF-8, a character it cannot show becomes "?" rather than a traceback.
    (JSON output stays exact: it is written with \\u escapes there, see ``json_ascii``.)"""
    for stream in (sys.stdout, sys.stderr):
        if not is_utf8(stream) and hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="replace")


def json_ascii() -> bool:
    """``ensure_ascii`` for JSON on stdout: \\u escapes where stdout is not UTF-8, so that no text is lost."""
    return not is_utf8(sys.stdout)


def emit_json(value: Any) -> None:
    """One JSON document on stdout."""
    click.echo(json.dumps(value, ensure_ascii=json_ascii(), indent=2, default=_json_default))


def emit_json_array(items: Iterable[Any]) -> None:
    """One JSON array on stdout, written item by item as ``items`` yields them (memory does not grow with
    the output): the same text as ``emit_json(list(items))``."""
    _echo_json_array(items, level=0)
    click.echo("")


def emit_json_object(head: dict[str, Any], key: str, items: Iterable[Any]) -> None:
    """One JSON object on stdout: the members of ``head``, then ``key`` holding the array of ``items``,
    written item by item: the same text as ``emit_json({**head, key: list(items)})``."""
    text = json.dumps({**head, key: []}, ensure_ascii=json_ascii(), indent=2, default=_json_default)
    click.echo(text[:-len("[]\n}")], nl=False)
    _echo_json_array(items, level=1)
    click.echo("\n}")


def _echo_json_array(items: Iterable[Any], *, level: int) -> None:
    """``json.dumps(list(items), indent=2)`` nested ``level`` deep, one item at a time (no final newline).
    An item's lines are its own ``indent=2`` lines shifted right: JSON text holds no raw line break but those."""
    ascii_only = json_ascii()
    shift = "\n" + "  " * (level + 1)
    opening = "[" + shift
    for item in items:
        text = json.dumps(item, ensure_ascii=ascii_only, indent=2, default=_json_default)
        click.echo(opening + text.replace("\n", shift), nl=False)
        opening = "," + shift
    click.echo("[]" if opening == "[" + shift else "\n" + "  " * level + "]", nl=False)


def format_option(choices: tuple[str, ...] = ("table", "json")) -> Callable[[F], F]:
    return click.option(
        "--format", "output_format", type=click.Choice(choices), default=choices[0], show_default=True,
        help="Output format; json prints one JSON document on stdout.",
    )


class QueryCommand(click.Command):
    """A command with a QUERY argument, which may start with "-" (`-sport`, `-title:Niger`): click takes such a
    word for options, so its error shows how to pass it as the query, after "--"."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        given = list(args)  # the parser consumes the list
        try:
            return super().parse_args(ctx, args)
        except click.NoSuchOption as exc:
            known = {name for param in self.get_params(ctx) for name in (*param.opts, *param.secondary_opts)}
            # the typed word: click names only the letter it stumbled on (-hausse is -h, then "-a")
            word = next((arg for arg in given if arg.startswith("-") and not arg.startswith("--") and arg != "-"
                         and arg not in known), None)
            if word is None:
                raise
            raise click.UsageError(f"{exc.format_message()} A query that starts with - goes after --: "
                                   f"{ctx.command_path} -- {shlex.quote(word)}", ctx) from None


class KeyValueFormatter(logging.Formatter):
    """``level=info logger=monitor.pipeline feed=RFI status=200 ...``: journald adds the time."""

    def format(self, record: logging.LogRecord) -> str:
        message = one_line(record.getMessage())  # one line per event, whatever a server's error text holds
        line = f"{record.levelname.lower()} {record.name}: {message}"
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


def configure_logging(verbosity: int) -> None:
    level = {-1: logging.ERROR, 0: logging.WARNING, 1: logging.INFO}.get(verbosity, logging.DEBUG)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(KeyValueFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # Third-party chatter stays at warnings unless -vv.
    for name in ("httpx", "httpcore", "apscheduler"):
        logging.getLogger(name).setLevel(logging.DEBUG if verbosity >= 3 else logging.WARNING)
    # The `log` alert channel is an output the user asked for: shown unless -q.
    logging.getLogger("monitor.alerts.log").setLevel(logging.INFO if verbosity >= 0 else logging.ERROR)
