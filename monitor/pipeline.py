"""``refresh_feed()``: the one function that runs the stages for one feed, in order.

fetch ─► parse ─► clean/normalise ─► (one transaction: articles, feed links, stories,
rule matches, alert outbox, the feed's new state) ─► the delivery job sends alerts later.

Fetching, parsing and normalising run outside the store's lock, so worker threads overlap
their network and CPU work; only the short write transaction is serialised.
"""

from __future__ import annotations

import hashlib
import logging
import sqlite3
import os
import threading
import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Callable, ContextManager, Iterator, Sequence, cast

from monitor import alerts as alerts_module
from monitor.config import Config, FeedConfig
from monitor.errors import FetchError, ParseError, PollInterrupted, StoreError
from monitor.fetch import Fetcher, FetchSettings, cache_max_age
from monitor.models import Article, FeedPollResult, FetchResult
from monitor.clean import clean_title
from monitor.parsejob import FeedMeta, init_worker, parse_job
from monitor.parserserver import parser_context, parser_workers
from monitor.rules import RuleMatch, RuleSet
from monitor.schedule import next_check
from monitor.store import Store
from monitor.store import leases
from monitor.store.matches import (
    feed_row_of, forget_matches_of_article, match_doc, matches_for_article, new_article_doc, record_matches,
)
from monitor.stories import Features, StoryClusterer, Tuning
from monitor.timeutil import from_iso, to_iso, utcnow

log = logging.getLogger(__name__)

LEASE_MARGIN = timedelta(seconds=60)


@dataclass
class PollContext:
    """Everything a refresh needs; one per process (the daemon rebuilds it on SIGHUP)."""

    store: Store
    fetcher: Fetcher
    config: Config
    ruleset: RuleSet
    clusterer: StoryClusterer
    parser: "FeedParser | None" = None     # None: parse in the calling thread, story features left to the writer
    # Given a failure's kind: is it part of a network outage the daemon has already reported? (Logged at
    # debug level then: one line for the outage, not one per feed and poll while it lasts.)
    known_outage: Callable[[str], bool] | None = None

    def close(self) -> None:
        """Write the clusterer's pending counts; release the network client and the parser processes
        (not the store: the caller owns it)."""
        try:
            flush_clusterer(self.store, self.clusterer)
        finally:
            self.fetcher.close()
            if self.parser is not None:
                self.parser.close()


def flush_clusterer(store: Store, clusterer: StoryClusterer) -> None:
    """Write the document counts a clusterer still holds in memory (statistics: a failure is logged)."""
    if not clusterer.frequencies.pending:
        return
    try:
        with store.transaction() as conn:
            clusterer.flush(conn)
    except StoreError as exc:
        log.warning("story statistics not written error=%s", exc)


@dataclass
class IngestResult:
    new: int = 0
    updated: int = 0
    seen: int = 0
    alerts: int = 0
    held_back: int = 0
    article_ids: list[int] = field(default_factory=list)


def fetch_settings(config: Config) -> FetchSettings:
    return FetchSettings.from_monitor(config.monitor)


def compile_ruleset(config: Config) -> RuleSet:
    return RuleSet.compile([(rule.name, rule.query) for rule in config.rules])


def build_context(config: Config, store: Store, *, parallel_parse: bool = False) -> PollContext:
    """A context over an open store; the caller owns the store and calls ``ctx.close()``.
    ``parallel_parse`` parses in one worker process per core (worth it when many feeds are polled);
    otherwise in the polling thread. Either way the articles' story features are computed with the
    parsing, before the feed's write transaction, which is then shorter."""
    workers = parser_workers() if parallel_parse else 1
    clusterer = StoryClusterer(window=config.monitor.story_window)
    ctx = PollContext(
        store=store,
        fetcher=Fetcher(fetch_settings(config)),
        config=config,
        ruleset=compile_ruleset(config),
        clusterer=clusterer,
        parser=FeedParser(workers, tuning=clusterer.tuning),
    )
    ctx.parser.start()  # worker processes, if any, start while the first feeds are fetched
    return ctx


# --------------------------------------------------------------------------- one feed


