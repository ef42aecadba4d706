"""Alert channels: ``log``, ``jsonl://PATH``, ``webhook:URL`` and everything Apprise knows.

A channel is built from a channel configuration and has one method, ``send(message)``, which either
returns (delivered) or raises ``AlertError`` whose ``reason`` is free of secrets. Apprise reports failure
as a return value: its log lines during the call are captured with ``apprise.LogCapture`` and become the
reason.
"""

from __future__ import annotations

import json
import logging
import os
import re
import threading
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import parse_qsl, urlsplit

import httpcore
import httpx

from monitor import __version__
from monitor.alerts.redact import redact_text, redact_url, register_secrets, secrets_of
from monitor.alerts.render import Message, one_line
from monitor.errors import AlertError
from monitor.fetch import TRANSPORT_ERRORS, bounded_transport, total_deadline

log = logging.getLogger(__name__)
# the ``log`` channel's own logger, so the CLI can show alert lines at INFO without the rest
alert_log = logging.getLogger("monitor.alerts.log")

DEFAULT_TIMEOUT = timedelta(seconds=15)
APPRISE_DEFAULT_DEADLINE = timedelta(seconds=60)   # Apprise's own default budget for one send
LOG_CHANNEL = "log"
DEFAULT_SECRET_HEADER = "X-Newsmon-Secret"
_EMAIL_SCHEMES = frozenset({"mailto", "mailtos"})
_APPRISE_LOCK = threading.Lock()
_ANSWER_CAP = 64 * 1024     # bytes of a webhook's answer read (shown in errors); the rest is never read


@dataclass(frozen=True)
class ChannelSpec:
    """What delivery needs of a ``[[channels]]`` entry (built from ``config.ChannelConfig``)."""

    name: str
    url: str
    max_per_hour: int | None = None
    secret_header: str | None = None
    timeout: timedelta | None = None

    @classmethod
    def from_config(cls, channel: Any) -> "ChannelSpec":
        return cls(
            name=channel.name,
            url=channel.url,
            max_per_hour=getattr(channel, "max_per_hour", None),
            secret_header=getattr(channel, "secret_header", None),
            timeout=getattr(channel, "timeout", None),
        )

    @property
    def display_url(self) -> str:
        return redact_url(self.url)

    @property
    def secrets(self) -> set[str]:
        return secrets_of(self.url, self.secret_header)


class Channel(Protocol):
    spec: ChannelSpec

    def send(self, message: Message) -> None: ...


def channel_specs(config: Any) -> dict[str, ChannelSpec]:
    """Configured channels by name, plus the ``log`` channel, which always exists."""
    specs = {channel.name: ChannelSpec.from_config(channel) for channel in getattr(config, "channels", ())}
    specs.setdefault(LOG_CHANNEL, ChannelSpec(name=LOG_CHANNEL, url="log:"))
    return specs


def _scheme(url: str) -> str:
    return url.split(":", 1)[0].lower() if ":" in url else ""


def validate_channel_url(url: str) -> None:
    """Raise ValueError with a clear reason when newsmon cannot send to ``url`` (for the config loader)."""
    if not isinstance(url, str) or not url.strip():
        raise ValueError("channel URL is empty")
    url = url.strip()
    scheme = _scheme(url)
    if url == LOG_CHANNEL or scheme == "log":
        return
    if scheme == "jsonl":
        if not url.lower().startswith("jsonl://") or not url[len("jsonl://"):]:
            raise ValueError("a jsonl channel needs a file path: jsonl:///var/lib/newsmon/alerts.jsonl")
        return
    if scheme == "webhook":
        _validate_webhook(url[len("webhook:"):])
        return
    if not scheme or "://" not in url:
        raise ValueError(
            f"{redact_url(url)!r} is not a channel URL: use log:, jsonl://PATH, webhook:https://... "
            "or an Apprise URL such as mailtos://user:pass@host?to=addr or slack://...")
    if scheme not in _apprise_schemes():
        raise ValueError(
            f"unknown channel scheme {scheme + '://'!r}: use log:, jsonl://PATH, webhook:URL or a scheme "
            "Apprise supports (mailto://, mailtos://, slack://, discord://, tgram://, ntfy://, matrix://, "
            "json://, ...)")
    reason = _apprise_rejects(url)
    if reason:
        raise ValueError(f"Apprise cannot use this {scheme}:// URL ({redact_url(url)}): {reason}")


