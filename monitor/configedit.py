"""Careful edits of the config file's ``[[feeds]]``: add, remove, enable, disable.

The file is edited with tomlkit, so comments, blank lines and key order stay as the user
wrote them. Every edit follows the same steps:

1. read the file and parse it with tomlkit (a ``ConfigError`` if it is missing or not TOML);
2. change the document in memory;
3. validate the new text with ``monitor.config.parse_config`` (the rules the daemon applies);
   a change that would leave an invalid config raises ``ConfigError`` and writes nothing;
4. write a temporary file beside the config and ``os.replace`` it over the original, so a
   crash never leaves a half-written file; the original's permission bits are kept. If the
   file changed on disk while we were working, nothing is written (``ConfigError``).

Duplicates: a feed whose URL is already configured (same ``canonical_url``, or the same URL
up to case of scheme/host and a trailing slash, which is what ``load_config`` refuses) is
skipped with a reason. A name already used (compared case-insensitively) is refused by
``add_feed`` and given a numbered suffix (``"Name (2)"``) by ``add_feeds(..., rename=True)``,
which is what OPML import uses.

Comments: the comment lines directly above a ``[[feeds]]`` header belong to that feed; they go
when it is removed. Comment lines after the last feed (for instance a ``# --- rules`` banner)
stay where they are when feeds are appended or removed.
"""

from __future__ import annotations

import difflib
import logging
import os
import re
import tempfile
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence
from urllib.parse import urlsplit

import tomlkit
import tomlkit.exceptions
from tomlkit.items import AoT, Array, Comment, Item, Table, Whitespace

from monitor.config import parse_config
from monitor.errors import ConfigError, UsageError
from monitor.normalize import canonical_url
from monitor.opml import check_feed_url
from monitor.timeutil import parse_duration


log = logging.getLogger(__name__)

