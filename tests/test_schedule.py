"""Polling policy (monitor.schedule) and the due/lease SQL (monitor.store.leases) on a real SQLite file."""

from __future__ import annotations

import sqlite3
import threading
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from monitor.config import MonitorSettings
from monitor.schedule import (
    backoff_delay,
    is_failing,
    jitter_factor,
    next_check,
    percentile,
)
from monitor.store.leases import (
    acquire_lease,
    due_feed_rows,
    due_feeds,
    forgive_network_errors,
    release_all_leases,
    release_lease,
)
from monitor.store.schema import MIGRATIONS
from monitor.timeutil import to_iso

NOW = datetime(2026, 2, 17, 8, 0, 0, tzinfo=timezone.utc)
SETTINGS = MonitorSettings(
    backoff_max=timedelta(hours=6), cache_max=timedelta(hours=6), failing_after=5
)


def delay_of(**overrides: object) -> float:
    args: dict[str, object] = dict(
        now=NOW,
        interval=timedelta(minutes=15),
        outcome="ok",
        consecutive_errors=0,
        retry_after=None,
        cache_max_age=None,
        ttl_minutes=None,
        settings=SETTINGS,
        feed_name="Al Jazeera",
    )
    args.update(overrides)
    return (next_check(**args) - NOW).total_seconds()  # type: ignore[arg-type]


# --- policy -----------------------------------------------------------------------------------------------


def test_success_uses_interval_with_jitter_within_ten_percent() -> None:
    delay = delay_of()
    assert 0.9 * 900 <= delay <= 1.1 * 900 + 1


def test_jitter_is_deterministic_per_feed_and_spreads_feeds() -> None:
    assert delay_of(feed_name="a") == delay_of(feed_name="a")
    factors = {round(jitter_factor(f"feed-{i}"), 6) for i in range(200)}
    assert len(factors) > 150
    assert all(0.9 <= f <= 1.1 for f in factors)
    assert min(factors) < 0.93 and max(factors) > 1.07


def test_result_is_a_whole_second_after_now() -> None:
    for name in ("a", "b", "c", "d"):
        when = next_check(
            now=NOW, interval=timedelta(seconds=1), outcome="ok", consecutive_errors=0, retry_after=None,
            cache_max_age=None, ttl_minutes=None, settings=SETTINGS, feed_name=name,
        )
        assert when.microsecond == 0
        assert when >= NOW + timedelta(seconds=1)


def test_cache_max_age_is_a_floor_bounded_by_cache_max() -> None:
    base = delay_of()
    # shorter than the interval: ignored (we never poll faster because a server allows it)
    assert delay_of(cache_max_age=60) == base
    # longer: honoured
    assert delay_of(cache_max_age=3600) == pytest.approx(3600 * jitter_factor("Al Jazeera"), abs=1)
    # absurd: bounded by cache_max
    assert delay_of(cache_max_age=10**9) == pytest.approx(6 * 3600 * jitter_factor("Al Jazeera"), abs=1)


def test_rss_ttl_is_a_floor_in_minutes() -> None:
    assert delay_of(ttl_minutes=60) == pytest.approx(3600 * jitter_factor("Al Jazeera"), abs=1)
    assert delay_of(ttl_minutes=60, cache_max_age=7200) == pytest.approx(7200 * jitter_factor("Al Jazeera"), abs=1)
    short = MonitorSettings(cache_max=timedelta(minutes=30))
    assert delay_of(ttl_minutes=600, settings=short) == pytest.approx(1800 * jitter_factor("Al Jazeera"), abs=1)


def test_hints_do_not_apply_after_an_error() -> None:
    assert delay_of(outcome="error", consecutive_errors=1, ttl_minutes=600) == delay_of()


def test_exponential_backoff_capped() -> None:
    j = jitter_factor("Al Jazeera")
    got = [delay_of(outcome="error", consecutive_errors=n) for n in range(1, 10)]
    expected = [min(900 * 2 ** (n - 1), 6 * 3600) * j for n in range(1, 10)]
    assert got == pytest.approx(expected, abs=1)
    assert got[-1] == got[-2]  # capped
    assert delay_of(outcome="error", consecutive_errors=10_000) == pytest.approx(6 * 3600 * j, abs=1)


def test_backoff_cap_never_below_the_interval() -> None:
    assert backoff_delay(86400, 3, 3600) == 86400


