"""A small threaded HTTP server on 127.0.0.1 for tests: feeds, redirects, slow and hostile answers.

Usage::

    with FeedServer() as server:
        server.add("/feed.xml", rss_bytes, etag='"v1"')
        server.add("/old", status=301, headers={"Location": "/feed.xml"})
        fetch(server.url("/old"))
        assert server.requests_for("/feed.xml")[0].headers["user-agent"].startswith("newsmon/")

or the ``feed_server`` fixture, which yields a started server and stops it afterwards.

A route answers with a ``Response``: a fixed one given to ``add`` or one built per request by a
``handler(record) -> Response``. Hostile behaviours: ``delay`` (wait before answering), ``trickle``
(seconds per byte of body; with ``trickle_headers`` the status line and headers trickle too),
``reset`` (abort the connection with a TCP RST: before any answer when the body is empty, otherwise
after sending the body under a Content-Length that promises more), ``chunks`` (a body streamed with
chunked transfer encoding from a generator, for bodies too large to hold) and ``raw`` (the handler
gets the socket and writes whatever it likes). Unknown paths answer 404.
"""

from __future__ import annotations

import gzip as gzip_module
import http.server
import socket
import struct
import sys
import threading
import time
from dataclasses import dataclass, field, replace
from email.utils import parsedate_to_datetime
from typing import Callable, Iterable, Iterator

import pytest

__all__ = ["FeedServer", "RequestRecord", "Response", "feed_server"]

_SEND_BLOCK = 64 * 1024


@dataclass(frozen=True)
class RequestRecord:
    """One request the server received. ``headers`` keys are lower-case."""

    method: str
    path: str                      # path and query, as sent
    headers: dict[str, str]
    time: float                    # time.monotonic() when the request line and headers were read
    body: bytes = b""


@dataclass
class Response:
    """What a route answers. ``body`` may be text (sent as UTF-8)."""

    status: int = 200
    body: bytes | str = b""
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str | None = "application/rss+xml"
    delay: float = 0.0
    trickle: float | None = None
    trickle_headers: bool = False
    gzip: bool = False
    reset: bool = False
    chunks: Callable[[], Iterable[bytes]] | None = None
    raw: Callable[[socket.socket, RequestRecord], None] | None = None


