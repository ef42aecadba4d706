"""monitor.fetch against the loopback feed server: normal fetches, headers, conditional GET, redirects,
status handling, encodings, and the Retry-After / Cache-Control helpers."""

from __future__ import annotations

import gzip
import socket
import subprocess
import sys
import threading
import zlib
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Iterator

import pytest

from click.testing import CliRunner

import monitor
from monitor.cli import cli
from monitor.config import MonitorSettings
from monitor.errors import FetchError
from monitor.fetch import ACCEPT, RETRY_AFTER_MAX_S, Fetcher, FetchSettings, cache_max_age, retry_after_seconds
from tests.feedserver import FeedServer, RequestRecord, Response

CORPORA = Path(__file__).resolve().parents[1].parent / "shared" / "corpora"
FEED = b'<?xml version="1.0"?><rss version="2.0"><channel><title>t</title></channel></rss>'
NOW = datetime(2026, 2, 17, 8, 0, 0, tzinfo=timezone.utc)


@pytest.fixture
def settings() -> FetchSettings:
    return FetchSettings(user_agent="newsmon-test/1", connect_timeout=2, read_timeout=5, deadline=10)


@pytest.fixture
def fetcher(settings: FetchSettings) -> Iterator[Fetcher]:
    with Fetcher(settings) as fetcher:
        yield fetcher


def fetch_error(fetcher: Fetcher, url: str) -> FetchError:
    with pytest.raises(FetchError) as caught:
        fetcher.fetch(url)
    return caught.value


# --- normal fetches ---------------------------------------------------------------------------


def test_fetches_a_real_feed_unchanged(feed_server: FeedServer, fetcher: Fetcher) -> None:
    if not CORPORA.is_dir():
        pytest.skip("../shared/corpora is not present beside the repository")
    body = (CORPORA / "real-feeds" / "bbc_news_world_2026-02-17.xml").read_bytes()
    feed_server.add("/world.xml", body, etag='"abc"', last_modified="Tue, 17 Feb 2026 07:00:00 GMT")

    result = fetcher.fetch(feed_server.url("/world.xml"))

    assert result.status == 200
    assert result.body == body
    assert result.url == result.requested_url == feed_server.url("/world.xml")
    assert result.permanent_url is None
    assert result.etag == '"abc"'
    assert result.last_modified == "Tue, 17 Feb 2026 07:00:00 GMT"
    assert result.headers["content-type"] == "application/rss+xml"
    assert all(key == key.lower() for key in result.headers)
    assert not result.not_modified
    assert result.elapsed >= 0
    assert result.fetched_at is not None and result.fetched_at.tzinfo is not None


def test_empty_body_is_a_plain_200(feed_server: FeedServer, fetcher: Fetcher) -> None:
    feed_server.add("/empty", b"")
    result = fetcher.fetch(feed_server.url("/empty"))
    assert (result.status, result.body) == (200, b"")


def test_query_string_is_kept(feed_server: FeedServer, fetcher: Fetcher) -> None:
    feed_server.add("/feed", handler=lambda record: Response(body=record.path))
    assert fetcher.fetch(feed_server.url("/feed?format=rss&x=1")).body == b"/feed?format=rss&x=1"


def test_sends_user_agent_accept_and_encodings(feed_server: FeedServer, fetcher: Fetcher) -> None:
    feed_server.add("/feed.xml", FEED)
    fetcher.fetch(feed_server.url("/feed.xml"))
    headers = feed_server.requests_for("/feed.xml")[0].headers
    assert headers["user-agent"] == "newsmon-test/1"
    assert headers["accept"] == ACCEPT
    assert headers["accept-encoding"] == "gzip, deflate"
    assert "if-none-match" not in headers and "if-modified-since" not in headers


def test_default_settings_name_the_project() -> None:
    settings = FetchSettings.default()
    assert settings.user_agent == f"newsmon/{monitor.__version__} (+{monitor.PROJECT_URL})"
    assert (settings.connect_timeout, settings.read_timeout, settings.deadline) == (10.0, 30.0, 60.0)
    assert (settings.max_body, settings.max_redirects) == (10_000_000, 5)