def test_retry_after_is_honoured_as_a_floor() -> None:
    assert delay_of(outcome="error", consecutive_errors=1, retry_after=5000) == 5000
    # shorter than the backoff: the backoff wins
    assert delay_of(outcome="error", consecutive_errors=3, retry_after=10) == delay_of(outcome="error", consecutive_errors=3)
    # a server cannot park a feed for a year
    assert delay_of(outcome="error", consecutive_errors=1, retry_after=365 * 86400) == 6 * 3600


def test_short_intervals_for_tests() -> None:
    assert 1 <= delay_of(interval=timedelta(seconds=1)) <= 2
    assert 2 <= delay_of(interval=timedelta(seconds=1), outcome="error", consecutive_errors=2, retry_after=2.0) <= 3


def test_is_failing() -> None:
    assert not is_failing(4, SETTINGS)
    assert is_failing(5, SETTINGS)
    assert is_failing(6, SETTINGS)


@given(
    interval_s=st.integers(min_value=1, max_value=7 * 86400),
    errors=st.integers(min_value=0, max_value=200),
    retry_after=st.one_of(st.none(), st.floats(min_value=-10, max_value=1e9, allow_nan=False)),
    max_age=st.one_of(st.none(), st.floats(min_value=-10, max_value=1e9, allow_nan=False)),
    ttl=st.one_of(st.none(), st.integers(min_value=-5, max_value=10**7)),
    outcome=st.sampled_from(["ok", "not_modified", "unchanged", "error", "skipped"]),
    name=st.text(max_size=30),
)
def test_never_abandons_a_feed(interval_s, errors, retry_after, max_age, ttl, outcome, name) -> None:
    when = next_check(
        now=NOW, interval=timedelta(seconds=interval_s), outcome=outcome, consecutive_errors=errors,
        retry_after=retry_after, cache_max_age=max_age, ttl_minutes=ttl, settings=SETTINGS, feed_name=name,
    )
    delay = (when - NOW).total_seconds()
    assert delay >= 1
    assert delay <= 1.1 * max(interval_s, 6 * 3600) + 1


def test_percentile() -> None:
    assert percentile([], 0.5) == 0.0
    assert percentile([3.0, 1.0, 2.0], 0.5) == 2.0
    assert percentile(list(map(float, range(1, 101))), 0.95) == 95.0


# --- due feeds and leases on a real archive ---------------------------------------------------------------


def make_db(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, timeout=10)
    conn.execute("PRAGMA journal_mode=WAL")
    for migration in MIGRATIONS:
        migration(conn)
    conn.commit()
    return conn


def add_feed(conn: sqlite3.Connection, name: str, *, next_check: str | None = None, **cols: object) -> None:
    values = {"name": name, "url": f"http://127.0.0.1:9/{name}", "created": to_iso(NOW), "next_check": next_check}
    values.update(cols)
    keys = ", ".join(values)
    marks = ", ".join("?" for _ in values)
    conn.execute(f"INSERT INTO feeds ({keys}) VALUES ({marks})", tuple(values.values()))
    conn.commit()


@pytest.fixture
def db(tmp_path: Path) -> sqlite3.Connection:
    conn = make_db(tmp_path / "archive.db")
    yield conn
    conn.close()


def test_due_feeds_order_and_filters(db: sqlite3.Connection) -> None:
    add_feed(db, "later", next_check=to_iso(NOW + timedelta(minutes=1)))
    add_feed(db, "late", next_check=to_iso(NOW - timedelta(minutes=5)))
    add_feed(db, "now", next_check=to_iso(NOW))
    add_feed(db, "new")
    add_feed(db, "disabled", enabled=0)
    add_feed(db, "gone", gone=1)
    add_feed(db, "leased", lease_owner="x", lease_until=to_iso(NOW + timedelta(seconds=30)))
    add_feed(db, "expired-lease", next_check=to_iso(NOW - timedelta(minutes=1)),
             lease_owner="x", lease_until=to_iso(NOW - timedelta(seconds=1)))
    assert due_feeds(db, NOW) == ["new", "late", "expired-lease", "now"]
    assert due_feeds(db, NOW, limit=2) == ["new", "late"]
    rows = due_feed_rows(db, NOW, limit=1)
    assert rows[0].host == "127.0.0.1" and rows[0].next_check is None


def test_due_feeds_uses_permanent_url(db: sqlite3.Connection) -> None:
    add_feed(db, "moved", permanent_url="https://new.example.org/feed")
    assert due_feed_rows(db, NOW)[0].host == "new.example.org"


