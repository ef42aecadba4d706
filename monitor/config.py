"""The configuration file (TOML) as frozen dataclasses.

Every key of ``[monitor]``, ``[[feeds]]``, ``[[rules]]`` and ``[[channels]]`` is read and
validated here; unknown keys are errors (with a "did you mean" where one is close). Every
error names the file, the key path (``feeds[3].interval``) and what is wrong.

Any string value may contain ``${NAME}`` (read from the environment) or ``${file:/path}``
(read from a file, trailing newline removed), so that secrets stay out of the file.
"""

from __future__ import annotations

import difflib
import os
import re
import tomllib
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any, Callable
from urllib.parse import urlsplit

from monitor import PROJECT_URL, __version__
from monitor.errors import ConfigError, QueryError
from monitor.timeutil import format_duration, parse_duration, parse_size, zone_named

DEFAULT_CONFIG_PATH = Path("config/feeds.toml")
DEFAULT_DB_PATH = Path("storage/newsmon.db")
DEFAULT_USER_AGENT = f"newsmon/{__version__} (+{PROJECT_URL})"
_NAME_PATTERN = re.compile(r"^[^\x00-\x1f]{1,100}$")
_CHANNEL_NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_ENV_REFERENCE = re.compile(r"\$\{([^}]*)\}")


@dataclass(frozen=True)
class MonitorSettings:
    database: Path | None = None
    default_interval: timedelta = timedelta(minutes=15)
    user_agent: str = DEFAULT_USER_AGENT
    connect_timeout: timedelta = timedelta(seconds=10)
    read_timeout: timedelta = timedelta(seconds=30)
    fetch_deadline: timedelta = timedelta(seconds=60)
    max_body: int = 10_000_000
    concurrency: int = 8
    per_host: int = 2
    backoff_max: timedelta = timedelta(hours=6)
    failing_after: int = 5
    cache_max: timedelta = timedelta(hours=6)
    story_window: timedelta = timedelta(days=7)
    alert_max_age: timedelta = timedelta(hours=24)
    alert_give_up: timedelta = timedelta(days=2)
    default_channels: tuple[str, ...] = ("log",)
    retention: timedelta = timedelta(days=365)
    shutdown_grace: timedelta = timedelta(seconds=20)


@dataclass(frozen=True)
class FeedConfig:
    name: str
    url: str
    interval: timedelta | None = None
    language: str | None = None
    tags: tuple[str, ...] = ()
    enabled: bool = True


@dataclass(frozen=True)
class RuleConfig:
    name: str
    query: str
    channels: tuple[str, ...] = ()
    mode: str = "instant"
    every: timedelta | None = None
    at: time | None = None
    timezone: str | None = None
    notify_on_update: bool = False


@dataclass(frozen=True)
class ChannelConfig:
    name: str
    url: str
    max_per_hour: int | None = None
    secret_header: str | None = None
    timeout: timedelta | None = None


@dataclass(frozen=True)
class Config:
    path: Path
    monitor: MonitorSettings = field(default_factory=MonitorSettings)
    feeds: tuple[FeedConfig, ...] = ()
    rules: tuple[RuleConfig, ...] = ()
    channels: tuple[ChannelConfig, ...] = ()

    def feed(self, name: str) -> FeedConfig | None:
        return next((feed for feed in self.feeds if feed.name == name), None)

    def rule(self, name: str) -> RuleConfig | None:
        return next((rule for rule in self.rules if rule.name == name), None)

    def channel(self, name: str) -> ChannelConfig | None:
        for channel in self.channels:
            if channel.name == name:
                return channel
        if name == "log":
            return ChannelConfig(name="log", url="log:")
        return None

    def feed_interval(self, feed: FeedConfig) -> timedelta:
        return feed.interval or self.monitor.default_interval

    def rule_channels(self, rule: RuleConfig) -> tuple[str, ...]:
        return rule.channels or self.monitor.default_channels


# --------------------------------------------------------------------------- loading


def load_config(path: str | os.PathLike[str]) -> Config:
    """Read and validate a config file. Raises ConfigError (exit status 2)."""
    config_path = Path(path)
    try:
        text = config_path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            "no such file (create one with `newsmon init`, or pass --config)", path=str(config_path)
        ) from None
    except IsADirectoryError:
        raise ConfigError("is a directory, not a config file", path=str(config_path)) from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"not UTF-8 text ({exc.reason} at byte {exc.start})", path=str(config_path)) from None
    except OSError as exc:
        raise ConfigError(f"cannot be read: {exc.strerror}", path=str(config_path)) from None
    return parse_config(text, config_path)