def test_settings_from_the_monitor_config_table() -> None:
    config = MonitorSettings(
        user_agent="ua/2", connect_timeout=timedelta(seconds=3), read_timeout=timedelta(seconds=7),
        fetch_deadline=timedelta(seconds=20), max_body=1234,
    )
    settings = FetchSettings.from_monitor(config)
    assert settings == FetchSettings(user_agent="ua/2", connect_timeout=3, read_timeout=7, deadline=20, max_body=1234)


@pytest.mark.parametrize("field, value", [("deadline", 0), ("read_timeout", -1), ("max_body", 0), ("user_agent", "")])
def test_settings_refuse_nonsense(field: str, value: object) -> None:
    arguments: dict[str, object] = {"user_agent": "ua"}
    arguments[field] = value
    with pytest.raises(ValueError):
        FetchSettings(**arguments)  # type: ignore[arg-type]


# --- conditional GET --------------------------------------------------------------------------


def test_etag_gives_304_with_empty_body(feed_server: FeedServer, fetcher: Fetcher) -> None:
    feed_server.add("/feed.xml", FEED, etag='"v1"')
    first = fetcher.fetch(feed_server.url("/feed.xml"))
    second = fetcher.fetch(feed_server.url("/feed.xml"), etag=first.etag)

    assert second.status == 304 and second.not_modified and second.body == b""
    assert feed_server.requests_for("/feed.xml")[1].headers["if-none-match"] == '"v1"'

    feed_server.set_body("/feed.xml", FEED + b" ", etag='"v2"')
    third = fetcher.fetch(feed_server.url("/feed.xml"), etag=first.etag)
    assert third.status == 200 and third.etag == '"v2"' and third.body.endswith(b" ")


def test_last_modified_gives_304(feed_server: FeedServer, fetcher: Fetcher) -> None:
    stamp = "Tue, 17 Feb 2026 07:00:00 GMT"
    feed_server.add("/feed.xml", FEED, last_modified=stamp)
    result = fetcher.fetch(feed_server.url("/feed.xml"), last_modified=stamp)
    assert result.status == 304 and result.body == b""
    assert feed_server.requests_for("/feed.xml")[0].headers["if-modified-since"] == stamp


# --- content encodings ------------------------------------------------------------------------


def _encoded(encoding: str, data: bytes) -> bytes:
    if encoding == "gzip":
        return gzip.compress(data)
    if encoding == "deflate-zlib":
        return zlib.compress(data)
    raw = zlib.compressobj(6, zlib.DEFLATED, -zlib.MAX_WBITS)
    return raw.compress(data) + raw.flush()


@pytest.mark.parametrize("encoding", ["gzip", "deflate-zlib", "deflate-raw"])
def test_compressed_bodies_are_decoded(feed_server: FeedServer, fetcher: Fetcher, encoding: str) -> None:
    body = FEED * 2000  # larger than one decompression piece
    header = "gzip" if encoding == "gzip" else "deflate"
    feed_server.add("/z", _encoded(encoding, body), headers={"Content-Encoding": header})
    result = fetcher.fetch(feed_server.url("/z"))
    assert result.body == body
    assert result.headers["content-encoding"] == header


def test_multi_member_gzip(feed_server: FeedServer, fetcher: Fetcher) -> None:
    feed_server.add("/z", gzip.compress(b"first ") + gzip.compress(b"second"), headers={"Content-Encoding": "gzip"})
    assert fetcher.fetch(feed_server.url("/z")).body == b"first second"


def test_server_side_gzip_route(feed_server: FeedServer, fetcher: Fetcher) -> None:
    feed_server.add("/z", FEED, gzip=True)
    assert fetcher.fetch(feed_server.url("/z")).body == FEED


def test_corrupt_gzip_is_a_protocol_error(feed_server: FeedServer, fetcher: Fetcher) -> None:
    feed_server.add("/z", b"\x1f\x8b\x08\x00 this is not gzip at all", headers={"Content-Encoding": "gzip"})
    error = fetch_error(fetcher, feed_server.url("/z"))
    assert error.kind == "protocol" and "gzip" in error.message