def test_lease_is_exclusive_until_it_expires(db: sqlite3.Connection, tmp_path: Path) -> None:
    add_feed(db, "f")
    other = sqlite3.connect(tmp_path / "archive.db", timeout=10)
    until = NOW + timedelta(seconds=60)
    assert acquire_lease(db, "f", "daemon:1", until=until, now=NOW)
    assert not acquire_lease(other, "f", "poll:2", until=until, now=NOW)
    assert due_feeds(other, NOW) == []
    # the holder may renew
    assert acquire_lease(db, "f", "daemon:1", until=until + timedelta(seconds=60), now=NOW)
    # expired: someone else may take it, and the old holder's release leaves the new lease alone
    later = until + timedelta(seconds=61)
    assert acquire_lease(other, "f", "poll:2", until=later + timedelta(seconds=60), now=later)
    release_lease(db, "f", "daemon:1")
    assert not acquire_lease(db, "f", "daemon:1", until=later + timedelta(seconds=60), now=later)
    release_lease(other, "f", "poll:2")
    assert acquire_lease(db, "f", "daemon:1", until=later + timedelta(seconds=60), now=later)
    assert release_all_leases(db, "daemon:1") == 1
    assert not acquire_lease(db, "missing", "daemon:1", until=until, now=NOW)
    other.close()


