"""Sending the outbox: claim due alerts, apply flood control, send per channel, mark each result.

Guarantees:

- an alert is marked ``sent`` right after its channel accepted it, in its own short transaction; the only
  way to send one twice is a crash (or SIGKILL) between a channel's acceptance and that mark;
- rows are claimed (``next_attempt`` pushed ``CLAIM`` ahead, ``claimed_by`` = host:pid) before sending, and
  the claims renewed with every outcome recorded (a batch may take longer than ``CLAIM``), so a
  second process delivering at the same time (``newsmon poll`` beside the daemon) does not pick them too; the
  claims of a process that died (SIGKILL, crash) are released by the next delivery run on the same host, so
  its alerts go out at once after a restart (at worst ``CLAIM`` later when the dead owner cannot be checked);
- a failure is retried with exponential backoff (``BACKOFF_BASE`` doubling up to ``BACKOFF_MAX``), attempts
  and the last (secret-free) error kept; a pending alert older than ``alert_give_up`` becomes ``failed``
  (still listed, ``newsmon alerts retry`` revives it);
- channels are sent to in parallel threads (marks are written by the calling thread), so a slow or dead
  channel never holds up the others; after a failure, the rest of that channel's batch waits with it;
- flood control: at most ``max_per_hour`` messages per channel in any rolling hour. When more alerts are due
  than slots remain, the last slot carries one summary message folding the rest; with no slot left they wait
  (pending) for the next free slot. Nothing is dropped.
"""

from __future__ import annotations

import logging
import os
import queue
import socket
import sqlite3
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Iterator

from monitor.alerts.channels import ChannelSpec, build_channel, channel_specs
from monitor.alerts.redact import redact_text
from monitor.alerts.render import render, test_message
from monitor.errors import AlertError, UsageError
from monitor.store import alerts as outbox_sql
from monitor.timeutil import format_duration, from_iso, to_iso, utcnow

log = logging.getLogger(__name__)

CLAIM = timedelta(minutes=5)
BACKOFF_BASE = timedelta(seconds=30)
BACKOFF_MAX = timedelta(hours=1)
FLOOD_WINDOW = timedelta(hours=1)
DEFAULT_GIVE_UP = timedelta(days=2)
MAX_PARALLEL_CHANNELS = 4


@dataclass
class DeliveryReport:
    sent: int = 0          # messages channels accepted
    retrying: int = 0      # failed this time, will be retried
    failed: int = 0        # gave up (or cannot be sent at all)
    folded: int = 0        # alerts folded into a flood-control summary
    waiting: int = 0       # due but held by flood control or behind a failed send on the same channel
    errors: list[str] = field(default_factory=list)   # "channel: reason", secret-free


@dataclass
class _Outcome:
    row: dict[str, Any]
    error: AlertError | None = None
    deferred: bool = False
    recorded: threading.Event = field(default_factory=threading.Event)  # set once the outcome is in the archive


def backoff(attempts: int) -> timedelta:
    """Delay before the next try after ``attempts`` failed tries: 30s, 1m, 2m, 4m ... capped at 1h."""
    exponent = max(0, min(attempts - 1, 20))
    return min(BACKOFF_BASE * (2 ** exponent), BACKOFF_MAX)


@contextmanager
def transaction(store: Any) -> Iterator[sqlite3.Connection]:
    """A write transaction on a ``monitor.store.Store`` (its lock and BEGIN IMMEDIATE) or a bare connection."""
    if isinstance(store, sqlite3.Connection):
        with outbox_sql.write_transaction(store):
            yield store
    else:
        with store.transaction() as conn:
            yield conn


@contextmanager
def reading(store: Any) -> Iterator[sqlite3.Connection]:
    """The connection for a group of reads (a Store's ``reading()``, or a bare connection)."""
    if isinstance(store, sqlite3.Connection):
        yield store
    else:
        with store.reading() as conn:
            yield conn


def _give_up_after(config: Any) -> timedelta:
    return getattr(config.monitor, "alert_give_up", None) or DEFAULT_GIVE_UP


def deliver_pending(store: Any, config: Any, *, now: datetime | None = None) -> DeliveryReport:
    """Send every due pending alert; never raises for a channel failure (it is recorded on the alert)."""
    now = now or utcnow()
    specs = channel_specs(config)
    report = DeliveryReport()
    started = time.monotonic()
    plan = _plan(store, config, specs, now, report)
    next_try: dict[str, datetime] = {}
    for outcome in _send_all(plan, specs):
        # the rows still waiting in this run's batches stay claimed CLAIM past the time reached now
        claimed_until = now + timedelta(seconds=time.monotonic() - started) + CLAIM
        _record(store, config, specs, outcome, now, report, next_try, claimed_until)
    if report.sent or report.retrying or report.failed:
        log.info("alert delivery sent=%d retrying=%d failed=%d folded=%d waiting=%d", report.sent,
                 report.retrying, report.failed, report.folded, report.waiting)
    return report


