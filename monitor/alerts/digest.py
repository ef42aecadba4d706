"""Digest rules: one message per (rule, channel) and period, listing the stories held since the last one.

``mode = "digest"`` with ``every = "1h"``: periods of that length counted from the first run (slots
``last + k*every``, so a late run does not shift the schedule). With ``at = "08:00"`` (and ``timezone``,
default UTC): once a day at that local time (DST handled by zoneinfo). A period without stories sends nothing.
A time the local clock skips (a spring-forward night) is due at the end of the gap. The first run for a
(rule, channel) only starts the clock, and so does a run whose clock is well before the last digest (the
system clock went back). Held alerts of a rule that is no longer a digest
rule are released as ordinary pending alerts.
"""

from __future__ import annotations

import logging
import sqlite3
from datetime import datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

from monitor.alerts.delivery import reading, transaction
from monitor.alerts.outbox import rule_channels
from monitor.store import alerts as outbox_sql
from monitor.timeutil import from_iso, to_iso, zone_named

log = logging.getLogger(__name__)

DEFAULT_EVERY = timedelta(days=1)
# A last digest later than now by more than this means the system clock went back. Less is a race between
# two processes building digests (each reads the clock before it waits for the write lock).
CLOCK_WENT_BACK = timedelta(minutes=5)


def _zone(name: str | None) -> timezone | ZoneInfo:
    if not name:
        return timezone.utc
    zone = zone_named(name)
    if zone is None:
        log.warning("unknown digest timezone, using UTC timezone=%s", name)
        return timezone.utc
    return zone


def due_slot(rule: Any, last_run: datetime, now: datetime) -> datetime | None:
    """The latest digest time in (last_run, now], or None when no digest is due."""
    at = getattr(rule, "at", None)
    if at is not None:
        zone = _zone(getattr(rule, "timezone", None))
        local_now = now.astimezone(zone)
        slot = datetime.combine(local_now.date(), at.replace(tzinfo=None), tzinfo=zone)
        if slot > local_now:
            slot = datetime.combine(local_now.date() - timedelta(days=1), at.replace(tzinfo=None), tzinfo=zone)
        slot_utc = slot.astimezone(timezone.utc)
        if slot_utc.astimezone(zone).replace(tzinfo=None) != slot.replace(tzinfo=None):
            # A time the clock skips (02:30 on a spring-forward night) names the instant before the gap in the
            # new offset (01:30 winter time), not the one after it (03:30 summer time, still to come when the
            # clock passes 02:30): the digest goes once, at the end of the gap, and covers the time until then.
            slot_utc = slot.replace(fold=1).astimezone(timezone.utc)
        return slot_utc if slot_utc > last_run else None
    every = getattr(rule, "every", None) or DEFAULT_EVERY
    if now < last_run + every:
        return None
    periods = (now - last_run) // every
    return last_run + every * periods


def run_digests(store: Any, config: Any, *, now: datetime) -> int:
    """Build the digest messages that are due (as pending outbox rows); returns how many were created.

    ``deliver_pending`` sends them afterwards.
    """
    created = 0
    digest_rules = [rule for rule in getattr(config, "rules", ()) if getattr(rule, "mode", "") == "digest"]
    names = {rule.name for rule in digest_rules}
    if not digest_rules:
        with reading(store) as conn:
            if not outbox_sql.held_rules(conn):
                return 0
    with transaction(store) as conn:
        for rule_name in outbox_sql.held_rules(conn):
            if rule_name not in names:
                released = outbox_sql.release_held(conn, rule_name, now)
                log.info("rule is no longer a digest rule, alerts released rule=%s alerts=%d", rule_name,
                         released)
        for rule in digest_rules:
            channels = rule_channels(rule, config)
            for channel in outbox_sql.held_channels(conn, rule.name):
                if channel not in channels:  # taken off the rule: no digest will ever fold them
                    released = outbox_sql.release_held(conn, rule.name, now, channel=channel)
                    log.info("channel is no longer on the digest rule, alerts released rule=%s channel=%s "
                             "alerts=%d", rule.name, channel, released)
            for channel in channels:
                created += _digest_one(conn, rule, channel, now)
    return created


def _digest_one(conn: sqlite3.Connection, rule: Any, channel: str, now: datetime) -> int:
    last_run = from_iso(outbox_sql.digest_last_run(conn, rule.name, channel))
    if last_run is not None and last_run > now + CLOCK_WENT_BACK:
        # The system clock went back (or ran ahead for a while): waiting for the clock to pass the last
        # digest would hold the rule's alerts that long. The period starts again from now.
        log.warning("digest clock restarted: the last digest is later than now (the system clock went back) "
                    "rule=%s channel=%s last_digest=%s now=%s", rule.name, channel, to_iso(last_run), to_iso(now))
        last_run = None
    if last_run is None:
        outbox_sql.set_digest_last_run(conn, rule.name, channel, now)
        return 0
    slot = due_slot(rule, last_run, now)
    if slot is None:
        return 0
    outbox_sql.set_digest_last_run(conn, rule.name, channel, slot)
    held = outbox_sql.held_for_digest(conn, rule.name, channel)
    if not held:
        return 0
    kind = f"digest-{to_iso(slot)}"
    payload = {"kind": kind, "rule": rule.name, "channel": channel, "since": to_iso(last_run),
               "until": to_iso(slot), "count": len(held), "items": [row["payload"] for row in held]}
    digest_id = outbox_sql.insert_alert(conn, rule=rule.name, story_id=0, channel=channel, kind=kind,
                                        status="pending", payload=payload, now=now)
    if digest_id is None:
        log.warning("digest exists already rule=%s channel=%s kind=%s", rule.name, channel, kind)
        return 0
    outbox_sql.fold(conn, [row["id"] for row in held], digest_id)
    log.info("digest built rule=%s channel=%s stories=%d digest_id=%d", rule.name, channel, len(held), digest_id)
    return 1
