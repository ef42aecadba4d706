"""The daemon's heartbeat, the figures of ``newsmon status``, SQLite upkeep and ``newsmon backup``.

The heartbeat lives in ``meta`` (key/value) under ``daemon.*`` keys, written by the daemon at every tick;
``newsmon status`` reads it with a read-only connection and decides whether the daemon is alive from the pid
(on the same host) and the age of the last tick. Every query here tolerates tables that an older archive does
not have yet (stories, alerts).
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import socket
import sqlite3
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Iterable, Mapping

from monitor.errors import StoreError, UsageError
from monitor.store import feeds_as_synced, read_feed_rows
from monitor.store.leases import raw_connection
from monitor.timeutil import from_iso, to_iso

log = logging.getLogger(__name__)

HEARTBEAT_PREFIX = "daemon."
# A daemon whose last tick is older than this is reported as not running (stuck or killed).
DEFAULT_STALE_AFTER = timedelta(seconds=90)


# --------------------------------------------------------------------------- heartbeat


def write_heartbeat(conn: Any, values: Mapping[str, Any]) -> None:
    """Upsert ``daemon.<key>`` rows in ``meta`` (None deletes the key). Runs in the caller's transaction."""
    db = raw_connection(conn)
    for key, value in values.items():
        full = HEARTBEAT_PREFIX + key
        if value is None:
            db.execute("DELETE FROM meta WHERE key = ?", (full,))
            continue
        text = value if isinstance(value, str) else json.dumps(value)
        db.execute(
            "INSERT INTO meta(key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            (full, text),
        )


def read_heartbeat(conn: Any) -> dict[str, str]:
    """Every ``daemon.*`` value in ``meta``, keys without the prefix."""
    db = raw_connection(conn)
    rows = db.execute(
        "SELECT key, value FROM meta WHERE key >= ? AND key < ?", (HEARTBEAT_PREFIX, HEARTBEAT_PREFIX[:-1] + "/")
    ).fetchall()
    return {key[len(HEARTBEAT_PREFIX):]: value for key, value in rows}


@dataclass(frozen=True)
class DaemonState:
    running: bool
    pid: int | None
    host: str | None
    started: str | None
    last_tick: str | None
    stopped: str | None
    reason: str               # why running is what it is, for humans
    stats: dict[str, Any]

    def as_json(self) -> dict[str, Any]:
        return {
            "running": self.running, "pid": self.pid, "host": self.host, "started": self.started,
            "last_tick": self.last_tick, "stopped": self.stopped, "reason": self.reason, **self.stats,
        }


