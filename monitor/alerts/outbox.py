"""Writing alerts into the outbox, inside the ingest transaction (the pipeline calls ``enqueue_for_article``).

Policy:

- one ``new`` row per (rule, story, channel): later articles of the same story (other outlets, rewrites)
  hit the UNIQUE key and add nothing;
- a story that gains a new outlet (``source_added``) while its alert still waits (pending, or held for a
  digest) refreshes that alert's list of sources instead of adding a message, whether or not the new
  outlet's article matches the alert's rule (``refresh_waiting_alerts``);
- with ``notify_on_update``, a story that gains a new outlet after its alert went out adds a numbered
  ``update-N`` row (one follow-up per new outlet);
- digest rules write their rows as ``held`` (``run_digests`` folds them into one message per period);
- quiet catch-up: on a feed's first poll and after downtime, only articles published within
  ``alert_max_age`` of now alert, and undated articles never do; the others are counted as held back;
- an article alerts for a rule only when it first matches it: one that matched without alerting (held
  back, imported, re-matched by ``rules rematch``) starts no alert when it is revised or another feed
  carries it (it still refreshes or follows up on its story's alert, as any new outlet does).
"""

from __future__ import annotations

import logging
import sqlite3
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Iterable

from monitor.alerts.render import build_payload
from monitor.store import alerts as outbox_sql
from monitor.store.stories import get_story
from monitor.timeutil import from_iso, to_iso

log = logging.getLogger(__name__)

DEFAULT_MAX_AGE = timedelta(hours=24)


@dataclass(frozen=True)
class EnqueueResult:
    created: int = 0      # outbox rows written
    held_back: int = 0    # 1 when quiet catch-up kept this article from alerting


def rule_channels(rule: Any, config: Any) -> tuple[str, ...]:
    """The channels a rule sends to: its own, else ``default_channels``, else ``log``."""
    channels = tuple(getattr(rule, "channels", ()) or ())
    if not channels:
        channels = tuple(getattr(config.monitor, "default_channels", ()) or ())
    return channels or ("log",)


def is_fresh(article: Any, config: Any, now: datetime, *, first_poll: bool) -> bool:
    """May this article alert during catch-up?"""
    if article.undated and first_poll:
        return False
    max_age = getattr(config.monitor, "alert_max_age", None) or DEFAULT_MAX_AGE
    return article.published >= now - max_age


def _fallback_story(story_id: int, article_id: int, article: Any, feed_name: str) -> dict[str, Any]:
    return {
        "id": story_id,
        "headline": article.title,
        "sources": [{"article_id": article_id, "url": article.url, "feed": feed_name, "title": article.title,
                     "published": to_iso(article.published)}],
    }


def _refresh_sources(conn: sqlite3.Connection, waiting: dict[str, Any], story: dict[str, Any],
                     feed_name: str) -> None:
    """A story gained an outlet before its alert went out: the alert lists the sources so far instead."""
    payload = dict(waiting["payload"])
    fresh = build_payload(rule=waiting["rule"], kind=waiting["kind"], story=story, article=_PayloadArticle(payload),
                          article_id=payload.get("article_id") or 0, feed_name=payload.get("feed") or feed_name,
                          matched=[])
    for key in ("headline", "url", "sources", "feeds"):
        payload[key] = fresh[key]
    outbox_sql.replace_payload(conn, waiting["id"], payload)


def refresh_waiting_alerts(conn: sqlite3.Connection, *, story_id: int, feed_name: str,
                           skip_rules: Iterable[str] = ()) -> int:
    """A story gained an outlet (``feed_name``): its alerts still waiting list the sources so far, even
    when the outlet's article does not match their rule. ``skip_rules``: rules ``enqueue_for_article``
    handled for that article. Returns how many alerts were refreshed."""
    skip = set(skip_rules)
    waiting = [row for row in outbox_sql.waiting_story_alerts(conn, story_id=story_id) if row["rule"] not in skip]
    story = get_story(conn, story_id) if waiting else None
    if story is None:
        return 0
    for row in waiting:
        _refresh_sources(conn, row, story, feed_name)
    return len(waiting)


