"""Fetched bytes → ``ParsedFeed``: RSS 0.9x/1.0/2.0 and Atom 0.3/1.0 via feedparser, JSON Feed via
``monitor.jsonfeed``.

Safety: feedparser only ever sees the bytes (wrapped in ``io.BytesIO``), so it never opens a URL or a
local file. feedparser strips DOCTYPE entity declarations that are not plain literals and turns off
external general entities in its SAX parser; expat (>= 2.4) also refuses exponential entity expansion.
The tests feed it an external file entity and a billion-laughs document.

Speed: feedparser's own HTML sanitizer and relative-URI rewriting inside HTML are switched off: the
clean stage (``monitor.clean.html_to_text``) turns every HTML field into plain text anyway. feedparser
is not told the feed URL either: with a base URI it joins that base with itself at every element (a
quarter of its time on the benchmark feeds). Links come out of it resolved against any ``xml:base``;
those still relative are resolved against the feed URL here. Its SAX parser buffers character data
(``monitor.saxdriver``).

Error kinds (``ParseError.kind``): ``empty`` (no bytes), ``html_page`` (an HTML page, no feed in it),
``not_a_feed`` (anything else without a feed or entries), ``invalid_json`` (a JSON body that does not
decode), ``malformed`` (feedparser itself failed on the bytes). A valid feed with no entries is not
an error; a feed that is not well-formed keeps every entry feedparser recovered and ``bozo`` says why.
"""

from __future__ import annotations

import codecs
import io
import logging
import re
import xml.sax
from datetime import datetime, timezone
from typing import Any, Mapping
from urllib.parse import urljoin

import feedparser
import feedparser.api as _feedparser_api
import feedparser.namespaces._base as _feedparser_base

from monitor.errors import ParseError
from monitor.feeddates import register as _register_date_handler
from monitor.jsonfeed import MAX_YEAR, MIN_YEAR, parse_json_feed
from monitor.models import Entry, ParsedFeed

logger = logging.getLogger(__name__)