MAX_NAME = 100  # what monitor.config accepts
_LANGUAGE = re.compile(r"^[A-Za-z]{2,3}([-_][A-Za-z0-9]{1,8})*$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_FEED_KEYS = {"name", "title", "url", "interval", "language", "tags", "enabled"}


@dataclass(frozen=True)
class FeedChange:
    """What happened to one requested feed."""

    name: str            # the name written (with a suffix if one was needed) or requested
    url: str
    status: str          # "added", "skipped" (already there), "rejected" (unusable values), "removed"
    reason: str | None = None


# --------------------------------------------------------------------------- names and URLs


def feed_name(title: str | None, url: str) -> str:
    """A config name for a feed: its title, or the URL without scheme and ``www.`` when it has none."""
    name = _CONTROL.sub(" ", unicodedata.normalize("NFC", title or ""))
    name = " ".join(name.split())
    if not name or name.lower().startswith(("http://", "https://")):
        name = _name_from_url(name or url)
    return _truncate(name, MAX_NAME)


def _name_from_url(url: str) -> str:
    parts = urlsplit(url.strip())
    host = (parts.hostname or "").removeprefix("www.")
    name = host + parts.path.rstrip("/")
    if parts.query:
        name += "?" + parts.query
    return " ".join(_CONTROL.sub(" ", name).split()) or "feed"


def _truncate(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def url_keys(url: str) -> set[str]:
    """Identities under which a URL counts as already configured."""
    parts = urlsplit(url.strip())
    path = parts.path.rstrip("/") or "/"
    keys = {f"{parts.scheme.lower()}://{(parts.netloc or '').lower()}{path}?{parts.query}"}
    canonical = canonical_url(url)
    if canonical:
        keys.add("canonical:" + canonical)
    return keys


def _unique_name(base: str, taken: set[str]) -> str:
    if base.casefold() not in taken:
        return base
    number = 2
    while True:
        suffix = f" ({number})"
        candidate = _truncate(base, MAX_NAME - len(suffix)) + suffix
        if candidate.casefold() not in taken:
            return candidate
        number += 1


# --------------------------------------------------------------------------- reading and writing


@dataclass
class _Loaded:
    path: Path
    document: tomlkit.TOMLDocument
    stat: os.stat_result


def _load(path: str | os.PathLike[str]) -> _Loaded:
    config_path = Path(path)
    try:
        stat = config_path.stat()
        text = config_path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError("no such file (create one with `newsmon init`, or pass --config)",
                          path=str(config_path)) from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"not UTF-8 text ({exc.reason} at byte {exc.start})", path=str(config_path)) from None
    except OSError as exc:
        raise ConfigError(f"cannot be read: {exc.strerror}", path=str(config_path)) from None
    parse_config(text, config_path)  # refuse to edit a config that is not valid to begin with
    try:
        document = tomlkit.parse(text)
    except tomlkit.exceptions.ParseError as exc:
        raise ConfigError(f"not valid TOML: {exc}", path=str(config_path)) from exc
    return _Loaded(path=config_path, document=document, stat=stat)


def _feeds_array(loaded: _Loaded, *, create: bool) -> AoT | Array | None:
    document = loaded.document
    if "feeds" not in document:
        if not create:
            return None
        document.append("feeds", tomlkit.aot())
    feeds = document["feeds"]
    if not isinstance(feeds, (AoT, Array)):
        raise ConfigError("must be an array of tables: write [[feeds]] before each entry",
                          path=str(loaded.path), key="feeds")
    return feeds


def _validated_text(loaded: _Loaded) -> str:
    text = tomlkit.dumps(loaded.document)
    try:
        parse_config(text, loaded.path)
    except ConfigError as exc:
        raise ConfigError(f"left unchanged, because the change would make it invalid: {exc.reason}",
                          path=str(loaded.path), key=exc.key) from exc
    return text


def _write(loaded: _Loaded, text: str) -> None:
    """Replace the config file atomically, refusing if it changed since it was read."""
    path = loaded.path
    current = path.stat()
    if (current.st_mtime_ns, current.st_size, current.st_ino) != (
        loaded.stat.st_mtime_ns, loaded.stat.st_size, loaded.stat.st_ino
    ):
        raise ConfigError("changed on disk while it was being edited; nothing written, try again",
                          path=str(path))
    handle = tempfile.NamedTemporaryFile(
        "w", encoding="utf-8", dir=path.parent, prefix=f".{path.name}.", suffix=".tmp", delete=False,
        newline="",
    )
    temp_path = Path(handle.name)
    try:
        with handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temp_path, loaded.stat.st_mode & 0o7777)
        if os.geteuid() == 0:
            os.chown(temp_path, loaded.stat.st_uid, loaded.stat.st_gid)
        os.replace(temp_path, path)
    except OSError as exc:
        raise ConfigError(f"cannot be written: {exc.strerror or exc}", path=str(path)) from exc
    finally:
        if temp_path.exists():
            temp_path.unlink()
    log.info("config written path=%s bytes=%d", path, len(text.encode("utf-8")))


def _existing(feeds: AoT | Array | None) -> tuple[set[str], dict[str, str]]:
    """Names (case-folded) and URL identities → name of the feeds already configured."""
    names: set[str] = set()
    urls: dict[str, str] = {}
    for table in feeds or ():
        name = str(table.get("name", ""))
        names.add(name.strip().casefold())
        url = table.get("url")
        if isinstance(url, str):
            for key in url_keys(url):
                urls.setdefault(key, name)
    return names, urls


# --------------------------------------------------------------------------- trivia handling


def _take_trailing_trivia(table: Any) -> list[Item]:
    """Remove and return the blank lines and comment lines at the end of a table's body."""
    if not isinstance(table, Table):
        return []
    body = table.value.body
    trailing: list[Item] = []
    while body and body[-1][0] is None and isinstance(body[-1][1], (Whitespace, Comment)):
        trailing.append(body.pop()[1])
    trailing.reverse()
    return trailing


def _table_before(document: tomlkit.TOMLDocument, array: AoT) -> Table | None:
    """The table written just before the ``[[feeds]]`` array, if it is a table."""
    previous: Any = None
    for _key, item in document.body:
        if item is array:
            return previous if isinstance(previous, Table) else None
        previous = item
    return None


def _give_trivia(table: Any, items: Iterable[Item]) -> None:
    if isinstance(table, Table):
        for item in items:
            table.value.body.append((None, item))


