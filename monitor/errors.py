"""One exception tree for newsmon.

Third-party errors (httpx, sqlite3, feedparser, tomllib, apprise) are translated at the
boundary of the stage that meets them, with ``raise ... from exc``, so callers only ever
catch these::

    MonitorError                 anything newsmon reports to a user
    ├── ConfigError              bad config file: names file, key path and what is wrong (exit 2)
    ├── UsageError               bad command-line use (exit 2)
    ├── QueryError               malformed rule/search query; carries the position (exit 2)
    ├── FetchError               a feed could not be fetched; ``kind`` says why
    ├── ParseError               fetched bytes are not a feed we can read; ``kind`` says why
    ├── StoreError               the archive cannot be opened, read or written
    │   └── ReadOnlyError        a write was attempted on a read-only archive
    ├── OPMLError                an OPML file cannot be read at all
    └── AlertError               a channel could not deliver; ``reason`` is safe to log

``kind`` values are short stable identifiers (``timeout``, ``too_large``, ``http_status`` ...)
that are stored in the database (``feeds.last_error_kind``) and asserted by tests.
"""

from __future__ import annotations


class MonitorError(Exception):
    """Base of every error newsmon reports. ``exit_code`` is what the CLI exits with."""

    exit_code = 1

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class ConfigError(MonitorError):
    exit_code = 2

    def __init__(self, message: str, *, path: str | None = None, key: str | None = None) -> None:
        prefix = ""
        if path and key:
            prefix = f"{path}: {key}: "
        elif path:
            prefix = f"{path}: "
        elif key:
            prefix = f"{key}: "
        super().__init__(prefix + message)
        self.path = path
        self.key = key
        self.reason = message


class UsageError(MonitorError):
    exit_code = 2


class QueryError(MonitorError):
    """A malformed query. ``position`` is a 0-based character offset into ``query``.

    The message shows the line of the query that holds the fault with a caret under it, so that
    multi-line rules (as in the starter config) point at the right place."""

    exit_code = 2

    def __init__(self, message: str, *, query: str, position: int) -> None:
        self.query = query
        self.position = position
        self.reason = message
        position = max(0, min(position, len(query)))
        line_start = query.rfind("\n", 0, position) + 1
        line_end = query.find("\n", position)
        line = query[line_start: line_end if line_end != -1 else len(query)]
        column = position - line_start
        if "\n" in query.strip():
            where = f"line {query.count(chr(10), 0, position) + 1}, column {column + 1}"
        else:
            where = f"position {position + 1}"
        super().__init__(f"{message} at {where}\n  {line}\n  {' ' * column}^")


class FetchError(MonitorError):
    """``kind``: connect, tls, timeout, deadline, too_large, redirect, http_status, gone (410),
    rate_limited (429), unavailable (503), protocol, invalid_url."""

    def __init__(
        self,
        message: str,
        *,
        kind: str,
        status: int | None = None,
        retry_after: float | None = None,
        url: str | None = None,
    ) -> None:
        super().__init__(message)
        self.kind = kind
        self.status = status
        self.retry_after = retry_after
        self.url = url


class ParseError(MonitorError):
    """``kind``: empty, not_a_feed, html_page, invalid_json, malformed, parser_crash."""

    def __init__(self, message: str, *, kind: str) -> None:
        super().__init__(message)
        self.kind = kind


class StoreError(MonitorError):
    # Set by ``pipeline.poll_feeds`` when the archive failed during a poll of several feeds (a full
    # disk...) and the poll stopped there: the results of the feeds done before (their articles are stored).
    poll_results: list | None = None


class ReadOnlyError(StoreError):
    pass


class PollInterrupted(MonitorError):
    """Ctrl-C (SIGINT) during ``newsmon poll``: feeds not started were left for the next poll, those in
    flight finished. ``poll_results``: the feeds done (their articles are stored). Exit 130, the shell's
    status for a command ended by SIGINT."""

    exit_code = 130
    poll_results: list | None = None


class OPMLError(MonitorError):
    exit_code = 2


class AlertError(MonitorError):
    """A channel failed to deliver. ``reason`` never contains a secret."""

    def __init__(self, reason: str, *, channel: str | None = None, retryable: bool = True) -> None:
        super().__init__(f"channel {channel}: {reason}" if channel else reason)
        self.reason = reason
        self.channel = channel
        self.retryable = retryable
