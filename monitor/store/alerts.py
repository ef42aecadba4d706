"""The alert outbox: the only SQL for alerts, digests and flood control.

One row per message that should reach one channel, keyed UNIQUE (rule, story_id, channel, kind):

- ``kind`` is ``new``, ``update-1``, ``update-2`` ... for per-story alerts, ``digest-<slot>`` for a digest
  (story_id 0) and ``summary-<time>`` for a flood-control summary (rule ``*``, story_id 0).
- ``status``: ``pending`` (to send at ``next_attempt``), ``sent``, ``failed`` (gave up; still listed),
  ``held`` (waiting for a digest of its rule, or folded into a digest/summary row named by ``folded_into``;
  it becomes ``sent``/``failed`` with that row).
- ``payload`` is the alert JSON (INTERFACE.md alert shape) built when the row is written, so delivery never
  needs the story tables; digest and summary rows carry their members' payloads.

Times are fixed-width UTC ISO strings (``monitor.timeutil.to_iso``) and compare as text.
Functions here never commit unless their name says so (``claim_due``); callers own transactions.
"""

from __future__ import annotations

import json
import sqlite3
from contextlib import contextmanager
from datetime import datetime
from typing import Any, Iterator

from monitor.timeutil import to_iso

SCHEMA = """
CREATE TABLE IF NOT EXISTS alerts (
    id INTEGER PRIMARY KEY,
    rule TEXT NOT NULL,
    story_id INTEGER NOT NULL,
    channel TEXT NOT NULL,
    kind TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'pending'
        CHECK (status IN ('pending', 'sent', 'failed', 'held')),
    created TEXT NOT NULL,
    next_attempt TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    sent_at TEXT,
    payload TEXT NOT NULL DEFAULT '{}',
    article_id INTEGER,
    folded_into INTEGER REFERENCES alerts(id),
    claimed_by TEXT,
    UNIQUE (rule, story_id, channel, kind)
);
CREATE INDEX IF NOT EXISTS alerts_due ON alerts(status, next_attempt);
CREATE INDEX IF NOT EXISTS alerts_channel_sent ON alerts(channel, sent_at);
CREATE INDEX IF NOT EXISTS alerts_folded ON alerts(folded_into);
CREATE INDEX IF NOT EXISTS alerts_story ON alerts(story_id, rule);

CREATE TABLE IF NOT EXISTS alert_digests (
    rule TEXT NOT NULL,
    channel TEXT NOT NULL,
    last_run TEXT NOT NULL,
    PRIMARY KEY (rule, channel)
) WITHOUT ROWID;
"""

_COLUMNS = (
    "id, rule, story_id, channel, kind, status, created, next_attempt, attempts, last_error, sent_at, "
    "payload, article_id, folded_into, claimed_by"
)


def ensure_schema(conn: sqlite3.Connection) -> None:
    """Create the outbox tables if missing, inside the caller's transaction (what the migration runs)."""
    from monitor.store.schema import run_script

    run_script(conn, SCHEMA)


@contextmanager
def write_transaction(conn: sqlite3.Connection) -> Iterator[None]:
    """BEGIN IMMEDIATE .. COMMIT, or join the caller's open transaction."""
    if conn.in_transaction:
        yield
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        conn.rollback()
        raise
    conn.commit()


def _row_to_dict(row: sqlite3.Row | tuple) -> dict[str, Any]:
    names = [name.strip() for name in _COLUMNS.split(",")]
    record = dict(zip(names, tuple(row)))
    record["payload"] = json.loads(record["payload"] or "{}")
    return record


def insert_alert(
    conn: sqlite3.Connection,
    *,
    rule: str,
    story_id: int,
    channel: str,
    kind: str,
    status: str,
    payload: dict[str, Any],
    now: datetime,
    article_id: int | None = None,
) -> int | None:
    """Insert one outbox row; returns its id, or None when the (rule, story, channel, kind) row exists."""
    cursor = conn.execute(
        "INSERT OR IGNORE INTO alerts (rule, story_id, channel, kind, status, created, next_attempt, payload,"
        " article_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (rule, story_id, channel, kind, status, to_iso(now), to_iso(now),
         json.dumps(payload, ensure_ascii=False, sort_keys=True), article_id),
    )
    return cursor.lastrowid if cursor.rowcount else None