@dataclass
class _Route:
    response: Response
    etag: str | None = None
    last_modified: str | None = None
    handler: Callable[[RequestRecord], Response] | None = None


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    request_queue_size = 128
    allow_reuse_address = True

    def __init__(self, owner: FeedServer) -> None:
        self.owner = owner
        super().__init__(("127.0.0.1", 0), _Handler)

    def handle_error(self, request: object, client_address: object) -> None:
        if isinstance(sys.exc_info()[1], (ConnectionError, socket.timeout)):
            return  # a client hanging up is routine here
        super().handle_error(request, client_address)  # prints the traceback: a bug in a route


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "FeedServer/1"
    timeout = 30  # an idle keep-alive connection is dropped after this
    disable_nagle_algorithm = True  # head and body go out as separate writes

    server: _Server

    def setup(self) -> None:
        super().setup()
        self.server.owner._track(self.connection, add=True)

    def finish(self) -> None:
        try:
            super().finish()
        except OSError:
            pass
        self.server.owner._track(self.connection, add=False)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib signature
        pass

    def do_GET(self) -> None:
        self._serve()

    do_HEAD = do_POST = do_PUT = do_DELETE = do_PATCH = do_GET

    def _serve(self) -> None:
        record = RequestRecord(
            method=self.command,
            path=self.path,
            headers={key.lower(): value for key, value in self.headers.items()},
            time=time.monotonic(),
            body=self._read_request_body(),
        )
        owner = self.server.owner
        owner._record(record)
        response = owner._respond(record)
        try:
            self._send(record, response)
        except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError, socket.timeout):
            self.close_connection = True

    def _read_request_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _send(self, record: RequestRecord, response: Response) -> None:
        stop = self.server.owner._stopping
        if response.delay and stop.wait(response.delay):
            self.close_connection = True
            return
        if response.raw is not None:
            self.wfile.flush()
            response.raw(self.connection, record)
            self.close_connection = True
            return
        body = response.body.encode("utf-8") if isinstance(response.body, str) else response.body
        if response.reset and not body:
            self._abort()
            return
        headers = dict(response.headers)
        if response.content_type and not _has(headers, "content-type"):
            headers["Content-Type"] = response.content_type
        if response.gzip:
            body = gzip_module.compress(body)
            headers["Content-Encoding"] = "gzip"
        streamed = response.chunks is not None and response.status != 304
        if streamed:
            headers["Transfer-Encoding"] = "chunked"
        elif not _has(headers, "content-length") and response.status not in (204, 304):
            headers["Content-Length"] = str(len(body) + (1 if response.reset else 0))
        head = self._head(response.status, headers)
        head_pace = response.trickle if response.trickle_headers else None
        if not self._write(head, head_pace, stop):
            return
        if self.command == "HEAD" or response.status in (204, 304):
            return
        if streamed:
            self._write_chunked(response.chunks(), stop)  # type: ignore[misc]
        elif not self._write(body, response.trickle, stop):
            return
        if response.reset:
            self._abort()

    def _head(self, status: int, headers: dict[str, str]) -> bytes:
        reason = self.responses.get(status, ("",))[0]
        lines = [f"HTTP/1.1 {status} {reason}"]
        lines.append(f"Date: {self.date_time_string()}")
        lines.extend(f"{name}: {value}" for name, value in headers.items())
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")

    def _write(self, data: bytes, pace: float | None, stop: threading.Event) -> bool:
        """Send ``data``, one byte every ``pace`` seconds if set. False when the server is stopping."""
        if pace is None:
            view = memoryview(data)
            for start in range(0, len(view), _SEND_BLOCK):
                self.wfile.write(view[start:start + _SEND_BLOCK])
            return True
        for index in range(len(data)):
            self.wfile.write(data[index:index + 1])
            if stop.wait(pace):
                self.close_connection = True
                return False
        return True

    def _write_chunked(self, chunks: Iterable[bytes], stop: threading.Event) -> None:
        for chunk in chunks:
            if stop.is_set():
                self.close_connection = True
                return
            if chunk:
                self.wfile.write(b"%x\r\n" % len(chunk))
                self.wfile.write(chunk)
                self.wfile.write(b"\r\n")
        self.wfile.write(b"0\r\n\r\n")

    def _abort(self) -> None:
        """Close with a TCP RST (SO_LINGER 0) instead of an orderly FIN."""
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.connection.close()
        self.close_connection = True


def _has(headers: dict[str, str], name: str) -> bool:
    return any(key.lower() == name for key in headers)


def _not_modified(record: RequestRecord, route: _Route) -> bool:
    if_none_match = record.headers.get("if-none-match")
    if route.etag is not None and if_none_match is not None:
        tags = [tag.strip() for tag in if_none_match.split(",")]
        return "*" in tags or route.etag in tags
    if_modified_since = record.headers.get("if-modified-since")
    if route.last_modified is not None and if_modified_since is not None:
        try:
            return parsedate_to_datetime(route.last_modified) <= parsedate_to_datetime(if_modified_since)
        except (TypeError, ValueError):
            return route.last_modified == if_modified_since
    return False