def _close_delimited(head: bytes, body: bytes):  # noqa: ANN202 - a FeedServer raw route
    def answer(sock: socket.socket, record: RequestRecord) -> None:
        sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/rss+xml\r\nConnection: close\r\n" + head
                     + b"\r\n" + body)
    return answer


@pytest.mark.parametrize("encoding", ["gzip", "deflate-zlib", "deflate-raw"])
@pytest.mark.parametrize("delimited", ["by a closed connection", "by its Content-Length"])
def test_compressed_body_cut_off_is_a_protocol_error(feed_server: FeedServer, fetcher: Fetcher, encoding: str,
                                                     delimited: str) -> None:
    """A connection closed mid-body (no length to check) or a server sending part of a file: the part
    decompressed and was parsed as the whole feed, its last entry cut anywhere (a title without its link
    stored as a separate article for good)."""
    header = "gzip" if encoding == "gzip" else "deflate"
    items = "".join(f"<item><title>Story {index}</title><link>http://e.org/{index}</link></item>"
                    for index in range(200))
    blob = _encoded(encoding, f'<rss version="2.0"><channel><title>t</title>{items}</channel></rss>'.encode())
    part = blob[: len(blob) // 2]
    if delimited == "by a closed connection":
        feed_server.add("/z", raw=_close_delimited(f"Content-Encoding: {header}\r\n".encode(), part))
    else:
        feed_server.add("/z", part, headers={"Content-Encoding": header})
    error = fetch_error(fetcher, feed_server.url("/z"))
    assert error.kind == "protocol"
    assert error.message == f"the body was cut off before the end of its {header} data"


def test_whole_compressed_body_on_a_closed_connection_and_an_empty_one(feed_server: FeedServer,
                                                                       fetcher: Fetcher) -> None:
    feed_server.add("/whole", raw=_close_delimited(b"Content-Encoding: gzip\r\n", gzip.compress(FEED)))
    assert fetcher.fetch(feed_server.url("/whole")).body == FEED
    feed_server.add("/empty", b"", headers={"Content-Encoding": "gzip"})
    assert fetcher.fetch(feed_server.url("/empty")).body == b""  # the parser says "empty", not "cut off"


def test_unknown_encoding_is_a_protocol_error(feed_server: FeedServer, fetcher: Fetcher) -> None:
    feed_server.add("/z", b"....", headers={"Content-Encoding": "br"})
    error = fetch_error(fetcher, feed_server.url("/z"))
    assert error.kind == "protocol" and "br" in error.message


# --- redirects --------------------------------------------------------------------------------


def test_permanent_redirect_chain_sets_permanent_url(feed_server: FeedServer, fetcher: Fetcher) -> None:
    feed_server.add("/new.xml", FEED)
    feed_server.redirect("/old.xml", "/mid.xml", 301)
    feed_server.redirect("/mid.xml", feed_server.url("/new.xml"), 308)
    result = fetcher.fetch(feed_server.url("/old.xml"))
    assert result.body == FEED
    assert result.url == result.permanent_url == feed_server.url("/new.xml")
    assert result.requested_url == feed_server.url("/old.xml")
    assert [r.path for r in feed_server.requests] == ["/old.xml", "/mid.xml", "/new.xml"]


@pytest.mark.parametrize("statuses", [(302,), (307,), (303,), (301, 302), (302, 301)])
def test_temporary_hop_means_no_permanent_url(feed_server: FeedServer, fetcher: Fetcher, statuses: tuple[int, ...]) -> None:
    feed_server.add("/target", FEED)
    paths = [f"/hop{index}" for index in range(len(statuses))] + ["/target"]
    for index, status in enumerate(statuses):
        feed_server.redirect(paths[index], paths[index + 1], status)
    result = fetcher.fetch(feed_server.url("/hop0"))
    assert result.body == FEED and result.url == feed_server.url("/target")
    assert result.permanent_url is None


def test_redirect_to_another_server(feed_server: FeedServer, fetcher: Fetcher) -> None:
    with FeedServer() as other:
        other.add("/feed", FEED)
        feed_server.redirect("/moved", other.url("/feed"), 301)
        result = fetcher.fetch(feed_server.url("/moved"))
    assert result.permanent_url == other.url("/feed")


def test_conditional_headers_follow_redirects(feed_server: FeedServer, fetcher: Fetcher) -> None:
    feed_server.add("/new", FEED, etag='"e"')
    feed_server.redirect("/old", "/new", 301)
    result = fetcher.fetch(feed_server.url("/old"), etag='"e"')
    assert result.status == 304 and result.permanent_url == feed_server.url("/new")


def test_redirect_loop(feed_server: FeedServer, fetcher: Fetcher) -> None:
    feed_server.redirect("/a", "/b", 302)
    feed_server.redirect("/b", "/a", 302)
    error = fetch_error(fetcher, feed_server.url("/a"))
    assert error.kind == "redirect" and "loop" in error.message
    assert len(feed_server.requests) == 2


def test_self_redirect_is_a_loop(feed_server: FeedServer, fetcher: Fetcher) -> None:
    feed_server.redirect("/a", "/a", 301)
    assert fetch_error(fetcher, feed_server.url("/a")).kind == "redirect"


def _chain(server: FeedServer, hops: int) -> str:
    server.add(f"/r{hops}", FEED)
    for index in range(hops):
        server.redirect(f"/r{index}", f"/r{index + 1}", 301)
    return server.url("/r0")


def test_five_redirects_are_followed(feed_server: FeedServer, fetcher: Fetcher) -> None:
    assert fetcher.fetch(_chain(feed_server, 5)).url == feed_server.url("/r5")


def test_six_redirects_are_too_many(feed_server: FeedServer, fetcher: Fetcher) -> None:
    error = fetch_error(fetcher, _chain(feed_server, 6))
    assert error.kind == "redirect" and "more than 5 redirects" in error.message
    assert len(feed_server.requests) == 6


def test_max_redirects_zero_refuses_any(feed_server: FeedServer) -> None:
    with Fetcher(FetchSettings(user_agent="ua", max_redirects=0)) as fetcher:
        assert fetch_error(fetcher, _chain(feed_server, 1)).kind == "redirect"


def test_redirect_without_location(feed_server: FeedServer, fetcher: Fetcher) -> None:
    feed_server.add("/r", status=302)
    assert fetch_error(fetcher, feed_server.url("/r")).kind == "redirect"


@pytest.mark.parametrize("location", ["file:///etc/passwd", "ftp://example.org/feed", "javascript:alert(1)"])
def test_redirect_to_a_non_http_url_is_refused(feed_server: FeedServer, fetcher: Fetcher, location: str) -> None:
    feed_server.redirect("/r", location, 301)
    error = fetch_error(fetcher, feed_server.url("/r"))
    assert error.kind == "redirect"


# --- URLs -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url", ["file:///etc/passwd", "ftp://example.org/feed.xml", "", "   ", "http://", "not a url", "http://[::1",
            "//example.org/feed", "data:text/xml,<rss/>", "http://a..b/", f"http://{'a' * 64}.org/",
            "https://xn--zz.example.org/feed", "https://exa mple.org/feed", "https://exa<mple.org/feed"],
)
def test_invalid_urls_are_refused(fetcher: Fetcher, url: str) -> None:
    error = fetch_error(fetcher, url)
    assert error.kind == "invalid_url"
    assert "Traceback" not in error.message