JSON_CONTENT_TYPES = frozenset({"application/feed+json", "application/json"})
_HTML_START = re.compile(rb"^\s*(?:<!--.*?-->\s*)*<(?:!doctype\s+html|html[\s>])", re.IGNORECASE | re.DOTALL)
_HTML_ANYWHERE = re.compile(rb"<html[\s>]|<body[\s>]|<head[\s>]", re.IGNORECASE)
_JSON_VERSION = re.compile(rb'"version"\s*:\s*"https?://jsonfeed\.org/version/', re.IGNORECASE)
_BOMS = (b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff")
_PERMALINK_KEY = "newsmon_guid_is_permalink"
_SNIFF_BYTES = 2048
_ABSOLUTE = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")  # has a scheme
_XML_DECLARED_ENCODING = re.compile(rb"""^\s*<\?xml\s[^>]*?\bencoding\s*=\s*["']([A-Za-z0-9._:-]+)["']""")
# single-byte encodings a server or template names by default while it sends UTF-8 (codecs' own names)
_LATIN_DEFAULTS = frozenset({"ascii", "iso8859-1", "iso8859-15", "cp1252"})
_UTF8_BOM = b"\xef\xbb\xbf"
BOZO_MAX_CHARS = 200

_register_date_handler()  # zone names, French dates, Unix times: read right (monitor.feeddates)

_dict_get = dict.get  # FeedParserDict.get goes through its alias machinery; entries are read a lot

_SAX_DRIVER = "monitor.saxdriver"  # expat with buffered character data (see that module)
_SAX_DRIVERS = getattr(_feedparser_api, "PREFERRED_XML_PARSERS", None)  # a speed-up only: absent, nothing changes
if isinstance(_SAX_DRIVERS, list) and _SAX_DRIVER not in _SAX_DRIVERS:
    _SAX_DRIVERS.insert(0, _SAX_DRIVER)


def parse_feed(body: bytes, headers: Mapping[str, str] | None = None, url: str | None = None) -> ParsedFeed:
    """Parse fetched feed bytes. ``headers`` are the HTTP response headers (any case; the content type
    decides the encoding and JSON detection); ``url`` is the feed URL, the base of relative links.
    Raises ParseError (see the module docstring for the kinds)."""
    if not body or body.isspace():
        raise ParseError("the response body is empty", kind="empty")
    response_headers = {str(name).lower(): str(value) for name, value in (headers or {}).items()}
    if _is_json(body, response_headers.get("content-type", "")):
        return parse_json_feed(body)
    mislabelled = _mislabelled_utf8(body, response_headers.get("content-type", ""))
    if mislabelled is not None:  # read as UTF-8 whatever the header or declaration says
        response_headers["content-type"] = "application/xml; charset=utf-8"
    result = _run_feedparser(body, response_headers, url)
    entries_raw = result.get("entries") or []
    version = result.get("version") or ""
    feed = result.get("feed") or {}
    if not version and not entries_raw and not _has_feed_metadata(feed, body):
        raise _no_feed_error(body, result)
    bozo = _bozo_text(result) if result.get("bozo") else None
    if mislabelled is not None and bozo is None:
        bozo = f"CharacterEncodingOverride: document declared as {mislabelled}, but parsed as utf-8"
    if bozo:
        logger.debug("feed not well-formed url=%s warning=%s", url, bozo)
    feed_language = _feed_language(feed)
    return ParsedFeed(
        format=version or "unknown",
        title=_dict_get(feed, "title") or "",
        link=_absolute(_dict_get(feed, "link"), url),
        language=feed_language,
        ttl_minutes=_ttl(_dict_get(feed, "ttl")),
        entries=[_entry(raw, feed_language, url) for raw in entries_raw],
        bozo=bozo,
    )


def _is_json(body: bytes, content_type: str) -> bool:
    head = body[:_SNIFF_BYTES].lstrip()
    for bom in _BOMS:
        if head.startswith(bom):
            head = head[len(bom):].lstrip()
    if head.startswith(b"<"):
        return False  # an XML feed served with a JSON content type: believe the bytes
    media_type = content_type.split(";", 1)[0].strip().lower()
    if media_type in JSON_CONTENT_TYPES:
        return True
    return head.startswith(b"{") and _JSON_VERSION.search(body[:_SNIFF_BYTES * 8]) is not None


def _mislabelled_utf8(body: bytes, content_type: str) -> str | None:
    """The Latin-1, Windows-1252 or ASCII charset that the Content-Type header or the XML declaration
    names for a body that is in fact UTF-8 (valid UTF-8 with characters beyond ASCII), else None.

    Servers and templates name these by default whatever they send; feedparser believes the label and
    turns every accent into mojibake ("prÃ©sident"). Text really written in one of them is practically
    never valid UTF-8 as well (an accented letter would have to be followed by exactly the right symbols)."""
    if body.isascii():
        return None
    declared = [content_type_charset(content_type)]
    match = _XML_DECLARED_ENCODING.match(body[len(_UTF8_BOM):512] if body.startswith(_UTF8_BOM) else body[:512])
    if match is not None:
        declared.append(match.group(1).decode("ascii"))
    latin = next((name for name in declared if name and _codec_name(name) in _LATIN_DEFAULTS), None)
    if latin is None:
        return None
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return None
    return latin.lower()


def content_type_charset(content_type: str | None) -> str | None:
    """The charset parameter of a Content-Type header value, else None."""
    for parameter in (content_type or "").split(";")[1:]:
        name, _, value = parameter.partition("=")
        if name.strip().lower() == "charset" and value.strip():
            return value.strip().strip("\"'")
    return None


def _codec_name(label: str) -> str | None:
    try:
        return codecs.lookup(label).name
    except LookupError:
        return None


def _run_feedparser(body: bytes, headers: dict[str, str], url: str | None) -> Any:
    try:
        return feedparser.parse(
            io.BytesIO(body),
            response_headers=headers,
            sanitize_html=False,
            resolve_relative_uris=False,
        )
    except (ValueError, LookupError, TypeError, AttributeError, RecursionError, xml.sax.SAXException) as exc:
        # feedparser catches XML errors itself; anything escaping it is a bug triggered by these bytes.
        logger.warning("feedparser failed url=%s error=%s", url, _one_line(repr(exc)))
        raise ParseError(f"the feed could not be parsed: {_one_line(str(exc))}", kind="malformed") from exc


def _has_feed_metadata(feed: Mapping[str, Any], body: bytes) -> bool:
    """An unversioned document with a channel title or link (CDF, odd RSS) is an empty feed, not an error."""
    if _looks_like_html(body):
        return False
    return bool(_dict_get(feed, "title") or _dict_get(feed, "link"))


def _no_feed_error(body: bytes, result: Any) -> ParseError:
    if _looks_like_html(body):
        return ParseError("the URL returned an HTML page, not a feed", kind="html_page")
    detail = _bozo_text(result) if result.get("bozo") else None
    message = "no RSS, Atom or JSON feed found in the response"
    return ParseError(f"{message} ({detail})" if detail else message, kind="not_a_feed")


def _looks_like_html(body: bytes) -> bool:
    head = body[:_SNIFF_BYTES * 4]
    for bom in _BOMS:
        if head.startswith(bom):
            head = head[len(bom):]
    return _HTML_START.match(head) is not None or _HTML_ANYWHERE.search(head) is not None


def _bozo_text(result: Any) -> str:
    exc = result.get("bozo_exception")
    text = f"{type(exc).__name__}: {exc}" if exc is not None else "feed is not well-formed"
    return _one_line(text, BOZO_MAX_CHARS)


def _one_line(text: str, limit: int = BOZO_MAX_CHARS) -> str:
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def _absolute(link: Any, base: str | None) -> str | None:
    """``link`` (a string from feedparser) joined to ``base`` unless it is absolute already; None if empty."""
    if not isinstance(link, str) or not link.strip():
        return None
    link = link.strip()
    if base and not _ABSOLUTE.match(link):
        try:
            return urljoin(base, link)
        except ValueError:  # a malformed base or link (bad IPv6 literal): left as the feed wrote it
            return link
    return link


def _entry(raw: Mapping[str, Any], feed_language: str | None, base: str | None) -> Entry:
    links = _dict_get(raw, "links") or ()
    guid = _dict_get(raw, "id")
    return Entry(
        title=_dict_get(raw, "title") or "",
        link=_absolute(_alternate_link(raw, links), base),
        guid=guid.strip() or None if isinstance(guid, str) else None,
        guid_is_permalink=_dict_get(raw, _PERMALINK_KEY),
        summary=_dict_get(raw, "summary") or "",
        content=_longest_content(_dict_get(raw, "content")),
        published=_struct_to_datetime(_dict_get(raw, "published_parsed")),
        updated=_struct_to_datetime(_dict_get(raw, "updated_parsed")),
        authors=_names(_dict_get(raw, "authors")),
        categories=_terms(_dict_get(raw, "tags")),
        language=_entry_language(raw) or feed_language,
        enclosures=[_absolute(link["href"], base) for link in links
                    if _dict_get(link, "rel") == "enclosure" and _dict_get(link, "href")],
    )


def _alternate_link(raw: Mapping[str, Any], links: Any) -> str | None:
    for link in links:
        if _dict_get(link, "rel") == "alternate" and _dict_get(link, "href"):
            return link["href"].strip()
    value = _dict_get(raw, "link")
    return value.strip() or None if isinstance(value, str) else None


def _longest_content(blocks: Any) -> str:
    best = ""
    for block in blocks or ():
        value = _dict_get(block, "value") or ""
        if len(value) > len(best):
            best = value
    return best


def _struct_to_datetime(value: Any) -> datetime | None:
    """feedparser's ``*_parsed`` struct_time (always UTC) → aware datetime; None outside 1970..2100."""
    if not value:
        return None
    try:
        year, month, day, hour, minute, second = value[:6]
        if not MIN_YEAR <= year <= MAX_YEAR:
            return None
        return datetime(year, month, day, hour, minute, min(second, 59), tzinfo=timezone.utc)
    except (TypeError, ValueError):
        return None


def _names(authors: Any) -> list[str]:
    names = []
    for author in authors or ():
        name = _dict_get(author, "name") if isinstance(author, dict) else None
        if isinstance(name, str) and name.strip():
            names.append(name.strip())
    return names


def _terms(tags: Any) -> list[str]:
    terms = []
    for tag in tags or ():
        if not isinstance(tag, dict):
            continue
        term = _dict_get(tag, "term") or _dict_get(tag, "label")
        if isinstance(term, str) and term.strip():
            terms.append(term.strip())
    return terms


def _entry_language(raw: Mapping[str, Any]) -> str | None:
    language = _dict_get(raw, "language")
    if isinstance(language, str) and language.strip():
        return language.strip()
    for key in ("title_detail", "summary_detail"):
        detail = _dict_get(raw, key)
        language = _dict_get(detail, "language") if isinstance(detail, dict) else None
        if isinstance(language, str) and language.strip():
            return language.strip()
    return None


def _feed_language(feed: Mapping[str, Any]) -> str | None:
    language = _dict_get(feed, "language")
    if isinstance(language, str) and language.strip():
        return language.strip()
    detail = _dict_get(feed, "title_detail")
    language = _dict_get(detail, "language") if isinstance(detail, dict) else None
    return language.strip() or None if isinstance(language, str) else None


def _ttl(value: Any) -> int | None:
    if isinstance(value, str):
        value = value.strip()
        if value.isdigit() and len(value) <= 7:
            minutes = int(value)
            return minutes if minutes > 0 else None
    return None


def _install_permalink_hook() -> None:
    """Record RSS ``<guid isPermaLink>`` on each entry.

    feedparser keeps only ``guidislink`` (isPermaLink *and* no ``<link>`` seen yet), not the attribute
    itself. This wraps its ``<guid>`` start handler to also save the attribute under a key of our own.
    Atom ``<id>`` is bound to the original handler, so Atom entries get no value (None)."""
    original = getattr(_feedparser_base.Namespace, "_start_guid", None)
    if original is None or getattr(original, "newsmon_hook", False):
        return

    def _start_guid(self: Any, attrs_d: Mapping[str, str]) -> None:
        flag = str(attrs_d.get("ispermalink", "true")).strip().lower() != "false"
        if getattr(self, "inentry", False):
            self._save(_PERMALINK_KEY, flag)
        original(self, attrs_d)

    _start_guid.newsmon_hook = True  # type: ignore[attr-defined]
    _feedparser_base.Namespace._start_guid = _start_guid


_install_permalink_hook()
