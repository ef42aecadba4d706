"""Keep channel secrets out of logs, errors, the outbox and CLI output.

``redact_url`` gives the printable form of a channel URL. ``secrets_of`` lists every fragment of a channel
configuration that may be secret (passwords, tokens in paths and hosts, query values, the secret header), and
``redact_text`` removes them from any text we did not write ourselves (httpx and Apprise messages). A logging
filter on the ``httpx``/``httpcore``/``apprise`` loggers scrubs the secrets of every channel built so far, so
third-party log lines are clean too.
"""

from __future__ import annotations

import logging
import threading
from urllib.parse import parse_qsl, quote, quote_plus, unquote, urlsplit

MASK = "***"

# query parameters whose values are addresses or options, not secrets
_SAFE_QUERY_KEYS = frozenset({
    "to", "from", "cc", "bcc", "name", "format", "mode", "smtp", "port", "timeout", "cto", "rto", "overflow",
    "method", "retry", "wait", "optional", "reply", "priority", "lang", "verify",
})
# schemes whose host is a server name (kept) rather than a token (masked)
_HOST_SCHEMES = frozenset({"http", "https", "json", "jsons", "xml", "xmls", "form", "forms", "mailto", "mailtos"})
_BUILTIN_PREFIXES = ("log:", "jsonl:")
_MIN_SECRET = 4


def _split_builtin(url: str) -> tuple[str, str]:
    """``webhook:https://...`` → ("webhook:", "https://..."); other URLs → ("", url)."""
    if url.lower().startswith("webhook:"):
        return url[: len("webhook:")], url[len("webhook:"):]
    return "", url


def redact_url(url: str) -> str:
    """The URL with passwords, tokens and secret query values replaced by ``***``.

    Keeps what helps a user recognise the channel: scheme, user name, server host and port, the first path
    segment of an HTTP URL, and address-like query values (``to=``, ``from=``).
    """
    if not url or url.lower().startswith(_BUILTIN_PREFIXES):
        return url
    prefix, inner = _split_builtin(url)
    try:
        parts = urlsplit(inner)
        hostname = parts.hostname
        port = parts.port
    except ValueError:
        if "://" in inner:
            return f"{prefix}{inner.split('://', 1)[0].lower()}://{MASK}"
        return MASK
    scheme = parts.scheme.lower()
    if not scheme:
        return MASK
    if scheme not in _HOST_SCHEMES:
        return f"{prefix}{scheme}://{MASK}"
    netloc = ""
    if parts.username:
        netloc = quote(unquote(parts.username), safe="") + (f":{MASK}" if parts.password is not None else "") + "@"
    elif parts.password is not None:
        netloc = f":{MASK}@"
    netloc += hostname or ""
    if port:
        netloc += f":{port}"
    path = _redact_path(parts.path)
    query = _redact_query(parts.query)
    return f"{prefix}{scheme}://{netloc}{path}{'?' + query if query else ''}"


def _redact_path(path: str) -> str:
    segments = [segment for segment in path.split("/") if segment]
    if not segments:
        return path if path == "/" else ""
    if len(segments) == 1 and len(segments[0]) < 16:
        return "/" + segments[0]
    return "/" + segments[0] + "/" + MASK if len(segments) > 1 else "/" + MASK


def _redact_query(query: str) -> str:
    if not query:
        return ""
    pairs = []
    for key, value in parse_qsl(query, keep_blank_values=True):
        shown = value if key.lower() in _SAFE_QUERY_KEYS else MASK
        pairs.append(f"{quote_plus(key)}={quote(shown, safe='@*,')}")
    return "&".join(pairs)


def secrets_of(url: str, secret_header: str | None = None) -> set[str]:
    """Every fragment of a channel's URL and secret header that could be a secret."""
    found: set[str] = set()
    if secret_header:
        found.add(secret_header.strip())
        if ":" in secret_header:
            found.add(secret_header.split(":", 1)[1].strip())
    if not url or url.lower().startswith(_BUILTIN_PREFIXES):
        return {item for item in found if len(item) >= _MIN_SECRET}
    _, inner = _split_builtin(url)
    found.update({url, inner})
    try:
        parts = urlsplit(inner)
        hostname = parts.hostname or ""
    except ValueError:
        if "://" in inner:
            rest = inner.split("://", 1)[1]
            found.update({rest, *rest.replace("@", "/").replace(":", "/").split("/")})
        return {item for item in found if len(item) >= _MIN_SECRET}
    scheme = parts.scheme.lower()
    if parts.password:
        found.add(unquote(parts.password))
        found.add(parts.password)
    if scheme not in _HOST_SCHEMES:
        found.update({hostname, unquote(parts.netloc.rsplit("@", 1)[-1])})
        if parts.username:
            found.add(unquote(parts.username))
    segments = [unquote(segment) for segment in parts.path.split("/") if segment]
    if scheme not in _HOST_SCHEMES:
        found.update(segments)
    else:
        found.update(segments[1:])
        if segments and len(segments[0]) >= 16:
            found.add(segments[0])
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        if key.lower() not in _SAFE_QUERY_KEYS:
            found.add(value)
    expanded = set(found)
    for item in found:
        expanded.add(quote(item, safe=""))
        expanded.add(quote_plus(item))
    return {item for item in expanded if len(item) >= _MIN_SECRET}


def redact_text(text: str, secrets: set[str] | frozenset[str]) -> str:
    """``text`` with each secret (longest first) replaced by ``***``."""
    if not text:
        return text
    for secret in sorted(secrets, key=len, reverse=True):
        if secret in text:
            text = text.replace(secret, MASK)
    return text


class _SecretRegistry:
    """Secrets of every channel built in this process, for the third-party log filter."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._secrets: frozenset[str] = frozenset()

    def add(self, secrets: set[str]) -> None:
        with self._lock:
            self._secrets = self._secrets | frozenset(secrets)

    @property
    def secrets(self) -> frozenset[str]:
        return self._secrets


REGISTRY = _SecretRegistry()


class SecretLogFilter(logging.Filter):
    """Rewrites a record's message with every registered secret masked (never drops a record)."""

    def filter(self, record: logging.LogRecord) -> bool:
        secrets = REGISTRY.secrets
        if not secrets:
            return True
        try:
            message = record.getMessage()
        except (TypeError, ValueError):
            return True
        cleaned = redact_text(message, secrets)
        if cleaned != message:
            record.msg = cleaned
            record.args = None
        return True


_FILTERED_LOGGERS = (
    "httpx", "httpcore", "httpcore.http11", "httpcore.http2", "httpcore.connection", "httpcore.proxy", "apprise",
    "urllib3", "urllib3.connectionpool", "urllib3.connection", "urllib3.util.retry", "requests",
)
_FILTER = SecretLogFilter()
_installed = False
_install_lock = threading.Lock()


def register_secrets(secrets: set[str]) -> None:
    """Remember a channel's secrets and make sure third-party loggers are scrubbed."""
    global _installed
    REGISTRY.add(secrets)
    with _install_lock:
        if _installed:
            return
        for name in _FILTERED_LOGGERS:
            logging.getLogger(name).addFilter(_FILTER)
        _installed = True