def test_a_feed_whose_host_is_a_broken_punycode_label_fails_alone(feed_server: FeedServer, tmp_path: Path) -> None:
    """"xn--zz" is no valid A-label: reading the host raised idna.IDNAError out of the poll, a traceback
    that stopped `newsmon poll` for every feed."""
    feed_server.add("/ok.xml", b"<rss version='2.0'><channel><title>ok</title><item><title>A story</title>"
                    b"<link>http://e.org/a</link></item></channel></rss>")
    config = tmp_path / "feeds.toml"
    config.write_text(f'[[feeds]]\nname = "broken"\nurl = "https://xn--zz.example.org/feed"\n'
                      f'[[feeds]]\nname = "ok"\nurl = "{feed_server.url("/ok.xml")}"\n', encoding="utf-8")
    done = subprocess.run([sys.executable, "-m", "monitor", "--config", str(config), "--db", str(tmp_path / "a.db"),
                           "poll"], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    assert "invalid_url: URL has an invalid host name" in done.stdout
    assert "1 new article" in done.stderr + done.stdout


# --- statuses ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "status, kind, message",
    [(404, "http_status", "HTTP 404 Not Found"), (403, "http_status", "HTTP 403 Forbidden"),
     (410, "gone", "HTTP 410 Gone"), (500, "http_status", "HTTP 500 Internal Server Error"),
     (502, "http_status", "HTTP 502 Bad Gateway"), (503, "unavailable", "HTTP 503 Service Unavailable"),
     (429, "rate_limited", "HTTP 429 Too Many Requests")],
)
def test_error_statuses(feed_server: FeedServer, fetcher: Fetcher, status: int, kind: str, message: str) -> None:
    feed_server.add("/f", b"error page", status=status)
    error = fetch_error(fetcher, feed_server.url("/f"))
    assert (error.kind, error.status, error.message, error.retry_after) == (kind, status, message, None)
    assert error.url == feed_server.url("/f")


