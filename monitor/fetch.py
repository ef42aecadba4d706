"""Feed HTTP fetching: the only network code for feeds.

``Fetcher(settings).fetch(url, etag=..., last_modified=...)`` returns a ``FetchResult`` for a 2xx or
304 answer and raises ``FetchError`` (with a stable ``kind``) for everything else.

Limits, and how they are enforced:

* **Total deadline.** Every socket operation made for a fetch (connect, TLS handshake, each read and
  write) gets a timeout no longer than the time left, and the time left is checked between
  operations, so a server that trickles one byte a second, or its headers slowly, is cut off at the
  deadline. A watchdog thread shuts down the sockets of a fetch that is still running shortly after
  its deadline, as a last resort for anything that escaped those checks. (A hung DNS lookup cannot
  be interrupted this way: it is bounded by the system resolver's own timeouts.)
* **Body size.** The body is read raw and decompressed here, in pieces of at most 64 KiB, and the
  decompressed bytes are counted against ``max_body``: a gzip bomb fails as ``too_large`` after
  reading about ``max_body`` bytes, with memory bounded by about ``max_body`` plus one piece.
* **Redirects** are followed here, hop by hop, at most ``max_redirects``; a loop fails at once.
  A redirect answer's body is never read.
* Only ``http`` and ``https`` URLs are fetched, also as redirect targets.
"""

from __future__ import annotations

import heapq
import http.cookiejar
import io
import logging
import re
import socket
import ssl
import threading
import time
import zlib
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator, Mapping, TypeVar

import httpcore
import httpx

import monitor
from monitor.errors import FetchError
from monitor.models import FetchResult
from monitor.timeutil import utcnow

if TYPE_CHECKING:
    from monitor.config import MonitorSettings

__all__ = ["FetchSettings", "Fetcher", "cache_max_age", "retry_after_seconds", "ACCEPT", "TRANSPORT_ERRORS",
           "bounded_transport", "total_deadline"]

log = logging.getLogger(__name__)

ACCEPT = (
    "application/rss+xml, application/atom+xml, application/feed+json, application/json;q=0.9, "
    "application/xml;q=0.8, text/xml;q=0.8, */*;q=0.5"
)
ACCEPT_ENCODING = "gzip, deflate"  # what _BodyDecoder can decode with bounded memory

_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_PERMANENT_REDIRECTS = frozenset({301, 308})
_PIECE = 64 * 1024          # largest piece of decompressed output produced at once
_WATCHDOG_GRACE = 0.5       # seconds after a deadline before the watchdog shuts a fetch's sockets


# ----------------------------------------------------------------------------------------------
# settings


@dataclass(frozen=True)
class FetchSettings:
    """Limits of one fetch. Times in seconds, ``max_body`` in bytes after decompression."""

    user_agent: str
    connect_timeout: float = 10.0
    read_timeout: float = 30.0
    deadline: float = 60.0
    max_body: int = 10_000_000
    max_redirects: int = 5

    def __post_init__(self) -> None:
        for name in ("connect_timeout", "read_timeout", "deadline"):
            if not getattr(self, name) > 0:
                raise ValueError(f"FetchSettings.{name} must be positive, got {getattr(self, name)!r}")
        if self.max_body <= 0 or self.max_redirects < 0:
            raise ValueError("FetchSettings.max_body must be positive and max_redirects not negative")
        if not self.user_agent or any(ord(ch) < 32 for ch in self.user_agent):
            raise ValueError("FetchSettings.user_agent must be one line of printable text")

    @classmethod
    def default(cls) -> FetchSettings:
        return cls(user_agent=f"newsmon/{monitor.__version__} (+{monitor.PROJECT_URL})")

    @classmethod
    def from_monitor(cls, settings: MonitorSettings) -> FetchSettings:
        """From the ``[monitor]`` table of the config (``Config.monitor``)."""
        return cls(
            user_agent=settings.user_agent,
            connect_timeout=settings.connect_timeout.total_seconds(),
            read_timeout=settings.read_timeout.total_seconds(),
            deadline=settings.fetch_deadline.total_seconds(),
            max_body=settings.max_body,
        )


