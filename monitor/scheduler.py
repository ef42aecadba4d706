"""The daemon's engine: APScheduler jobs, the bounded poll pool with its per-host limit, outage detection.

APScheduler 3.x (one ``BackgroundScheduler``, in-memory job store, never shared between processes) runs
a few short jobs; the database, not the scheduler, knows which feeds are due, so a restart loses nothing:

- ``tick`` (every ``tick`` seconds, ``max_instances=1, coalesce=True``): heartbeat + watchdog, then hands the
  due feeds to the ``Dispatcher``, which submits them to a pool of ``concurrency`` threads, at most
  ``per_host`` per host, refilling as polls finish until the tick's time budget is spent;
- ``deliver`` (alert delivery and digests), ``retention`` and ``upkeep`` (WAL checkpoint, ``PRAGMA optimize``),
  each on its own interval, off the polling path.

Everything that touches the archive or the pipeline is given to these classes as callables by
``monitor.daemon``, so that this module holds only scheduling.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter, deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Callable, Iterable

from apscheduler.executors.pool import ThreadPoolExecutor as JobExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger

from monitor.models import FeedPollResult
from monitor.schedule import percentile
from monitor.store.leases import DueFeed
from monitor.timeutil import from_iso

from monitor.errors import MonitorError, StoreError

log = logging.getLogger(__name__)

# Error kinds that say "we could not reach the server" (as opposed to "the server answered badly").
NETWORK_ERROR_KINDS = frozenset({"connect", "timeout"})
SUCCESS_STATUSES = frozenset({"ok", "not_modified", "unchanged"})
LAG_WINDOW_S = 300.0


# --------------------------------------------------------------------------- outage detection


class NetworkWatch:
    """Tells a network outage from a few dead feeds.

    The network is declared down when feeds on at least ``min_hosts`` different hosts fail in a row with
    connect/timeout errors and nothing succeeds in between. ``observe`` then returns the feeds whose error
    should be forgiven (not counted towards backoff; retried at their normal interval): every suspect seen so
    far, then each new network failure while the outage lasts. Any answer from any server ends the outage.
    ``min_hosts < 2`` disables detection (with a single host, an outage and a dead host look the same, and the
    ordinary backoff applies).
    """

    def __init__(self, min_hosts: int) -> None:
        self.min_hosts = min_hosts
        self.down = False
        self.down_since: float | None = None
        self.failed_while_down = 0
        self._suspects: dict[str, str] = {}
        self._lock = threading.Lock()

    def is_outage_error(self, kind: str) -> bool:
        """Is a failure of this kind part of the outage already declared (so that it says nothing new)?"""
        return self.down and kind in NETWORK_ERROR_KINDS

    def observe(self, feed: str, host: str, result: FeedPollResult) -> list[str]:
        with self._lock:
            if result.status == "error" and result.error_kind in NETWORK_ERROR_KINDS:
                return self._network_failure(feed, host)
            if result.status in SUCCESS_STATUSES or result.status == "error":
                self._reachable()
            return []

    def _network_failure(self, feed: str, host: str) -> list[str]:
        if self.min_hosts < 2:
            return []
        if self.down:
            self.failed_while_down += 1
            return [feed]
        self._suspects[feed] = host
        hosts = set(self._suspects.values())
        if len(hosts) < self.min_hosts:
            return []
        self.down = True
        self.down_since = time.monotonic()
        self.failed_while_down = 0
        forgiven = list(self._suspects)
        self._suspects.clear()
        log.warning(
            "network appears down: connection failures from %d hosts in a row and no successful fetch; "
            "errors are not counted, feeds are retried at their normal interval and their connection failures "
            "are logged at debug level until it is back hosts=%d",
            len(hosts), len(hosts),
        )
        return forgiven

    def _reachable(self) -> None:
        self._suspects.clear()
        if self.down:
            lasted = time.monotonic() - (self.down_since or time.monotonic())
            log.warning("network is back: a server answered again, normal polling resumes outage_s=%.0f "
                        "failed_polls=%d", lasted, self.failed_while_down)
            self.down = False
            self.down_since = None


# --------------------------------------------------------------------------- the poll pool


@dataclass
class DispatchStats:
    polls: int = 0
    errors: int = 0
    skipped: int = 0
    forgiven: int = 0
    crashed: int = 0
    lag_window: float = LAG_WINDOW_S
    lags: deque[tuple[float, float]] = field(default_factory=deque)  # (monotonic time, lag seconds)

    def record_lag(self, lag: float) -> None:
        now = time.monotonic()
        self.lags.append((now, lag))
        while self.lags and self.lags[0][0] < now - self.lag_window:
            self.lags.popleft()

    def lag_percentiles(self) -> tuple[float, float]:
        values = [lag for _, lag in self.lags]
        return percentile(values, 0.50), percentile(values, 0.95)


class Dispatcher:
    """Submits due feeds to a bounded pool: ``concurrency`` polls at once, at most ``per_host`` per host.

    ``find_due(now, limit)`` asks the archive for due feeds (``leases.due_feed_rows``); ``poll(name)`` runs one
    refresh (``pipeline.refresh_feed``); ``on_result(feed, result)`` is called in the worker thread after each
    poll; ``now()`` gives the current UTC time.
    """

    def __init__(
        self,
        *,
        find_due: Callable[[datetime, int], list[DueFeed]],
        poll: Callable[[str], FeedPollResult],
        now: Callable[[], datetime],
        concurrency: int,
        per_host: int,
        on_result: Callable[[DueFeed, FeedPollResult], None] | None = None,
        lag_window: float = LAG_WINDOW_S,
    ) -> None:
        self._find_due = find_due
        self._poll = poll
        self._now = now
        self._on_result = on_result
        self.concurrency = max(1, concurrency)
        self.per_host = max(1, per_host)
        self._pool = ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="poll")
        self._pool_size = self.concurrency
        self._inflight: dict[str, DueFeed] = {}
        self._hosts: Counter[str] = Counter()
        self._completed = 0                     # polls finished so far
        self._finished_at: dict[str, int] = {}  # feed -> ``_completed`` when its last poll finished
        self._changed = threading.Condition()
        self._accepting = True
        self.stats = DispatchStats(lag_window=lag_window)

    # -- configuration
    def resize(self, concurrency: int, per_host: int) -> None:
        """Apply new limits (SIGHUP). A larger pool replaces the old one; its running polls finish normally."""
        with self._changed:
            self.per_host = max(1, per_host)
            self.concurrency = max(1, concurrency)
            if self.concurrency > self._pool_size:
                old = self._pool
                self._pool = ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="poll")
                self._pool_size = self.concurrency
                old.shutdown(wait=False)
            self._changed.notify_all()

    # -- state
    @property
    def inflight(self) -> int:
        with self._changed:
            return len(self._inflight)

    def lag_percentiles(self) -> tuple[float, float]:
        """Scheduling lag (dispatch time minus due time) p50 and p95 over the recent window, in seconds."""
        with self._changed:
            return self.stats.lag_percentiles()

    def inflight_names(self) -> list[str]:
        with self._changed:
            return list(self._inflight)

    # -- dispatching
    def dispatch(self, budget: float) -> int:
        """Submit due feeds for up to ``budget`` seconds, refilling the pool as polls finish. Returns how many
        were submitted. Returns early when nothing more is due (or everything due waits for its host)."""
        deadline = time.monotonic() + budget
        submitted = 0
        while self._accepting:
            started, blocked, stale = self._submit_round()
            submitted += started
            if stale and time.monotonic() < deadline:
                continue  # the list showed polls that had just finished as due: read it again now
            if started == 0 and not blocked:
                return submitted
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return submitted
            with self._changed:
                # Wait for a poll to finish (a free slot, or a host below its limit) or for the budget to end.
                if self._accepting and (self._full() or blocked):
                    self._changed.wait(timeout=remaining)
        return submitted

    def _full(self) -> bool:
        return len(self._inflight) >= self.concurrency

    def _submit_round(self) -> tuple[int, bool, bool]:
        """One look at the due list: (how many submitted, whether due feeds were left waiting for a slot,
        whether the list was stale: it showed feeds whose poll finished while it was being read)."""
        with self._changed:
            free = self.concurrency - len(self._inflight)
            busy = len(self._inflight)
            # A poll that finishes after the due list is read is still due in that list (its next
            # check was not written yet): remember when polls finished, to skip those.
            listed_after = self._completed
            self._finished_at = {name: at for name, at in self._finished_at.items() if at > listed_after}
        if free <= 0:
            return 0, True, False
        now = self._now()
        due = self._find_due(now, max(4 * free, 64) + busy)
        started = 0
        blocked = stale = False
        with self._changed:
            for feed in due:
                if not self._accepting:
                    break
                if feed.name in self._inflight:
                    continue
                if self._finished_at.get(feed.name, 0) > listed_after:
                    stale = True
                    continue
                if len(self._inflight) >= self.concurrency:
                    blocked = True
                    break
                host = feed.host
                if self._hosts[host] >= self.per_host:
                    blocked = True
                    continue
                self._start(feed, host, now)
                started += 1
        return started, blocked, stale

    def _start(self, feed: DueFeed, host: str, now: datetime) -> None:
        due_at = from_iso(feed.next_check)
        if due_at is not None:
            self.stats.record_lag(max((now - due_at).total_seconds(), 0.0))
        self._inflight[feed.name] = feed
        self._hosts[host] += 1
        future = self._pool.submit(self._poll, feed.name)
        future.add_done_callback(lambda done, feed=feed, host=host: self._finished(feed, host, done))

    def _finished(self, feed: DueFeed, host: str, future: Future[FeedPollResult]) -> None:
        error = future.exception()
        try:
            if error is not None:
                with self._changed:
                    self.stats.crashed += 1
                # A MonitorError (full disk, read-only archive) is a known condition: one line. Anything
                # else is a bug in newsmon: its traceback is logged so that it can be fixed.
                known = isinstance(error, MonitorError)
                log.error("poll failed feed=%s kind=%s error=%s", feed.name,
                          "store" if isinstance(error, StoreError) else type(error).__name__, error,
                          exc_info=None if known else error)
            else:
                result = future.result()
                with self._changed:
                    self.stats.polls += 1
                    if result.status == "error":
                        self.stats.errors += 1
                    elif result.status == "skipped":
                        self.stats.skipped += 1
                if self._on_result is not None:
                    self._on_result(feed, result)
        finally:
            with self._changed:
                self._inflight.pop(feed.name, None)
                self._completed += 1
                self._finished_at[feed.name] = self._completed
                self._hosts[host] -= 1
                if self._hosts[host] <= 0:
                    del self._hosts[host]
                self._changed.notify_all()

    # -- stopping
    def stop_accepting(self) -> None:
        with self._changed:
            self._accepting = False
            self._changed.notify_all()

    def wait_idle(self, timeout: float) -> bool:
        """Wait until no poll runs (or ``timeout``); True when idle."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while self._inflight:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._changed.wait(timeout=remaining)
        return True

    def shutdown(self, *, wait: bool) -> None:
        self._pool.shutdown(wait=wait, cancel_futures=True)