def test_429_with_retry_after_seconds(feed_server: FeedServer, fetcher: Fetcher) -> None:
    feed_server.add("/f", status=429, headers={"Retry-After": "120"})
    error = fetch_error(fetcher, feed_server.url("/f"))
    assert (error.kind, error.retry_after) == ("rate_limited", 120.0)
    assert error.message == "HTTP 429 Too Many Requests (retry after 2 min)"


def test_503_with_retry_after_date(feed_server: FeedServer, fetcher: Fetcher) -> None:
    when = datetime.now(timezone.utc) + timedelta(hours=2)
    feed_server.add("/f", status=503, headers={"Retry-After": when.strftime("%a, %d %b %Y %H:%M:%S GMT")})
    error = fetch_error(fetcher, feed_server.url("/f"))
    assert error.kind == "unavailable"
    assert error.retry_after is not None and 7000 < error.retry_after <= 7200


def test_a_retry_after_date_already_past_is_not_named(feed_server: FeedServer, fetcher: Fetcher) -> None:
    """A Retry-After date in the past means no wait: the message said '(retry after 0 s)'."""
    feed_server.add("/f", status=503, headers={"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"})
    error = fetch_error(fetcher, feed_server.url("/f"))
    assert (error.kind, error.retry_after, error.message) == ("unavailable", 0.0, "HTTP 503 Service Unavailable")


def test_retry_after_is_kept_on_other_5xx(feed_server: FeedServer, fetcher: Fetcher) -> None:
    feed_server.add("/f", status=502, headers={"Retry-After": "30"})
    error = fetch_error(fetcher, feed_server.url("/f"))
    assert (error.kind, error.retry_after) == ("http_status", 30.0)


# --- helpers ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value, expected",
    [(None, None), ("120", 120.0), ("0", 0.0), (" 30 ", 30.0), ("1.5", 1.5), ("-5", None), ("soon", None), ("", None),
     ("Tue, 17 Feb 2026 08:02:00 GMT", 120.0), ("Tue, 17 Feb 2026 07:00:00 GMT", 0.0),
     ("Tuesday, 17-Feb-26 08:01:00 GMT", 60.0), ("Tue Feb 17 08:00:30 2026", 30.0),
     # Absurd waits are read as the longest one kept, so no date computed from them overflows.
     ("99999999999999999999", RETRY_AFTER_MAX_S), ("1" + "0" * 400, RETRY_AFTER_MAX_S),
     ("Fri, 31 Dec 9999 23:59:59 GMT", RETRY_AFTER_MAX_S), (str(RETRY_AFTER_MAX_S - 1), RETRY_AFTER_MAX_S - 1)],
)
def test_retry_after_seconds(value: str | None, expected: float | None) -> None:
    assert retry_after_seconds(value, NOW) == expected


def test_retry_after_with_naive_now_means_utc() -> None:
    assert retry_after_seconds("Tue, 17 Feb 2026 08:00:10 GMT", NOW.replace(tzinfo=None)) == 10.0