class _PayloadArticle:
    """The fields ``build_payload`` reads of an article, taken from an earlier payload."""

    def __init__(self, payload: dict[str, Any]) -> None:
        self.url = payload.get("article_url")
        self.title = payload.get("title") or ""
        self.published = from_iso(payload.get("published"))
        self.undated = bool(payload.get("undated"))


def enqueue_for_article(
    conn: sqlite3.Connection,
    config: Any,
    *,
    article_id: int,
    story_id: int,
    story_created: bool,
    source_added: bool,
    rule_matches: Iterable[Any],
    article: Any,
    feed_name: str,
    catch_up: bool,
    now: datetime,
    first_poll: bool | None = None,
    matched_before: Iterable[str] = (),
) -> EnqueueResult:
    """Write the outbox rows one stored article calls for. Runs in the caller's transaction; never commits.

    ``first_poll`` (default: same as ``catch_up``) says whether this is the feed's first poll, where undated
    entries never alert; after downtime, pass ``catch_up=True, first_poll=False`` to let fresh undated
    entries through. ``matched_before``: the rules the article matched before this write (a revision,
    another feed carrying it); they start no alert of their own.
    """
    matches = list(rule_matches)
    if not matches:
        return EnqueueResult()
    first_poll = catch_up if first_poll is None else first_poll
    if catch_up and not is_fresh(article, config, now, first_poll=first_poll):
        log.debug("alert held back feed=%s article_id=%s story_id=%s published=%s undated=%s", feed_name,
                  article_id, story_id, article.published.isoformat(), article.undated)
        return EnqueueResult(held_back=1)
    story = get_story(conn, story_id) or _fallback_story(story_id, article_id, article, feed_name)
    rules = {rule.name: rule for rule in getattr(config, "rules", ())}
    known = set(matched_before)
    created = 0
    for match in matches:
        rule = rules.get(match.rule)
        if rule is None:
            log.warning("match for unknown rule rule=%s article_id=%s", match.rule, article_id)
            continue
        created += _enqueue_rule(conn, config, rule, match, story, story_created=story_created,
                                 source_added=source_added, article=article, article_id=article_id,
                                 feed_name=feed_name, now=now, matched_before=match.rule in known)
    return EnqueueResult(created=created)


def _enqueue_rule(
    conn: sqlite3.Connection,
    config: Any,
    rule: Any,
    match: Any,
    story: dict[str, Any],
    *,
    story_created: bool,
    source_added: bool,
    article: Any,
    article_id: int,
    feed_name: str,
    now: datetime,
    matched_before: bool = False,
) -> int:
    status = "held" if getattr(rule, "mode", "instant") == "digest" else "pending"
    story_id = int(story["id"])
    created = 0
    for channel in rule_channels(rule, config):
        common = {"rule": rule.name, "story_id": story_id, "channel": channel, "status": status, "now": now,
                  "article_id": article_id}
        if matched_before:
            if not outbox_sql.has_alert(conn, rule=rule.name, story_id=story_id, channel=channel, kind="new"):
                continue  # it matched without alerting (held back, imported, re-matched): a revision is no news
        else:
            payload = build_payload(rule=rule.name, kind="new", story=story, article=article,
                                    article_id=article_id, feed_name=feed_name, matched=match.terms)
            if outbox_sql.insert_alert(conn, kind="new", payload=payload, **common):
                created += 1
                continue
        if not source_added or story_created:
            continue
        waiting = outbox_sql.waiting_story_alert(conn, rule=rule.name, story_id=story_id, channel=channel)
        if waiting is not None:
            _refresh_sources(conn, waiting, story, feed_name)
            continue
        if not getattr(rule, "notify_on_update", False):
            continue
        number = outbox_sql.count_updates(conn, rule=rule.name, story_id=story_id, channel=channel) + 1
        kind = f"update-{number}"
        payload = build_payload(rule=rule.name, kind=kind, story=story, article=article, article_id=article_id,
                                feed_name=feed_name, matched=match.terms)
        if outbox_sql.insert_alert(conn, kind=kind, payload=payload, **common):
            created += 1
    return created