def pid_alive(pid: int) -> bool:
    """Whether a process with this pid exists here (another user's process counts)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def daemon_state(heartbeat: Mapping[str, str], *, now: datetime, stale_after: timedelta = DEFAULT_STALE_AFTER) -> DaemonState:
    """Decide whether the daemon that wrote ``heartbeat`` still runs."""
    pid = _int_or_none(heartbeat.get("pid"))
    host = heartbeat.get("host")
    last_tick = heartbeat.get("last_tick")
    stopped = heartbeat.get("stopped")
    stats = _json_or_empty(heartbeat.get("stats"))
    common = dict(pid=pid, host=host, started=heartbeat.get("started"), last_tick=last_tick, stopped=stopped,
                  stats=stats)
    if pid is None:
        reason = f"stopped at {stopped}" if stopped else "no daemon has run on this archive"
        return DaemonState(running=False, reason=reason, **common)
    tick_time = from_iso(last_tick) or from_iso(heartbeat.get("started"))
    age = (now - tick_time) if tick_time else None
    if host == socket.gethostname() and not pid_alive(pid):
        return DaemonState(running=False, reason=f"pid {pid} is not running (it did not stop cleanly)", **common)
    if age is None or age > stale_after:
        seconds = int(age.total_seconds()) if age is not None else None
        return DaemonState(running=False, reason=f"no heartbeat for {seconds}s (stuck or killed)", **common)
    return DaemonState(running=True, reason="heartbeat fresh", **common)


# --------------------------------------------------------------------------- status


def table_exists(conn: sqlite3.Connection, name: str) -> bool:
    row = conn.execute("SELECT 1 FROM sqlite_master WHERE type IN ('table', 'view') AND name = ?", (name,)).fetchone()
    return row is not None


def feed_health(rows: Iterable[Mapping[str, Any]], *, now: datetime, failing_after: int) -> dict[str, Any]:
    """Feed counts by state, and the feeds that need a human: failing, gone, moved; ``rows`` are the feeds
    table's (``read_feed_rows``), or those of ``feeds_as_synced`` for the config.

    Each enabled feed is in one of ok, never_polled, erroring, failing and gone: a feed is ok only once a
    poll of it went well (never_polled feeds have not been fetched yet). Disabled feeds (also those taken out
    of the config) are only counted: they need no action, so they are not listed as gone or moved."""
    now_text = to_iso(now)
    feeds = sorted(rows, key=lambda row: row["name"])
    enabled = [row for row in feeds if row.get("enabled")]
    states: dict[str, list[Mapping[str, Any]]] = {key: [] for key in ("ok", "never_polled", "erroring", "failing", "gone")}
    for row in enabled:
        states[_health(row, failing_after)].append(row)
    live = [row for row in enabled if not row.get("gone")]
    counts = {
        "total": len(feeds), "enabled": len(enabled),
        **{key: len(states[key]) for key in ("ok", "erroring", "failing")},
        "due": sum(1 for row in live if row.get("next_check") is None or row["next_check"] <= now_text),
        "polling": sum(1 for row in live if row.get("lease_until") is not None and row["lease_until"] >= now_text),
        "gone": len(states["gone"]), "never_polled": len(states["never_polled"]),
    }
    counts["disabled"] = counts["total"] - counts["enabled"]
    return {
        "counts": counts,
        "failing": [_feed_dict(row) for row in sorted(states["failing"], key=_errors, reverse=True)],
        "erroring": [_feed_dict(row) for row in sorted(states["erroring"], key=_errors, reverse=True)],
        "gone": [{"name": row["name"], "url": row["url"], "last_error": row.get("last_error")}
                 for row in states["gone"]],
        "moved": [{"name": row["name"], "url": row["url"], "permanent_url": row["permanent_url"]}
                  for row in enabled if row.get("permanent_url") is not None and row["permanent_url"] != row["url"]],
    }


def _errors(row: Mapping[str, Any]) -> int:
    return int(row.get("consecutive_errors") or 0)


def _health(row: Mapping[str, Any], failing_after: int) -> str:
    """ok, never_polled, erroring, failing or gone: the state of an enabled feed."""
    if row.get("gone"):
        return "gone"
    errors = _errors(row)
    if errors >= failing_after:
        return "failing"
    if errors > 0 or row.get("last_error") is not None:
        return "erroring"
    if row.get("last_success") is None and row.get("last_fetch") is None:
        return "never_polled"
    return "ok"


def _feed_dict(row: Mapping[str, Any]) -> dict[str, Any]:
    keys = ("name", "url", "consecutive_errors", "last_status", "last_error_kind", "last_error", "last_success",
            "next_check")
    return {key: _errors(row) if key == "consecutive_errors" else row.get(key) for key in keys}


def archive_counts(conn: Any) -> dict[str, Any]:
    """Articles, stories and alerts by status; a table an older archive lacks counts as None."""
    db = raw_connection(conn)
    result: dict[str, Any] = {"articles": None, "stories": None, "alerts": None}
    if table_exists(db, "articles"):
        result["articles"] = int(db.execute("SELECT COUNT(*) FROM articles").fetchone()[0])
    if table_exists(db, "stories"):
        result["stories"] = int(db.execute("SELECT COUNT(*) FROM stories").fetchone()[0])
    if table_exists(db, "alerts"):
        by_status = {"pending": 0, "sent": 0, "failed": 0, "held": 0}
        for status, count in db.execute("SELECT status, COUNT(*) FROM alerts GROUP BY status"):
            by_status[str(status)] = int(count)
        result["alerts"] = by_status
    return result


def database_size(path: Path) -> dict[str, Any]:
    """Bytes of the archive file and its WAL."""
    def size(p: Path) -> int:
        try:
            return p.stat().st_size
        except OSError:
            return 0

    main = size(path)
    wal = size(Path(str(path) + "-wal"))
    return {"path": str(path), "bytes": main + wal, "file_bytes": main, "wal_bytes": wal}


def collect_status(
    conn: Any, *, db_path: Path, now: datetime, failing_after: int, stale_after: timedelta = DEFAULT_STALE_AFTER,
    configured: Iterable[Any] | None = None,
) -> dict[str, Any]:
    """Everything ``newsmon status`` prints, as one JSON-ready dict. ``configured``: the config's feeds
    (``FeedConfig``), counted as ``feeds list`` shows them (``feeds_as_synced``); None: the archive's feeds as
    they are (a bare archive)."""
    db = raw_connection(conn)
    try:
        daemon = daemon_state(read_heartbeat(db), now=now, stale_after=stale_after)
        rows = read_feed_rows(db)
        if configured is not None:
            rows = feeds_as_synced(configured, rows)
        feeds = feed_health(rows, now=now, failing_after=failing_after)
        counts = archive_counts(db)
        schema = int(db.execute("PRAGMA user_version").fetchone()[0])
    except sqlite3.Error as exc:
        raise StoreError(f"cannot read the status of {db_path}: {exc}") from exc
    return {
        "now": to_iso(now),
        "daemon": daemon.as_json(),
        "feeds": feeds["counts"],
        "failing": feeds["failing"],
        "erroring": feeds["erroring"],
        "gone": feeds["gone"],
        "moved": feeds["moved"],
        **counts,
        "database": {**database_size(db_path), "schema": schema},
    }


# --------------------------------------------------------------------------- upkeep and backup


def checkpoint(conn: Any) -> tuple[int, int, int]:
    """``PRAGMA wal_checkpoint(TRUNCATE)``: (busy, wal pages, pages checkpointed). Outside any transaction."""
    db = raw_connection(conn)
    try:
        row = db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    except sqlite3.Error as exc:
        raise StoreError(f"WAL checkpoint failed: {exc}") from exc
    return (int(row[0]), int(row[1]), int(row[2])) if row else (0, 0, 0)


def optimize(conn: Any) -> None:
    """``PRAGMA optimize``: lets SQLite refresh the statistics its planner uses, when worthwhile."""
    db = raw_connection(conn)
    try:
        db.execute("PRAGMA optimize")
    except sqlite3.Error as exc:
        raise StoreError(f"PRAGMA optimize failed: {exc}") from exc


# SQLite's companions of a database file: the -wal holds committed transactions not yet in the file itself.
COMPANION_SUFFIXES = ("-wal", "-shm", "-journal")


def backup(conn: Any, target: Path, *, force: bool = False) -> int:
    """An online, consistent copy of the archive at ``target`` (``VACUUM INTO``); returns its size in bytes.

    Works on a read-only connection while the daemon writes (it reads one snapshot). Refuses to overwrite an
    existing file unless ``force``; the copy is written beside the target and renamed into place, so a failed
    backup never leaves a half-written file under the target's name. Overwriting (a restore: a backup copied
    onto a stopped daemon's archive) removes the target's -wal/-shm/-journal first, which SQLite would otherwise
    replay into the new file and corrupt it, and is refused while a process (the daemon) has the target open.
    """
    db = raw_connection(conn)
    target = Path(target)
    if target.exists() and not force:
        raise UsageError(f"{target} exists: choose another path or pass --force to overwrite it")
    if target.exists() and target.is_dir():
        raise UsageError(f"{target} is a directory: give a file name")
    if not target.parent.is_dir():
        raise UsageError(f"folder {target.parent} does not exist")
    if target.exists():
        _refuse_a_running_daemon(target)
    partial = target.with_name(f".{target.name}.{os.getpid()}.partial")
    _unlink(partial)
    try:
        db.execute("VACUUM INTO ?", (str(partial),))
    except sqlite3.Error as exc:
        _unlink(partial)
        raise StoreError(f"backup to {target} failed: {exc}") from exc
    try:
        for suffix in COMPANION_SUFFIXES:
            _unlink(target.with_name(target.name + suffix))
        os.replace(partial, target)
    except OSError as exc:
        _unlink(partial)
        raise StoreError(f"backup to {target} failed: {exc.strerror}") from exc
    return target.stat().st_size


def _refuse_a_running_daemon(target: Path) -> None:
    """StoreError when a process (the daemon, a reader) has the WAL database ``target`` open."""
    if _open_elsewhere(target):
        raise StoreError(f"{target} is open in another process (a running daemon or reader): stop it before "
                         "overwriting the archive")


def _open_elsewhere(target: Path) -> bool:
    """Whether another process has ``target`` open as a WAL database: each SQLite connection to it holds a
    shared lock on the DMS byte (offset 128) of its -shm file (https://www.sqlite.org/walformat.html)."""
    try:
        fd = os.open(target.with_name(target.name + "-shm"), os.O_RDWR)
    except OSError:
        return False  # no -shm: nobody has it open in WAL mode (one we may not open is reported by its unlink)
    try:
        fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, 128)
    except OSError:
        return True
    else:
        fcntl.lockf(fd, fcntl.LOCK_UN, 1, 128)
        return False
    finally:
        os.close(fd)


def _unlink(path: Path) -> None:
    try:
        path.unlink()
    except FileNotFoundError:
        pass


def _int_or_none(text: str | None) -> int | None:
    try:
        return int(text) if text not in (None, "") else None
    except ValueError:
        return None


def _json_or_empty(text: str | None) -> dict[str, Any]:
    if not text:
        return {}
    try:
        value = json.loads(text)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}