def refresh_feed(
    ctx: PollContext, feed_name: str, *, owner: str, now: datetime | None = None,
    gate: Callable[[], ContextManager[object]] = nullcontext,
) -> FeedPollResult:
    """Poll one configured feed once and store what it brings. Never raises for a feed's own failure:
    the error is recorded on the feed (kind, message, consecutive errors, next check) and returned.

    ``gate()`` is held while the feed is fetched and parsed, not while its result waits for the
    archive's one writer: a poll's concurrency limits the fetches in flight. The lease is taken
    before (holding a fetch slot while the lease waits for the writer left the parser processes
    idle); a feed that then waits for its slot longer than the lease's margin may be fetched by
    another process too (a fetch twice, nothing lost). The poll's time, unless given, is read once
    through the gate."""
    started = time.monotonic()
    leased_at = now or utcnow()
    feed = ctx.config.feed(feed_name)
    if feed is None:
        return FeedPollResult(feed=feed_name, status="error", error="not in the config", error_kind="config")
    row = ctx.store.feed_row(feed_name)
    if row is None:
        raise StoreError(f"feed {feed_name!r} is not in the archive: sync the config first")
    deadline = ctx.config.monitor.fetch_deadline
    with ctx.store.transaction() as conn:
        acquired = leases.acquire_lease(conn, feed_name, owner, until=leased_at + deadline + LEASE_MARGIN,
                                        now=leased_at)
    if not acquired:
        log.info("feed already being polled elsewhere feed=%s", feed_name)
        return FeedPollResult(feed=feed_name, status="skipped", error="being polled by another process")
    lease = _Lease(feed_name, owner)
    try:
        return _refresh_leased(ctx, feed, row, now=now, lease=lease, started=started, gate=gate)
    finally:
        if not lease.released:  # the poll ended before its last write (an error of the archive)
            with ctx.store.transaction() as conn:
                leases.release_lease(conn, feed_name, owner)


@dataclass
class _Lease:
    """The lease a refresh holds on its feed; the refresh's last transaction gives it back."""

    feed: str
    owner: str
    released: bool = False


@contextmanager
def _last_transaction(store: Store, lease: _Lease) -> Iterator[sqlite3.Connection]:
    """The feed's last write of a refresh, which also releases its lease (one transaction, not two)."""
    with store.transaction() as conn:
        yield conn
        leases.release_lease(conn, lease.feed, lease.owner)
    lease.released = True


class _NotPolled(Exception):
    """A feed left for the next poll (Ctrl-C came while it waited for a fetch slot)."""


@dataclass
class _Fetched:
    """What fetching and parsing one feed gave, before anything is written."""

    result: FetchResult | None = None  # None when the fetch failed (fetch_error)
    fetch_error: FetchError | None = None
    parse_error: ParseError | None = None
    unchanged: str = "not_modified"    # or "unchanged" (the same body as last time); when nothing was parsed
    body_hash: str = ""
    parsed: tuple[FeedMeta, list[Article], bool, list[Features] | None] | None = None


def _fetch_and_parse(ctx: PollContext, feed: FeedConfig, row: dict[str, Any], url: str, *, now: datetime) -> _Fetched:
    try:
        result = ctx.fetcher.fetch(url, etag=row.get("etag"), last_modified=row.get("last_modified"))
    except FetchError as exc:
        return _Fetched(fetch_error=exc)
    if result.not_modified:
        return _Fetched(result)
    body_hash = hashlib.sha256(result.body).hexdigest()
    if body_hash == row.get("body_hash"):
        return _Fetched(result, unchanged="unchanged")
    parser = ctx.parser or INLINE_PARSER
    try:
        return _Fetched(result, body_hash=body_hash, parsed=parser.parse(result, feed, now=now))
    except ParseError as exc:
        return _Fetched(result, parse_error=exc)


