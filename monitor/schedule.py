"""Polling policy: when is a feed checked next? Pure functions, no I/O.

The rules, in order:

1. The base delay is the feed's interval (``interval`` or ``[monitor] default_interval``).
2. After a successful poll, the server's own hints are a *floor*: ``Cache-Control: max-age`` and RSS ``<ttl>``
   may make us wait longer than the interval, but never longer than ``[monitor] cache_max``
   (and never shorter than the interval: we do not poll faster because a server allows it).
3. After an error, the delay grows exponentially with the number of consecutive errors
   (interval, 2x, 4x, ...), capped by ``[monitor] backoff_max`` (or the interval, if that is longer).
4. Every delay gets a deterministic jitter of up to +/-10 % derived from the feed's name, so feeds that share an
   interval spread out instead of firing together, and a restart reproduces the same spread.
5. ``Retry-After`` (429/503, already converted to seconds by the fetcher) is honoured as a floor after the jitter,
   bounded by the error cap, so a server cannot park a feed for a year.

A feed is never abandoned: the longest wait is ``max(backoff_max, interval)``; after ``failing_after``
consecutive errors it is flagged failing (``is_failing``) and reported, and still polled.
"""

from __future__ import annotations

import hashlib
import math
from datetime import datetime, timedelta
from typing import Protocol

JITTER_FRACTION = 0.10
MIN_DELAY_S = 1.0
SUCCESS_OUTCOMES = frozenset({"ok", "not_modified", "unchanged"})
ERROR_OUTCOMES = frozenset({"error"})


class PolicySettings(Protocol):
    """The ``[monitor]`` keys the policy reads (``monitor.config.MonitorSettings`` has them)."""

    backoff_max: timedelta
    cache_max: timedelta
    failing_after: int


def jitter_factor(feed_name: str) -> float:
    """A stable factor in [0.9, 1.1] for this feed name (same name, same factor, across restarts)."""
    digest = hashlib.blake2b(feed_name.encode("utf-8"), digest_size=8).digest()
    unit = int.from_bytes(digest, "big") / float(1 << 64)  # [0, 1)
    return 1.0 + JITTER_FRACTION * (2.0 * unit - 1.0)


def backoff_delay(interval_s: float, consecutive_errors: int, backoff_max_s: float) -> float:
    """interval * 2**(errors-1), capped by max(backoff_max, interval). ``consecutive_errors`` counts this error."""
    cap = max(backoff_max_s, interval_s)
    exponent = max(consecutive_errors - 1, 0)
    if exponent >= 63:  # 2**63 * anything positive exceeds any sane cap
        return cap
    return min(interval_s * (2**exponent), cap)


def hint_floor(cache_max_age: float | None, ttl_minutes: int | None, cache_max_s: float) -> float:
    """The longest of the server's hints (max-age seconds, <ttl> minutes), bounded by ``cache_max``; 0 without hints."""
    hints = [0.0]
    if cache_max_age is not None and cache_max_age > 0:
        hints.append(float(cache_max_age))
    if ttl_minutes is not None and ttl_minutes > 0:
        hints.append(float(ttl_minutes) * 60.0)
    return min(max(hints), cache_max_s)


def next_check(
    *,
    now: datetime,
    interval: timedelta,
    outcome: str,
    consecutive_errors: int,
    retry_after: float | None,
    cache_max_age: float | None,
    ttl_minutes: int | None,
    settings: PolicySettings,
    feed_name: str,
) -> datetime:
    """When to poll ``feed_name`` next, given what the poll at ``now`` did.

    ``outcome`` is ``FeedPollResult.status`` ("ok", "not_modified", "unchanged", "error", "skipped").
    ``consecutive_errors`` is the count *after* this poll (0 after a success, >= 1 after an error).
    The result is rounded up to a whole second (the archive stores seconds) and is at least one second after
    ``now``.
    """
    interval_s = max(interval.total_seconds(), MIN_DELAY_S)
    backoff_max_s = settings.backoff_max.total_seconds()
    if outcome in ERROR_OUTCOMES and consecutive_errors > 0:
        delay = backoff_delay(interval_s, consecutive_errors, backoff_max_s)
    elif outcome in SUCCESS_OUTCOMES:
        delay = max(interval_s, hint_floor(cache_max_age, ttl_minutes, settings.cache_max.total_seconds()))
    else:
        delay = interval_s
    delay *= jitter_factor(feed_name)
    if retry_after is not None and retry_after > 0:
        delay = max(delay, min(float(retry_after), max(backoff_max_s, interval_s)))
    return _ceil_second(now + timedelta(seconds=max(delay, MIN_DELAY_S)))


def longest_wait(interval: timedelta, settings: PolicySettings) -> timedelta:
    """The latest ``next_check`` can put a poll after ``now`` for a feed with this interval (errors, hints and
    Retry-After included, jitter too): a check due later than that was scheduled by a clock that was ahead."""
    longest = max(interval, settings.backoff_max, settings.cache_max).total_seconds() * (1.0 + JITTER_FRACTION)
    return timedelta(seconds=math.ceil(longest) + 1)


def is_failing(consecutive_errors: int, settings: PolicySettings) -> bool:
    """True when a feed has failed ``failing_after`` times in a row (it is still polled, and reported)."""
    return consecutive_errors >= max(settings.failing_after, 1)


def _ceil_second(value: datetime) -> datetime:
    if value.microsecond == 0:
        return value
    return value.replace(microsecond=0) + timedelta(seconds=1)


def interval_for(feed_interval: timedelta | None, default_interval: timedelta) -> timedelta:
    """The feed's own interval, else the default one."""
    return feed_interval if feed_interval is not None else default_interval


def percentile(values: list[float], fraction: float) -> float:
    """Nearest-rank percentile of ``values`` (0.0 for an empty list); used for scheduling-lag figures."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]
