"""Which feeds are due, and per-feed leases so that one feed is never polled twice at once.

A lease is two columns of ``feeds`` (``lease_owner``, ``lease_until``). Taking one is a single
``UPDATE ... WHERE`` that only matches a free or expired lease, so two processes (the daemon and a
``newsmon poll``) racing for the same feed cannot both win: SQLite serialises the writes and the loser's
UPDATE matches no row. An expired lease (its holder crashed) is free again, so nothing stays stuck.

The write functions commit, unless the connection is already inside a transaction (``Store.transaction()``):
then that transaction commits them.
Times are compared as fixed-width UTC ISO strings (``timeutil.to_iso``), which sort as times.
"""

from __future__ import annotations

import logging
import os
import socket
import sqlite3
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Iterable, Sequence
from urllib.parse import urlsplit

from monitor.errors import StoreError
from monitor.timeutil import to_iso

if TYPE_CHECKING:
    from monitor.store import Store

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DueFeed:
    name: str
    url: str
    next_check: str | None  # ISO, None when never polled

    @property
    def host(self) -> str:
        return feed_host(self.url)


def feed_host(url: str) -> str:
    """The host a URL points at (lower case), for the per-host limit; the URL itself when it has none."""
    try:
        host = urlsplit(url).hostname
    except ValueError:
        host = None
    return (host or url).lower()


def raw_connection(conn: Any) -> sqlite3.Connection:
    """Accept a ``sqlite3.Connection`` or a wrapper that holds one (``sqlite_utils.Database.conn``, ``Store.conn``)."""
    if isinstance(conn, sqlite3.Connection):
        return conn
    inner = getattr(conn, "conn", None)
    if isinstance(inner, sqlite3.Connection):
        return inner
    raise TypeError(f"expected a sqlite3.Connection, got {type(conn).__name__}")


def _write(db: sqlite3.Connection, sql: str, params: Any, *, many: bool = False) -> sqlite3.Cursor:
    """Run one write; commit it unless the caller's own transaction is open (that one commits it)."""
    run = db.executemany if many else db.execute
    if db.in_transaction:
        return run(sql, params)
    with db:
        return run(sql, params)


def acquire_lease(conn: Any, feed_name: str, owner: str, *, until: datetime, now: datetime) -> bool:
    """Take (or renew) the lease on ``feed_name`` for ``owner`` until ``until``; commits.

    True when ``owner`` holds the lease afterwards; False when someone else holds a live lease or the feed
    does not exist.
    """
    db = raw_connection(conn)
    try:
        cursor = _write(
            db,
            "UPDATE feeds SET lease_owner = ?, lease_until = ? "
            "WHERE name = ? AND (lease_until IS NULL OR lease_until < ? OR lease_owner = ?)",
            (owner, to_iso(until), feed_name, to_iso(now), owner),
        )
    except sqlite3.Error as exc:
        raise StoreError(f"cannot take the lease of feed {feed_name!r}: {exc}") from exc
    won = cursor.rowcount == 1
    if not won:
        log.debug("lease busy feed=%r owner=%s", feed_name, owner)
    return won


def release_lease(conn: Any, feed_name: str, owner: str) -> None:
    """Give the lease back if ``owner`` still holds it (a lease taken over after expiry is left alone); commits."""
    db = raw_connection(conn)
    try:
        _write(
            db,
            "UPDATE feeds SET lease_owner = NULL, lease_until = NULL WHERE name = ? AND lease_owner = ?",
            (feed_name, owner),
        )
    except sqlite3.Error as exc:
        raise StoreError(f"cannot release the lease of feed {feed_name!r}: {exc}") from exc


def release_all_leases(conn: Any, owner: str) -> int:
    """Release every lease ``owner`` holds (daemon shutdown); returns how many; commits."""
    db = raw_connection(conn)
    try:
        cursor = _write(db, "UPDATE feeds SET lease_owner = NULL, lease_until = NULL WHERE lease_owner = ?", (owner,))
    except sqlite3.Error as exc:
        raise StoreError(f"cannot release the leases of {owner}: {exc}") from exc
    return cursor.rowcount


_DUE_SQL = """
SELECT name, COALESCE(permanent_url, url), next_check FROM feeds
WHERE enabled = 1 AND gone = 0
  AND (next_check IS NULL OR next_check <= :now)
  AND (lease_until IS NULL OR lease_until < :now)
ORDER BY next_check
"""
# NULLs sort first in SQLite, so never-polled feeds lead; ordering by the indexed column alone lets SQLite walk
# the feeds_next_check index and stop at LIMIT instead of sorting every due feed.