# --------------------------------------------------------------------------- feed values


def _feed_values(feed: Mapping[str, Any]) -> dict[str, Any]:
    """Check one requested feed; returns the values to write. Raises ValueError with a reason."""
    unknown = set(feed) - _FEED_KEYS
    if unknown:
        raise ValueError(f"unknown key(s): {', '.join(sorted(unknown))}")
    raw_url = feed.get("url")
    if not isinstance(raw_url, str):
        raise ValueError("no url")
    url, reason = check_feed_url(raw_url)
    if url is None:
        raise ValueError(reason or "unusable URL")
    values: dict[str, Any] = {"url": url}
    interval = feed.get("interval")
    if interval is not None:
        if isinstance(interval, str):
            parse_duration(interval)  # raises ValueError with a reason
        else:
            raise ValueError(f"interval must be a duration such as \"15m\", not {interval!r}")
        values["interval"] = interval
    language = feed.get("language")
    if language:
        if not _LANGUAGE.match(language):
            raise ValueError(f"{language!r} is not a language code such as \"en\" or \"fr\"")
        values["language"] = language.lower().replace("_", "-")
    tags = [" ".join(str(tag).split()) for tag in feed.get("tags") or ()]
    tags = list(dict.fromkeys(tag for tag in tags if tag))
    if tags:
        values["tags"] = tags
    if feed.get("enabled") is False:
        values["enabled"] = False
    return values


def _new_table(name: str, values: Mapping[str, Any], inline: bool) -> Any:
    table = tomlkit.inline_table() if inline else tomlkit.table()
    table["name"] = name
    for key in ("url", "interval", "language", "tags", "enabled"):
        if key in values:
            table[key] = values[key]
    return table


# --------------------------------------------------------------------------- public API


def add_feeds(
    path: str | os.PathLike[str],
    feeds: Sequence[Mapping[str, Any]],
    *,
    rename: bool = True,
    dry_run: bool = False,
) -> list[FeedChange]:
    """Append feeds to the config; one ``FeedChange`` per requested feed, in order.

    Each mapping has ``url`` and optionally ``name`` (else ``title``, else derived from the
    URL), ``interval``, ``language``, ``tags``, ``enabled``. A URL already configured, or
    listed earlier in ``feeds``, is ``skipped``; a name already used gets a suffix when
    ``rename`` is true and is ``skipped`` otherwise; unusable values are ``rejected``.
    With ``dry_run`` nothing is written, but the result is validated all the same.
    """
    loaded = _load(path)
    array = _feeds_array(loaded, create=True)
    names, urls = _existing(array)
    inline = isinstance(array, Array) and not isinstance(array, AoT)
    changes: list[FeedChange] = []
    new_tables: list[Any] = []
    for feed in feeds:
        change, table = _plan_one(feed, names, urls, rename=rename, inline=inline)
        changes.append(change)
        if table is not None:
            new_tables.append(table)
    if new_tables:
        _append_tables(array, new_tables)
        text = _validated_text(loaded)
        if not dry_run:
            _write(loaded, text)
    log.info("feeds added path=%s added=%d skipped=%d rejected=%d dry_run=%s", loaded.path,
             len(new_tables), sum(c.status == "skipped" for c in changes),
             sum(c.status == "rejected" for c in changes), dry_run)
    return changes


def _plan_one(
    feed: Mapping[str, Any], names: set[str], urls: dict[str, str], *, rename: bool, inline: bool,
) -> tuple[FeedChange, Any]:
    requested_url = str(feed.get("url") or "").strip()
    try:
        values = _feed_values(feed)
    except ValueError as exc:
        name = str(feed.get("name") or feed.get("title") or "")
        return FeedChange(name=name, url=requested_url, status="rejected", reason=str(exc)), None
    url = values["url"]
    explicit_name = feed.get("name")
    base = feed_name(explicit_name if explicit_name is not None else feed.get("title"), url)
    keys = url_keys(url)
    present = next((urls[key] for key in keys if key in urls), None)
    if present is not None:
        reason = f"URL already configured as feed {present!r}"
        return FeedChange(name=base, url=url, status="skipped", reason=reason), None
    name = base
    if base.casefold() in names:
        if not rename:
            reason = f"the name {base!r} is already used by another feed"
            return FeedChange(name=base, url=url, status="skipped", reason=reason), None
        name = _unique_name(base, names)
    names.add(name.casefold())
    for key in keys:
        urls[key] = name
    return FeedChange(name=name, url=url, status="added"), _new_table(name, values, inline)


