"""Careful edits of the config file's ``[[feeds]]``: add, remove, enable, disable.

Comments, blank lines and key order stay as the user wrote them. Every edit follows the same steps:

1. read the file and validate it with ``monitor.config.parse_config`` (a config that is not valid
   to begin with is not edited: ``ConfigError``);
2. make the change on the text (see below);
3. validate the new text with ``parse_config`` and check that it holds exactly the intended feeds;
   a change that would leave an invalid config raises ``ConfigError`` and writes nothing;
4. write a temporary file beside the config and ``os.replace`` it over the original, so a crash
   never leaves a half-written file; the original's permission bits (and owner, as root) are kept.
   If the file changed on disk meanwhile, nothing is written (``ConfigError``).

Edits by newsmon itself (two ``feeds add`` run at once) wait for each other: each holds an exclusive
``flock`` on the config's folder from step 1 to step 4, so neither overwrites the other's change.

How the text is changed: ``[[feeds]]`` tables are located line by line and edited in place
(appending after the last feed, cutting a feed out, setting ``enabled``), which keeps large
configs fast (10,000 feeds import in a few seconds). When that cannot be done safely (feeds
written as an inline array, no ``[[feeds]]`` yet, multi-line strings that confuse the line
scan: anything where the check of step 3 fails), the edit is redone with tomlkit, which keeps
formatting too but is slow on very large files.

Which comments belong to a feed: the comment lines directly above its ``[[feeds]]`` header
(no blank line between; except above the first feed, where they read as a section banner) and
those directly after its last key. They go when the feed is removed.
Comment lines separated by a blank line (for instance a ``# --- rules`` banner after the last
feed) belong to what follows and stay where they are.

Duplicates: a feed whose URL is already configured (same ``normalize.canonical_url``, or the same
URL up to case of scheme/host and a trailing slash, which ``load_config`` refuses) is skipped
with a reason. A name already used (compared by ``name_key``: ignoring case and how the characters are
encoded) is refused by ``add_feed`` and given a numbered suffix (``"Name (2)"``) by
``add_feeds(..., rename=True)``, as OPML import does. Names are written composed (NFC); remove, enable
and disable find a feed by its name as typed, also when the terminal encodes its accents otherwise.

``${`` starts an environment or file reference in the config, so names and tags that come from
outside (feed and OPML titles) have it defused as ``$ {``, and URLs containing it are rejected.
"""

from __future__ import annotations

import dataclasses
import difflib
import fcntl
import functools
import logging
import os
import re
import tempfile
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence, TypeVar
from urllib.parse import urlsplit

import tomlkit
import tomlkit.exceptions
from tomlkit.items import AoT, Array, Comment, Item, Table, Whitespace

from monitor.config import UTF8_BOM, Config, FeedConfig, parse_config, url_identity
from monitor.errors import ConfigError, UsageError
from monitor.normalize import canonical_url
from monitor.opml import check_feed_url
from monitor.timeutil import parse_duration

log = logging.getLogger(__name__)