# ----------------------------------------------------------------------------------------------
# the total deadline: one per fetch, seen by every socket operation made in the fetching thread


class _Deadline:
    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.expires_at = time.monotonic() + seconds
        self.expired = False
        self.finished = False
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()

    def remaining(self) -> float:
        return self.expires_at - time.monotonic()

    def watch(self, sock: socket.socket | None) -> None:
        if sock is None:
            return
        with self._lock:
            if not any(known is sock for known in self._sockets):
                self._sockets.append(sock)

    def kill(self) -> None:
        """Called by the watchdog: mark expired and shut the sockets so blocked calls return."""
        with self._lock:
            if self.finished:
                return
            self.expired = True
            sockets = list(self._sockets)
        for sock in sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def finish(self) -> None:
        with self._lock:
            self.finished = True
            self._sockets.clear()

    def message(self) -> str:
        return f"no complete response within {self.seconds:g} s"


_local = threading.local()


def _active_deadline() -> _Deadline | None:
    return getattr(_local, "deadline", None)


_T = TypeVar("_T")


def _bounded(call: Callable[[float | None], _T], timeout: float | None, expired_exc: type[Exception]) -> _T:
    """Run a socket operation with its timeout cut to the active deadline's time left."""
    deadline = _active_deadline()
    if deadline is None:
        return call(timeout)
    left = deadline.remaining()
    if left <= 0:
        deadline.expired = True
        raise expired_exc(deadline.message())
    capped = timeout is None or left < timeout
    try:
        return call(left if capped else timeout)
    except httpcore.TimeoutException:
        if capped:
            deadline.expired = True
        raise


class _Watchdog:
    """One thread per Fetcher that kills fetches still running after their deadline (plus grace)."""

    def __init__(self, name: str = "fetch-watchdog") -> None:
        self._name = name
        self._heap: list[tuple[float, int, _Deadline]] = []
        self._counter = 0
        self._wakeup = threading.Condition()
        self._thread: threading.Thread | None = None
        self._closed = False

    def arm(self, deadline: _Deadline) -> None:
        with self._wakeup:
            if self._closed:
                return
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
                self._thread.start()
            self._counter += 1
            heapq.heappush(self._heap, (deadline.expires_at + _WATCHDOG_GRACE, self._counter, deadline))
            self._wakeup.notify()

    def close(self) -> None:
        with self._wakeup:
            self._closed = True
            self._wakeup.notify()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _run(self) -> None:
        with self._wakeup:
            while not self._closed:
                while self._heap and self._heap[0][2].finished:
                    heapq.heappop(self._heap)
                if not self._heap:
                    self._wakeup.wait()
                    continue
                wait = self._heap[0][0] - time.monotonic()
                if wait > 0:
                    self._wakeup.wait(wait)
                    continue
                _, _, deadline = heapq.heappop(self._heap)
                log.debug("fetch watchdog fired deadline=%gs", deadline.seconds)
                deadline.kill()


# ----------------------------------------------------------------------------------------------
# an httpcore network backend whose streams obey the active deadline