def has_alert(conn: sqlite3.Connection, *, rule: str, story_id: int, channel: str, kind: str) -> bool:
    row = conn.execute(
        "SELECT 1 FROM alerts WHERE rule = ? AND story_id = ? AND channel = ? AND kind = ?",
        (rule, story_id, channel, kind),
    ).fetchone()
    return row is not None


def count_updates(conn: sqlite3.Connection, *, rule: str, story_id: int, channel: str) -> int:
    row = conn.execute(
        "SELECT COUNT(*) FROM alerts WHERE rule = ? AND story_id = ? AND channel = ? AND kind LIKE 'update-%'",
        (rule, story_id, channel),
    ).fetchone()
    return int(row[0])


def get_alert(conn: sqlite3.Connection, alert_id: int) -> dict[str, Any] | None:
    row = conn.execute(f"SELECT {_COLUMNS} FROM alerts WHERE id = ?", (alert_id,)).fetchone()
    return _row_to_dict(row) if row else None


def iter_alerts(
    conn: sqlite3.Connection,
    *,
    status: str | None = None,
    rule: str | None = None,
    limit: int | None = None,
) -> Iterator[dict[str, Any]]:
    """Outbox rows, newest first, read as they are consumed (memory does not grow with the outbox).
    ``rule`` also finds flood summaries holding that rule's alerts."""
    clauses: list[str] = []
    params: list[Any] = []
    if status:
        clauses.append("status = ?")
        params.append(status)
    if rule:
        clauses.append("rule = ?")
        params.append(rule)
    where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
    sql = f"SELECT {_COLUMNS} FROM alerts {where} ORDER BY id DESC"
    if limit:
        sql += " LIMIT ?"
        params.append(limit)
    for row in conn.execute(sql, params):
        yield _row_to_dict(row)


def due_alerts(conn: sqlite3.Connection, now: datetime) -> list[dict[str, Any]]:
    """Pending rows whose next attempt has come, oldest first."""
    rows = conn.execute(
        f"SELECT {_COLUMNS} FROM alerts WHERE status = 'pending' AND next_attempt <= ? ORDER BY id",
        (to_iso(now),),
    )
    return [_row_to_dict(row) for row in rows]


def postpone(conn: sqlite3.Connection, alert_ids: list[int], until: datetime) -> None:
    """Pending rows wait until ``until`` (unclaimed)."""
    conn.executemany(
        "UPDATE alerts SET next_attempt = ?, claimed_by = NULL WHERE id = ? AND status = 'pending'",
        [(to_iso(until), alert_id) for alert_id in alert_ids],
    )


def claim(conn: sqlite3.Connection, alert_ids: list[int], until: datetime, owner: str) -> None:
    """Claim rows for a sender (``owner`` = "host:pid"): nobody else picks them before ``until``."""
    conn.executemany(
        "UPDATE alerts SET next_attempt = ?, claimed_by = ? WHERE id = ? AND status = 'pending'",
        [(to_iso(until), owner, alert_id) for alert_id in alert_ids],
    )


def renew_claims(conn: sqlite3.Connection, owner: str, until: datetime) -> None:
    """A sender still at work keeps its claims until ``until`` (a batch may outlast its first claim)."""
    conn.execute(
        "UPDATE alerts SET next_attempt = ? WHERE claimed_by = ? AND status = 'pending'",
        (to_iso(until), owner),
    )


def claim_owners(conn: sqlite3.Connection, now: datetime) -> list[str]:
    """Owners of claims still running (pending rows claimed, not yet due again)."""
    return [row[0] for row in conn.execute(
        "SELECT DISTINCT claimed_by FROM alerts WHERE status = 'pending' AND claimed_by IS NOT NULL"
        " AND next_attempt > ?", (to_iso(now),))]


def release_claims(conn: sqlite3.Connection, owner: str, now: datetime) -> int:
    """The claims of a sender that died: its rows are due again now."""
    cursor = conn.execute(
        "UPDATE alerts SET next_attempt = ?, claimed_by = NULL WHERE claimed_by = ? AND status = 'pending'",
        (to_iso(now), owner),
    )
    return cursor.rowcount


def messages_sent_since(conn: sqlite3.Connection, channel: str, since: datetime) -> int:
    """Messages that actually went out on ``channel`` since ``since`` (folded members are not messages)."""
    row = conn.execute(
        "SELECT COUNT(*) FROM alerts WHERE channel = ? AND status = 'sent' AND sent_at >= ?"
        " AND folded_into IS NULL",
        (channel, to_iso(since)),
    ).fetchone()
    return int(row[0])