def _refresh_leased(
    ctx: PollContext, feed: FeedConfig, row: dict[str, Any], *, now: datetime | None, lease: _Lease,
    started: float, gate: Callable[[], ContextManager[object]],
) -> FeedPollResult:
    # A permanent redirect seen earlier is followed directly; the validators belong to the URL that sent
    # them (sync_feeds clears both when the configured URL changes).
    url = row.get("permanent_url") or feed.url
    with gate():
        now = now or utcnow()  # when the fetch starts, not when the feed began to wait for a slot
        fetched = _fetch_and_parse(ctx, feed, row, url, now=now)
    failed = fetched.fetch_error
    if failed is not None:
        return _record_failure(ctx, feed, row, lease, now=now, started=started, kind=failed.kind,
                               message=failed.message, http_status=failed.status, retry_after=failed.retry_after)
    result = cast(FetchResult, fetched.result)  # set whenever the fetch did not fail
    if fetched.parse_error is not None:
        return _record_failure(ctx, feed, row, lease, now=now, started=started, kind=fetched.parse_error.kind,
                               message=fetched.parse_error.message, http_status=result.status, retry_after=None)
    if fetched.parsed is None:
        return _record_unchanged(ctx, feed, row, result, lease, now=now, started=started, status=fetched.unchanged)
    parsed, articles, single_link, features = fetched.parsed
    body_hash = fetched.body_hash
    catch_up = _is_catch_up(ctx.config, feed, row, now)
    interval = ctx.config.feed_interval(feed)
    state = _success_state(ctx, feed, row, result, now=now, interval=interval, ttl=parsed.ttl_minutes)
    state.update(
        body_hash=body_hash,
        title=clean_title(parsed.title) or row.get("title"),
        bozo=parsed.bozo,
        ttl_s=parsed.ttl_minutes * 60 if parsed.ttl_minutes else None,
        single_link=int(single_link),
    )
    with _last_transaction(ctx.store, lease) as conn:
        outcome = _ingest(
            conn, ctx.store, row["id"], feed.name, articles, now=now, clusterer=ctx.clusterer,
            ruleset=ctx.ruleset, config=ctx.config, catch_up=catch_up, merge_urls=not single_link,
            first_poll=not row.get("first_polled"), features=features,
        )
        ctx.store.update_feed(conn, row["id"], polled_url=feed.url, **state)
        ctx.store.log_fetch(conn, row["id"], at=now, outcome="ok", http_status=result.status,
                            duration=time.monotonic() - started, new=outcome.new, updated=outcome.updated)
    if result.permanent_url:
        log.warning("feed moved permanently feed=%s old_url=%s new_url=%s (update the config)",
                    feed.name, url, result.permanent_url)
    if outcome.held_back:
        log.info("quiet catch-up feed=%s held_back=%d", feed.name, outcome.held_back)
    log.info("polled feed=%s status=%s new=%d updated=%d entries=%d", feed.name, result.status,
             outcome.new, outcome.updated, len(articles))
    return FeedPollResult(
        feed=feed.name, status="ok", http_status=result.status, new=outcome.new, updated=outcome.updated,
        seen=len(articles), alerts=outcome.alerts, held_back=outcome.held_back,
        elapsed=time.monotonic() - started,
    )


class FeedParser:
    """Parsing and normalising, the CPU-heavy stages, in a pool of worker processes so that a poll of
    many feeds uses every core (threads share one interpreter lock). A worker that dies (a parser
    crash, memory exhaustion on a hostile feed) fails only that feed, and the pool is rebuilt."""

    def __init__(self, workers: int | None = None, *, tuning: Tuning | None = None) -> None:
        self.workers = workers if workers is not None else parser_workers()
        self.tuning = tuning  # the clusterer's: its features are computed in the workers
        self._executor: ProcessPoolExecutor | None = None
        self._lock = threading.Lock()
        self._closed = False

    def start(self) -> None:
        """Start the worker processes now, in the background, so that the first feeds fetched do not
        wait while they start (each imports the parsing modules first)."""
        if self.workers > 1:
            threading.Thread(target=self._start_workers, name="parser-start", daemon=True).start()

    def _start_workers(self) -> None:
        with self._lock:
            if self._closed:
                return
            try:
                pool = self._pool_locked()
                for _ in range(self.workers):
                    pool.submit(int)  # a no-op: the executor starts one more process per job while none is idle
            except (OSError, BrokenProcessPool) as exc:  # no pool or process could be made (limits, memory)
                # Not fatal here: the first feed parsed tries again and fails with the cause.
                log.warning("parser processes could not be started ahead error=%s", exc)

    def _pool(self) -> ProcessPoolExecutor:
        with self._lock:
            return self._pool_locked()

    def _pool_locked(self) -> ProcessPoolExecutor:
        if self._executor is None:
            self._executor = ProcessPoolExecutor(max_workers=self.workers, mp_context=parser_context(),
                                                 initializer=init_worker, initargs=(os.getpid(),))
        return self._executor

    def parse(
        self, result: FetchResult, feed: FeedConfig, *, now: datetime
    ) -> tuple[FeedMeta, list[Article], bool, list[Features] | None]:
        """(feed facts, articles, whether URL merging is off, the articles' story features or None)."""
        if self.workers <= 1:
            outcome = parse_job(result.body, dict(result.headers), result.url, feed, now, self.tuning)
        else:
            pool: ProcessPoolExecutor | None = None
            try:
                pool = self._pool()
                outcome = pool.submit(parse_job, result.body, dict(result.headers), result.url, feed, now,
                                      self.tuning).result()
            except BrokenProcessPool as exc:  # a worker died (on this feed, or before it)
                self._drop(pool)
                log.error("parser process died feed=%s url=%s", feed.name, result.url)
                raise ParseError("the parser process died on this feed (memory or a parser crash)",
                                 kind="parser_crash") from exc
            except OSError as exc:  # the pool's pipes and locks, or its processes (started on submit): limits, memory
                self._drop(pool)
                log.error("parser processes could not be started feed=%s error=%s", feed.name, exc)
                raise ParseError(f"the parser processes could not be started: {exc}", kind="parser_crash") from exc
        if outcome[0] == "error":
            raise ParseError(outcome[2], kind=outcome[1])
        return outcome[1], outcome[2], outcome[3], outcome[4]

    def _drop(self, pool: ProcessPoolExecutor | None) -> None:
        """Forget a broken pool (the next feed gets a new one)."""
        if pool is None:
            return
        with self._lock:
            if self._executor is pool:
                self._executor = None
        pool.shutdown(wait=False, cancel_futures=True)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=True, cancel_futures=True)