def _validate_webhook(target: str) -> None:
    try:
        parts = urlsplit(target)
    except ValueError as exc:
        raise ValueError(f"webhook URL is malformed: {exc}") from exc
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise ValueError("a webhook channel needs an http(s) URL: webhook:https://host/path")


_SCHEMES: frozenset[str] | None = None


def _apprise_schemes() -> frozenset[str]:
    global _SCHEMES
    if _SCHEMES is None:
        from apprise.manager_plugins import NotificationManager

        _SCHEMES = frozenset(scheme.lower() for scheme in NotificationManager().schemas())
    return _SCHEMES


def _apprise_rejects(url: str) -> str | None:
    import apprise  # imported when first needed: a poll that sends nothing does not pay for it

    secrets = secrets_of(url)
    register_secrets(secrets)
    # Apprise's lines are the reason of our one-line error: captured here, not also printed on stderr
    apprise_log = logging.getLogger("apprise")
    propagate, apprise_log.propagate = apprise_log.propagate, False
    try:
        with apprise.LogCapture(level=logging.WARNING, fmt="%(message)s") as captured:
            plugin = apprise.Apprise.instantiate(url)
    finally:
        apprise_log.propagate = propagate
    if plugin is not None:
        return None
    lines = [line.strip() for line in captured.getvalue().splitlines() if line.strip()]
    # "Could not load E-Mail URL: ..." says nothing more than our message: the lines before it say why
    reasons = [line for line in lines if not _APPRISE_GENERIC.match(line)] or lines[-1:]
    return redact_text("; ".join(reasons), secrets) if reasons else "missing or malformed parts"


_APPRISE_GENERIC = re.compile(r"(Could not load|Unparseable) .*URL\b")


def build_channel(spec: ChannelSpec) -> Channel:
    """The sender for one channel; raises AlertError(retryable=False) when the URL is unusable."""
    register_secrets(spec.secrets)
    scheme = _scheme(spec.url)
    if spec.url == LOG_CHANNEL or scheme == "log":
        return LogChannel(spec)
    if scheme == "jsonl":
        return JsonlChannel(spec)
    if scheme == "webhook":
        return WebhookChannel(spec)
    return AppriseChannel(spec)


class LogChannel:
    """One structured log line per alert (logger ``monitor.alerts.log``, level INFO)."""

    def __init__(self, spec: ChannelSpec) -> None:
        self.spec = spec

    def send(self, message: Message) -> None:
        data = message.data
        alert_log.info(
            "alert channel=%s rule=%s story_id=%s kind=%s headline=%s url=%s sources=%d",
            _quoted(self.spec.name), _quoted(one_line(data.get("rule"), 80)), data.get("story_id"),
            _quoted(str(data.get("kind"))), _quoted(one_line(message.title)),
            _quoted(one_line(data.get("url"), 500)), len(data.get("sources") or data.get("items") or []),
        )


def _quoted(text: str) -> str:
    """A log field value in double quotes; accents and emoji stay readable (``one_line`` removed controls)."""
    return json.dumps(text, ensure_ascii=False)


_JSONL_LOCKS: dict[str, threading.Lock] = {}
_JSONL_LOCKS_GUARD = threading.Lock()


