"""JSON Feed 1.0 / 1.1 (https://jsonfeed.org) → ``ParsedFeed``.

feedparser 6.0.x does not read JSON Feed, so this small parser maps it onto the same
``Entry`` model as RSS and Atom. It is tolerant: fields of the wrong type are ignored,
items that are not objects are skipped. Only a body that is not JSON at all, or JSON that
is not a JSON Feed, is an error.
"""

from __future__ import annotations

import json
import logging
import re
from datetime import datetime, timezone
from typing import Any

from monitor.errors import ParseError
from monitor.models import Entry, ParsedFeed

logger = logging.getLogger(__name__)

VERSION_PREFIXES = ("https://jsonfeed.org/version/", "http://jsonfeed.org/version/")
MIN_YEAR = 1970
MAX_YEAR = 2100


def is_json_feed_version(value: object) -> bool:
    """True when ``value`` is a JSON Feed ``version`` URL."""
    return isinstance(value, str) and value.strip().lower().startswith(VERSION_PREFIXES)


def parse_json_feed(body: bytes) -> ParsedFeed:
    """Parse a JSON Feed document. Raises ParseError ``invalid_json`` or ``not_a_feed``."""
    document = _load_json(body)
    if not isinstance(document, dict) or not is_json_feed_version(document.get("version")):
        raise ParseError("JSON document is not a JSON Feed (no jsonfeed.org version)", kind="not_a_feed")
    feed_language = _text(document.get("language")) or None
    feed_authors = _authors(document)
    items = document.get("items")
    entries = [
        _entry(item, feed_language, feed_authors)
        for item in (items if isinstance(items, list) else [])
        if isinstance(item, dict)
    ]
    return ParsedFeed(
        format=_format_name(document["version"]),
        title=_text(document.get("title")),
        link=_text(document.get("home_page_url")) or None,
        language=feed_language,
        ttl_minutes=None,
        entries=entries,
        bozo=None if isinstance(items, list) else "JSON Feed without an items list",
    )


def _load_json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise ParseError(f"invalid JSON: {_one_line(str(exc))}", kind="invalid_json") from exc


def _format_name(version: str) -> str:
    number = version.strip().rstrip("/").rsplit("/", 1)[-1]
    return "json" + number.replace(".", "")


def _entry(item: dict[str, Any], feed_language: str | None, feed_authors: list[str]) -> Entry:
    content_html = _text(item.get("content_html"))
    content_text = _text(item.get("content_text"))
    link = _text(item.get("url")) or _text(item.get("external_url")) or None
    guid = item.get("id")
    return Entry(
        title=_text(item.get("title")),
        link=link,
        guid=str(guid).strip() if isinstance(guid, (str, int)) and not isinstance(guid, bool) else None,
        guid_is_permalink=None,
        summary=_text(item.get("summary")),
        content=content_html or content_text,
        published=parse_rfc3339(item.get("date_published")),
        updated=parse_rfc3339(item.get("date_modified")),
        authors=_authors(item) or list(feed_authors),
        categories=[tag.strip() for tag in _list(item.get("tags")) if isinstance(tag, str) and tag.strip()],
        language=_text(item.get("language")) or feed_language,
        enclosures=[
            attachment["url"].strip()
            for attachment in _list(item.get("attachments"))
            if isinstance(attachment, dict) and isinstance(attachment.get("url"), str) and attachment["url"].strip()
        ],
    )


def _authors(obj: dict[str, Any]) -> list[str]:
    """Names from 1.1 ``authors`` (list) or 1.0 ``author`` (object)."""
    candidates = _list(obj.get("authors"))
    if not candidates and isinstance(obj.get("author"), dict):
        candidates = [obj["author"]]
    names = []
    for author in candidates:
        if isinstance(author, dict):
            name = _text(author.get("name"))
            if name:
                names.append(name)
    return names


_LEAP_SECOND = re.compile(r"(T\d{2}:\d{2}:)60(?=[.+-]|$)")


def parse_rfc3339(value: object) -> datetime | None:
    """An RFC 3339 date string → UTC-aware datetime; None when absent, unreadable or out of range."""
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip()
    if text[-1:] in ("z", "Z"):
        text = text[:-1] + "+00:00"
    text = _LEAP_SECOND.sub(r"\g<1>59", text)  # RFC 3339 allows second 60; datetime does not: read as :59
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    try:
        parsed = parsed.astimezone(timezone.utc)
    except OverflowError:
        return None
    if not MIN_YEAR <= parsed.year <= MAX_YEAR:
        return None
    return parsed


def _text(value: object) -> str:
    return value.strip() if isinstance(value, str) else ""


def _list(value: object) -> list[Any]:
    return value if isinstance(value, list) else []


def _one_line(text: str, limit: int = 200) -> str:
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1] + "…"
