"""Robustness of monitor.fetch against hostile or broken servers (issue "robustness").

Every case runs against the loopback feed server and asserts the error kind, that the fetch ended
within a bound derived from the settings passed (never a fixed wall-clock figure), and, where a
body is involved, that peak memory stayed within a few times ``max_body`` (tracemalloc, which also
counts the server thread: it streams from shared buffers and allocates little).
"""

from __future__ import annotations

import socket
import struct
import threading
import time
import tracemalloc
import zlib
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable, Iterator

import pytest

from monitor.errors import FetchError
from monitor.fetch import Fetcher, FetchSettings, _Deadline, _Watchdog
from tests.feedserver import FeedServer, RequestRecord, Response, repeat_chunks

FEED = b'<?xml version="1.0"?><rss version="2.0"><channel><title>ok</title></channel></rss>'
MB = 1_000_000
MAX_BODY = 2 * MB
MEMORY_BOUND = 4 * MAX_BODY
SLACK = 1.5  # seconds allowed beyond the limit that should stop a fetch (a loaded 2-core CI machine)


@dataclass
class Measure:
    elapsed: float = 0.0
    peak: int = 0


@contextmanager
def measured() -> Iterator[Measure]:
    measure = Measure()
    tracemalloc.start()
    started = time.monotonic()
    try:
        yield measure
    finally:
        measure.elapsed = time.monotonic() - started
        measure.peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()


def settings(**overrides: float) -> FetchSettings:
    values: dict[str, float] = {"connect_timeout": 2, "read_timeout": 5, "deadline": 10, "max_body": MAX_BODY}
    values.update(overrides)
    return FetchSettings(user_agent="newsmon-test/1", **values)  # type: ignore[arg-type]


def expect_error(fetcher: Fetcher, url: str) -> tuple[FetchError, Measure]:
    with measured() as measure:
        with pytest.raises(FetchError) as caught:
            fetcher.fetch(url)
    return caught.value, measure


def deflate_bomb(decompressed: int, *, gzip: bool) -> bytes:
    """A valid gzip (or zlib) stream of ``decompressed`` zero bytes, about 1/1000 of that size, built
    without compressing it all: after a full flush deflate output repeats block for block."""
    block_size = 1 << 20
    compressor = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    block = compressor.compress(bytes(block_size)) + compressor.flush(zlib.Z_FULL_FLUSH)
    blocks = decompressed // block_size
    body = block * blocks + compressor.flush()
    if gzip:
        crc = 0
        zeros = bytes(block_size)
        for _ in range(blocks):
            crc = zlib.crc32(zeros, crc)
        trailer = struct.pack("<II", crc, (blocks * block_size) & 0xFFFFFFFF)
        return b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff" + body + trailer
    adler = 1
    zeros = bytes(block_size)
    for _ in range(blocks):
        adler = zlib.adler32(zeros, adler)
    return b"\x78\xda" + body + struct.pack(">I", adler)


@pytest.fixture(scope="module")
def gzip_bomb() -> bytes:
    return deflate_bomb(1 << 30, gzip=True)


@pytest.fixture(scope="module")
def zlib_bomb() -> bytes:
    return deflate_bomb(1 << 30, gzip=False)


def test_bombs_are_what_they_claim() -> None:
    small = deflate_bomb(4 << 20, gzip=True)
    assert zlib.decompress(small, 16 + zlib.MAX_WBITS) == bytes(4 << 20)
    assert zlib.decompress(deflate_bomb(4 << 20, gzip=False)) == bytes(4 << 20)
    assert len(small) < 10_000


# --- size -------------------------------------------------------------------------------------


@pytest.mark.parametrize("encoding", ["gzip", "deflate"])
def test_compression_bomb_of_1_gb(feed_server: FeedServer, gzip_bomb: bytes, zlib_bomb: bytes, encoding: str) -> None:
    bomb = gzip_bomb if encoding == "gzip" else zlib_bomb
    feed_server.add("/bomb", bomb, headers={"Content-Encoding": encoding})
    limits = settings(deadline=20)
    with Fetcher(limits) as fetcher:
        error, measure = expect_error(fetcher, feed_server.url("/bomb"))
    assert error.kind == "too_large"
    assert error.message == "body larger than 2 MB after decompression"
    assert measure.elapsed < limits.deadline
    assert measure.peak < MEMORY_BOUND, f"peak {measure.peak} bytes"