def oldest_send_since(conn: sqlite3.Connection, channel: str, since: datetime) -> str | None:
    row = conn.execute(
        "SELECT MIN(sent_at) FROM alerts WHERE channel = ? AND status = 'sent' AND sent_at >= ?"
        " AND folded_into IS NULL",
        (channel, to_iso(since)),
    ).fetchone()
    return row[0]


def fold(conn: sqlite3.Connection, member_ids: list[int], into_id: int) -> None:
    """Members wait (status held) inside a digest or summary row and share its fate."""
    conn.executemany(
        "UPDATE alerts SET status = 'held', folded_into = ? WHERE id = ?",
        [(into_id, member_id) for member_id in member_ids],
    )


def mark_sent(conn: sqlite3.Connection, alert_id: int, now: datetime) -> None:
    stamp = to_iso(now)
    conn.execute(
        "UPDATE alerts SET status = 'sent', sent_at = ?, attempts = attempts + 1, last_error = NULL,"
        " next_attempt = NULL, claimed_by = NULL WHERE id = ?",
        (stamp, alert_id),
    )
    conn.execute(
        "UPDATE alerts SET status = 'sent', sent_at = ?, last_error = NULL, next_attempt = NULL"
        " WHERE folded_into = ?",
        (stamp, alert_id),
    )


def mark_retry(conn: sqlite3.Connection, alert_id: int, error: str, next_attempt: datetime) -> None:
    conn.execute(
        "UPDATE alerts SET attempts = attempts + 1, last_error = ?, next_attempt = ?, claimed_by = NULL"
        " WHERE id = ?",
        (error, to_iso(next_attempt), alert_id),
    )


def mark_failed(conn: sqlite3.Connection, alert_id: int, error: str, *, count_attempt: bool = True) -> None:
    increment = 1 if count_attempt else 0
    conn.execute(
        "UPDATE alerts SET status = 'failed', attempts = attempts + ?, last_error = ?, next_attempt = NULL,"
        " claimed_by = NULL WHERE id = ?",
        (increment, error, alert_id),
    )
    conn.execute(
        "UPDATE alerts SET status = 'failed', last_error = ?, next_attempt = NULL WHERE folded_into = ?",
        (error, alert_id),
    )


def expired_pending(conn: sqlite3.Connection, created_before: datetime) -> list[dict[str, Any]]:
    rows = conn.execute(
        f"SELECT {_COLUMNS} FROM alerts WHERE status = 'pending' AND created < ? ORDER BY id",
        (to_iso(created_before),),
    )
    return [_row_to_dict(row) for row in rows]


def retry_failed(conn: sqlite3.Connection, now: datetime, alert_id: int | None = None) -> int:
    """Put failed rows (one, or all) back to pending, due now, with a fresh give-up clock.

    A failed digest/summary row brings its members along; a failed member of such a row is retried
    through it. Returns the number of rows made pending.
    """
    stamp = to_iso(now)
    if alert_id is None:
        targets = [row[0] for row in conn.execute(
            "SELECT id FROM alerts WHERE status = 'failed' AND folded_into IS NULL")]
    else:
        row = conn.execute("SELECT id, status, folded_into FROM alerts WHERE id = ?", (alert_id,)).fetchone()
        if row is None:
            return 0
        target = row[2] if row[2] is not None else row[0]
        status = conn.execute("SELECT status FROM alerts WHERE id = ?", (target,)).fetchone()[0]
        targets = [target] if status == "failed" else []
    for target in targets:
        conn.execute(
            "UPDATE alerts SET status = 'pending', created = ?, next_attempt = ?, attempts = 0, claimed_by = NULL"
            " WHERE id = ?",
            (stamp, stamp, target),
        )
        conn.execute("UPDATE alerts SET status = 'held' WHERE folded_into = ?", (target,))
    return len(targets)


def held_for_digest(conn: sqlite3.Connection, rule: str, channel: str) -> list[dict[str, Any]]:
    rows = conn.execute(
        f"SELECT {_COLUMNS} FROM alerts WHERE status = 'held' AND folded_into IS NULL AND rule = ?"
        " AND channel = ? ORDER BY id",
        (rule, channel),
    )
    return [_row_to_dict(row) for row in rows]