class _BoundedStream(httpcore.NetworkStream):
    def __init__(self, inner: httpcore.NetworkStream) -> None:
        self._inner = inner

    def _watch(self) -> None:
        deadline = _active_deadline()
        if deadline is not None:
            deadline.watch(self._inner.get_extra_info("socket"))

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        self._watch()
        return _bounded(lambda t: self._inner.read(max_bytes, t), timeout, httpcore.ReadTimeout)

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._watch()
        _bounded(lambda t: self._inner.write(buffer, t), timeout, httpcore.WriteTimeout)

    def close(self) -> None:
        self._inner.close()

    def start_tls(
        self, ssl_context: ssl.SSLContext, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore.NetworkStream:
        self._watch()
        tls = _bounded(
            lambda t: self._inner.start_tls(ssl_context, server_hostname, t), timeout, httpcore.ConnectTimeout
        )
        return _BoundedStream(tls)

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class _BoundedBackend(httpcore.NetworkBackend):
    def __init__(self) -> None:
        self._inner = httpcore.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        try:
            stream = _bounded(
                lambda t: self._inner.connect_tcp(host, port, t, local_address, socket_options),
                timeout,
                httpcore.ConnectTimeout,
            )
        except UnicodeError as exc:  # a host name that IDNA cannot encode ("a..b", a label over 63 characters)
            raise httpcore.ConnectError(f"invalid host name {host!r}: {exc}") from exc
        bounded = _BoundedStream(stream)
        bounded._watch()
        return bounded

    def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore.NetworkStream:
        raise httpcore.UnsupportedProtocol("feeds are fetched over TCP only")

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


class _CoreStream(httpx.SyncByteStream):
    def __init__(self, response: httpcore.Response) -> None:
        self._response = response

    def __iter__(self) -> Iterator[bytes]:
        yield from self._response.iter_stream()

    def close(self) -> None:
        self._response.close()


class _Transport(httpx.BaseTransport):
    """httpx transport over an httpcore pool with the bounded backend. httpcore errors pass through
    untranslated; ``Fetcher`` translates them into ``FetchError``."""

    def __init__(self) -> None:
        self._pool = httpcore.ConnectionPool(
            ssl_context=_ssl_context(),
            max_connections=64,
            max_keepalive_connections=16,
            keepalive_expiry=30.0,
            network_backend=_BoundedBackend(),
        )

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        core_request = httpcore.Request(
            method=request.method,
            url=httpcore.URL(
                scheme=request.url.raw_scheme,
                host=request.url.raw_host,
                port=request.url.port,
                target=request.url.raw_path,
            ),
            headers=request.headers.raw,
            content=request.stream,  # type: ignore[arg-type]
            extensions=request.extensions,
        )
        core_response = self._pool.handle_request(core_request)
        return httpx.Response(
            status_code=core_response.status,
            headers=core_response.headers,
            stream=_CoreStream(core_response),
            extensions=core_response.extensions,
        )

    def close(self) -> None:
        self._pool.close()


# ----------------------------------------------------------------------------------------------
# the same total deadline for another HTTP client (the alert webhook)

_SHARED_WATCHDOG = _Watchdog("deadline-watchdog")   # lives as long as the process (a daemon thread)


def bounded_transport() -> httpx.BaseTransport:
    """An httpx transport whose socket operations obey ``total_deadline`` in the calling thread.

    httpcore errors pass through untranslated: catch ``TRANSPORT_ERRORS``."""
    return _Transport()


@contextmanager
def total_deadline(seconds: float) -> Iterator[_Deadline]:
    """Every socket operation of a ``bounded_transport`` made in this thread inside the block ends within
    ``seconds`` in total (the yielded deadline's ``expired`` says whether it was hit)."""
    deadline = _Deadline(seconds)
    _SHARED_WATCHDOG.arm(deadline)
    _local.deadline = deadline
    try:
        yield deadline
    finally:
        _local.deadline = None
        deadline.finish()


def _ssl_context() -> ssl.SSLContext:
    try:
        import certifi
    except ImportError:  # certifi comes with httpx; the system store is the fallback
        return ssl.create_default_context()
    return ssl.create_default_context(cafile=certifi.where())


# ----------------------------------------------------------------------------------------------
# bounded decompression


class _BadEncoding(Exception):
    pass


_DOCUMENT_STARTS = frozenset(bytes([byte]) for byte in b"<{ \t\r\n\xef\xfe\xff")  # what a feed's first byte can be


class _Inflater:
    """gzip or deflate (zlib-wrapped, or raw as some servers send it), output in bounded pieces."""

    def __init__(self, encoding: str) -> None:
        self._gzip = encoding in ("gzip", "x-gzip")
        self._wbits = 16 + zlib.MAX_WBITS if self._gzip else zlib.MAX_WBITS
        self._obj = zlib.decompressobj(self._wbits)
        # deflate only: the input seen before the first output, replayed as raw deflate if the
        # zlib wrapper turns out to be missing
        self._head: bytes | None = None if self._gzip else b""
        self._done = False
        self._received = False
        self._plain = False  # a "gzip" body that is the document itself (see feed)

    def feed(self, data: bytes) -> Iterator[bytes]:
        if self._plain:
            yield data
            return
        if self._gzip and not self._received and data and data[:1] in _DOCUMENT_STARTS:
            # A server that labels a plain body gzip (a proxy's or CDN's misconfiguration): gzip data always
            # starts with 0x1f, a feed with "<" or "{" (or white space or a byte order mark), so it is read as is.
            self._plain = self._done = True
            self._received = True
            yield data
            return
        self._received = self._received or bool(data)
        if self._head is not None:
            self._head = self._head + data if len(self._head) < _PIECE else None
        while not self._done:
            try:
                out = self._obj.decompress(data, _PIECE)
            except zlib.error as exc:
                if self._head is not None and self._wbits > 0:
                    self._wbits = -zlib.MAX_WBITS  # raw deflate without the zlib wrapper
                    self._obj = zlib.decompressobj(self._wbits)
                    data, self._head = self._head, None
                    continue
                raise _BadEncoding(f"body is not valid {'gzip' if self._gzip else 'deflate'} data") from exc
            if out:
                self._head = None
                yield out
            if self._obj.eof:
                data = self._obj.unused_data
                if self._gzip and data[:2] == b"\x1f\x8b":  # another gzip member
                    self._obj = zlib.decompressobj(self._wbits)
                    continue
                self._done = True  # anything after the end of the stream is ignored
                return
            data = self._obj.unconsumed_tail
            if not data and len(out) < _PIECE:
                return

    def finish(self) -> Iterator[bytes]:
        """The output still held back; _BadEncoding when the compressed data stops before its end (a
        connection closed early on a body without a length, or a server that sent part of the file):
        the part would be parsed as the whole feed, its last entry cut anywhere."""
        if not self._done:
            yield from self.feed(b"")
        if not self._done and self._received:
            raise _BadEncoding(f"the body was cut off before the end of its {'gzip' if self._gzip else 'deflate'} data")


class _CappedBody:
    """A body's decompressed bytes, collected up to ``limit``: one more is a ``too_large`` FetchError."""

    def __init__(self, limit: int, status: int) -> None:
        self._limit = limit
        self._status = status
        self._buffer = io.BytesIO()

    def too_large(self) -> FetchError:
        return FetchError(f"body larger than {_megabytes(self._limit)} after decompression", kind="too_large",
                          status=self._status)

    def add(self, pieces: Iterable[bytes]) -> None:
        for piece in pieces:
            if self._buffer.tell() + len(piece) > self._limit:
                raise self.too_large()
            self._buffer.write(piece)

    def getvalue(self) -> bytes:
        return self._buffer.getvalue()


def _gunzip_file(body: bytes, out: _CappedBody) -> bytes:
    """A gzip file served as it is, without a Content-Encoding (a feed published as ``feed.xml.gz``): its
    content, collected in ``out``; the body unchanged when it is not whole gzip data (the parser says)."""
    inflater = _Inflater("gzip")
    try:
        out.add(inflater.feed(body))
        out.add(inflater.finish())
    except _BadEncoding:
        return body
    return out.getvalue()


class _BodyDecoder:
    """Undo the Content-Encoding list (applied in order, so undone in reverse)."""

    def __init__(self, content_encoding: str) -> None:
        names = [name.strip().lower() for name in content_encoding.split(",") if name.strip()]
        names = [name for name in names if name != "identity"]
        unknown = [name for name in names if name not in ("gzip", "x-gzip", "deflate")]
        if unknown:
            raise _BadEncoding(f"unsupported Content-Encoding {', '.join(unknown)}")
        self._stages = [_Inflater(name) for name in reversed(names)]

    @property
    def identity(self) -> bool:
        return not self._stages

    def feed(self, data: bytes) -> Iterator[bytes]:
        return self._through(0, [data], final=False)

    def finish(self) -> Iterator[bytes]:
        return self._through(0, [], final=True)

    def _through(self, index: int, pieces: Iterable[bytes], *, final: bool) -> Iterator[bytes]:
        if index == len(self._stages):
            yield from pieces
            return
        stage = self._stages[index]

        def outputs() -> Iterator[bytes]:
            for piece in pieces:
                yield from stage.feed(piece)
            if final:
                yield from stage.finish()

        yield from self._through(index + 1, outputs(), final=final)


# ----------------------------------------------------------------------------------------------
# public helpers


_SECONDS = re.compile(r"^\d+(?:\.\d+)?$")
RETRY_AFTER_MAX_S = 365 * 86400.0  # a longer wait asked for is read as this (the scheduler caps it lower still)


def retry_after_seconds(value: str | None, now: datetime) -> float | None:
    """A ``Retry-After`` value as seconds from ``now``: delay-seconds or an HTTP-date, between 0 and
    ``RETRY_AFTER_MAX_S`` (a server may send any number of digits or a date in the year 9999).
    None when absent or unreadable."""
    if value is None:
        return None
    text = value.strip()
    if _SECONDS.match(text):
        return min(float(text), RETRY_AFTER_MAX_S)
    when = _http_date(text)
    if when is None:
        return None
    if now.tzinfo is None:
        now = now.replace(tzinfo=timezone.utc)
    return min(max(0.0, (when - now).total_seconds()), RETRY_AFTER_MAX_S)


def cache_max_age(headers: Mapping[str, str]) -> float | None:
    """How long (seconds) a response may be reused without asking again, from its headers.

    ``Cache-Control: max-age`` (else ``s-maxage``) wins; ``no-store``/``no-cache`` mean 0; else
    ``Expires`` minus ``Date`` (or now), an unreadable ``Expires`` meaning 0 as HTTP says. None when
    the headers say nothing about freshness.
    """
    lowered = {key.lower(): value for key, value in headers.items()}
    directives = _cache_directives(lowered.get("cache-control", ""))
    if "no-store" in directives or "no-cache" in directives:
        return 0.0
    for name in ("max-age", "s-maxage"):
        seconds = _non_negative_int(directives.get(name))
        if seconds is not None:
            return float(seconds)
    expires = lowered.get("expires")
    if expires is None:
        return None
    expires_at = _http_date(expires)
    if expires_at is None:
        return 0.0
    base = _http_date(lowered.get("date", "")) or utcnow()
    return max(0.0, (expires_at - base).total_seconds())


def _cache_directives(value: str) -> dict[str, str | None]:
    directives: dict[str, str | None] = {}
    for part in value.split(","):
        name, sep, argument = part.strip().partition("=")
        name = name.strip().lower()
        if name and name not in directives:
            directives[name] = argument.strip().strip('"') if sep else None
    return directives


def _non_negative_int(value: str | None) -> int | None:
    if value is None or not value.isdigit():
        return None
    return int(value)


def _http_date(text: str) -> datetime | None:
    if not text or not text.strip():
        return None
    try:
        when = parsedate_to_datetime(text.strip())
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return when


def _duration(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= 2 * size:
            return f"{seconds / size:.0f} {unit}"
    return f"{seconds:g} s"


def _megabytes(size: int) -> str:
    return f"{size / 1_000_000:g} MB" if size >= 100_000 else f"{size} bytes"


# ----------------------------------------------------------------------------------------------
# the fetcher


# What the transport raises (translated by ``_translate``).
_TRANSPORT_ERRORS = (httpcore.TimeoutException, httpcore.NetworkError, httpcore.ProtocolError,
                     httpcore.UnsupportedProtocol, httpx.HTTPError, httpx.InvalidURL, OSError)
TRANSPORT_ERRORS = _TRANSPORT_ERRORS


class Fetcher:
    """Fetches feeds. One per process; thread-safe (``fetch`` may run in many threads at once)."""

    def __init__(self, settings: FetchSettings) -> None:
        self.settings = settings
        self._watchdog = _Watchdog()
        self._client = httpx.Client(
            transport=_Transport(),
            follow_redirects=False,  # followed in fetch(), hop by hop
            timeout=self._timeout(settings.deadline),
            headers={
                "User-Agent": settings.user_agent,
                "Accept": ACCEPT,
                "Accept-Encoding": ACCEPT_ENCODING,
            },
            trust_env=False,  # no proxies or .netrc from the environment
            cookies=_no_cookies(),
        )

    def __enter__(self) -> Fetcher:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self._client.close()
        self._watchdog.close()

    def fetch(self, url: str, *, etag: str | None = None, last_modified: str | None = None) -> FetchResult:
        """GET ``url`` (conditionally when ``etag``/``last_modified`` are given). Raises FetchError."""
        started = time.monotonic()
        fetched_at = utcnow()
        target = parse_feed_url(url)
        deadline = _Deadline(self.settings.deadline)
        self._watchdog.arm(deadline)
        _local.deadline = deadline
        try:
            result = self._follow(url, target, etag, last_modified, deadline, started, fetched_at)
        except FetchError as exc:
            if exc.url is None:
                exc.url = url
            log.debug("fetch failed url=%s kind=%s error=%s", url, exc.kind, exc.message)
            raise
        except _TRANSPORT_ERRORS as exc:
            error = _translate(exc, deadline, url, self.settings)
            log.debug("fetch failed url=%s kind=%s error=%s", url, error.kind, error.message)
            raise error from exc
        finally:
            _local.deadline = None
            deadline.finish()
        log.debug(
            "fetched url=%s status=%s bytes=%d elapsed=%.3f", url, result.status, len(result.body), result.elapsed
        )
        return result

    # -- steps ----------------------------------------------------------------------------------
    def _follow(
        self, url: str, target: httpx.URL, etag: str | None, last_modified: str | None,
        deadline: _Deadline, started: float, fetched_at: datetime,
    ) -> FetchResult:
        hops: list[int] = []
        seen = {str(target)}
        headers = {}
        if etag:
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified
        while True:
            request = self._client.build_request(
                "GET", target, headers=headers, timeout=self._timeout(deadline.remaining())
            )
            try:
                response = self._client.send(request, stream=True)
            except (httpx.InvalidURL, httpx.RemoteProtocolError) as exc:
                # raised by httpx itself (not the transport) only for an unusable redirect Location
                raise FetchError(f"redirect to an invalid URL: {_reason(exc)}", kind="redirect") from exc
            except _TRANSPORT_ERRORS as exc:
                raise _translate(exc, deadline, str(target), self.settings) from exc  # names this hop's host
            try:
                if response.status_code in _REDIRECTS:
                    target = self._next_hop(response, target, hops, seen)
                    continue
                _check_status(response)
                body = b"" if response.status_code == 304 else self._read_body(response, deadline)
            except _TRANSPORT_ERRORS as exc:
                raise _translate(exc, deadline, str(target), self.settings) from exc
            finally:
                response.close()
            return self._result(url, target, response, body, hops, started, fetched_at)

    def _next_hop(self, response: httpx.Response, current: httpx.URL, hops: list[int], seen: set[str]) -> httpx.URL:
        status = response.status_code
        location = response.headers.get("location")
        if not location:
            raise FetchError(f"HTTP {status} redirect without a Location header", kind="redirect", status=status)
        try:
            target = current.join(location.strip())
            usable = target.scheme in ("http", "https") and bool(target.host)
        except httpx.InvalidURL as exc:
            raise FetchError(f"HTTP {status} redirect to an invalid URL: {location[:200]}", kind="redirect",
                             status=status) from exc
        if not usable:
            raise FetchError(f"HTTP {status} redirect to a URL that is not http(s): {location[:200]}",
                             kind="redirect", status=status)
        if str(target) in seen:
            raise FetchError(f"redirect loop: {_shown(current)} leads back to {_shown(target)}", kind="redirect",
                             status=status)
        if len(hops) >= self.settings.max_redirects:
            raise FetchError(f"more than {self.settings.max_redirects} redirects", kind="redirect", status=status)
        hops.append(status)
        seen.add(str(target))
        log.debug("redirect status=%d from=%s to=%s", status, _shown(current), _shown(target))
        return target

    def _read_body(self, response: httpx.Response, deadline: _Deadline) -> bytes:
        limit = self.settings.max_body
        try:
            decoder = _BodyDecoder(response.headers.get("content-encoding", ""))
        except _BadEncoding as exc:
            raise FetchError(str(exc), kind="protocol", status=response.status_code) from exc
        declared = response.headers.get("content-length", "")
        if decoder.identity and declared.isdigit() and int(declared) > limit:
            raise FetchError(f"body of {_megabytes(int(declared))} is larger than the {_megabytes(limit)} limit",
                             kind="too_large", status=response.status_code)
        body = _CappedBody(limit, response.status_code)
        received = 0
        try:
            for raw in response.iter_raw():
                received += len(raw)
                if received > limit:
                    raise body.too_large()
                body.add(decoder.feed(raw))
                if deadline.remaining() <= 0:
                    deadline.expired = True
                    raise FetchError(deadline.message(), kind="deadline", status=response.status_code)
            body.add(decoder.finish())
        except _BadEncoding as exc:
            raise FetchError(str(exc), kind="protocol", status=response.status_code) from exc
        data = body.getvalue()
        if decoder.identity and data[:2] == b"\x1f\x8b":
            return _gunzip_file(data, _CappedBody(limit, response.status_code))
        return data

    def _result(
        self, url: str, final: httpx.URL, response: httpx.Response, body: bytes, hops: list[int],
        started: float, fetched_at: datetime,
    ) -> FetchResult:
        final_url = str(final)
        permanent = hops and all(status in _PERMANENT_REDIRECTS for status in hops) and final_url != url
        headers = {key.lower(): value for key, value in response.headers.items()}
        return FetchResult(
            requested_url=url,
            url=final_url,
            status=response.status_code,
            headers=headers,
            body=body,
            etag=headers.get("etag"),
            last_modified=headers.get("last-modified"),
            permanent_url=final_url if permanent else None,
            elapsed=time.monotonic() - started,
            fetched_at=fetched_at,
        )

    def _timeout(self, left: float) -> httpx.Timeout:
        settings = self.settings
        left = max(left, 0.001)
        return httpx.Timeout(
            connect=min(settings.connect_timeout, left),
            read=settings.read_timeout,
            write=settings.read_timeout,
            pool=min(settings.connect_timeout, left),
        )


def _no_cookies() -> http.cookiejar.CookieJar:
    """A jar that stores nothing: feeds are fetched without cookies, and one shared by every feed
    and thread would only grow."""
    return http.cookiejar.CookieJar(policy=http.cookiejar.DefaultCookiePolicy(allowed_domains=[]))


def _shown(url: httpx.URL) -> str:
    """A URL for messages and logs, without a password it may carry."""
    return str(url.copy_with(password=None)) if url.password else str(url)


def parse_feed_url(url: str) -> httpx.URL:
    """Parse and check a feed URL: absolute http(s) with a host, or FetchError kind invalid_url."""
    if not isinstance(url, str) or not url.strip():
        raise FetchError("no URL given", kind="invalid_url", url=str(url))
    try:
        parsed = httpx.URL(url.strip())
    except (httpx.InvalidURL, TypeError, ValueError) as exc:
        raise FetchError(f"not a valid URL: {url[:200]}", kind="invalid_url", url=url) from exc
    if parsed.scheme not in ("http", "https"):
        raise FetchError(f"not an http or https URL: {url[:200]}", kind="invalid_url", url=url)
    try:
        host = parsed.host  # decodes "xn--" labels: an invalid one ("xn--zz") raises idna.IDNAError
        host.encode("idna")
    except UnicodeError:  # (IDNAError is one)
        raise FetchError(f"URL has an invalid host name: {url[:200]}", kind="invalid_url", url=url) from None
    if not host:
        raise FetchError(f"URL has no host: {url[:200]}", kind="invalid_url", url=url)
    if "%" in host and ":" not in host:  # httpx percent-encodes what a host name cannot hold ("exa mple.org")
        raise FetchError(f"URL has an invalid host name: {url[:200]}", kind="invalid_url", url=url)
    return parsed


def _check_status(response: httpx.Response) -> None:
    status = response.status_code
    if 200 <= status < 300 or status == 304:
        return
    reason = response.reason_phrase or httpx.codes.get_reason_phrase(status)
    message = f"HTTP {status} {reason}".rstrip()
    retry_after = retry_after_seconds(response.headers.get("retry-after"), datetime.now(timezone.utc))
    if retry_after:  # a wait of 0 (a date already past) is no wait worth naming
        message += f" (retry after {_duration(retry_after)})"
    if status == 410:
        kind = "gone"
    elif status == 429:
        kind = "rate_limited"
    elif status == 503:
        kind = "unavailable"
    else:
        kind = "http_status"
    raise FetchError(message, kind=kind, status=status, retry_after=retry_after)


def _root_cause(exc: BaseException) -> BaseException:
    """The innermost error: httpcore wraps the original as its first argument and sometimes
    re-raises ``from None``, so both the chain and the argument are followed."""
    seen: set[int] = set()
    while id(exc) not in seen:
        seen.add(id(exc))
        if exc.__cause__ is not None:
            exc = exc.__cause__
        elif exc.args and isinstance(exc.args[0], BaseException):
            exc = exc.args[0]
        else:
            break
    return exc


def _reason(exc: BaseException) -> str:
    cause = _root_cause(exc)
    if isinstance(cause, ssl.SSLCertVerificationError):
        return cause.verify_message or "certificate verification failed"
    if isinstance(cause, ssl.SSLError):
        return cause.reason.replace("_", " ").lower() if cause.reason else str(cause)
    if isinstance(cause, OSError) and cause.strerror:
        return cause.strerror
    text = str(cause) or str(exc) or type(cause).__name__
    return text.splitlines()[0][:200]


def _translate(exc: BaseException, deadline: _Deadline, url: str, settings: FetchSettings) -> FetchError:
    """A third-party error as a FetchError a user can act on."""
    parsed = httpx.URL(url)
    host = f"{parsed.host}:{parsed.port}" if parsed.port else parsed.host
    cause = _root_cause(exc)
    if deadline.expired:
        return FetchError(deadline.message(), kind="deadline", url=url)
    if isinstance(cause, ssl.SSLError):
        return FetchError(f"TLS error with {host}: {_reason(exc)}", kind="tls", url=url)
    if isinstance(exc, (httpcore.ConnectTimeout, httpx.ConnectTimeout)):
        return FetchError(f"connection to {host} timed out after {settings.connect_timeout:g} s",
                          kind="timeout", url=url)
    if isinstance(exc, (httpcore.PoolTimeout, httpx.PoolTimeout)):
        return FetchError(f"no free connection for {host} within {settings.connect_timeout:g} s",
                          kind="timeout", url=url)
    if isinstance(exc, (httpcore.TimeoutException, httpx.TimeoutException)):
        return FetchError(f"{host} sent nothing for {settings.read_timeout:g} s", kind="timeout", url=url)
    if isinstance(exc, (httpcore.ConnectError, httpx.ConnectError)):
        return FetchError(f"cannot connect to {host}: {_reason(exc)}", kind="connect", url=url)
    if isinstance(exc, (httpcore.NetworkError, httpx.NetworkError, OSError)):
        return FetchError(f"connection to {host} failed: {_reason(exc)}", kind="connect", url=url)
    if isinstance(exc, (httpcore.UnsupportedProtocol, httpx.UnsupportedProtocol, httpx.InvalidURL)):
        return FetchError(f"cannot fetch {url[:200]}: {_reason(exc)}", kind="invalid_url", url=url)
    return FetchError(f"malformed HTTP response from {host}: {_reason(exc)}", kind="protocol", url=url)