def _plan(store: Any, config: Any, specs: dict[str, ChannelSpec], now: datetime,
          report: DeliveryReport) -> dict[str, list[dict[str, Any]]]:
    give_up = _give_up_after(config)
    plan: dict[str, list[dict[str, Any]]] = {}
    with reading(store) as conn:
        if not outbox_sql.has_delivery_work(conn, now, now - give_up):
            return plan
    with transaction(store) as conn:
        _release_dead_claims(conn, now)
        report.failed += _expire(conn, now, give_up)
        by_channel: dict[str, list[dict[str, Any]]] = {}
        for row in outbox_sql.due_alerts(conn, now):
            by_channel.setdefault(row["channel"], []).append(row)
        for channel, rows in by_channel.items():
            spec = specs.get(channel)
            if spec is None:
                for row in rows:
                    _fail_or_retry(conn, row, AlertError("channel is not configured", channel=channel), now,
                                   give_up, report, {})
                continue
            to_send = _flood_control(conn, spec, rows, now, report)
            if to_send:
                plan[channel] = to_send
        outbox_sql.claim(conn, [row["id"] for rows in plan.values() for row in rows], now + CLAIM, claim_owner())
    return plan


def claim_owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _owner_is_dead(owner: str) -> bool:
    """True only when the claiming process ran on this host and no longer exists."""
    host, _, pid_text = owner.rpartition(":")
    if host != socket.gethostname() or not pid_text.isdigit():
        return False
    pid = int(pid_text)
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def _release_dead_claims(conn: sqlite3.Connection, now: datetime) -> None:
    for owner in outbox_sql.claim_owners(conn, now):
        if _owner_is_dead(owner):
            released = outbox_sql.release_claims(conn, owner, now)
            log.warning("alerts claimed by a sender that died are due again owner=%s alerts=%d", owner, released)


def _expire(conn: sqlite3.Connection, now: datetime, give_up: timedelta) -> int:
    expired = outbox_sql.expired_pending(conn, now - give_up)
    for row in expired:
        reason = f"gave up: not delivered within {format_duration(give_up)}"
        if row["last_error"]:
            reason += f" (last error: {row['last_error']})"
        outbox_sql.mark_failed(conn, row["id"], reason, count_attempt=False)
        log.warning("alert failed for good alert_id=%s rule=%s channel=%s attempts=%s error=%s", row["id"],
                    row["rule"], row["channel"], row["attempts"], reason)
    return len(expired)


def _is_group(row: dict[str, Any]) -> bool:
    return row["kind"].startswith(("digest-", "summary-"))


def _flood_control(conn: sqlite3.Connection, spec: ChannelSpec, rows: list[dict[str, Any]], now: datetime,
                   report: DeliveryReport) -> list[dict[str, Any]]:
    """The rows to send now; folds the overflow into one summary row when slots run short."""
    if not spec.max_per_hour:
        return rows
    used = outbox_sql.messages_sent_since(conn, spec.name, now - FLOOD_WINDOW)
    slots = max(0, spec.max_per_hour - used)
    groups = [row for row in rows if _is_group(row)]
    singles = [row for row in rows if not _is_group(row)]
    send = groups[:slots]
    slots -= len(send)
    report.waiting += len(groups) - len(send)
    if len(singles) <= slots:
        return send + singles
    if slots == 0:
        report.waiting += len(singles)
        if singles:
            log.info("flood control: alerts wait for a free slot channel=%s waiting=%d max_per_hour=%d",
                     spec.name, len(singles), spec.max_per_hour)
        return send
    send += singles[: slots - 1]
    overflow = singles[slots - 1:]
    summary_id = _fold_into_summary(conn, spec, overflow, now)
    report.folded += len(overflow)
    summary = outbox_sql.get_alert(conn, summary_id)
    assert summary is not None
    return send + [summary]


def _fold_into_summary(conn: sqlite3.Connection, spec: ChannelSpec, rows: list[dict[str, Any]],
                       now: datetime) -> int:
    kind = f"summary-{to_iso(now)}-{rows[0]['id']}"
    payload = {"kind": kind, "rule": None, "channel": spec.name, "max_per_hour": spec.max_per_hour,
               "count": len(rows), "rules": sorted({row["rule"] for row in rows}),
               "items": [row["payload"] for row in rows]}
    summary_id = outbox_sql.insert_alert(conn, rule="*", story_id=0, channel=spec.name, kind=kind,
                                         status="pending", payload=payload, now=now)
    assert summary_id is not None, "summary kinds are unique per fold"
    outbox_sql.fold(conn, [row["id"] for row in rows], summary_id)
    log.info("flood control: folded alerts into one summary channel=%s folded=%d summary_id=%d", spec.name,
             len(rows), summary_id)
    return summary_id