def test_bomb_sent_chunked_without_length(feed_server: FeedServer, gzip_bomb: bytes) -> None:
    feed_server.add("/bomb", chunks=lambda: iter([gzip_bomb[i:i + 65536] for i in range(0, len(gzip_bomb), 65536)]),
                    headers={"Content-Encoding": "gzip"})
    with Fetcher(settings()) as fetcher:
        error, measure = expect_error(fetcher, feed_server.url("/bomb"))
    assert error.kind == "too_large" and measure.peak < MEMORY_BOUND


def test_50_mb_body_with_content_length_is_refused_before_reading(feed_server: FeedServer) -> None:
    body = bytes(50 * MB)
    feed_server.add("/big", body)
    with Fetcher(settings()) as fetcher:
        error, measure = expect_error(fetcher, feed_server.url("/big"))
    assert error.kind == "too_large"
    assert error.message == "body of 50 MB is larger than the 2 MB limit"
    assert measure.peak < MEMORY_BOUND


def test_50_mb_body_streamed_without_length(feed_server: FeedServer) -> None:
    feed_server.add("/big", chunks=repeat_chunks(b"<item/>" * 9000, 50 * MB))
    limits = settings()
    with Fetcher(limits) as fetcher:
        error, measure = expect_error(fetcher, feed_server.url("/big"))
    assert error.kind == "too_large"
    assert measure.elapsed < limits.deadline
    assert measure.peak < MEMORY_BOUND, f"peak {measure.peak} bytes"


def test_body_just_under_the_limit_is_accepted(feed_server: FeedServer) -> None:
    feed_server.add("/ok", chunks=repeat_chunks(b"x" * 65536, MAX_BODY), gzip=False)
    with Fetcher(settings()) as fetcher:
        assert len(fetcher.fetch(feed_server.url("/ok")).body) == MAX_BODY


# --- time -------------------------------------------------------------------------------------


def test_body_trickled_a_byte_at_a_time_hits_the_deadline(feed_server: FeedServer) -> None:
    feed_server.add("/slow", FEED * 10, trickle=0.2)
    limits = settings(deadline=2, read_timeout=30)
    with Fetcher(limits) as fetcher:
        error, measure = expect_error(fetcher, feed_server.url("/slow"))
    assert error.kind == "deadline"
    assert error.message == "no complete response within 2 s"
    assert measure.elapsed < limits.deadline + SLACK


def test_headers_trickled_hit_the_deadline(feed_server: FeedServer) -> None:
    feed_server.add("/slow", FEED, trickle=0.2, trickle_headers=True)
    limits = settings(deadline=2, read_timeout=30)
    with Fetcher(limits) as fetcher:
        error, measure = expect_error(fetcher, feed_server.url("/slow"))
    assert error.kind == "deadline"
    assert measure.elapsed < limits.deadline + SLACK


def test_silent_server_is_a_read_timeout(feed_server: FeedServer) -> None:
    feed_server.add("/silent", FEED, delay=30)
    limits = settings(read_timeout=1, deadline=10)
    with Fetcher(limits) as fetcher:
        error, measure = expect_error(fetcher, feed_server.url("/silent"))
    assert error.kind == "timeout"
    assert error.message == f"127.0.0.1:{feed_server.base_url.rsplit(':', 1)[1]} sent nothing for 1 s"
    assert measure.elapsed < limits.read_timeout + SLACK


def test_silent_server_with_deadline_shorter_than_read_timeout(feed_server: FeedServer) -> None:
    feed_server.add("/silent", FEED, delay=30)
    limits = settings(read_timeout=30, deadline=1.5, connect_timeout=1)
    with Fetcher(limits) as fetcher:
        error, measure = expect_error(fetcher, feed_server.url("/silent"))
    assert error.kind == "deadline"
    assert measure.elapsed < limits.deadline + SLACK


def test_deadline_covers_the_whole_redirect_chain(feed_server: FeedServer) -> None:
    # each hop answers in 0.6 s, well within the read timeout; the chain as a whole does not fit
    for index in range(5):
        feed_server.add(f"/r{index}", status=302, headers={"Location": f"/r{index + 1}"}, delay=0.6)
    feed_server.add("/r5", FEED)
    limits = settings(deadline=2, read_timeout=30)
    with Fetcher(limits) as fetcher:
        error, measure = expect_error(fetcher, feed_server.url("/r0"))
    assert error.kind == "deadline"
    assert measure.elapsed < limits.deadline + SLACK