class FeedServer:
    """A threaded HTTP server on 127.0.0.1 at a free port. Thread-safe; use as a context manager."""

    def __init__(self) -> None:
        self._routes: dict[str, _Route] = {}
        self._lock = threading.Lock()
        self._connections: set[socket.socket] = set()
        self._stopping = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self.requests: list[RequestRecord] = []
        self.base_url = ""

    # life cycle -------------------------------------------------------------------------------
    def start(self) -> FeedServer:
        self._stopping.clear()
        self._server = _Server(self)
        host, port = self._server.server_address[:2]
        self.base_url = f"http://{host}:{port}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="feedserver", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is None:
            return
        self._stopping.set()
        self._server.shutdown()
        self._server.server_close()
        with self._lock:
            connections = list(self._connections)
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = None
        self._thread = None

    def __enter__(self) -> FeedServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # routes -----------------------------------------------------------------------------------
    def url(self, path: str) -> str:
        return self.base_url + (path if path.startswith("/") else "/" + path)

    def add(
        self,
        path: str,
        body: bytes | str = b"",
        *,
        status: int = 200,
        headers: dict[str, str] | None = None,
        content_type: str | None = "application/rss+xml",
        etag: str | None = None,
        last_modified: str | None = None,
        delay: float = 0.0,
        trickle: float | None = None,
        trickle_headers: bool = False,
        gzip: bool = False,
        reset: bool = False,
        chunks: Callable[[], Iterable[bytes]] | None = None,
        raw: Callable[[socket.socket, RequestRecord], None] | None = None,
        handler: Callable[[RequestRecord], Response] | None = None,
    ) -> None:
        """Serve ``path`` (matched with its query first, then without). Replaces an earlier route."""
        response = Response(
            status=status, body=body, headers=dict(headers or {}), content_type=content_type, delay=delay,
            trickle=trickle, trickle_headers=trickle_headers, gzip=gzip, reset=reset, chunks=chunks, raw=raw,
        )
        with self._lock:
            self._routes[path] = _Route(response, etag=etag, last_modified=last_modified, handler=handler)

    def redirect(self, path: str, location: str, status: int = 301) -> None:
        """A redirect route; ``location`` may be a path on this server or any URL."""
        self.add(path, status=status, headers={"Location": location}, content_type=None)

    def set_body(self, path: str, body: bytes | str, *, etag: str | None = None,
                 last_modified: str | None = None) -> None:
        """Change a route's content between polls (and its validators, when given)."""
        with self._lock:
            route = self._routes[path]
            route.response = replace(route.response, body=body)
            if etag is not None:
                route.etag = etag
            if last_modified is not None:
                route.last_modified = last_modified

    def requests_for(self, path: str) -> list[RequestRecord]:
        with self._lock:
            return [record for record in self.requests if record.path == path or _bare(record.path) == path]

    # called from handler threads --------------------------------------------------------------
    def _record(self, record: RequestRecord) -> None:
        with self._lock:
            self.requests.append(record)

    def _track(self, connection: socket.socket, *, add: bool) -> None:
        with self._lock:
            if add:
                self._connections.add(connection)
            else:
                self._connections.discard(connection)

    def _respond(self, record: RequestRecord) -> Response:
        with self._lock:
            route = self._routes.get(record.path) or self._routes.get(_bare(record.path))
        if route is None:
            return Response(status=404, body=b"not found", content_type="text/plain")
        if route.handler is not None:
            return route.handler(record)
        headers = dict(route.response.headers)
        if route.etag is not None:
            headers.setdefault("ETag", route.etag)
        if route.last_modified is not None:
            headers.setdefault("Last-Modified", route.last_modified)
        if _not_modified(record, route):
            return Response(status=304, headers=headers, content_type=None)
        return replace(route.response, headers=headers)


def _bare(path: str) -> str:
    return path.split("?", 1)[0]


def repeat_chunks(chunk: bytes, total: int) -> Callable[[], Iterator[bytes]]:
    """A ``chunks`` factory sending ``total`` bytes made of ``chunk`` repeated, without holding them."""

    def generate() -> Iterator[bytes]:
        sent = 0
        while sent < total:
            piece = chunk if total - sent >= len(chunk) else chunk[: total - sent]
            sent += len(piece)
            yield piece

    return generate


@pytest.fixture
def feed_server() -> Iterator[FeedServer]:
    """A started ``FeedServer``; stopped after the test."""
    with FeedServer() as server:
        yield server