def _send_all(plan: dict[str, list[dict[str, Any]]], specs: dict[str, ChannelSpec]) -> Iterator[_Outcome]:
    """Send each channel's batch in its own thread; yield outcomes as they come (marked by the caller).

    A channel thread sends its next alert only after the caller has recorded the previous outcome, so
    at most one alert per channel is ever between its send and its mark (the documented window)."""
    if not plan:
        return
    results: queue.Queue[_Outcome | None] = queue.Queue()
    stop = threading.Event()
    with ThreadPoolExecutor(max_workers=min(MAX_PARALLEL_CHANNELS, len(plan)),
                            thread_name_prefix="newsmon-alerts") as pool:
        for channel, rows in plan.items():
            pool.submit(_send_channel, specs[channel], rows, results, stop)
        try:
            remaining = len(plan)
            while remaining:
                item = results.get()
                if item is None:
                    remaining -= 1
                    continue
                yield item
                item.recorded.set()
        finally:
            # The caller stopped (an error while recording): the channel threads send nothing more.
            stop.set()


def _send_channel(spec: ChannelSpec, rows: list[dict[str, Any]], results: queue.Queue[_Outcome | None],
                  stop: threading.Event) -> None:
    try:
        try:
            sender = build_channel(spec)
        except AlertError as exc:
            for row in rows:
                results.put(_Outcome(row, exc))
            return
        blocked = False
        try:
            for row in rows:
                if blocked:
                    results.put(_Outcome(row, deferred=True))
                    continue
                error = _send_one(sender, spec, row)
                outcome = _Outcome(row, error)
                results.put(outcome)
                while not outcome.recorded.wait(0.2):
                    if stop.is_set():
                        return
                blocked = error is not None and error.retryable
        finally:
            close = getattr(sender, "close", None)
            if callable(close):
                close()
    finally:
        results.put(None)


def _send_one(sender: Any, spec: ChannelSpec, row: dict[str, Any]) -> AlertError | None:
    try:
        sender.send(render(row["payload"]))
    except AlertError as exc:
        return exc
    except Exception as exc:  # noqa: BLE001 - a third-party sender's bug must not stop delivery; it is logged
        detail = redact_text(str(exc), spec.secrets)
        log.error("alert channel raised unexpectedly channel=%s alert_id=%s error=%s: %s", spec.name, row["id"],
                  exc.__class__.__name__, detail)
        return AlertError(f"unexpected {exc.__class__.__name__}: {detail}", channel=spec.name)
    return None


def _record(store: Any, config: Any, specs: dict[str, ChannelSpec], outcome: _Outcome, now: datetime,
            report: DeliveryReport, next_try: dict[str, datetime], claimed_until: datetime) -> None:
    row = outcome.row
    with transaction(store) as conn:
        outbox_sql.renew_claims(conn, claim_owner(), claimed_until)
        if outcome.deferred:
            outbox_sql.postpone(conn, [row["id"]], next_try.get(row["channel"], now + BACKOFF_BASE))
            report.waiting += 1
            return
        if outcome.error is None:
            outbox_sql.mark_sent(conn, row["id"], now)
            report.sent += 1
            log.info("alert sent alert_id=%s rule=%s channel=%s kind=%s story_id=%s", row["id"], row["rule"],
                     row["channel"], row["kind"], row["story_id"])
            return
        spec = specs.get(row["channel"])
        secrets = spec.secrets if spec else set()
        error = AlertError(redact_text(outcome.error.reason, secrets), channel=row["channel"],
                           retryable=outcome.error.retryable)
        _fail_or_retry(conn, row, error, now, _give_up_after(config), report, next_try)


def _fail_or_retry(conn: sqlite3.Connection, row: dict[str, Any], error: AlertError, now: datetime,
                   give_up: timedelta, report: DeliveryReport, next_try: dict[str, datetime]) -> None:
    attempts = int(row["attempts"]) + 1
    created = from_iso(row["created"]) or now
    report.errors.append(f"{row['channel']}: {error.reason}")
    if not error.retryable or now >= created + give_up:
        outbox_sql.mark_failed(conn, row["id"], error.reason)
        report.failed += 1
        log.warning("alert failed alert_id=%s rule=%s channel=%s attempts=%d error=%s", row["id"], row["rule"],
                    row["channel"], attempts, error.reason)
        return
    when = min(now + backoff(attempts), created + give_up)
    outbox_sql.mark_retry(conn, row["id"], error.reason, when)
    next_try[row["channel"]] = when
    report.retrying += 1
    log.warning("alert not delivered, will retry alert_id=%s rule=%s channel=%s attempts=%d next_attempt=%s "
                "error=%s", row["id"], row["rule"], row["channel"], attempts, to_iso(when), error.reason)


def send_test(config: Any, channel_name: str) -> str:
    """``newsmon channels test NAME``: send one test message now; returns what happened, raises on failure."""
    specs = channel_specs(config)
    spec = specs.get(channel_name)
    if spec is None:
        names = ", ".join(sorted(specs))
        raise UsageError(f"no channel named {channel_name!r} (configured: {names})")
    sender = build_channel(spec)
    try:
        sender.send(test_message(channel_name, to_iso(utcnow()) or ""))
    except AlertError as exc:
        raise AlertError(redact_text(exc.reason, spec.secrets), channel=channel_name,
                         retryable=exc.retryable) from None
    finally:
        close = getattr(sender, "close", None)
        if callable(close):
            close()
    return f"sent a test message to channel {channel_name} ({spec.display_url})"