INLINE_PARSER = FeedParser(workers=1)


def _is_catch_up(config: Config, feed: FeedConfig, row: dict[str, Any], now: datetime) -> bool:
    """The first poll of a feed, or a poll after downtime (no fetch for more than twice the interval
    and at least 30 minutes): alert only on recent entries."""
    if not row.get("first_polled"):
        return True
    last_fetch = from_iso(row.get("last_fetch"))
    if last_fetch is None:
        return True
    gap_allowed = max(2 * config.feed_interval(feed), timedelta(minutes=30))
    return now - last_fetch > gap_allowed


def _success_state(
    ctx: PollContext, feed: FeedConfig, row: dict[str, Any], result: FetchResult, *, now: datetime,
    interval: timedelta, ttl: int | None,
) -> dict[str, Any]:
    check = next_check(
        now=now, interval=interval, outcome="ok", consecutive_errors=0, retry_after=None,
        cache_max_age=cache_max_age(result.headers), ttl_minutes=ttl, settings=ctx.config.monitor,
        feed_name=feed.name,
    )
    state: dict[str, Any] = {
        "last_status": result.status,
        "last_error": None,
        "last_error_kind": None,
        "consecutive_errors": 0,
        "last_fetch": to_iso(now),
        "last_success": to_iso(now),
        "next_check": to_iso(check),
        "retry_after": None,
        "permanent_url": result.permanent_url or row.get("permanent_url"),
    }
    if not row.get("first_polled"):
        state["first_polled"] = to_iso(now)
    if not result.not_modified:
        state["etag"] = result.etag
        state["last_modified"] = result.last_modified
    return state