@pytest.mark.parametrize(
    "headers, expected",
    [({}, None),
     ({"Cache-Control": "max-age=300"}, 300.0),
     ({"cache-control": "public, max-age=600, must-revalidate"}, 600.0),
     ({"Cache-Control": "s-maxage=900"}, 900.0),
     ({"Cache-Control": "max-age=60, s-maxage=900"}, 60.0),
     ({"Cache-Control": 'max-age="120"'}, 120.0),
     ({"Cache-Control": "no-cache"}, 0.0),
     ({"Cache-Control": "no-store, max-age=600"}, 0.0),
     ({"Cache-Control": "max-age=abc"}, None),
     ({"Cache-Control": "private"}, None),
     ({"Cache-Control": "max-age=-1", "Expires": "Tue, 17 Feb 2026 08:10:00 GMT",
       "Date": "Tue, 17 Feb 2026 08:00:00 GMT"}, 600.0),
     ({"Expires": "Tue, 17 Feb 2026 09:00:00 GMT", "Date": "Tue, 17 Feb 2026 08:00:00 GMT"}, 3600.0),
     ({"Expires": "Tue, 17 Feb 2026 07:00:00 GMT", "Date": "Tue, 17 Feb 2026 08:00:00 GMT"}, 0.0),
     ({"Expires": "0"}, 0.0),
     ({"Cache-Control": "max-age=30", "Expires": "Tue, 17 Feb 2026 09:00:00 GMT"}, 30.0)],
)
def test_cache_max_age(headers: dict[str, str], expected: float | None) -> None:
    assert cache_max_age(headers) == expected


def test_cache_max_age_expires_without_date_counts_from_now() -> None:
    later = (datetime.now(timezone.utc) + timedelta(hours=1)).strftime("%a, %d %b %Y %H:%M:%S GMT")
    seconds = cache_max_age({"Expires": later})
    assert seconds is not None and 3500 < seconds <= 3600


def test_cache_max_age_of_a_fetch_result(feed_server: FeedServer, fetcher: Fetcher) -> None:
    feed_server.add("/f", FEED, headers={"Cache-Control": "max-age=1800"})
    assert cache_max_age(fetcher.fetch(feed_server.url("/f")).headers) == 1800.0


# --- concurrency and connection errors ----------------------------------------------------------