# --------------------------------------------------------------------------- APScheduler


@dataclass(frozen=True)
class JobSpec:
    name: str
    func: Callable[[], None]
    every: timedelta
    first_in: timedelta = timedelta(0)


def _log_failure(name: str, exc: Exception, failing: dict[str, Any]) -> None:
    """A new failure is logged with its traceback; the same failure again (a damaged archive, a full disk: the
    tick runs every second) only at the 2nd, 4th, 8th ... run, in one line, so the log stays readable."""
    error = (type(exc), str(exc))
    failing["runs"] += 1
    if error != failing["error"]:
        failing.update(error=error, same=1)
        log.error("job failed job=%s error=%s", name, exc, exc_info=True)
        return
    failing["same"] += 1
    same = failing["same"]
    if same & (same - 1) == 0:  # a power of two
        log.error("job failed again job=%s failed_runs=%d error=%s", name, same, exc)


class _SkippedRunFilter(logging.Filter):
    """APScheduler warns each time a run is skipped because the previous one still runs. For our jobs that is
    by design (``max_instances=1``: an overrunning tick simply continues), so it is not worth a warning line."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "maximum number of running instances reached" not in record.getMessage()


_SKIPPED_RUN_FILTER = _SkippedRunFilter()


def next_whole_second(now: datetime) -> datetime:
    """``now`` if it is on a whole second, else the whole second after it."""
    whole = now.replace(microsecond=0)
    return whole if whole == now else whole + timedelta(seconds=1)


class _GridTrigger(IntervalTrigger):
    """An interval trigger whose runs fall on ``start_date + k * interval`` whenever the run before was: the
    first run can be off that grid (a job that starts at once) without moving the later ones."""

    def get_next_fire_time(self, previous_fire_time: datetime | None, now: datetime) -> datetime | None:
        following = super().get_next_fire_time(None, now)
        if following is not None and previous_fire_time is not None and following <= previous_fire_time:
            following = super().get_next_fire_time(None, previous_fire_time + timedelta(microseconds=1))
        return following


class JobScheduler:
    """One APScheduler ``BackgroundScheduler`` (in-memory store) running the daemon's periodic jobs.

    Each job runs at most once at a time, and missed runs are coalesced into one, so a slow job never piles up.
    """

    def __init__(self, jobs: Iterable[JobSpec], *, workers: int = 4) -> None:
        self._scheduler = BackgroundScheduler(
            executors={"default": JobExecutor(max_workers=workers)},
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None},
            timezone="UTC",
        )
        self._jobs = list(jobs)
        self._running: set[str] = set()  # the jobs running now, by name
        self._running_lock = threading.Lock()
        apscheduler_log = logging.getLogger("apscheduler.scheduler")
        if _SKIPPED_RUN_FILTER not in apscheduler_log.filters:
            apscheduler_log.addFilter(_SKIPPED_RUN_FILTER)

    def start(self, now: datetime) -> None:
        """Start the jobs, each first at ``first_in`` after ``now``, then every ``every`` counted from the next
        whole second: feeds fall due on whole seconds (``next_check`` is stored to the second), so a tick on
        the second dispatches them at once instead of up to a second late."""
        grid = next_whole_second(now)
        for job in self._jobs:
            self._scheduler.add_job(
                self._guarded(job),
                trigger=_GridTrigger(seconds=max(job.every.total_seconds(), 0.05), start_date=grid, timezone="UTC"),
                id=job.name,
                name=job.name,
                next_run_time=now + job.first_in,
            )
        self._scheduler.start()

    def next_runs(self) -> dict[str, datetime]:
        """Each job's next run time (UTC)."""
        return {job.id: job.next_run_time for job in self._scheduler.get_jobs()}

    def running(self) -> list[str]:
        """The names of the jobs running now (those a shutdown waits for)."""
        with self._running_lock:
            return sorted(self._running)

    def shutdown(self, *, wait: bool = False) -> None:
        """Stop starting jobs; with ``wait``, return once the running ones have finished."""
        if self._scheduler.running:
            self._scheduler.shutdown(wait=wait)

    def _guarded(self, job: JobSpec) -> Callable[[], None]:
        failing: dict[str, Any] = {"error": None, "same": 0, "runs": 0}  # the failure it repeats; the runs failed

        def run() -> None:
            started = time.monotonic()
            with self._running_lock:
                self._running.add(job.name)
            try:
                job.func()
            except Exception as exc:  # a failing job is logged and retried at its next run
                _log_failure(job.name, exc, failing)
                return
            finally:
                with self._running_lock:
                    self._running.discard(job.name)
            if failing["runs"]:
                log.warning("job recovered job=%s failed_runs=%d", job.name, failing["runs"])
                failing.update(error=None, same=0, runs=0)
            elapsed = time.monotonic() - started
            if elapsed > max(job.every.total_seconds(), 1.0) * 5:
                log.warning("job slow job=%s elapsed_s=%.1f", job.name, elapsed)

        run.__name__ = f"newsmon_{job.name}"
        return run