def release_held(conn: sqlite3.Connection, rule: str, now: datetime, *, channel: str | None = None) -> int:
    """A rule that is no longer a digest rule (or, with ``channel``, no longer a digest to that channel):
    its waiting alerts become ordinary pending alerts."""
    sql = ("UPDATE alerts SET status = 'pending', next_attempt = ? WHERE status = 'held' AND folded_into IS NULL"
           " AND rule = ?")
    params: tuple[Any, ...] = (to_iso(now), rule)
    if channel is not None:
        sql += " AND channel = ?"
        params += (channel,)
    return conn.execute(sql, params).rowcount


def held_rules(conn: sqlite3.Connection) -> list[str]:
    return [row[0] for row in conn.execute(
        "SELECT DISTINCT rule FROM alerts WHERE status = 'held' AND folded_into IS NULL")]


def held_channels(conn: sqlite3.Connection, rule: str) -> list[str]:
    """The channels a rule's alerts are held for, waiting for a digest."""
    return [row[0] for row in conn.execute(
        "SELECT DISTINCT channel FROM alerts WHERE status = 'held' AND folded_into IS NULL AND rule = ?", (rule,))]


def digest_last_run(conn: sqlite3.Connection, rule: str, channel: str) -> str | None:
    row = conn.execute(
        "SELECT last_run FROM alert_digests WHERE rule = ? AND channel = ?", (rule, channel)).fetchone()
    return row[0] if row else None


def set_digest_last_run(conn: sqlite3.Connection, rule: str, channel: str, when: datetime) -> None:
    conn.execute(
        "INSERT INTO alert_digests (rule, channel, last_run) VALUES (?, ?, ?)"
        " ON CONFLICT (rule, channel) DO UPDATE SET last_run = excluded.last_run",
        (rule, channel, to_iso(when)),
    )


def status_counts(conn: sqlite3.Connection) -> dict[str, int]:
    """For ``newsmon status``: rows per status."""
    return {row[0]: int(row[1]) for row in conn.execute("SELECT status, COUNT(*) FROM alerts GROUP BY status")}



def waiting_story_alert(conn: sqlite3.Connection, *, rule: str, story_id: int, channel: str) -> dict[str, Any] | None:
    """The newest not-yet-sent ``new``/``update-N`` row of a story (pending or held for a digest), if any."""
    row = conn.execute(
        f"SELECT {_COLUMNS} FROM alerts WHERE rule = ? AND story_id = ? AND channel = ?"
        " AND status IN ('pending', 'held') AND folded_into IS NULL ORDER BY id DESC LIMIT 1",
        (rule, story_id, channel),
    ).fetchone()
    return _row_to_dict(row) if row else None


def waiting_story_alerts(conn: sqlite3.Connection, *, story_id: int) -> list[dict[str, Any]]:
    """``waiting_story_alert`` of each rule and channel that has one for the story."""
    newest: dict[tuple[str, str], dict[str, Any]] = {}
    for row in conn.execute(
        f"SELECT {_COLUMNS} FROM alerts WHERE story_id = ? AND status IN ('pending', 'held')"
        " AND folded_into IS NULL ORDER BY id DESC",
        (story_id,),
    ):
        record = _row_to_dict(row)
        newest.setdefault((record["rule"], record["channel"]), record)
    return list(newest.values())


def replace_payload(conn: sqlite3.Connection, alert_id: int, payload: dict[str, Any]) -> None:
    conn.execute("UPDATE alerts SET payload = ? WHERE id = ?",
                 (json.dumps(payload, ensure_ascii=False, sort_keys=True), alert_id))


def make_due(conn: sqlite3.Connection, alert_id: int, now: datetime) -> int:
    """A pending alert (or the pending digest/summary holding it) becomes due now; returns rows changed."""
    row = conn.execute("SELECT folded_into FROM alerts WHERE id = ?", (alert_id,)).fetchone()
    if row is None:
        return 0
    target = row[0] if row[0] is not None else alert_id
    cursor = conn.execute(
        "UPDATE alerts SET next_attempt = ?, claimed_by = NULL WHERE id = ? AND status = 'pending'",
        (to_iso(now), target))
    return cursor.rowcount


def has_delivery_work(conn: sqlite3.Connection, now: datetime, expire_before: datetime) -> bool:
    """Whether a delivery run has anything to do (so an idle run takes no write lock)."""
    row = conn.execute(
        "SELECT 1 FROM alerts WHERE status = 'pending' AND (next_attempt <= ? OR claimed_by IS NOT NULL"
        " OR created < ?) LIMIT 1",
        (to_iso(now), to_iso(expire_before)),
    ).fetchone()
    return row is not None