def due_feed_rows(conn: Any, now: datetime, *, limit: int | None = None) -> list[DueFeed]:
    """Like ``due_feeds`` with the URL (the permanent one when a 301/308 was seen) and the due time."""
    db = raw_connection(conn)
    sql = _DUE_SQL + (" LIMIT :limit" if limit is not None else "")
    params: dict[str, Any] = {"now": to_iso(now)}
    if limit is not None:
        params["limit"] = max(int(limit), 0)
    try:
        rows = db.execute(sql, params).fetchall()
    except sqlite3.Error as exc:
        raise StoreError(f"cannot read due feeds: {exc}") from exc
    return [DueFeed(name=row[0], url=row[1], next_check=row[2]) for row in rows]


def due_feeds(conn: Any, now: datetime, *, limit: int | None = None) -> list[str]:
    """Names of feeds to poll now: enabled, not gone, never polled or ``next_check <= now``, no live lease.

    Never-polled feeds come first, then by ``next_check`` (the most overdue first).
    """
    return [row.name for row in due_feed_rows(conn, now, limit=limit)]


def forgive_network_errors(conn: Any, schedule: Iterable[tuple[str, datetime]]) -> int:
    """Undo the error count of polls that failed because the network was down; commits.

    ``schedule`` holds (feed name, next check). Each feed's ``consecutive_errors`` goes back down by the one
    the failed poll added and its next check is set to the given (normal-interval) time, so an outage does not
    push every feed into long backoff. Returns the number of feeds changed.
    """
    db = raw_connection(conn)
    params = [(to_iso(when), name) for name, when in schedule]
    if not params:
        return 0
    try:
        cursor = _write(
            db,
            "UPDATE feeds SET consecutive_errors = MAX(consecutive_errors - 1, 0), next_check = ? "
            "WHERE name = ? AND consecutive_errors > 0",
            params,
            many=True,
        )
    except sqlite3.Error as exc:
        raise StoreError(f"cannot reschedule feeds after a network outage: {exc}") from exc
    return cursor.rowcount


def bring_forward(conn: Any, schedule: Iterable[tuple[str, datetime]],
                  beyond: dict[str, datetime] | None = None) -> int:
    """Move feeds' next check earlier to the given times (never later); commits. For a reload that shortened
    an interval or changed a URL, so the change shows without waiting out the old schedule. With ``beyond``,
    only the feeds whose next check is later than their time there move."""
    db = raw_connection(conn)
    params = [(to_iso(when), name, to_iso((beyond or {}).get(name, when))) for name, when in schedule]
    if not params:
        return 0
    try:
        cursor = _write(db, "UPDATE feeds SET next_check = ? WHERE name = ? AND next_check > ?", params, many=True)
    except sqlite3.Error as exc:
        raise StoreError(f"cannot reschedule feeds after a reload: {exc}") from exc
    return cursor.rowcount


def lease_owners(conn: Any, prefix: str) -> list[str]:
    """Distinct holders of leases whose owner name starts with ``prefix``."""
    db = raw_connection(conn)
    pattern = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    try:
        rows = db.execute(
            "SELECT DISTINCT lease_owner FROM feeds WHERE lease_owner LIKE ? ESCAPE '\\'", (pattern,)
        ).fetchall()
    except sqlite3.Error as exc:
        raise StoreError(f"cannot read lease holders: {exc}") from exc
    return [row[0] for row in rows]


def owner_id(kind: str) -> str:
    """The lease owner name of this process: ``{kind}-{host}-{pid}`` (kind: daemon, poll)."""
    return f"{kind}-{socket.gethostname()}-{os.getpid()}"


def release_dead_owners(store: "Store", kinds: Sequence[str]) -> int:
    """Free now, rather than at expiry, the leases held by processes of this host of these ``kinds``
    (see :func:`owner_id`) that no longer run (crash, SIGKILL); returns how many were freed."""
    from monitor.store.status import pid_alive

    freed = 0
    for kind in kinds:
        prefix = f"{kind}-{socket.gethostname()}-"
        with store.reading() as conn:
            owners = lease_owners(conn, prefix)
        for owner in owners:
            pid_text = owner[len(prefix):]
            if not pid_text.isdigit() or int(pid_text) == os.getpid() or pid_alive(int(pid_text)):
                continue
            with store.transaction() as conn:
                released = release_all_leases(conn, owner)
            freed += released
            log.info("released leases of a %s that did not stop cleanly owner=%s feeds=%d", kind, owner, released)
    return freed