def _record_unchanged(
    ctx: PollContext, feed: FeedConfig, row: dict[str, Any], result: FetchResult, lease: _Lease, *, now: datetime,
    started: float, status: str,
) -> FeedPollResult:
    ttl = int(row["ttl_s"] // 60) if row.get("ttl_s") else None
    state = _success_state(ctx, feed, row, result, now=now, interval=ctx.config.feed_interval(feed), ttl=ttl)
    with _last_transaction(ctx.store, lease) as conn:
        ctx.store.update_feed(conn, row["id"], polled_url=feed.url, **state)
        ctx.store.log_fetch(conn, row["id"], at=now, outcome=status, http_status=result.status,
                            duration=time.monotonic() - started)
    log.debug("polled feed=%s status=%s outcome=%s", feed.name, result.status, status)
    return FeedPollResult(feed=feed.name, status=status, http_status=result.status,
                          elapsed=time.monotonic() - started)


def _record_failure(
    ctx: PollContext, feed: FeedConfig, row: dict[str, Any], lease: _Lease, *, now: datetime, started: float, kind: str,
    message: str, http_status: int | None, retry_after: float | None,
) -> FeedPollResult:
    errors = int(row.get("consecutive_errors") or 0) + 1
    gone = kind == "gone"
    check = None if gone else next_check(
        now=now, interval=ctx.config.feed_interval(feed), outcome="error", consecutive_errors=errors,
        retry_after=retry_after, cache_max_age=None, ttl_minutes=None, settings=ctx.config.monitor,
        feed_name=feed.name,
    )
    state: dict[str, Any] = {
        "last_status": http_status,
        "last_error": message,
        "last_error_kind": kind,
        "consecutive_errors": errors,
        "last_fetch": to_iso(now),
        "next_check": to_iso(check),
        "retry_after": to_iso(now + timedelta(seconds=retry_after)) if retry_after else None,
        "gone": int(gone),
    }
    with _last_transaction(ctx.store, lease) as conn:
        ctx.store.update_feed(conn, row["id"], polled_url=feed.url, **state)
        ctx.store.log_fetch(conn, row["id"], at=now, outcome="error", http_status=http_status,
                            duration=time.monotonic() - started, error_kind=kind, error=message)
    if gone:
        log.warning("feed is gone (HTTP 410), polling stopped feed=%s url=%s: remove it from the config",
                    feed.name, feed.url)
    else:
        quiet = ctx.known_outage is not None and ctx.known_outage(kind)
        log.log(logging.DEBUG if quiet else logging.WARNING, "poll failed feed=%s kind=%s errors=%d error=%s",
                feed.name, kind, errors, message)
    return FeedPollResult(feed=feed.name, status="error", http_status=http_status, error=message,
                          error_kind=kind, elapsed=time.monotonic() - started)


# --------------------------------------------------------------------------- storing


def ingest_articles(
    store: Store, feed_name: str, articles: Sequence[Article], *, now: datetime | None = None,
    clusterer: StoryClusterer | None = None, ruleset: RuleSet | None = None, config: Config | None = None,
    catch_up: bool = False, merge_urls: bool = True, feed_url: str | None = None,
    features: Sequence[Features] | None = None,
) -> IngestResult:
    """Store normalised articles of one feed in one transaction: article rows, feed links, stories,
    rule matches and the alert outbox. The same path ``refresh_feed`` uses after normalising (imports,
    benchmarks and the clustering evaluation call it directly). ``features``: the articles' story
    features computed ahead (``article_features`` with the clusterer's tuning, same order), as
    ``newsmon poll``'s parser workers do; None computes them here."""
    now = now or utcnow()
    own_clusterer = clusterer is None  # lives for this call only: its counts are written before it ends
    clusterer = clusterer or StoryClusterer(window=config.monitor.story_window if config else timedelta(days=7))
    with store.transaction() as conn:
        feed_id = store.ensure_feed(conn, feed_name, feed_url or f"urn:newsmon:feed:{feed_name}", now=now)
        result = _ingest(conn, store, feed_id, feed_name, articles, now=now, clusterer=clusterer, ruleset=ruleset,
                         config=config, catch_up=catch_up, merge_urls=merge_urls, first_poll=catch_up,
                         features=features)
        if own_clusterer:
            clusterer.flush(conn)
        return result


def _ingest(
    conn: sqlite3.Connection, store: Store, feed_id: int, feed_name: str, articles: Sequence[Article], *,
    now: datetime, clusterer: StoryClusterer, ruleset: RuleSet | None, config: Config | None, catch_up: bool,
    merge_urls: bool, first_poll: bool, features: Sequence[Features] | None = None,
) -> IngestResult:
    """``features``: the articles' story features, computed ahead (same order), or None."""
    result = IngestResult()
    own_feed: tuple[str, str | None] | None = None  # (name, tags) of this feed, read once
    for index, article in enumerate(articles):
        write = store.write_article(conn, feed_id, article, merge_urls=merge_urls, now=now)
        result.article_ids.append(write.article_id)
        if write.status == "new":
            result.new += 1
        elif write.status == "updated":
            result.updated += 1
        else:
            result.seen += 1
            if not write.linked:
                continue
        assignment = clusterer.assign(conn, write.article_id, article, feed_name, now=now,
                                      features=features[index] if features is not None else None)
        matches: list[RuleMatch] = []
        matched_before: set[str] = set()  # rules this article matched before this write
        if ruleset is not None and ruleset.rules:  # no rules: no match document to build
            if write.status == "new":
                if own_feed is None:
                    own_feed = feed_row_of(conn, feed_id)
                doc = new_article_doc(article, own_feed)
            else:
                doc = match_doc(conn, write.article_id)
                matched_before = set(matches_for_article(conn, write.article_id))
            matches = ruleset.match(doc)
            record_matches(conn, write.article_id, matches, now)
            if write.status == "updated":  # a revised text may no longer match a rule it matched before
                forget_matches_of_article(conn, write.article_id, (rule.name for rule in ruleset.rules),
                                          keep=(match.rule for match in matches))
        handled: set[str] = set()  # rules whose alerts enqueue_for_article saw to
        if config is not None and matches:
            enqueued = alerts_module.enqueue_for_article(
                conn, config, article_id=write.article_id, story_id=assignment.story_id,
                story_created=assignment.created, source_added=assignment.source_added, rule_matches=matches,
                article=article, feed_name=feed_name, catch_up=catch_up, first_poll=first_poll, now=now,
                matched_before=matched_before,
            )
            result.alerts += enqueued.created
            result.held_back += enqueued.held_back
            if not enqueued.held_back:
                handled = {match.rule for match in matches}
        if config is not None and assignment.source_added and not assignment.created:
            alerts_module.refresh_waiting_alerts(conn, story_id=assignment.story_id, feed_name=feed_name,
                                                 skip_rules=handled)
    return result


# --------------------------------------------------------------------------- many feeds


def poll_feeds(
    ctx: PollContext, names: Sequence[str], *, owner: str,
    on_result: Callable[[FeedPollResult], None] | None = None,
) -> list[FeedPollResult]:
    """Refresh several feeds once, ``concurrency`` at a time and at most ``per_host`` per host.
    One feed's failure never stops the others (it is recorded on that feed). A failure of the
    archive itself does: feeds not started yet are not polled, and the StoreError raised carries the
    results of those that were done (``poll_results``). So does Ctrl-C (``PollInterrupted``), after
    the feeds in flight have finished."""
    settings = ctx.config.monitor
    host_slots: dict[str, threading.BoundedSemaphore] = {}
    for name in names:
        feed = ctx.config.feed(name)
        host = leases.feed_host(feed.url) if feed else ""
        host_slots.setdefault(host, threading.BoundedSemaphore(settings.per_host))
    results: list[FeedPollResult] = []

    fetch_slots = threading.BoundedSemaphore(settings.concurrency)
    interrupted = threading.Event()

    def run(name: str) -> FeedPollResult:
        feed = ctx.config.feed(name)
        host_slot = host_slots[leases.feed_host(feed.url) if feed else ""]

        @contextmanager
        def gate() -> Iterator[None]:  # held while fetching and parsing (see refresh_feed)
            with fetch_slots, host_slot:
                if interrupted.is_set():  # Ctrl-C while this feed waited for its slot: not fetched
                    raise _NotPolled(name)  # (refresh_feed gives its lease back)
                yield

        return refresh_feed(ctx, name, owner=owner, gate=gate)

    failure: StoreError | PollInterrupted | None = None
    # Twice the concurrency in threads: as many feeds as ``concurrency`` fetch and parse while as many
    # more, parsed, wait for the writer (a poll of many feeds keeps the parser processes busy then).
    with ThreadPoolExecutor(max_workers=max(1, min(2 * settings.concurrency, len(names))),
                            thread_name_prefix="poll") as pool:
        futures = [pool.submit(run, name) for name in names]
        try:
            for future in as_completed(futures):
                if future.cancelled():
                    continue
                try:
                    result = future.result()
                except StoreError as exc:
                    if failure is None:
                        failure = exc
                        for pending in futures:
                            pending.cancel()  # the ones not started
                    continue
                results.append(result)
                if on_result is not None:
                    on_result(result)
        except KeyboardInterrupt:
            interrupted.set()
            for pending in futures:
                pending.cancel()  # the ones not started
            log.warning("poll interrupted: waiting for the feeds being fetched (each ends within fetch_deadline)")
        # Leaving the pool waits for the feeds in flight: each stores what it fetched, or nothing.
    if interrupted.is_set() and failure is None:  # an archive failure found first stays the one reported
        reported = {id(result) for result in results}  # the feeds that finished after the interrupt count too
        results.extend(future.result() for future in futures
                       if not future.cancelled() and future.exception() is None
                       and id(future.result()) not in reported)
        failure = PollInterrupted(f"interrupted: {len(names) - len(results)} feeds not polled (left for the next poll)")
    order = {name: index for index, name in enumerate(names)}
    results.sort(key=lambda result: order.get(result.feed, len(order)))
    if failure is not None:
        failure.poll_results = results
        raise failure
    return results