def test_concurrent_fetches_from_many_threads(feed_server: FeedServer, fetcher: Fetcher) -> None:
    for index in range(8):
        feed_server.add(f"/feed{index}", FEED + str(index).encode(), gzip=index % 2 == 0)
    failures: list[BaseException] = []

    def work(index: int) -> None:
        try:
            for _ in range(40):
                result = fetcher.fetch(feed_server.url(f"/feed{index}"))
                assert result.body == FEED + str(index).encode()
        except BaseException as exc:  # collected and re-raised by the test thread
            failures.append(exc)

    threads = [threading.Thread(target=work, args=(index,)) for index in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not failures
    assert len(feed_server.requests) == 320


def test_connection_refused(fetcher: Fetcher) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, not listening: nothing accepts
        error = fetch_error(fetcher, f"http://127.0.0.1:{port}/feed")
    assert error.kind == "connect" and "refused" in error.message.lower()


def test_a_failing_redirect_target_is_named_in_the_error(feed_server: FeedServer, fetcher: Fetcher) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, not listening: nothing accepts
        feed_server.redirect("/moved", f"http://127.0.0.1:{port}/feed", 302)
        error = fetch_error(fetcher, feed_server.url("/moved"))
    assert error.kind == "connect"
    assert error.message.startswith(f"cannot connect to 127.0.0.1:{port}:"), error.message
    assert error.url == f"http://127.0.0.1:{port}/feed"


def test_tls_to_a_plain_http_server_is_a_tls_error(feed_server: FeedServer, fetcher: Fetcher) -> None:
    feed_server.add("/f", FEED)
    error = fetch_error(fetcher, feed_server.url("/f").replace("http://", "https://"))
    assert error.kind == "tls"


def test_garbage_instead_of_http_is_a_protocol_error(feed_server: FeedServer, fetcher: Fetcher) -> None:
    def garbage(sock: socket.socket, record: RequestRecord) -> None:
        sock.sendall(b"SPDY/9 what is this\r\n\r\n")

    feed_server.add("/f", raw=garbage)
    error = fetch_error(fetcher, feed_server.url("/f"))
    assert error.kind == "protocol"
    assert error.message.startswith("malformed HTTP response from 127.0.0.1:")


def test_body_cut_short_is_a_protocol_error(feed_server: FeedServer, fetcher: Fetcher) -> None:
    def short(sock: socket.socket, record: RequestRecord) -> None:
        sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n<rss>")
        sock.shutdown(socket.SHUT_WR)

    feed_server.add("/f", raw=short)
    assert fetch_error(fetcher, feed_server.url("/f")).kind == "protocol"


@pytest.mark.parametrize("encoding", ["gzip", "deflate-zlib", "deflate-raw"])
@pytest.mark.parametrize("step", [1, 2, 7, 65536])
def test_decoding_does_not_depend_on_how_the_body_is_cut(encoding: str, step: int) -> None:
    from monitor.fetch import _BodyDecoder

    body = FEED * 3000
    blob = _encoded(encoding, body)
    decoder = _BodyDecoder("gzip" if encoding == "gzip" else "deflate")
    pieces = [piece for start in range(0, len(blob), step) for piece in decoder.feed(blob[start:start + step])]
    pieces.extend(decoder.finish())
    assert b"".join(pieces) == body
    assert max(len(piece) for piece in pieces) <= 64 * 1024


def test_stacked_encodings(feed_server: FeedServer, fetcher: Fetcher) -> None:
    feed_server.add("/z", zlib.compress(gzip.compress(FEED)), headers={"Content-Encoding": "gzip, deflate"})
    assert fetcher.fetch(feed_server.url("/z")).body == FEED


def test_raw_deflate_sent_in_tiny_chunks(feed_server: FeedServer, fetcher: Fetcher) -> None:
    blob = _encoded("deflate-raw", FEED * 100)
    feed_server.add("/z", chunks=lambda: (blob[index:index + 1] for index in range(len(blob))),
                    headers={"Content-Encoding": "deflate"})
    assert fetcher.fetch(feed_server.url("/z")).body == FEED * 100


def test_untrusted_certificate_is_a_tls_error(tmp_path: Path, fetcher: Fetcher) -> None:
    import shutil
    import ssl
    import subprocess

    if shutil.which("openssl") is None:
        pytest.skip("the openssl command is needed to make a test certificate")
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
         "-keyout", str(key), "-out", str(cert), "-days", "1", "-subj", "/CN=127.0.0.1"],
        check=True, capture_output=True,
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    listener = socket.create_server(("127.0.0.1", 0))

    def serve_one() -> None:
        conn, _ = listener.accept()
        with conn:
            try:
                context.wrap_socket(conn, server_side=True).close()
            except (ssl.SSLError, OSError):
                pass  # the client refuses the certificate

    thread = threading.Thread(target=serve_one, daemon=True)
    thread.start()
    try:
        error = fetch_error(fetcher, f"https://127.0.0.1:{listener.getsockname()[1]}/feed")
    finally:
        thread.join(timeout=5)
        listener.close()
    assert error.kind == "tls"
    assert "certificate" in error.message


def test_cookies_are_neither_kept_nor_sent(feed_server: FeedServer, fetcher: Fetcher) -> None:
    feed_server.add("/f", FEED, headers={"Set-Cookie": "session=abc; Path=/"})
    fetcher.fetch(feed_server.url("/f"))
    fetcher.fetch(feed_server.url("/f"))
    assert all("cookie" not in record.headers for record in feed_server.requests)


def test_messages_do_not_show_a_password_from_the_url(feed_server: FeedServer, fetcher: Fetcher) -> None:
    feed_server.redirect("/a", "/b", 302)
    feed_server.redirect("/b", "/a", 302)
    url = feed_server.url("/a").replace("http://", "http://reader:s3cret@")
    error = fetch_error(fetcher, url)
    assert error.kind == "redirect" and "s3cret" not in error.message
    assert feed_server.requests[0].headers["authorization"].startswith("Basic ")