def test_watchdog_shuts_a_blocked_socket_after_the_deadline() -> None:
    """The last resort behind the per-operation limits: a socket blocked without any timeout is shut."""
    watchdog = _Watchdog()
    left, right = socket.socketpair()
    try:
        deadline = _Deadline(0.3)
        deadline.watch(left)
        watchdog.arm(deadline)
        started = time.monotonic()
        left.settimeout(None)
        assert left.recv(1) == b""  # returns only because the watchdog shut the socket
        assert deadline.expired
        assert time.monotonic() - started < 0.3 + 0.5 + SLACK
    finally:
        watchdog.close()
        left.close()
        right.close()


def test_watchdog_leaves_finished_fetches_alone() -> None:
    watchdog = _Watchdog()
    left, right = socket.socketpair()
    try:
        deadline = _Deadline(0.05)
        deadline.watch(left)
        watchdog.arm(deadline)
        deadline.finish()
        time.sleep(0.8)
        right.sendall(b"x")
        assert left.recv(1) == b"x" and not deadline.expired
    finally:
        watchdog.close()
        left.close()
        right.close()


# --- broken connections and protocol ------------------------------------------------------------


def test_connection_reset_before_any_answer(feed_server: FeedServer) -> None:
    feed_server.add("/reset", reset=True)
    with Fetcher(settings()) as fetcher:
        error, measure = expect_error(fetcher, feed_server.url("/reset"))
    assert error.kind == "connect" and "reset" in error.message.lower()
    assert measure.elapsed < settings().read_timeout


def test_connection_reset_in_the_middle_of_the_body(feed_server: FeedServer) -> None:
    feed_server.add("/reset", FEED * 100, reset=True)
    with Fetcher(settings()) as fetcher:
        error, _ = expect_error(fetcher, feed_server.url("/reset"))
    assert error.kind in ("connect", "protocol")


def test_connection_closed_without_an_answer(feed_server: FeedServer) -> None:
    feed_server.add("/close", raw=lambda sock, record: sock.shutdown(socket.SHUT_RDWR))
    with Fetcher(settings()) as fetcher:
        error, _ = expect_error(fetcher, feed_server.url("/close"))
    assert error.kind == "protocol"


def test_endless_headers(feed_server: FeedServer) -> None:
    def endless(sock: socket.socket, record: RequestRecord) -> None:
        sock.sendall(b"HTTP/1.1 200 OK\r\n")
        try:
            for _ in range(100_000):
                sock.sendall(b"X-Padding: " + b"a" * 1000 + b"\r\n")
        except OSError:
            pass  # the client gave up, as it should

    feed_server.add("/headers", raw=endless)
    limits = settings()
    with Fetcher(limits) as fetcher:
        error, measure = expect_error(fetcher, feed_server.url("/headers"))
    assert error.kind == "protocol"
    assert measure.elapsed < limits.deadline
    assert measure.peak < MEMORY_BOUND


def test_endless_redirect_chain_to_new_urls(feed_server: FeedServer) -> None:
    def onwards(record: RequestRecord) -> Response:
        step = int(record.path.split("=", 1)[1]) if "=" in record.path else 0
        return Response(status=307, headers={"Location": f"/next?step={step + 1}"}, content_type=None)

    feed_server.add("/next", handler=onwards)
    with Fetcher(settings()) as fetcher:
        error, _ = expect_error(fetcher, feed_server.url("/next"))
    assert error.kind == "redirect"
    assert len(feed_server.requests) == 6


# --- status answers ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "status, headers, kind, retry_after",
    [(404, {}, "http_status", None), (410, {}, "gone", None), (429, {"Retry-After": "90"}, "rate_limited", 90.0),
     (500, {}, "http_status", None), (502, {}, "http_status", None), (503, {"Retry-After": "5"}, "unavailable", 5.0),
     (503, {}, "unavailable", None)],
)
def test_error_statuses(feed_server: FeedServer, status: int, headers: dict[str, str], kind: str,
                        retry_after: float | None) -> None:
    # an error page far larger than max_body is never read
    feed_server.add("/f", chunks=repeat_chunks(b"e" * 65536, 50 * MB), status=status, headers=headers)
    with Fetcher(settings()) as fetcher:
        error, measure = expect_error(fetcher, feed_server.url("/f"))
    assert (error.kind, error.status, error.retry_after) == (kind, status, retry_after)
    assert error.message.startswith(f"HTTP {status} ")
    assert measure.peak < MEMORY_BOUND


def test_redirect_loop(feed_server: FeedServer) -> None:
    feed_server.redirect("/a", "/b", 301)
    feed_server.redirect("/b", "/a", 301)
    with Fetcher(settings()) as fetcher:
        error, _ = expect_error(fetcher, feed_server.url("/a"))
    assert error.kind == "redirect"