def test_lease_race_between_processes_has_one_winner(tmp_path: Path) -> None:
    conn = make_db(tmp_path / "race.db")
    for i in range(50):
        add_feed(conn, f"f{i}")
    conn.close()
    wins: dict[str, list[str]] = {}
    lock = threading.Lock()
    barrier = threading.Barrier(4)

    def contender(owner: str) -> None:
        local = sqlite3.connect(tmp_path / "race.db", timeout=30)
        barrier.wait()
        for i in range(50):
            if acquire_lease(local, f"f{i}", owner, until=NOW + timedelta(minutes=1), now=NOW):
                with lock:
                    wins.setdefault(f"f{i}", []).append(owner)
        local.close()

    threads = [threading.Thread(target=contender, args=(f"owner{n}",)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(wins) == sorted(f"f{i}" for i in range(50))
    assert all(len(owners) == 1 for owners in wins.values())


def test_forgive_network_errors(db: sqlite3.Connection) -> None:
    add_feed(db, "a", consecutive_errors=1, next_check=to_iso(NOW + timedelta(hours=1)))
    add_feed(db, "b", consecutive_errors=3)
    add_feed(db, "c", consecutive_errors=0)
    soon = NOW + timedelta(minutes=15)
    assert forgive_network_errors(db, [("a", soon), ("b", soon), ("c", soon)]) == 2
    rows = dict(db.execute("SELECT name, consecutive_errors || ' ' || COALESCE(next_check, '-') FROM feeds"))
    assert rows == {"a": f"0 {to_iso(soon)}", "b": f"2 {to_iso(soon)}", "c": "0 -"}
    assert forgive_network_errors(db, []) == 0


def test_lease_inside_a_store_transaction_is_committed_by_it(tmp_path: Path) -> None:
    from monitor.store import Store

    store = Store.open(tmp_path / "store.db")
    with store.transaction() as conn:
        conn.execute("INSERT INTO feeds (name, url, created) VALUES ('f', 'http://127.0.0.1:9/', ?)", (to_iso(NOW),))
        assert acquire_lease(conn, "f", "me", until=NOW + timedelta(minutes=1), now=NOW)
        assert conn.in_transaction
    other = sqlite3.connect(tmp_path / "store.db")
    assert other.execute("SELECT lease_owner FROM feeds").fetchone() == ("me",)
    assert acquire_lease(store.conn, "f", "me", until=NOW + timedelta(minutes=2), now=NOW)  # autocommit mode
    assert not acquire_lease(other, "f", "you", until=NOW + timedelta(minutes=2), now=NOW)
    other.close()
    store.close()


# --- the poll pool and the outage rule (monitor.scheduler) ------------------------------------------------


def test_dispatcher_respects_concurrency_and_per_host() -> None:
    import time as time_module
    from collections import Counter

    from monitor.models import FeedPollResult
    from monitor.scheduler import Dispatcher
    from monitor.store.leases import DueFeed

    feeds = [DueFeed(name=f"f{i}", url=f"http://host{i % 3}.example.org/{i}", next_check=None) for i in range(30)]
    done: set[str] = set()
    active: Counter[str] = Counter()
    peak = {"total": 0, "host": 0}
    lock = threading.Lock()

    def find_due(now: datetime, limit: int) -> list[DueFeed]:
        with lock:
            return [feed for feed in feeds if feed.name not in done][:limit]

    def poll(name: str) -> FeedPollResult:
        host = name_to_host[name]
        with lock:
            active[host] += 1
            peak["total"] = max(peak["total"], sum(active.values()))
            peak["host"] = max(peak["host"], max(active.values()))
        time_module.sleep(0.02)
        with lock:
            active[host] -= 1
            done.add(name)
        return FeedPollResult(feed=name, status="ok")

    name_to_host = {feed.name: feed.host for feed in feeds}
    dispatcher = Dispatcher(find_due=find_due, poll=poll, now=lambda: NOW, concurrency=4, per_host=1)
    deadline = time_module.monotonic() + 30
    while len(done) < 30 and time_module.monotonic() < deadline:
        dispatcher.dispatch(budget=0.5)
    assert dispatcher.wait_idle(10)
    dispatcher.shutdown(wait=True)
    assert len(done) == 30
    assert peak["host"] == 1          # per_host
    assert peak["total"] <= 3         # three hosts, one each (and never above concurrency)
    assert dispatcher.stats.polls == 30


def test_network_watch_tells_an_outage_from_dead_feeds() -> None:
    from monitor.models import FeedPollResult
    from monitor.scheduler import NetworkWatch

    def fail(name: str) -> FeedPollResult:
        return FeedPollResult(feed=name, status="error", error_kind="connect", error="refused")

    ok = FeedPollResult(feed="x", status="not_modified")
    watch = NetworkWatch(min_hosts=3)
    assert watch.observe("a", "h1", fail("a")) == []
    assert watch.observe("b", "h1", fail("b")) == []           # same host: could be one dead server
    assert watch.observe("c", "h2", ok) == []                    # someone answered: not an outage
    assert watch.observe("d", "h1", fail("d")) == []
    assert watch.observe("e", "h2", fail("e")) == []
    assert sorted(watch.observe("f", "h3", fail("f"))) == ["d", "e", "f"]   # three hosts in a row: down
    assert watch.down
    assert watch.observe("g", "h4", fail("g")) == ["g"]
    http_error = FeedPollResult(feed="h", status="error", error_kind="http_status", error="HTTP 500")
    assert watch.observe("h", "h5", http_error) == [] and not watch.down   # a server answered
    single = NetworkWatch(min_hosts=0)
    assert [single.observe(n, f"h{n}", fail(n)) for n in "abc"] == [[], [], []]


def test_bring_forward_only_moves_checks_earlier(db: sqlite3.Connection) -> None:
    from monitor.store.leases import bring_forward

    add_feed(db, "far", next_check=to_iso(NOW + timedelta(hours=1)))
    add_feed(db, "near", next_check=to_iso(NOW + timedelta(seconds=5)))
    soon = NOW + timedelta(minutes=1)
    assert bring_forward(db, [("far", soon), ("near", soon)]) == 1
    rows = dict(db.execute("SELECT name, next_check FROM feeds"))
    assert rows == {"far": to_iso(soon), "near": to_iso(NOW + timedelta(seconds=5))}


def test_a_poll_finishing_while_the_due_list_is_read_is_not_polled_again() -> None:
    """The due list is read without holding the dispatcher's lock: a poll that finishes meanwhile is
    still listed as due (its next check was not written when the list was read). It must not start
    a second time."""
    import time as time_module
    from collections import Counter

    from monitor.models import FeedPollResult
    from monitor.scheduler import Dispatcher
    from monitor.store.leases import DueFeed

    feeds = [DueFeed(name=f"f{i}", url=f"http://host{i}.example.org/feed", next_check=None) for i in range(2)]
    polls: Counter[str] = Counter()
    done: set[str] = set()
    lock = threading.Lock()
    calls = {"find_due": 0}

    def poll(name: str) -> FeedPollResult:
        time_module.sleep(0.05)
        with lock:
            polls[name] += 1
            done.add(name)
        return FeedPollResult(feed=name, status="ok")

    def find_due(now: datetime, limit: int) -> list[DueFeed]:
        calls["find_due"] += 1
        with lock:
            listed = [feed for feed in feeds if feed.name not in done]
        if calls["find_due"] == 2:  # a slow read: both polls finish before it returns
            deadline = time_module.monotonic() + 5
            while dispatcher.inflight and time_module.monotonic() < deadline:
                time_module.sleep(0.01)
        return listed

    dispatcher = Dispatcher(find_due=find_due, poll=poll, now=lambda: NOW, concurrency=2, per_host=1)
    dispatcher.dispatch(budget=0.3)
    assert dispatcher.wait_idle(5)
    dispatcher.shutdown(wait=True)
    assert calls["find_due"] >= 2
    assert polls == {"f0": 1, "f1": 1}