class JsonlChannel:
    """Appends one JSON object per alert to a file, flushed and fsynced before the alert counts as sent."""

    def __init__(self, spec: ChannelSpec) -> None:
        self.spec = spec
        self.path = Path(spec.url[len("jsonl://"):])

    def send(self, message: Message) -> None:
        line = json.dumps(message.data, ensure_ascii=False, sort_keys=True) + "\n"
        with _JSONL_LOCKS_GUARD:
            lock = _JSONL_LOCKS.setdefault(str(self.path.resolve()), threading.Lock())
        try:
            with lock:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                with open(self.path, "a", encoding="utf-8") as handle:
                    handle.write(line)
                    handle.flush()
                    os.fsync(handle.fileno())
        except OSError as exc:
            reason = f"cannot append to {self.path}: {exc.strerror or exc.__class__.__name__}"
            raise AlertError(reason, channel=self.spec.name) from exc


def _secret_header(value: str | None) -> dict[str, str]:
    """``"Name: value"`` → {Name: value}; a bare value goes in ``X-Newsmon-Secret``."""
    if not value:
        return {}
    if ":" in value:
        name, secret = value.split(":", 1)
        if name.strip() and " " not in name.strip():
            return {name.strip(): secret.strip()}
    return {DEFAULT_SECRET_HEADER: value.strip()}


class WebhookChannel:
    """POSTs newsmon's alert JSON; 2xx is delivered, anything else (or no answer in time) is retried."""

    def __init__(self, spec: ChannelSpec) -> None:
        self.spec = spec
        self.target = spec.url[len("webhook:"):]
        try:
            _validate_webhook(self.target)
        except ValueError as exc:
            raise AlertError(str(exc), channel=spec.name, retryable=False) from exc
        self.timeout = (spec.timeout or DEFAULT_TIMEOUT).total_seconds()
        self.headers = {"User-Agent": f"newsmon/{__version__}", "Content-Type": "application/json"}
        self.headers.update(_secret_header(spec.secret_header))
        self._client: httpx.Client | None = None

    def _http(self) -> httpx.Client:
        # one client (one TLS context, kept-alive connections) for the channel's whole batch; its transport
        # keeps every send within the channel's timeout in total, however slowly the receiver answers
        if self._client is None:
            self._client = httpx.Client(transport=bounded_transport(), timeout=self.timeout,
                                        follow_redirects=False, trust_env=False)
        return self._client

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def send(self, message: Message) -> None:
        body = json.dumps(message.data, ensure_ascii=False, sort_keys=True).encode("utf-8")
        with total_deadline(self.timeout) as deadline:
            try:
                status, reason, answer = self._post(body)
            except TRANSPORT_ERRORS as exc:
                if deadline.expired or isinstance(exc, (httpx.TimeoutException, httpcore.TimeoutException)):
                    raise AlertError(f"no answer within {self.timeout:g}s ({exc.__class__.__name__})",
                                     channel=self.spec.name) from exc
                detail = redact_text(str(exc), self.spec.secrets)
                raise AlertError(f"{exc.__class__.__name__}: {detail}", channel=self.spec.name) from exc
        if not 200 <= status < 300:
            snippet = redact_text(one_line(answer, 200), self.spec.secrets)
            raise AlertError(f"HTTP {status} {reason}: {snippet}".rstrip(": "), channel=self.spec.name)

    def _post(self, body: bytes) -> tuple[int, str, str]:
        """POST ``body``; the status, its reason and the start of the answer (read up to a cap)."""
        with self._http().stream("POST", self.target, content=body, headers=self.headers) as response:
            answer = b""
            for chunk in response.iter_bytes():
                answer += chunk
                if len(answer) >= _ANSWER_CAP:
                    break
            return response.status_code, response.reason_phrase, answer.decode("utf-8", "replace")