def _append_tables(array: AoT | Array, tables: list[Any]) -> None:
    if isinstance(array, AoT):
        last = array[-1] if len(array) else None
        trailing = _take_trailing_trivia(last)
        if last is not None:
            _give_trivia(last, [tomlkit.ws("\n")])
        for index, table in enumerate(tables):
            if index:
                _give_trivia(array[-1], [tomlkit.ws("\n")])
            array.append(table)
        _give_trivia(array[-1], trailing)
    else:
        for table in tables:
            array.append(table)


def add_feed(path: str | os.PathLike[str], feed: Mapping[str, Any]) -> FeedChange:
    """Add one feed; a URL or name already configured, or an unusable value, is a ``UsageError``."""
    change = add_feeds(path, [feed], rename=False)[0]
    if change.status == "skipped" and change.reason and change.reason.startswith("the name"):
        raise UsageError(f"{change.reason}; choose another with --name")
    if change.status != "added":
        raise UsageError(f"{change.url}: {change.reason}")
    return change


def _find(loaded: _Loaded, name: str) -> tuple[AoT | Array, int]:
    array = _feeds_array(loaded, create=False)
    names = [str(table.get("name", "")) for table in array or ()]
    for index, candidate in enumerate(names):
        if array is not None and candidate.strip() == name.strip():
            return array, index
    raise UsageError(_unknown_feed_message(name, names))


def _unknown_feed_message(name: str, names: list[str]) -> str:
    folded = {candidate.casefold(): candidate for candidate in names}
    suggestions = difflib.get_close_matches(name.casefold(), list(folded), n=3, cutoff=0.6)
    if suggestions:
        hint = " or ".join(repr(folded[suggestion]) for suggestion in suggestions)
        return f"no feed named {name!r} (did you mean {hint}?)"
    if not names:
        return f"no feed named {name!r}: the config has no feeds"
    return f"no feed named {name!r}; `newsmon feeds list` shows the names"


def remove_feed(path: str | os.PathLike[str], name: str) -> FeedChange:
    """Remove the feed called ``name`` (exact name); unknown names are a ``UsageError`` with a suggestion."""
    loaded = _load(path)
    array, index = _find(loaded, name)
    table = array[index]
    url = str(table.get("url", ""))
    if isinstance(array, AoT):
        # Comment lines after a feed belong to what follows it: keep them. Those above it
        # (at the end of the previous feed) describe it: they go with it.
        trailing = _take_trailing_trivia(table)
        if index > 0:
            _take_trailing_trivia(array[index - 1])
            _give_trivia(array[index - 1], trailing)
        else:
            while trailing and isinstance(trailing[0], Whitespace):
                trailing.pop(0)  # the table before ends with its own blank line
            _give_trivia(_table_before(loaded.document, array), trailing)
    del array[index]
    _write(loaded, _validated_text(loaded))
    log.info("feed removed path=%s feed=%s url=%s", loaded.path, name, url)
    return FeedChange(name=name, url=url, status="removed")


def set_feed_enabled(path: str | os.PathLike[str], name: str, enabled: bool) -> bool:
    """Enable or disable a feed. Returns False when it was already in that state (nothing written)."""
    loaded = _load(path)
    array, index = _find(loaded, name)
    table = array[index]
    current = table.get("enabled", True)
    if bool(current) == enabled:
        return False
    if "enabled" in table:
        table["enabled"] = enabled
    else:  # a new key goes before the comment lines that end the table (they belong to what follows)
        trailing = _take_trailing_trivia(table)
        table["enabled"] = enabled
        _give_trivia(table, trailing)
    _write(loaded, _validated_text(loaded))
    log.info("feed %s path=%s feed=%s", "enabled" if enabled else "disabled", loaded.path, name)
    return True