MAX_NAME = 100  # what monitor.config accepts
_LANGUAGE = re.compile(r"^[A-Za-z]{2,3}([-_][A-Za-z0-9]{1,8})*$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_FEED_KEYS = {"name", "title", "url", "interval", "language", "tags", "enabled"}
_FEEDS_HEADER = re.compile(r"^\s*\[\[\s*feeds\s*\]\]\s*(?:#.*)?$")
_ANY_HEADER = re.compile(r"^\s*\[")
_BLANK = re.compile(r"^\s*$")
_COMMENT = re.compile(r"^\s*#")
_ENABLED_LINE = re.compile(r"^(\s*enabled\s*=\s*)(true|false)(\s*(?:#.*)?)$")
_TOML_ESCAPES = {"\\": "\\\\", '"': '\\"', "\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f", "\r": "\\r"}
_TOML_NEEDS_ESCAPE = re.compile(r'[\\"\x00-\x1f\x7f]')


@dataclass(frozen=True)
class FeedChange:
    """What happened to one requested feed."""

    name: str            # the name written (with a suffix if one was needed) or requested
    url: str
    status: str          # "added", "skipped" (already there), "rejected" (unusable values), "removed"
    reason: str | None = None


class _FastPathFailed(Exception):
    """The line-based edit did not give exactly the intended feeds: redo it with tomlkit."""


# --------------------------------------------------------------------------- names and URLs


def feed_name(title: str | None, url: str) -> str:
    """A config name for a feed: its title, or the URL without scheme and ``www.`` when it has none."""
    name = _CONTROL.sub(" ", unicodedata.normalize("NFC", title or ""))
    name = " ".join(name.split())
    if not name or name.lower().startswith(("http://", "https://")):
        name = _name_from_url(name or url)
    return _truncate(_defuse(name), MAX_NAME)


def _name_from_url(url: str) -> str:
    parts = urlsplit(url.strip())
    host = (parts.hostname or "").removeprefix("www.")
    name = host + parts.path.rstrip("/")
    if parts.query:
        name += "?" + parts.query
    return " ".join(_CONTROL.sub(" ", name).split()) or "feed"


def _defuse(text: str) -> str:
    return text.replace("${", "$ {")


def _truncate(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def url_keys(url: str) -> set[str]:
    """Identities under which a URL counts as already configured."""
    keys = {url_identity(url)}
    canonical = canonical_url(url)
    if canonical:
        keys.add("canonical:" + canonical)
    return keys


def name_key(name: str) -> str:
    """What two feed names that clash have in common: names are the same to a reader when they differ only in
    case or in how their characters are encoded ("é" as one character or as "e" and an accent; full-width
    letters)."""
    return unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", name).casefold())


def _unique_name(base: str, taken: set[str]) -> str:
    """``base``, else ``base (2)``, ``base (3)`` ...: the first whose ``name_key`` is not in ``taken``."""
    if name_key(base) not in taken:
        return base
    number = 2
    while True:
        suffix = f" ({number})"
        candidate = _truncate(base, MAX_NAME - len(suffix)) + suffix
        if name_key(candidate) not in taken:
            return candidate
        number += 1


# --------------------------------------------------------------------------- reading and writing


@dataclass
class _Source:
    path: Path
    text: str
    stat: os.stat_result
    config: Config
    bom: bool = False         # the file starts with a UTF-8 byte order mark: ``text`` is without it, writes keep it


_Edit = TypeVar("_Edit", bound=Callable[..., Any])


def _serialised(edit: _Edit) -> _Edit:
    """Run an edit of the config ``path`` (its first argument) holding an exclusive lock on the config's folder:
    the file itself is replaced by each edit, so a lock on it would not be seen by the next one. Without a
    folder to lock, the edit runs and ``_read`` reports the problem."""

    @functools.wraps(edit)
    def locked(path: str | os.PathLike[str], *args: Any, **kwargs: Any) -> Any:
        try:
            folder = os.open(Path(path).resolve().parent, os.O_RDONLY | os.O_DIRECTORY)
        except (OSError, RuntimeError):  # RuntimeError: symbolic links in a loop (Python < 3.13)
            return edit(path, *args, **kwargs)
        try:
            fcntl.flock(folder, fcntl.LOCK_EX)
            return edit(path, *args, **kwargs)
        finally:
            os.close(folder)  # releases the lock

    return locked  # type: ignore[return-value]


def _read(path: str | os.PathLike[str]) -> _Source:
    config_path = Path(path)
    try:
        stat = config_path.stat()
        with open(config_path, encoding="utf-8", newline="") as handle:
            text = handle.read()
    except FileNotFoundError:
        raise ConfigError("no such file (create one with `newsmon init`, or pass --config)",
                          path=str(config_path)) from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"not UTF-8 text ({exc.reason} at byte {exc.start})", path=str(config_path)) from None
    except OSError as exc:
        raise ConfigError(f"cannot be read: {exc.strerror}", path=str(config_path)) from None
    bom = text.startswith(UTF8_BOM)
    text = text.removeprefix(UTF8_BOM)
    config = parse_config(text, config_path)  # a config that is not valid to begin with is not edited
    return _Source(path=config_path, text=text, stat=stat, config=config, bom=bom)


def _validate(source: _Source, text: str) -> Config:
    try:
        return parse_config(text, source.path)
    except ConfigError as exc:
        raise ConfigError(f"left unchanged, because the change would make it invalid: {exc.reason}",
                          path=str(source.path), key=exc.key) from exc


def _write(source: _Source, text: str) -> None:
    """Replace the config file atomically, refusing if it changed since it was read."""
    path = source.path.resolve()  # through a symlink: replace the file it points to, keep the link
    current = path.stat()
    if (current.st_mtime_ns, current.st_size, current.st_ino) != (
        source.stat.st_mtime_ns, source.stat.st_size, source.stat.st_ino
    ):
        raise ConfigError("changed on disk while it was being edited; nothing written, try again",
                          path=str(source.path))
    try:
        handle = tempfile.NamedTemporaryFile(
            "w", encoding="utf-8", dir=path.parent, prefix=f".{path.name}.", suffix=".tmp", delete=False,
            newline="",
        )
    except OSError as exc:
        raise ConfigError(f"cannot be written (no temporary file beside it: {exc.strerror or exc})",
                          path=str(source.path)) from exc
    temp_path = Path(handle.name)
    try:
        with handle:
            handle.write(UTF8_BOM + text if source.bom else text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temp_path, source.stat.st_mode & 0o7777)
        if os.geteuid() == 0:
            os.chown(temp_path, source.stat.st_uid, source.stat.st_gid)
        os.replace(temp_path, path)
    except OSError as exc:
        raise ConfigError(f"cannot be written: {exc.strerror or exc}", path=str(source.path)) from exc
    finally:
        if temp_path.exists():
            temp_path.unlink()
    log.info("config written path=%s bytes=%d", path, len(text.encode("utf-8")))


def _commit(source: _Source, text: str, expected: Sequence[FeedConfig] | None, *, dry_run: bool = False,
            fast: bool = False) -> None:
    """Validate ``text``; check its feeds are ``expected`` (when given); write it unless ``dry_run``.

    ``fast``: the text comes from the line-based edit, whose every failure means "redo with tomlkit"."""
    try:
        config = _validate(source, text)
    except ConfigError as exc:
        if fast:
            raise _FastPathFailed(str(exc)) from exc
        raise
    if expected is not None and (
        tuple(config.feeds) != tuple(expected)
        or dataclasses.replace(config, feeds=()) != dataclasses.replace(source.config, feeds=())
    ):
        if fast:
            raise _FastPathFailed("the edited text does not hold the intended feeds")
        raise ConfigError("could not be edited safely (the edited file would not hold exactly the intended "
                          "feeds); nothing written: please edit it by hand", path=str(source.path))
    if not dry_run:
        _write(source, text)


# --------------------------------------------------------------------------- locating [[feeds]] in the text


@dataclass(frozen=True)
class _Region:
    lead: int          # first line of the comments directly above the header (or the header)
    header: int        # the [[feeds]] line
    content_end: int   # one past the last key line
    end: int           # one past the comment lines attached after the last key


class _Lines:
    def __init__(self, text: str) -> None:
        self.newline = "\r\n" if "\r\n" in text else "\n"
        self.lines = text.split("\n")
        if self.newline == "\r\n":
            self.lines = [line.removesuffix("\r") for line in self.lines]

    def text(self) -> str:
        return self.newline.join(self.lines)

    def regions(self) -> list[_Region]:
        lines = self.lines
        headers = [index for index, line in enumerate(lines) if _ANY_HEADER.match(line)]
        regions: list[_Region] = []
        for position, header in enumerate(headers):
            if not _FEEDS_HEADER.match(lines[header]):
                continue
            following = headers[position + 1] if position + 1 < len(headers) else len(lines)
            content_end = following
            while content_end > header + 1 and (_BLANK.match(lines[content_end - 1])
                                                or _COMMENT.match(lines[content_end - 1])):
                content_end -= 1
            next_lead = following
            while next_lead > content_end and _COMMENT.match(lines[next_lead - 1]):
                next_lead -= 1
            end = content_end
            while end < next_lead and _COMMENT.match(lines[end]):
                end += 1
            lead = header
            after_feed = position > 0 and _FEEDS_HEADER.match(lines[headers[position - 1]])
            while after_feed and lead > 0 and _COMMENT.match(lines[lead - 1]):
                lead -= 1  # (above the first feed, comments are a section banner: not the feed's)
            if regions and lead < regions[-1].end:
                lead = regions[-1].end
            regions.append(_Region(lead=lead, header=header, content_end=content_end, end=end))
        return regions


def _toml_string(value: str) -> str:
    escaped = _TOML_NEEDS_ESCAPE.sub(lambda m: _TOML_ESCAPES.get(m.group(), f"\\u{ord(m.group()):04x}"), value)
    return f'"{escaped}"'


def _table_lines(name: str, values: Mapping[str, Any]) -> list[str]:
    lines = ["[[feeds]]", f"name = {_toml_string(name)}", f"url = {_toml_string(values['url'])}"]
    for key in ("interval", "language"):
        if key in values:
            lines.append(f"{key} = {_toml_string(values[key])}")
    if values.get("tags"):
        lines.append("tags = [" + ", ".join(_toml_string(tag) for tag in values["tags"]) + "]")
    if values.get("enabled") is False:
        lines.append("enabled = false")
    return lines


# --------------------------------------------------------------------------- tomlkit fallback


def _document(source: _Source) -> tomlkit.TOMLDocument:
    try:
        return tomlkit.parse(source.text)
    except tomlkit.exceptions.ParseError as exc:
        raise ConfigError(f"not valid TOML: {exc}", path=str(source.path)) from exc


def _feeds_array(document: tomlkit.TOMLDocument, *, create: bool) -> AoT | Array | None:
    if "feeds" not in document:
        if not create:
            return None
        document.append("feeds", tomlkit.aot())
    feeds = document["feeds"]
    if not isinstance(feeds, (AoT, Array)):
        raise ConfigError("must be an array of tables: write [[feeds]] before each entry", key="feeds")
    return feeds


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


def _new_table(name: str, values: Mapping[str, Any], inline: bool) -> Any:
    table = tomlkit.inline_table() if inline else tomlkit.table()
    table["name"] = name
    for key in ("url", "interval", "language", "tags", "enabled"):
        if key in values:
            table[key] = values[key]
    return table


def _append_with_tomlkit(source: _Source, planned: list[tuple[str, dict[str, Any]]]) -> str:
    document = _document(source)
    array = _feeds_array(document, create=True)
    inline = not isinstance(array, AoT)
    tables = [_new_table(name, values, inline) for name, values in planned]
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
    return tomlkit.dumps(document)


def _remove_with_tomlkit(source: _Source, index: int) -> str:
    document = _document(source)
    array = _feeds_array(document, create=False)
    if array is None:
        raise ConfigError("no [[feeds]] to edit", path=str(source.path))
    if isinstance(array, AoT):
        # Comment lines after a feed belong to what follows it: keep them. Those above it
        # (at the end of the previous feed) describe it: they go with it.
        trailing = _take_trailing_trivia(array[index])
        if index > 0:
            _take_trailing_trivia(array[index - 1])
            _give_trivia(array[index - 1], trailing)
        else:
            while trailing and isinstance(trailing[0], Whitespace):
                trailing.pop(0)  # the table before ends with its own blank line
            _give_trivia(_table_before(document, array), trailing)
    del array[index]
    return tomlkit.dumps(document)


def _set_enabled_with_tomlkit(source: _Source, index: int, enabled: bool) -> str:
    document = _document(source)
    array = _feeds_array(document, create=False)
    if array is None:
        raise ConfigError("no [[feeds]] to edit", path=str(source.path))
    table = array[index]
    if "enabled" in table:
        table["enabled"] = enabled
    else:  # a new key goes before the comment lines that end the table (they belong to what follows)
        trailing = _take_trailing_trivia(table)
        table["enabled"] = enabled
        _give_trivia(table, trailing)
    return tomlkit.dumps(document)


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
    if "${" in url:
        raise ValueError("the URL contains \"${\", which the config reads as an environment reference")
    values: dict[str, Any] = {"url": url}
    interval = feed.get("interval")
    if interval is not None:
        if not isinstance(interval, str):
            raise ValueError(f"interval must be a duration such as \"15m\", not {interval!r}")
        parse_duration(interval)  # raises ValueError with a reason
        values["interval"] = interval
    language = feed.get("language")
    if language:
        if not _LANGUAGE.match(language):
            raise ValueError(f"{language!r} is not a language code such as \"en\" or \"fr\"")
        values["language"] = language.lower().replace("_", "-")
    tags = [_defuse(" ".join(_CONTROL.sub(" ", str(tag)).split())) for tag in feed.get("tags") or ()]
    tags = list(dict.fromkeys(tag for tag in tags if tag))
    if tags:
        values["tags"] = tags
    if feed.get("enabled") is False:
        values["enabled"] = False
    return values


def _expected_feed(name: str, values: Mapping[str, Any]) -> FeedConfig:
    interval = values.get("interval")
    return FeedConfig(
        name=name, url=values["url"], interval=parse_duration(interval) if interval else None,
        language=values.get("language"), tags=tuple(values.get("tags") or ()),
        enabled=values.get("enabled", True),
    )


# --------------------------------------------------------------------------- public API


@_serialised
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
    source = _read(path)
    names = {name_key(feed.name) for feed in source.config.feeds}
    urls: dict[str, str] = {}
    for feed in source.config.feeds:
        for key in url_keys(feed.url):
            urls.setdefault(key, feed.name)
    changes: list[FeedChange] = []
    planned: list[tuple[str, dict[str, Any]]] = []
    added: set[str] = set()  # names given to feeds of this batch
    for feed in feeds:
        change, values = _plan_one(feed, names, urls, added, rename=rename)
        changes.append(change)
        if values is not None:
            planned.append((change.name, values))
    if planned:
        expected = list(source.config.feeds) + [_expected_feed(name, values) for name, values in planned]
        try:
            _commit(source, _append_lines(source, planned), expected, dry_run=dry_run, fast=True)
        except _FastPathFailed:
            log.info("config edited with tomlkit path=%s", source.path)
            _commit(source, _append_with_tomlkit(source, planned), None, dry_run=dry_run)
    log.info("feeds added path=%s added=%d skipped=%d rejected=%d dry_run=%s", source.path, len(planned),
             sum(c.status == "skipped" for c in changes), sum(c.status == "rejected" for c in changes), dry_run)
    return changes


def _plan_one(
    feed: Mapping[str, Any], names: set[str], urls: dict[str, str], added: set[str], *, rename: bool,
) -> tuple[FeedChange, dict[str, Any] | None]:
    requested_url = str(feed.get("url") or "").strip()
    try:
        values = _feed_values(feed)
    except ValueError as exc:
        name = str(feed.get("name") or feed.get("title") or "")
        return FeedChange(name=name, url=requested_url, status="rejected", reason=str(exc)), None
    url = values["url"]
    explicit_name = feed.get("name")
    if explicit_name is not None:
        base = " ".join(unicodedata.normalize("NFC", str(explicit_name)).split())
        if not base or _CONTROL.search(base) or len(base) > MAX_NAME:
            reason = f"a name must be 1 to {MAX_NAME} printable characters"
            return FeedChange(name=base, url=url, status="rejected", reason=reason), None
    else:
        base = feed_name(feed.get("title"), url)
    keys = url_keys(url)
    present = next((urls[key] for key in keys if key in urls), None)
    if present is not None:
        if present in added:
            reason = f"the same URL as feed {present!r}, listed before it"
        else:
            reason = f"URL already configured as feed {present!r}"
        return FeedChange(name=base, url=url, status="skipped", reason=reason), None
    name = base
    if name_key(base) in names:
        if not rename:
            reason = f"the name {base!r} is already used by another feed"
            return FeedChange(name=base, url=url, status="skipped", reason=reason), None
        name = _unique_name(base, names)
    names.add(name_key(name))
    added.add(name)
    for key in keys:
        urls[key] = name
    return FeedChange(name=name, url=url, status="added"), values


def _append_lines(source: _Source, planned: list[tuple[str, dict[str, Any]]]) -> str:
    lines = _Lines(source.text)
    regions = lines.regions()
    if len(regions) != len(source.config.feeds):
        raise _FastPathFailed("feeds are not all [[feeds]] tables")
    if regions:
        at = regions[-1].end
    else:  # no feed yet: the new ones go at the end of the file
        at = len(lines.lines)
        while at > 0 and _BLANK.match(lines.lines[at - 1]):
            at -= 1
        lines.lines[at:] = [""]  # the file ends with one newline after the new feeds
    block: list[str] = []
    for name, values in planned:
        if at > 0 or block:
            block.append("")
        block.extend(_table_lines(name, values))
    if at < len(lines.lines) and not _BLANK.match(lines.lines[at]):
        block.append("")
    lines.lines[at:at] = block
    return lines.text()


def add_feed(path: str | os.PathLike[str], feed: Mapping[str, Any]) -> FeedChange:
    """Add one feed; a URL or name already configured, or an unusable value, is a ``UsageError``."""
    change = add_feeds(path, [feed], rename=False)[0]
    if change.status == "skipped" and change.reason and change.reason.startswith("the name"):
        raise UsageError(f"{change.reason}; choose another with --name")
    if change.status != "added":
        raise UsageError(f"{change.url}: {change.reason}")
    return change


def _index_of(source: _Source, name: str) -> int:
    """The feed called ``name``; else the one feed whose name is written with the same characters encoded
    otherwise (an "é" typed as "e" and an accent), which looks the same in a terminal."""
    names = [feed.name for feed in source.config.feeds]
    wanted = name.strip()
    for index, candidate in enumerate(names):
        if candidate == wanted:
            return index
    composed = unicodedata.normalize("NFC", wanted)
    alike = [index for index, candidate in enumerate(names) if unicodedata.normalize("NFC", candidate) == composed]
    if len(alike) == 1:
        return alike[0]
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


@_serialised
def remove_feed(path: str | os.PathLike[str], name: str) -> FeedChange:
    """Remove the feed called ``name`` (exact name); unknown names are a ``UsageError`` with a suggestion."""
    source = _read(path)
    index = _index_of(source, name)
    removed = source.config.feeds[index]
    expected = source.config.feeds[:index] + source.config.feeds[index + 1:]
    try:
        _commit(source, _remove_lines(source, index), expected, fast=True)
    except _FastPathFailed:
        log.info("config edited with tomlkit path=%s", source.path)
        _commit(source, _remove_with_tomlkit(source, index), expected)
    log.info("feed removed path=%s feed=%s url=%s", source.path, removed.name, removed.url)
    return FeedChange(name=removed.name, url=removed.url, status="removed")


def _remove_lines(source: _Source, index: int) -> str:
    lines = _Lines(source.text)
    regions = lines.regions()
    if len(regions) != len(source.config.feeds):
        raise _FastPathFailed("feeds are not all [[feeds]] tables")
    region = regions[index]
    start, stop = region.lead, region.end
    blank_before = start == 0 or _BLANK.match(lines.lines[start - 1])
    while blank_before and stop < len(lines.lines) and _BLANK.match(lines.lines[stop]) and stop + 1 < len(lines.lines):
        stop += 1
    del lines.lines[start:stop]
    if start == len(lines.lines) - 1 and start > 0 and _BLANK.match(lines.lines[start - 1]):
        del lines.lines[start - 1]  # the last feed went: no blank line left at the end of the file
    return lines.text()


@_serialised
def set_feed_enabled(path: str | os.PathLike[str], name: str, enabled: bool) -> bool:
    """Enable or disable a feed. Returns False when it was already in that state (nothing written)."""
    source = _read(path)
    index = _index_of(source, name)
    feed = source.config.feeds[index]
    if feed.enabled == enabled:
        return False
    expected = list(source.config.feeds)
    expected[index] = dataclasses.replace(feed, enabled=enabled)
    try:
        _commit(source, _set_enabled_lines(source, index, enabled), expected, fast=True)
    except _FastPathFailed:
        log.info("config edited with tomlkit path=%s", source.path)
        _commit(source, _set_enabled_with_tomlkit(source, index, enabled), expected)
    log.info("feed %s path=%s feed=%s", "enabled" if enabled else "disabled", source.path, name)
    return True


def _set_enabled_lines(source: _Source, index: int, enabled: bool) -> str:
    lines = _Lines(source.text)
    regions = lines.regions()
    if len(regions) != len(source.config.feeds):
        raise _FastPathFailed("feeds are not all [[feeds]] tables")
    region = regions[index]
    value = "true" if enabled else "false"
    for number in range(region.header + 1, region.content_end):
        match = _ENABLED_LINE.match(lines.lines[number])
        if match:
            lines.lines[number] = f"{match.group(1)}{value}{match.group(3)}"
            return lines.text()
    lines.lines.insert(region.content_end, f"enabled = {value}")
    return lines.text()