class AppriseChannel:
    """Everything else, through Apprise: HTML + text for email, markup-free text for chat services."""

    def __init__(self, spec: ChannelSpec) -> None:
        self.spec = spec
        self.scheme = _scheme(spec.url)
        # a chat message longer than its service takes (Discord 2000 characters, Telegram 4096 ...) is refused
        # whole: Apprise splits it into messages that fit instead (a long digest). E-mail has no such limit.
        self.url = _with_timeouts(spec.url, spec.timeout)
        if not self.is_email:
            self.url = _with_defaults(self.url, {"overflow": "split"})
        self.deadline = (spec.timeout or APPRISE_DEFAULT_DEADLINE).total_seconds()
        try:
            validate_channel_url(spec.url)
        except ValueError as exc:
            raise AlertError(str(exc), channel=spec.name, retryable=False) from exc

    @property
    def is_email(self) -> bool:
        return self.scheme in _EMAIL_SCHEMES

    def send(self, message: Message) -> None:
        import apprise

        # service_timeout=0: Apprise sends in the calling thread (its own deadline would abandon the send in a
        # thread of its shared pool, which the interpreter joins at exit: `newsmon poll` would never end)
        asset = apprise.AppriseAsset(storage_mode=apprise.PersistentStoreMode.MEMORY, service_timeout=0)
        notifier = apprise.Apprise(asset=asset)
        if not notifier.add(self.url):
            raise AlertError("Apprise cannot use this URL", channel=self.spec.name, retryable=False)
        if self.is_email:
            title, body, body_format = message.title, message.html, apprise.NotifyFormat.HTML
        else:
            title, body, body_format = message.chat_title or message.title, message.chat, apprise.NotifyFormat.TEXT
        outcome: dict[str, Any] = {}

        def notify() -> None:
            try:
                # level: capture Apprise's warnings (its failure reasons) even when logging is set quieter
                with apprise.LogCapture(level=logging.WARNING, fmt="%(levelname)s|%(message)s") as captured:
                    result = notifier.notify(body=body, title=title, body_format=body_format)
                outcome["delivered"] = bool(result)
                outcome["captured"] = captured.getvalue()
                close = getattr(result, "close", None)
                if callable(close):
                    close()
            except BaseException as exc:  # noqa: BLE001 - handed to the sending thread below
                outcome["error"] = exc

        # Apprise may notify from its own worker threads, so its log lines cannot be told apart by thread:
        # one Apprise send at a time in this process, and everything captured meanwhile is this send's.
        # Apprise's timeouts apply to each socket operation, so a server that trickles its answers would hold
        # the send (and this lock) for hours: it runs in a daemon thread, abandoned at the channel's timeout.
        with _APPRISE_LOCK:
            worker = threading.Thread(target=notify, name=f"newsmon-apprise-{self.spec.name}", daemon=True)
            worker.start()
            worker.join(self.deadline)
        if worker.is_alive():
            log.warning("apprise send abandoned at its deadline channel=%s deadline_s=%g", self.spec.name,
                        self.deadline)
            raise AlertError(f"no answer within {self.deadline:g}s", channel=self.spec.name)
        if "error" in outcome:
            raise outcome["error"]
        if outcome.get("delivered"):
            return
        raise AlertError(self._reason(outcome.get("captured", "")), channel=self.spec.name)

    def _reason(self, captured: str) -> str:
        lines = []
        for line in captured.splitlines():
            level, _, text = line.partition("|")
            if level in ("WARNING", "ERROR", "CRITICAL") and text.strip():
                lines.append(text.strip())
        if not lines:
            return "Apprise reported a failed send without a reason"
        return redact_text(one_line(" / ".join(lines[-3:]), 500), self.spec.secrets)


def _with_timeouts(url: str, timeout: timedelta | None) -> str:
    """Pass the channel's timeout to Apprise as its connect/read timeouts unless the URL sets them."""
    if timeout is None:
        return url
    return _with_defaults(url, {key: f"{timeout.total_seconds():g}" for key in ("cto", "rto")})


def _with_defaults(url: str, defaults: dict[str, str]) -> str:
    """``url`` with ``key=value`` added to its query for each of ``defaults`` the URL does not set itself.

    The query is everything after the first ``?``, as Apprise reads it (``#`` names a channel in Apprise URLs,
    it does not start a fragment)."""
    query = url.split("?", 1)[1] if "?" in url else ""
    keys = {key.lower() for key, _ in parse_qsl(query, keep_blank_values=True)}
    extra = [f"{key}={value}" for key, value in defaults.items() if key not in keys]
    if not extra:
        return url
    return url + ("&" if "?" in url else "?") + "&".join(extra)