def test_empty_body_is_fine_at_this_layer(feed_server: FeedServer) -> None:
    feed_server.add("/empty", b"", content_type="text/html")
    with Fetcher(settings()) as fetcher:
        result = fetcher.fetch(feed_server.url("/empty"))
    assert (result.status, result.body) == (200, b"")


# --- one fetcher through all of it --------------------------------------------------------------


def hostile_routes(server: FeedServer, bomb: bytes) -> dict[str, str]:
    """Install every hostile route; returns path -> expected error kind."""
    server.add("/bomb", bomb, headers={"Content-Encoding": "gzip"})
    server.add("/big", chunks=repeat_chunks(b"x" * 65536, 50 * MB))
    server.add("/trickle", FEED * 10, trickle=0.2)
    server.add("/slow-headers", FEED, trickle=0.2, trickle_headers=True)
    server.add("/reset", reset=True)
    server.add("/close", raw=lambda sock, record: sock.shutdown(socket.SHUT_RDWR))
    server.redirect("/loop1", "/loop2", 302)
    server.redirect("/loop2", "/loop1", 302)
    for status in (404, 410, 429, 500, 502, 503):
        server.add(f"/status{status}", status=status, headers={"Retry-After": "1"})
    return {
        "/bomb": "too_large", "/big": "too_large", "/trickle": "deadline", "/slow-headers": "deadline",
        "/reset": "connect", "/close": "protocol", "/loop1": "redirect", "/status404": "http_status",
        "/status410": "gone", "/status429": "rate_limited", "/status500": "http_status",
        "/status502": "http_status", "/status503": "unavailable",
    }


def test_one_fetcher_survives_everything_and_still_fetches(feed_server: FeedServer, gzip_bomb: bytes) -> None:
    expected = hostile_routes(feed_server, gzip_bomb)
    feed_server.add("/good", FEED, gzip=True)
    limits = settings(deadline=1.5, read_timeout=30)
    threads_before = threading.active_count()
    with Fetcher(limits) as fetcher:
        for path, kind in expected.items():
            error, measure = expect_error(fetcher, feed_server.url(path))
            assert error.kind == kind, (path, error.message)
            assert measure.elapsed < limits.deadline + SLACK, path
            assert fetcher.fetch(feed_server.url("/good")).body == FEED
        assert fetcher.fetch(feed_server.url("/good")).body == FEED
    # the fetcher's own threads are gone (server handler threads may still be winding down)
    assert not any(thread.name == "fetch-watchdog" for thread in threading.enumerate())
    assert threading.active_count() <= threads_before + len(expected)


def test_hostile_fetches_in_parallel_do_not_disturb_good_ones(feed_server: FeedServer, gzip_bomb: bytes) -> None:
    expected = hostile_routes(feed_server, gzip_bomb)
    feed_server.add("/good", FEED)
    limits = settings(deadline=1.5, read_timeout=30)
    outcomes: dict[str, str] = {}
    good: list[bytes] = []

    def hostile(path: str) -> None:
        try:
            fetcher.fetch(feed_server.url(path))
            outcomes[path] = "no error"
        except FetchError as exc:
            outcomes[path] = exc.kind

    def friendly() -> None:
        for _ in range(20):
            good.append(fetcher.fetch(feed_server.url("/good")).body)

    with Fetcher(limits) as fetcher:
        workers: list[Callable[[], None]] = [lambda path=path: hostile(path) for path in expected]
        workers.append(friendly)
        threads = [threading.Thread(target=work) for work in workers]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
    assert outcomes == expected
    assert good == [FEED] * 20


@contextmanager
def raw_tcp_server(serve: Callable[[socket.socket], None]) -> Iterator[int]:
    """A one-connection-at-a-time TCP server on 127.0.0.1 running ``serve(conn)``; yields the port."""
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def loop() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            with conn:
                try:
                    serve(conn)
                except OSError:
                    pass

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        stop.set()
        listener.close()
        thread.join(timeout=5)


def test_tls_handshake_trickled_hits_the_deadline() -> None:
    def trickle_tls(conn: socket.socket) -> None:
        conn.recv(4096)  # the ClientHello
        conn.sendall(b"\x16\x03\x03\x40\x00")  # a handshake record header announcing 16 KiB
        for _ in range(100):
            conn.sendall(b"\x00")
            time.sleep(0.1)

    limits = settings(deadline=1.5, connect_timeout=30, read_timeout=30)
    with raw_tcp_server(trickle_tls) as port, Fetcher(limits) as fetcher:
        error, measure = expect_error(fetcher, f"https://127.0.0.1:{port}/feed")
    assert error.kind == "deadline"
    assert measure.elapsed < limits.deadline + SLACK
