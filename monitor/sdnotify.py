"""The systemd notification protocol (sd_notify), without libsystemd.

systemd passes ``NOTIFY_SOCKET`` to a ``Type=notify`` service: a path of an AF_UNIX datagram socket, or an
abstract-namespace name written with a leading ``@``. Each message is one datagram of ``KEY=value`` lines.
Without ``NOTIFY_SOCKET`` (not under systemd, or in tests) every call is a no-op.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time

log = logging.getLogger(__name__)


class Notifier:
    """Sends READY/STATUS/WATCHDOG/STOPPING to systemd. Thread-safe; failures are logged once, never raised."""

    def __init__(self, address: str | None = None) -> None:
        if address is None:
            address = os.environ.get("NOTIFY_SOCKET") or None
        self._address = _socket_address(address) if address else None
        self._lock = threading.Lock()
        self._sock: socket.socket | None = None
        self._warned = False

    @property
    def enabled(self) -> bool:
        return self._address is not None

    def notify(self, *fields: str) -> bool:
        """Send the ``KEY=value`` fields as one datagram; False when disabled or the send failed."""
        if self._address is None:
            return False
        payload = "\n".join(fields).encode("utf-8")
        with self._lock:
            try:
                if self._sock is None:
                    self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
                self._sock.sendto(payload, self._address)
            except OSError as exc:
                if not self._warned:
                    log.warning("sd_notify failed socket=%r error=%s", _printable(self._address), exc)
                    self._warned = True
                return False
        return True

    def ready(self, status: str | None = None) -> bool:
        fields = ["READY=1", f"MAINPID={os.getpid()}"]
        if status:
            fields.append(f"STATUS={_one_line(status)}")
        return self.notify(*fields)

    def status(self, text: str) -> bool:
        return self.notify(f"STATUS={_one_line(text)}")

    def watchdog(self) -> bool:
        return self.notify("WATCHDOG=1")

    def reloading(self) -> bool:
        """RELOADING=1 with the CLOCK_MONOTONIC time of the request, as sd_notify(3) asks (systemd 253 and
        newer use it to tell this reload from an earlier one)."""
        return self.notify(f"RELOADING=1\nMONOTONIC_USEC={time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000}")

    def stopping(self, status: str | None = None) -> bool:
        fields = ["STOPPING=1"]
        if status:
            fields.append(f"STATUS={_one_line(status)}")
        return self.notify(*fields)

    def close(self) -> None:
        with self._lock:
            if self._sock is not None:
                self._sock.close()
                self._sock = None


def watchdog_interval() -> float | None:
    """Seconds between watchdog pings systemd expects (``WATCHDOG_USEC``), or None when no watchdog is set.

    Honours ``WATCHDOG_PID`` (the watchdog is ours only when it names this process).
    """
    usec = os.environ.get("WATCHDOG_USEC")
    if not usec:
        return None
    pid = os.environ.get("WATCHDOG_PID")
    if pid and pid.strip() != str(os.getpid()):
        return None
    try:
        value = int(usec)
    except ValueError:
        return None
    return value / 1_000_000 if value > 0 else None


def _socket_address(address: str) -> str | bytes:
    if address.startswith("@"):
        return b"\0" + address[1:].encode("utf-8")
    return address


def _printable(address: str | bytes | None) -> str:
    if isinstance(address, bytes):
        return "@" + address[1:].decode("utf-8", "replace")
    return address or ""


def _one_line(text: str) -> str:
    return " ".join(text.split())
