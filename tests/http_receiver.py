"""A loopback HTTP receiver for alert tests: records every POST and answers with a status the test sets.

Usage::

    with HttpReceiver() as receiver:
        receiver.status = 500            # the channel is "down"
        ...
        receiver.status = 200            # it recovers
        assert receiver.json_bodies("/hook")[0]["rule"] == "mali"
"""

from __future__ import annotations

import http.server
import json
import socket
import threading
import time
from dataclasses import dataclass
from typing import Any

__all__ = ["HttpReceiver", "ReceivedRequest"]


@dataclass(frozen=True)
class ReceivedRequest:
    method: str
    path: str
    headers: dict[str, str]      # keys lower-case
    body: bytes
    answered: int                # the status we answered with

    def json(self) -> Any:
        return json.loads(self.body.decode("utf-8"))


class HttpReceiver:
    def __init__(self, port: int = 0) -> None:
        self.status = 200
        self.delay = 0.0                 # seconds to wait before answering (a slow channel)
        self.arrived = threading.Event()  # set when a POST comes in, before the delay
        self.requests: list[ReceivedRequest] = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self) -> None:
                super().setup()
                # headers and body go out in two writes: without this, Nagle + delayed ACK add ~40 ms each
                self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

            def do_POST(self) -> None:  # noqa: N802 (http.server naming)
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                status = receiver.status
                receiver.arrived.set()
                if receiver.delay:
                    time.sleep(receiver.delay)
                with receiver._lock:
                    receiver.requests.append(ReceivedRequest(
                        method="POST", path=self.path,
                        headers={key.lower(): value for key, value in self.headers.items()},
                        body=body, answered=status))
                answer = b'{"ok": true}' if status < 300 else b'{"error": "down for maintenance"}'
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet test server
                return

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self._thread = threading.Thread(target=self.server.serve_forever, name="http-receiver", daemon=True)

    def url(self, path: str = "/") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def accepted(self, path: str | None = None) -> list[ReceivedRequest]:
        """Requests answered 2xx (what a channel counts as delivered), optionally for one path."""
        with self._lock:
            return [request for request in self.requests
                    if request.answered < 300 and (path is None or request.path.split("?")[0] == path)]

    def json_bodies(self, path: str | None = None) -> list[Any]:
        return [request.json() for request in self.accepted(path)]

    def start(self) -> "HttpReceiver":
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> "HttpReceiver":
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