UTF8_BOM = "\ufeff"


def parse_config(text: str, path: str | os.PathLike[str] = "<config>") -> Config:
    """Validate TOML text as a newsmon config. ``path`` is used in messages and for the result.

    A leading byte order mark (editors on Windows write one) is not TOML and is skipped."""
    return _Loader(Path(path)).load(text.removeprefix(UTF8_BOM))


class _Loader:
    def __init__(self, path: Path) -> None:
        self.path = path

    def error(self, key: str | None, message: str) -> ConfigError:
        return ConfigError(message, path=str(self.path), key=key)

    # ---------------------------------------------------------------- top level
    def load(self, text: str) -> Config:
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise self.error(None, f"not valid TOML: {exc}") from None
        self.check_keys(data, None, {"monitor", "feeds", "rules", "channels"})
        monitor_table = data.get("monitor", {})
        if not isinstance(monitor_table, dict):
            raise self.error("monitor", "must be a table: write [monitor] on a line of its own")
        channels = self.load_channels(data.get("channels", []))
        channel_names = {channel.name for channel in channels} | {"log"}
        settings = self.load_monitor(monitor_table, channel_names)
        feeds = self.load_feeds(data.get("feeds", []))
        rules = self.load_rules(data.get("rules", []), channel_names)
        return Config(path=self.path, monitor=settings, feeds=feeds, rules=rules, channels=channels)

    def check_keys(self, table: dict[str, Any], where: str | None, allowed: set[str]) -> None:
        for key in table:
            if key not in allowed:
                suggestion = difflib.get_close_matches(key, sorted(allowed), n=1, cutoff=0.6)
                hint = f" (did you mean {suggestion[0]!r}?)" if suggestion else ""
                known = ", ".join(sorted(allowed))
                raise self.error(_join(where, key), f"unknown key{hint}; known keys here: {known}")

    def array_of_tables(self, value: Any, key: str) -> list[dict[str, Any]]:
        if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
            raise self.error(key, f"must be an array of tables: write [[{key}]] before each entry")
        return value

    # ---------------------------------------------------------------- values
    def string(self, table: dict[str, Any], key: str, where: str, *, required: bool = False) -> str | None:
        if key not in table:
            if required:
                raise self.error(_join(where, key), "is required")
            return None
        value = table[key]
        if not isinstance(value, str):
            raise self.error(_join(where, key), f"must be a string, not {_kind(value)}")
        return self.expand(value, _join(where, key))

    def expand(self, value: str, key: str) -> str:
        def replace(match: re.Match[str]) -> str:
            reference = match.group(1).strip()
            if reference.startswith("file:"):
                file_path = Path(reference[5:])
                try:
                    return file_path.read_text(encoding="utf-8").rstrip("\r\n")
                except OSError as exc:
                    raise self.error(key, f"cannot read secret file {str(file_path)!r}: {exc.strerror}") from None
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", reference):
                raise self.error(key, f"${{{reference}}} is not a valid environment variable name")
            if reference not in os.environ:
                raise self.error(key, f"environment variable {reference} is not set (used as ${{{reference}}})")
            return os.environ[reference]

        return _ENV_REFERENCE.sub(replace, value)

    def boolean(self, table: dict[str, Any], key: str, where: str, default: bool) -> bool:
        if key not in table:
            return default
        value = table[key]
        if not isinstance(value, bool):
            raise self.error(_join(where, key), f"must be true or false, not {_kind(value)}")
        return value

    def integer(self, table: dict[str, Any], key: str, where: str, default: int | None, minimum: int) -> int | None:
        if key not in table:
            return default
        value = table[key]
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.error(_join(where, key), f"must be a whole number, not {_kind(value)}")
        if value < minimum:
            raise self.error(_join(where, key), f"must be at least {minimum}, not {value}")
        return value

    def duration(
        self, table: dict[str, Any], key: str, where: str, default: timedelta | None,
        minimum: timedelta = timedelta(seconds=1),
    ) -> timedelta | None:
        if key not in table:
            return default
        value = table[key]
        if not isinstance(value, str):
            raise self.error(_join(where, key), f"must be a duration string such as \"15m\", not {_kind(value)}")
        try:
            parsed = parse_duration(value)
        except ValueError as exc:
            raise self.error(_join(where, key), str(exc)) from None
        if parsed < minimum:
            raise self.error(_join(where, key), f"must be at least {format_duration(minimum)}, not {value!r}")
        return parsed

    def size(self, table: dict[str, Any], key: str, where: str, default: int) -> int:
        if key not in table:
            return default
        value = table[key]
        if not isinstance(value, str):
            raise self.error(_join(where, key), f"must be a size string such as \"10MB\", not {_kind(value)}")
        try:
            parsed = parse_size(value)
        except ValueError as exc:
            raise self.error(_join(where, key), str(exc)) from None
        if parsed < 1024:
            raise self.error(_join(where, key), f"must be at least 1KiB, not {value!r}")
        return parsed

    def string_list(self, table: dict[str, Any], key: str, where: str) -> tuple[str, ...] | None:
        if key not in table:
            return None
        value = table[key]
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            raise self.error(_join(where, key), "must be a list of strings, such as [\"a\", \"b\"]")
        return tuple(self.expand(item, _join(where, key)) for item in value)

    def channel_list(self, table: dict[str, Any], key: str, where: str, channel_names: set[str]
                     ) -> tuple[str, ...] | None:
        """A list of channel names: each one defined, none twice."""
        channels = self.string_list(table, key, where)
        if channels is None:
            return None
        for index, name in enumerate(channels):
            if name not in channel_names:
                raise self.error(f"{_join(where, key)}[{index}]", _unknown_channel(name, channel_names))
            if name in channels[:index]:
                raise self.error(f"{_join(where, key)}[{index}]", f"{name!r} is already in the list")
        return channels

    # ---------------------------------------------------------------- sections
    def load_monitor(self, table: dict[str, Any], channel_names: set[str]) -> MonitorSettings:
        where = "monitor"
        defaults = MonitorSettings()
        self.check_keys(table, where, set(MonitorSettings.__dataclass_fields__))
        database = self.string(table, "database", where)
        if database is not None and not database.strip():
            raise self.error("monitor.database", "must not be empty")
        user_agent = self.string(table, "user_agent", where)
        if user_agent is not None:
            user_agent = user_agent.replace("<version>", __version__).replace("<project url>", PROJECT_URL)
            if not user_agent.strip() or any(ord(ch) < 32 for ch in user_agent):
                raise self.error("monitor.user_agent", "must be one line of printable text")
        default_channels = self.channel_list(table, "default_channels", where, channel_names)
        settings = MonitorSettings(
            database=Path(database) if database else None,
            default_interval=self.duration(table, "default_interval", where, defaults.default_interval),
            user_agent=user_agent or defaults.user_agent,
            connect_timeout=self.duration(table, "connect_timeout", where, defaults.connect_timeout),
            read_timeout=self.duration(table, "read_timeout", where, defaults.read_timeout),
            fetch_deadline=self.duration(table, "fetch_deadline", where, defaults.fetch_deadline),
            max_body=self.size(table, "max_body", where, defaults.max_body),
            concurrency=self.integer(table, "concurrency", where, defaults.concurrency, 1),
            per_host=self.integer(table, "per_host", where, defaults.per_host, 1),
            backoff_max=self.duration(table, "backoff_max", where, defaults.backoff_max),
            failing_after=self.integer(table, "failing_after", where, defaults.failing_after, 1),
            cache_max=self.duration(table, "cache_max", where, defaults.cache_max, timedelta(0)),
            story_window=self.duration(table, "story_window", where, defaults.story_window, timedelta(minutes=1)),
            alert_max_age=self.duration(table, "alert_max_age", where, defaults.alert_max_age),
            alert_give_up=self.duration(table, "alert_give_up", where, defaults.alert_give_up),
            default_channels=default_channels if default_channels is not None else defaults.default_channels,
            retention=self.duration(table, "retention", where, defaults.retention, timedelta(days=1)),
            shutdown_grace=self.duration(table, "shutdown_grace", where, defaults.shutdown_grace, timedelta(0)),
        )
        if settings.fetch_deadline < settings.connect_timeout:
            raise self.error("monitor.fetch_deadline", "must not be shorter than monitor.connect_timeout")
        return settings

    def load_feeds(self, value: Any) -> tuple[FeedConfig, ...]:
        feeds: list[FeedConfig] = []
        seen_names: dict[str, int] = {}
        seen_urls: dict[str, int] = {}
        allowed = set(FeedConfig.__dataclass_fields__)
        for index, table in enumerate(self.array_of_tables(value, "feeds")):
            where = f"feeds[{index}]"
            self.check_keys(table, where, allowed)
            name = (self.string(table, "name", where, required=True) or "").strip()
            if not name or not _NAME_PATTERN.match(name):
                raise self.error(f"{where}.name", "must be 1 to 100 printable characters")
            if name in seen_names:
                raise self.error(f"{where}.name", f"{name!r} is already the name of feeds[{seen_names[name]}]")
            seen_names[name] = index
            url = (self.string(table, "url", where, required=True) or "").strip()
            self.check_http_url(url, f"{where}.url")
            url_key = url_identity(url)
            if url_key in seen_urls:
                raise self.error(f"{where}.url", f"is the same feed as feeds[{seen_urls[url_key]}]")
            seen_urls[url_key] = index
            language = self.string(table, "language", where)
            if language is not None and not re.fullmatch(r"[A-Za-z]{2,3}([-_][A-Za-z0-9]{1,8})*", language):
                raise self.error(f"{where}.language", f"{language!r} is not a language code such as \"en\" or \"fr\"")
            tags = self.string_list(table, "tags", where) or ()
            feeds.append(
                FeedConfig(
                    name=name,
                    url=url,
                    interval=self.duration(table, "interval", where, None),
                    language=language.lower().replace("_", "-") if language else None,
                    tags=tuple(dict.fromkeys(tag.strip() for tag in tags if tag.strip())),
                    enabled=self.boolean(table, "enabled", where, True),
                )
            )
        return tuple(feeds)

    def check_http_url(self, url: str, key: str) -> None:
        try:
            parts = urlsplit(url)
            host = parts.hostname
            parts.port  # noqa: B018 - raises ValueError on a bad port
        except ValueError as exc:
            raise self.error(key, f"{url!r} is not a valid URL ({exc})") from None
        if parts.scheme not in ("http", "https") or not host:
            raise self.error(key, f"{url!r} is not an http:// or https:// URL")

    def load_channels(self, value: Any) -> tuple[ChannelConfig, ...]:
        channels: list[ChannelConfig] = []
        seen: dict[str, int] = {}
        allowed = set(ChannelConfig.__dataclass_fields__)
        for index, table in enumerate(self.array_of_tables(value, "channels")):
            where = f"channels[{index}]"
            self.check_keys(table, where, allowed)
            name = (self.string(table, "name", where, required=True) or "").strip()
            if not _CHANNEL_NAME_PATTERN.match(name):
                raise self.error(f"{where}.name", "must be letters, digits, '-', '_' or '.' (up to 64)")
            if name in seen:
                raise self.error(f"{where}.name", f"{name!r} is already the name of channels[{seen[name]}]")
            seen[name] = index
            url = (self.string(table, "url", where, required=True) or "").strip()
            validate = _channel_validator()
            if validate is not None:
                try:
                    validate(url)
                except ValueError as exc:
                    raise self.error(f"{where}.url", str(exc)) from None
            channels.append(
                ChannelConfig(
                    name=name,
                    url=url,
                    max_per_hour=self.integer(table, "max_per_hour", where, None, 1),
                    secret_header=self.string(table, "secret_header", where),
                    timeout=self.duration(table, "timeout", where, None),
                )
            )
        return tuple(channels)

    def load_rules(self, value: Any, channel_names: set[str]) -> tuple[RuleConfig, ...]:
        rules: list[RuleConfig] = []
        seen: dict[str, int] = {}
        allowed = {"name", "query", "keywords", "exclude", "channels", "mode", "every", "at", "timezone",
                   "notify_on_update"}
        for index, table in enumerate(self.array_of_tables(value, "rules")):
            where = f"rules[{index}]"
            self.check_keys(table, where, allowed)
            name = (self.string(table, "name", where, required=True) or "").strip()
            if not _CHANNEL_NAME_PATTERN.match(name):
                raise self.error(f"{where}.name", "must be letters, digits, '-', '_' or '.' (up to 64)")
            if name in seen:
                raise self.error(f"{where}.name", f"{name!r} is already the name of rules[{seen[name]}]")
            seen[name] = index
            query = self.rule_query(table, where, name)
            channels = self.channel_list(table, "channels", where, channel_names) or ()
            mode = self.string(table, "mode", where) or "instant"
            if mode not in ("instant", "digest"):
                raise self.error(f"{where}.mode", f"must be \"instant\" or \"digest\", not {mode!r}")
            every = self.duration(table, "every", where, None, timedelta(minutes=1))
            at = self.clock_time(table, where)
            timezone_name = self.string(table, "timezone", where)
            if timezone_name is not None and zone_named(timezone_name) is None:
                raise self.error(f"{where}.timezone", f"{timezone_name!r} is not a known time zone "
                                 "(use a name such as \"Africa/Bamako\" or \"UTC\")")
            if mode == "digest" and (every is None) == (at is None):
                raise self.error(where, "a digest rule needs exactly one of every = \"1h\" or at = \"08:00\"")
            if mode == "instant" and (every is not None or at is not None):
                key = "every" if every is not None else "at"
                raise self.error(f"{where}.{key}", "only applies with mode = \"digest\"")
            rules.append(
                RuleConfig(
                    name=name,
                    query=query,
                    channels=channels,
                    mode=mode,
                    every=every,
                    at=at,
                    timezone=timezone_name,
                    notify_on_update=self.boolean(table, "notify_on_update", where, False),
                )
            )
        return tuple(rules)

    def rule_query(self, table: dict[str, Any], where: str, name: str) -> str:
        from monitor.rules import parse_query, query_from_keywords
        from monitor.rules.query import keyword_phrase

        query = self.string(table, "query", where)
        keywords = self.string_list(table, "keywords", where)
        exclude = self.string_list(table, "exclude", where)
        if query is not None and (keywords is not None or exclude is not None):
            raise self.error(where, "use either query or keywords/exclude, not both")
        if query is None:
            if not keywords:
                raise self.error(where, "needs a query = \"...\" or a non-empty keywords = [...]")
            for list_key, entries in (("keywords", keywords), ("exclude", exclude or ())):
                for position, entry in enumerate(entries):
                    if not entry.strip():
                        raise self.error(f"{where}.{list_key}[{position}]", f"rule {name!r}: is empty")
                    try:
                        keyword_phrase(entry)
                    except QueryError as exc:
                        raise self.error(f"{where}.{list_key}[{position}]", f"rule {name!r}: {exc}") from None
            query = query_from_keywords(list(keywords), list(exclude or ()))
            key = f"{where}.keywords"
        else:
            key = f"{where}.query"
        if not query.strip():
            raise self.error(key, "is empty")
        try:
            parse_query(query)
        except QueryError as exc:
            raise self.error(key, f"rule {name!r}: {exc}") from None
        return query

    def clock_time(self, table: dict[str, Any], where: str) -> time | None:
        if "at" not in table:
            return None
        value = table["at"]
        if isinstance(value, time):
            return value
        if isinstance(value, str):
            match = re.fullmatch(r"(\d{1,2}):(\d{2})", value.strip())
            if match and int(match.group(1)) < 24 and int(match.group(2)) < 60:
                return time(int(match.group(1)), int(match.group(2)))
        shown = value.isoformat() if isinstance(value, (date, datetime)) else repr(value)
        raise self.error(f"{where}.at", f"must be a clock time such as \"08:00\", not {shown}")


def _channel_validator() -> Callable[[str], None] | None:
    try:
        from monitor.alerts import validate_channel_url
    except ImportError:
        return None
    return validate_channel_url


def _join(where: str | None, key: str) -> str:
    return f"{where}.{key}" if where else key


def _kind(value: Any) -> str:
    names = {bool: "a boolean", int: "a number", float: "a number", str: "a string", list: "a list",
             dict: "a table"}
    return names.get(type(value), type(value).__name__)


def _unknown_channel(name: str, known: set[str]) -> str:
    suggestion = difflib.get_close_matches(name, sorted(known), n=1, cutoff=0.6)
    hint = f" (did you mean {suggestion[0]!r}?)" if suggestion else ""
    return f"no channel named {name!r}{hint}; define it in a [[channels]] table"


def url_identity(url: str) -> str:
    """Two config URLs are the same feed when they differ only in case of scheme/host or a trailing slash."""
    parts = urlsplit(url.strip())
    path = parts.path.rstrip("/") or "/"
    return f"{parts.scheme.lower()}://{(parts.netloc or '').lower()}{path}?{parts.query}"
