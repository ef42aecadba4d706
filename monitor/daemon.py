"""``newsmon run``: the long-running daemon. Lifecycle, signals, reload, heartbeat, sd_notify.

Lifecycle::

    open the archive (migrate), sync feeds from the config, heartbeat "started", READY=1
    APScheduler: tick (heartbeat, WATCHDOG=1, dispatch due feeds) · deliver · retention · upkeep
    SIGHUP   -> reload the config; a bad one is rejected with a log line and the running one kept
    SIGTERM / SIGINT -> STOPPING=1, no new polls, in-flight polls finish within shutdown_grace, leases
                        released, WAL checkpointed, heartbeat "stopped", exit 0

Signal handlers only set flags; the main thread does the work, so no lock is ever taken inside a handler.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import sqlite3
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from types import FrameType
from typing import Any, Callable

from monitor import __version__
from monitor.config import Config, load_config
from monitor.errors import MonitorError, StoreError
from monitor.models import FeedPollResult
from monitor.schedule import longest_wait, next_check
from monitor.scheduler import Dispatcher, JobScheduler, JobSpec, NetworkWatch
from monitor.sdnotify import Notifier, watchdog_interval
from monitor.store import Store
from monitor.store import leases
from monitor.store.leases import DueFeed, feed_host
from monitor.store.retention import run_retention
from monitor.store.status import checkpoint, daemon_state, optimize, read_heartbeat, write_heartbeat
from monitor.timeutil import to_iso, utcnow

log = logging.getLogger(__name__)


def _now_precise() -> datetime:
    """UTC now with microseconds (``timeutil.utcnow`` drops them, as the archive does)."""
    return datetime.now(timezone.utc)


@dataclass
class DaemonOptions:
    """Internal pacing in seconds (not user config): how often the jobs run. Tests and benchmarks shorten them."""

    tick: float = 1.0
    deliver_every: float = 10.0
    retention_every: float = 6 * 3600.0
    retention_first: float = 120.0
    upkeep_every: float = 600.0
    optimize_every: float = 3600.0
    lag_window: float = 300.0

    @classmethod
    def from_env(cls) -> DaemonOptions:
        """``NEWSMON_TICK``, ``NEWSMON_DELIVER_EVERY``, ``NEWSMON_UPKEEP_EVERY``, ``NEWSMON_LAG_WINDOW``,
        ``NEWSMON_RETENTION_FIRST`` (seconds): for tests and benchmarks."""
        options = cls()
        for name, attr in (("NEWSMON_TICK", "tick"), ("NEWSMON_DELIVER_EVERY", "deliver_every"),
                           ("NEWSMON_UPKEEP_EVERY", "upkeep_every"), ("NEWSMON_LAG_WINDOW", "lag_window"),
                           ("NEWSMON_RETENTION_FIRST", "retention_first")):
            value = os.environ.get(name)
            if value:
                try:
                    setattr(options, attr, max(float(value), 0.05))
                except ValueError:
                    log.warning("ignored %s=%r: not a number of seconds", name, value)
        return options


class Daemon:
    def __init__(self, *, config: Config, config_path: Path, db_path: Path,
                 options: DaemonOptions | None = None, notifier: Notifier | None = None) -> None:
        self.config = config
        self.config_path = config_path
        self.db_path = db_path
        self.options = options or DaemonOptions.from_env()
        self.notifier = notifier or Notifier()
        self.owner = leases.owner_id("daemon")
        self.started = utcnow()
        self._stop = threading.Event()
        self._reload = threading.Event()
        self._wake = threading.Event()
        self._signals: list[str] = []
        self._store: Store | None = None
        self._ctx: Any = None
        self._retired_fetchers: list[Any] = []
        self._dispatcher: Dispatcher | None = None
        self._jobs: JobScheduler | None = None
        self._network = NetworkWatch(_min_outage_hosts(config))
        self._last_optimize = time.monotonic()
        self._missing_alerts_logged = False
        self._ticks = 0

    # ------------------------------------------------------------------ main
    def run(self) -> int:
        """Run until SIGTERM/SIGINT; returns the exit status."""
        self._install_signals()
        store = Store.open(self.db_path)
        self._store = store
        try:
            try:
                self._write_start()
            except MonitorError:
                store.close()
                self._store = None
                raise
            store.sync_feeds(self.config.feeds)
            self._release_dead_leases()
            self._bring_forward_far_checks()
            self._ctx = self._build_context(self.config, previous=None)
            self._dispatcher = Dispatcher(
                find_due=self._find_due, poll=self._poll_one, now=_now_precise,
                concurrency=self.config.monitor.concurrency, per_host=self.config.monitor.per_host,
                on_result=self._after_poll, lag_window=self.options.lag_window,
            )
            self._check_watchdog()
            enabled = sum(1 for feed in self.config.feeds if feed.enabled)
            self.notifier.ready(f"polling {enabled} feeds")
            self._jobs = JobScheduler(self._job_specs())
            self._jobs.start(_now_precise())
            log.info("daemon started pid=%d feeds=%d db=%s config=%s version=%s",
                     os.getpid(), enabled, self.db_path, self.config_path, __version__)
            self._main_loop()
            return self._shutdown()
        finally:
            self._restore_signals()

    def _main_loop(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(timeout=1.0)
            self._wake.clear()
            for name in self._drain_signals():
                log.info("signal received signal=%s", name)
            if self._reload.is_set() and not self._stop.is_set():
                self._reload.clear()
                self.reload()

    def _release_dead_leases(self) -> None:
        """Leases left by a daemon of this host that died (crash, SIGKILL) are freed now rather than at expiry,
        so the feeds it was polling are not held back after a restart."""
        leases.release_dead_owners(self._require_store(), ("daemon",))

    # ------------------------------------------------------------------ signals
    def _install_signals(self) -> None:
        self._previous: dict[int, Any] = {}
        if threading.current_thread() is not threading.main_thread():
            return
        for signum, handler in ((signal.SIGTERM, self._on_stop), (signal.SIGINT, self._on_stop),
                                (signal.SIGHUP, self._on_reload)):
            self._previous[signum] = signal.signal(signum, handler)

    def _restore_signals(self) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)

    def _on_stop(self, signum: int, _frame: FrameType | None) -> None:
        self._signals.append(signal.Signals(signum).name)
        self._stop.set()
        self._wake.set()

    def _on_reload(self, signum: int, _frame: FrameType | None) -> None:
        self._signals.append(signal.Signals(signum).name)
        self._reload.set()
        self._wake.set()

    def _drain_signals(self) -> list[str]:
        names, self._signals = self._signals, []
        return names

    def request_stop(self) -> None:
        """Stop as SIGTERM would (for embedding and benchmarks)."""
        self._stop.set()
        self._wake.set()

    def request_reload(self) -> None:
        self._reload.set()
        self._wake.set()

    # ------------------------------------------------------------------ context and reload
    def _build_context(self, config: Config, previous: Any) -> Any:
        """A PollContext for ``config``; reuses the previous fetcher and clusterer when their settings did not
        change. Raises MonitorError (bad rules...) before anything is swapped."""
        from monitor import pipeline
        from monitor.fetch import Fetcher
        from monitor.stories import StoryClusterer

        ruleset = pipeline.compile_ruleset(config)
        settings = pipeline.fetch_settings(config)
        if previous is not None and pipeline.fetch_settings(previous.config) == settings:
            fetcher = previous.fetcher
        else:
            fetcher = Fetcher(settings)
        if previous is not None and previous.config.monitor.story_window == config.monitor.story_window:
            clusterer = previous.clusterer
        else:
            if previous is not None:
                pipeline.flush_clusterer(self._require_store(), previous.clusterer)
            clusterer = StoryClusterer(window=config.monitor.story_window)
        # Feeds are parsed in the polling threads, with their articles' story features: before, not
        # inside, the feed's write transaction.
        return pipeline.PollContext(store=self._require_store(), fetcher=fetcher, config=config,
                                    ruleset=ruleset, clusterer=clusterer, known_outage=self._network.is_outage_error,
                                    parser=pipeline.FeedParser(1, tuning=clusterer.tuning))

    def reload(self) -> bool:
        """Re-read the config file; apply it, or keep the running one when it is invalid. True when applied."""
        self.notifier.reloading()
        try:
            try:
                config = load_config(self.config_path)
                ctx = self._build_context(config, previous=self._ctx)
            except MonitorError as exc:
                log.error("config reload rejected, keeping the running config path=%s error=%s",
                          self.config_path, exc)
                return False
            try:
                self._require_store().sync_feeds(config.feeds)
            except StoreError as exc:
                log.error("config reload failed to update the feeds, keeping the running config error=%s", exc)
                return False
            old = self._ctx
            previous_config = self.config
            self._ctx = ctx
            self.config = config
            self._bring_forward_changed(previous_config, config)
            if config.monitor.database != previous_config.monitor.database:
                log.warning("monitor.database changed in the config: a reload keeps the open archive; a restart "
                            "applies it (unless --db or NEWSMON_DB names the archive) db=%s configured=%s",
                            self.db_path, config.monitor.database)
            if old is not None and old.fetcher is not ctx.fetcher:
                self._retired_fetchers.append(old.fetcher)  # in-flight polls may still use it; closed at exit
            self._network.min_hosts = _min_outage_hosts(config)
            if self._dispatcher is not None:
                self._dispatcher.resize(config.monitor.concurrency, config.monitor.per_host)
            enabled = sum(1 for feed in config.feeds if feed.enabled)
            log.info("config reloaded path=%s feeds=%d rules=%d channels=%d",
                     self.config_path, enabled, len(config.rules), len(config.channels))
            return True
        finally:
            self.notifier.status(self._status_line())
            self.notifier.notify("READY=1")

    def _bring_forward_changed(self, before: Config, after: Config) -> None:
        """Feeds whose URL changed are polled now; feeds whose interval got shorter are polled by the new one."""
        now = utcnow()
        schedule = []
        for feed in after.feeds:
            old = before.feed(feed.name)
            if old is None or not feed.enabled:
                continue
            if old.url != feed.url:
                schedule.append((feed.name, now))
            elif after.feed_interval(feed) < before.feed_interval(old):
                schedule.append((feed.name, next_check(
                    now=now, interval=after.feed_interval(feed), outcome="skipped", consecutive_errors=0,
                    retry_after=None, cache_max_age=None, ttl_minutes=None, settings=after.monitor,
                    feed_name=feed.name,
                )))
        if schedule:
            with self._require_store().transaction() as conn:
                moved = leases.bring_forward(conn, schedule)
            log.info("reload rescheduled feeds=%d", moved)

    def _bring_forward_far_checks(self) -> None:
        """A next check later than any schedule can give from now was written while the system clock was
        ahead (it has gone back since): that feed would not be polled until the clock caught up again."""
        now = utcnow()
        config = self.config
        enabled = [feed for feed in config.feeds if feed.enabled]
        beyond = {feed.name: now + longest_wait(config.feed_interval(feed), config.monitor) for feed in enabled}
        with self._require_store().transaction() as conn:
            moved = leases.bring_forward(conn, [(feed.name, now) for feed in enabled], beyond)
        if moved:
            log.warning("feeds scheduled further ahead than any interval allows are checked now (the system "
                        "clock went back) feeds=%d", moved)

    # ------------------------------------------------------------------ polling
    def _require_store(self) -> Store:
        if self._store is None:
            raise StoreError("the daemon's archive is not open")
        return self._store

    def _find_due(self, now: datetime, limit: int) -> list[DueFeed]:
        store = self._require_store()
        with store.reading() as conn:
            return leases.due_feed_rows(conn, now, limit=limit)

    def _poll_one(self, name: str) -> FeedPollResult:
        from monitor.pipeline import refresh_feed

        # The precise time (not whole seconds), so that the next check is rounded up from the real poll time
        # and a short interval or a Retry-After is never undercut by the fraction of a second.
        return refresh_feed(self._ctx, name, owner=self.owner, now=_now_precise())

    def _after_poll(self, feed: DueFeed, result: FeedPollResult) -> None:
        forgiven = self._network.observe(feed.name, feed.host, result)
        if not forgiven:
            return
        now = utcnow()
        config = self.config
        schedule = []
        for name in forgiven:
            feed_config = config.feed(name)
            if feed_config is None:
                continue
            schedule.append((name, next_check(
                now=now, interval=config.feed_interval(feed_config), outcome="skipped", consecutive_errors=0,
                retry_after=None, cache_max_age=None, ttl_minutes=None, settings=config.monitor, feed_name=name,
            )))
        with self._require_store().transaction() as conn:
            changed = leases.forgive_network_errors(conn, schedule)
        if self._dispatcher is not None:
            self._dispatcher.stats.forgiven += changed
        log.debug("network outage: errors not counted feeds=%d", changed)

    # ------------------------------------------------------------------ jobs
    def _job_specs(self) -> list[JobSpec]:
        o = self.options
        return [
            JobSpec("tick", self.tick, timedelta(seconds=o.tick)),
            JobSpec("deliver", self.deliver, timedelta(seconds=o.deliver_every), timedelta(seconds=o.tick)),
            JobSpec("retention", self.retention, timedelta(seconds=o.retention_every),
                    timedelta(seconds=o.retention_first)),
            JobSpec("upkeep", self.upkeep, timedelta(seconds=o.upkeep_every), timedelta(seconds=o.upkeep_every)),
        ]

    def tick(self) -> None:
        """Heartbeat and watchdog, then dispatch due feeds for most of one tick period."""
        if self._stop.is_set():
            return
        self._ticks += 1
        self.notifier.watchdog()
        self._write_heartbeat()
        if self._ticks % 5 == 1:
            self.notifier.status(self._status_line())
        dispatcher = self._dispatcher
        if dispatcher is not None:
            dispatcher.dispatch(budget=self.options.tick * 0.8)

    def deliver(self) -> None:
        """Alert delivery and digests (the alerts package); logged once when it is not there."""
        try:
            from monitor import alerts
        except ImportError as exc:
            self._log_alerts_missing(str(exc))
            return
        deliver_pending: Callable[..., Any] | None = getattr(alerts, "deliver_pending", None)
        run_digests: Callable[..., Any] | None = getattr(alerts, "run_digests", None)
        if deliver_pending is None and run_digests is None:
            self._log_alerts_missing("monitor.alerts has no deliver_pending/run_digests")
            return
        store, config = self._require_store(), self.config
        if run_digests is not None:
            run_digests(store, config, now=utcnow())
        if deliver_pending is not None:
            deliver_pending(store, config, now=utcnow())

    def _log_alerts_missing(self, why: str) -> None:
        if not self._missing_alerts_logged:
            log.warning("alert delivery is not available, alerts stay in the outbox reason=%s", why)
            self._missing_alerts_logged = True

    def retention(self) -> None:
        result = run_retention(self._require_store(), now=utcnow(), retention=self.config.monitor.retention,
                               story_window=self.config.monitor.story_window, stop=self._stop.is_set)
        log.debug("retention done articles=%d stories=%d fetch_log=%d",
                  result.articles, result.stories, result.fetch_log)

    def upkeep(self) -> None:
        """WAL checkpoint (on a connection of its own, so polls are not held up) and, hourly, PRAGMA optimize."""
        try:
            conn = sqlite3.connect(self.db_path, timeout=30, isolation_level=None)
        except sqlite3.Error as exc:
            raise StoreError(f"upkeep cannot open {self.db_path}: {exc}") from exc
        try:
            busy, wal_pages, done = checkpoint(conn)
        finally:
            conn.close()
        log.debug("wal checkpoint busy=%d wal_pages=%d checkpointed=%d", busy, wal_pages, done)
        if time.monotonic() - self._last_optimize >= self.options.optimize_every:
            with self._require_store().reading() as store_conn:
                optimize(store_conn)
            self._last_optimize = time.monotonic()

    # ------------------------------------------------------------------ heartbeat and status
    def _write_start(self) -> None:
        """Claim the archive with the start heartbeat; refused (StoreError) while another daemon's heartbeat says
        it runs on this archive, before this one changes anything: two daemons would each report the other's
        state in ``newsmon status``, and the first to stop would mark the archive's daemon stopped."""
        with self._require_store().transaction() as conn:
            other = daemon_state(read_heartbeat(conn), now=utcnow())
            # The same pid on this host is a daemon before a restart that reused it (a container's pids repeat).
            earlier_self = other.pid == os.getpid() and other.host == socket.gethostname()
            if other.running and not earlier_self:
                raise StoreError(
                    f"another newsmon daemon runs on the archive {self.db_path} (pid {other.pid} on {other.host}, "
                    f"last tick {other.last_tick}): stop it first (`newsmon poll` may run beside it)"
                )
            write_heartbeat(conn, {
                "pid": str(os.getpid()), "host": socket.gethostname(), "started": to_iso(self.started),
                "last_tick": to_iso(utcnow()), "stopped": None, "version": __version__,
                "config": str(self.config_path), "owner": self.owner,
            })

    def _stats(self) -> dict[str, Any]:
        dispatcher = self._dispatcher
        if dispatcher is None:
            return {}
        p50, p95 = dispatcher.lag_percentiles()
        return {
            "polls": dispatcher.stats.polls, "poll_errors": dispatcher.stats.errors,
            "in_flight": dispatcher.inflight, "lag_p50_s": round(p50, 3), "lag_p95_s": round(p95, 3),
            "network": "down" if self._network.down else "up",
        }

    def _write_heartbeat(self) -> None:
        with self._require_store().transaction() as conn:
            write_heartbeat(conn, {"last_tick": to_iso(utcnow()), "stats": self._stats()})

    def _status_line(self) -> str:
        stats = self._stats()
        return (f"polls={stats.get('polls', 0)} errors={stats.get('poll_errors', 0)} "
                f"in_flight={stats.get('in_flight', 0)} lag_p95={stats.get('lag_p95_s', 0)}s "
                f"network={stats.get('network', 'up')}")

    def _check_watchdog(self) -> None:
        interval = watchdog_interval()
        if interval is not None and interval < self.options.tick * 2:
            log.warning("WatchdogSec is shorter than two ticks watchdog_s=%.1f tick_s=%.1f", interval,
                        self.options.tick)

    # ------------------------------------------------------------------ shutdown
    def _shutdown(self) -> int:
        grace = self.config.monitor.shutdown_grace.total_seconds()
        dispatcher = self._dispatcher
        inflight = dispatcher.inflight_names() if dispatcher else []
        log.info("stopping in_flight=%d grace_s=%.0f", len(inflight), grace)
        self.notifier.stopping(f"stopping: finishing {len(inflight)} polls")
        deadline = time.monotonic() + grace
        # No new job runs from now on; running ones (a tick, a delivery) finish on their own threads.
        jobs_finished = threading.Thread(target=self._stop_jobs, name="stop-jobs", daemon=True)
        jobs_finished.start()
        idle = True
        if dispatcher is not None:
            dispatcher.stop_accepting()
            idle = dispatcher.wait_idle(grace)
            if not idle:
                log.warning("shutdown grace over, abandoning polls (their leases are released) feeds=%s",
                            ",".join(dispatcher.inflight_names()))
            dispatcher.shutdown(wait=False)
        jobs_finished.join(timeout=max(deadline - time.monotonic(), 1.0))
        if jobs_finished.is_alive():
            log.warning("shutdown grace over while a job was still running (it is abandoned) jobs=%s",
                        ",".join(self._jobs.running()) if self._jobs is not None else "")
            idle = False
        store = self._require_store()
        with store.transaction() as conn:
            if self._ctx is not None:
                self._ctx.clusterer.flush(conn)  # the document counts still held in memory
            released = leases.release_all_leases(conn, self.owner)
            write_heartbeat(conn, {"pid": None, "stopped": to_iso(utcnow()), "last_tick": to_iso(utcnow()),
                                   "stats": self._stats()})
        try:
            with store.reading() as conn:
                checkpoint(conn)
        except StoreError as exc:
            log.warning("final WAL checkpoint failed error=%s", exc)
        self._close_fetchers()
        store.close()
        self._store = None
        log.info("stopped %s polls=%d released_leases=%d", "cleanly" if idle else "at the grace, work abandoned",
                 dispatcher.stats.polls if dispatcher else 0, released)
        self.notifier.close()
        if not idle:
            # Abandoned polls or jobs still sit in worker threads; the interpreter would wait for them at exit.
            logging.shutdown()
            os._exit(0)
        return 0

    def _stop_jobs(self) -> None:
        if self._jobs is not None:
            self._jobs.shutdown(wait=True)

    def _close_fetchers(self) -> None:
        fetchers = list(self._retired_fetchers)
        if self._ctx is not None:
            fetchers.append(self._ctx.fetcher)
        for fetcher in fetchers:
            close = getattr(fetcher, "close", None)
            if close is not None:
                close()
        self._retired_fetchers.clear()


def _min_outage_hosts(config: Config) -> int:
    """How many hosts must fail at once before the network is declared down (0: detection off)."""
    hosts = {feed_host(feed.url) for feed in config.feeds if feed.enabled}
    if len(hosts) < 2:
        return 0
    return min(3, len(hosts))


def run_daemon(config: Config, *, config_path: Path, db_path: Path) -> int:
    """Entry point of ``newsmon run``."""
    return Daemon(config=config, config_path=config_path, db_path=db_path).run()