# --- the test feed server itself ----------------------------------------------------------------


def test_feed_server_under_many_concurrent_clients(feed_server: FeedServer) -> None:
    import httpx

    feed_server.add("/f", FEED)
    failures: list[BaseException] = []

    def client() -> None:
        try:
            with httpx.Client() as http:
                for _ in range(200):
                    assert http.get(feed_server.url("/f")).content == FEED
        except BaseException as exc:  # collected and re-raised by the test thread
            failures.append(exc)

    threads = [threading.Thread(target=client) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not failures and len(feed_server.requests_for("/f")) == 2000


def test_feed_server_records_methods_bodies_and_queries(feed_server: FeedServer) -> None:
    import httpx

    feed_server.add("/hook", status=204, content_type=None)
    response = httpx.post(feed_server.url("/hook?x=1"), json={"rule": "r"})
    assert response.status_code == 204
    head = httpx.head(feed_server.url("/hook"))
    assert head.status_code == 204
    first, second = feed_server.requests_for("/hook")
    assert (first.method, first.path, first.body) == ("POST", "/hook?x=1", b'{"rule":"r"}')
    assert first.headers["content-type"] == "application/json"
    assert second.method == "HEAD"
    assert httpx.get(feed_server.url("/unknown")).status_code == 404


def test_a_redirect_to_an_invalid_host_name_is_a_fetch_error(feed_server: FeedServer, fetcher: Fetcher) -> None:
    feed_server.add("/f", b"", status=302, headers={"Location": "http://a..b/feed.xml"})
    error = fetch_error(fetcher, feed_server.url("/f"))
    assert error.kind in ("connect", "redirect") and "a..b" in error.message


@pytest.mark.parametrize("body", [b"<?xml version='1.0'?><rss version='2.0'><channel><title>T</title></channel></rss>",
                                  b'\xef\xbb\xbf{"version": "https://jsonfeed.org/version/1.1", "items": []}',
                                  b"\n  <rss version='2.0'><channel><title>T</title></channel></rss>"])
def test_a_plain_body_labelled_gzip_is_read_as_it_is(feed_server: FeedServer, fetcher: Fetcher, body: bytes) -> None:
    """A proxy or CDN that labels an uncompressed feed 'Content-Encoding: gzip': gzip data always starts
    with 0x1f, a feed never does, so the body is the feed (it was an error: 'body is not valid gzip data')."""
    feed_server.add("/plain", body, headers={"Content-Encoding": "gzip"})
    result = fetcher.fetch(feed_server.url("/plain"))
    assert result.status == 200 and result.body == body


def test_a_gzip_file_served_without_content_encoding_is_read(feed_server: FeedServer, fetcher: Fetcher,
                                                            tmp_path: Path) -> None:
    """A feed published as feed.xml.gz (served as a file, no Content-Encoding): its content is the feed. It failed
    as 'no RSS, Atom or JSON feed found (SAXParseException: not well-formed)', which said nothing of gzip."""
    feed = b"<?xml version='1.0'?><rss version='2.0'><channel><title>T</title>" + b"".join(
        f"<item><title>Story {index}</title><link>http://e.org/{index}</link></item>".encode() for index in range(50)
    ) + b"</channel></rss>"
    feed_server.add("/feed.xml.gz", gzip.compress(feed), content_type="application/gzip")
    assert fetcher.fetch(feed_server.url("/feed.xml.gz")).body == feed
    feed_server.add("/cut.xml.gz", gzip.compress(feed)[:-20], content_type="application/gzip")
    assert fetcher.fetch(feed_server.url("/cut.xml.gz")).body == gzip.compress(feed)[:-20]  # not whole: as it is
    with Fetcher(FetchSettings(user_agent="newsmon-test/1", max_body=1000)) as small:
        assert fetch_error(small, feed_server.url("/feed.xml.gz")).kind == "too_large"  # counted decompressed
    result = CliRunner().invoke(cli, ["--db", str(tmp_path / "a.db"), "feeds", "check", feed_server.url("/feed.xml.gz")])
    assert result.exit_code == 0 and "50 entries" in result.output, result.output
