"""Entries → Articles: canonical URLs, UTC dates, languages, keys and text fingerprints.

The pipeline normalises one feed at a time::

    parsed = parse_feed(result.body, result.headers, result.url)
    articles = normalize_feed(parsed, seen_at=utcnow(), feed_url=result.url, config_language=feed.language)

``normalize_feed`` works out the per-feed facts (does every entry link to the same page? which GUIDs
are shared by several entries?) once, then calls ``normalize_entry`` for each entry.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import re
import unicodedata
from collections import Counter
from collections.abc import Callable, Collection, Iterable
from datetime import datetime, timedelta, timezone
from functools import lru_cache
from urllib.parse import quote, unquote_plus, urljoin, urlsplit, urlunsplit

from monitor.clean import clean_plain_title, clean_title, html_to_text, normalize_whitespace
from monitor.models import Article, Entry, ParsedFeed

logger = logging.getLogger(__name__)

CLOCK_SKEW = timedelta(minutes=10)
MIN_GUID_LENGTH = 8

TRACKING_PARAMS = frozenset({
    "fbclid", "gclid", "gclsrc", "dclid", "gbraid", "wbraid", "msclkid", "mc_cid", "mc_eid", "igshid",
    "yclid", "_hsenc", "_hsmi", "__hssc", "__hstc", "__hsfp", "hsctatracking", "ref_src", "ref_url",
    "at_medium", "at_campaign", "at_custom1", "at_custom2", "at_custom3", "at_custom4", "xtor", "xtref",
    "ocid", "cmpid", "_ga", "_gl", "mkt_tok", "vero_id", "vero_conv", "oly_anon_id", "oly_enc_id",
    "rb_clickid", "s_cid", "wt.mc_id", "twclid", "ttclid", "li_fat_id", "ncid", "sr_share", "spm",
    # seen in the saved news feeds: DW, heise, Al Jazeera, CS Monitor, Guardian, NYT
    "maca", "wt_mc", "wt_zmc", "traffic_source", "icid", "cmp", "smid",
})
TRACKING_PREFIXES = ("utm_", "pk_", "mtm_", "itm_")
DEFAULT_PORTS = {"http": 80, "https": 443}

_HOST = re.compile(r"^[a-z0-9](?:[a-z0-9_-]*[a-z0-9_])?(?:\.[a-z0-9_](?:[a-z0-9_-]*[a-z0-9_])?)*$")
_IPV6 = re.compile(r"^[0-9a-f:.]+$")
_PATH_SAFE = "/%:@!$&'()*+,;=~-._"
_QUERY_SAFE = "/%:@!$'()*+,;=?~-._"
_LANGUAGE = re.compile(r"^[a-z]{2,3}$")
_NOT_WORD = re.compile(r"[\W_]+")
_COMBINING_MARKS = re.compile(r"[\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f]")
# Codes feeds put in <language> that name no language: countries, "undetermined", "multiple", "none".
NOT_LANGUAGES = frozenset({"us", "gb", "und", "mul", "zxx", "xx"})


# ---------------------------------------------------------------------------------------------- URLs

def canonical_url(url: str | None, base: str | None = None) -> str | None:
    """The canonical form of an http(s) URL, or None for anything else.

    Relative URLs are resolved against ``base``. Scheme and host are lower-cased, an international host
    becomes IDNA (punycode), a trailing dot on the host, user info, default ports (80/443), the fragment
    and tracking parameters (``utm_*`` and the ``TRACKING_PARAMS``) are dropped; other parameters keep
    their order and spelling; an empty path becomes ``/``; spaces and non-ASCII characters are
    percent-encoded. Idempotent; never raises."""
    if not isinstance(url, str):
        return None
    return _canonical_url(url, base if isinstance(base, str) else None)


@lru_cache(maxsize=4096)  # pure; a feed's homepage and many GUIDs come back with every entry
def _canonical_url(url: str, base: str | None) -> str | None:
    text = url.strip()
    if not text:
        return None
    try:
        if base:
            text = urljoin(base.strip(), text)
        parts = urlsplit(text)
        scheme = parts.scheme.lower()
        if scheme not in DEFAULT_PORTS:
            return None
        host = _canonical_host(parts.hostname or "")
        port = parts.port
    except ValueError:  # bad IPv6 literal, bad port, bad IDNA label
        return None
    if host is None:
        return None
    netloc = host if port is None or port == DEFAULT_PORTS[scheme] else f"{host}:{port}"
    path = quote(parts.path, safe=_PATH_SAFE) or "/"
    query = _clean_query(parts.query)
    return urlunsplit((scheme, netloc, path, query, ""))


def _canonical_host(raw: str) -> str | None:
    host = raw.strip().rstrip(".").lower()
    if not host:
        return None
    if ":" in host:  # urlsplit removed the brackets of an IPv6 literal
        return f"[{host}]" if _IPV6.match(host) else None
    if not host.isascii():
        host = host.encode("idna").decode("ascii").lower()  # UnicodeError is a ValueError
    return host if _HOST.match(host) else None


def _clean_query(query: str) -> str:
    if not query:
        return ""
    kept = []
    for pair in query.split("&"):
        if not pair:
            continue
        name = unquote_plus(pair.split("=", 1)[0]).strip().lower()
        if name in TRACKING_PARAMS or name.startswith(TRACKING_PREFIXES):
            continue
        kept.append(quote(pair, safe=_QUERY_SAFE))
    return "&".join(kept)


def url_domain(canonical: str | None) -> str | None:
    """Host of a canonical URL without a leading ``www.`` (and without the port)."""
    if not canonical:
        return None
    host = urlsplit(canonical).hostname
    if not host:
        return None
    return host[4:] if host.startswith("www.") and len(host) > 4 else host


def _is_site_root(canonical: str | None) -> bool:
    if not canonical:
        return False
    parts = urlsplit(canonical)
    return parts.path in ("", "/") and not parts.query


# ----------------------------------------------------------------------------------- feed-level facts

def feed_has_single_link(entries: list[Entry]) -> bool:
    """True when a feed with at least two entries links every entry to the same page (typically its
    homepage). The pipeline then normalises that feed with ``merge_urls=False``."""
    if len(entries) < 2:
        return False
    first = (entries[0].link or "").strip()
    return bool(first) and all((entry.link or "").strip() == first for entry in entries[1:])


def shared_guids(entries: Iterable[Entry]) -> frozenset[str]:
    """GUIDs carried by more than one entry of the same feed: they identify nothing."""
    counts = Counter((entry.guid or "").strip() for entry in entries)
    return frozenset(guid for guid, count in counts.items() if guid and count > 1)


def normalize_feed(
    parsed: ParsedFeed,
    *,
    seen_at: datetime,
    feed_url: str | None = None,
    config_language: str | None = None,
) -> list[Article]:
    """Normalise every entry of one parsed feed (the call the pipeline makes)."""
    merge_urls = not feed_has_single_link(parsed.entries)
    duplicates = shared_guids(parsed.entries)
    homepage = canonical_url(parsed.link, feed_url) if parsed.link else None
    return [
        normalize_entry(
            entry,
            seen_at=seen_at,
            feed_language=parsed.language,
            config_language=config_language,
            feed_url=feed_url,
            merge_urls=merge_urls,
            feed_link=homepage,
            shared_guids=duplicates,
        )
        for entry in parsed.entries
    ]


# --------------------------------------------------------------------------------------------- entries

def normalize_entry(
    entry: Entry,
    *,
    seen_at: datetime,
    feed_language: str | None = None,
    config_language: str | None = None,
    feed_url: str | None = None,
    merge_urls: bool = True,
    feed_link: str | None = None,
    shared_guids: Collection[str] = (),
) -> Article:
    """One parsed entry → an ``Article`` of clean text.

    - title: one line; summary and content: clean text; content is "" when it says the same as the summary.
    - url: ``canonical_url(entry.link, base=feed_url)``; domain: its host without ``www.``.
    - published: ``entry.published``, else ``entry.updated``, else ``seen_at`` (``published_source`` says
      which: "published", "updated", "first_seen"; ``undated`` is True in the last case). A date more
      than ``CLOCK_SKEW`` (10 min) after ``seen_at`` is clamped to ``seen_at``; ``published_source`` keeps
      naming the field the (wrong) date came from.
    - language: the entry's, else the feed's, else the configured one; primary subtag, lower-case
      (``en-US`` → ``en``); values that are not a 2-3 letter code are skipped.
    - authors, categories: cleaned, deduplicated case-insensitively, first spelling and order kept.
    - fingerprint: ``text_fingerprint(title, summary)`` (the content when the summary is empty).
    - key: see ``article_key``; ``feed_link`` (the feed's homepage) and ``shared_guids`` (from
      ``shared_guids(entries)``) let it reject GUIDs that identify nothing.
    """
    title = clean_title(entry.title)
    summary = html_to_text(entry.summary)
    # feedparser copies content:encoded into an empty summary: the same raw text needs no second parse
    content = html_to_text(entry.content) if entry.content and entry.content != entry.summary else ""
    if content and _same_text(content, summary):
        content = ""
    url = canonical_url(entry.link, feed_url)
    if seen_at.tzinfo is None:
        seen_at = seen_at.replace(tzinfo=timezone.utc)
    published, source = _published(entry, seen_at)
    return Article(
        key=article_key(
            entry, url, merge_urls, title=title, summary=summary, content=content,
            feed_link=feed_link, shared_guids=shared_guids,
        ),
        url=url,
        guid=(entry.guid or "").strip() or None,
        title=title,
        summary=summary,
        content=content,
        published=published,
        published_source=source,
        undated=source == "first_seen",
        first_seen=seen_at,
        language=normalize_language(entry.language, feed_language, config_language),
        authors=_unique_clean(entry.authors),
        categories=_unique_clean(entry.categories),
        domain=url_domain(url),
        fingerprint=text_fingerprint(title, summary or content),
    )


def _published(entry: Entry, seen_at: datetime) -> tuple[datetime, str]:
    """The article date and its source. Naive datetimes are taken as UTC."""
    if entry.published is not None:
        value, source = entry.published, "published"
    elif entry.updated is not None:
        value, source = entry.updated, "updated"
    else:
        return seen_at, "first_seen"
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    if value > seen_at + CLOCK_SKEW:
        value = seen_at
    return value, source


def _same_text(first: str, second: str) -> bool:
    if first == second:
        return True
    if abs(len(first) - len(second)) > 20 + max(len(first), len(second)) // 10:
        return False  # folding only removes punctuation and spacing: texts this different stay different
    return fold_text(first) == fold_text(second)


def normalize_language(*candidates: str | None) -> str | None:
    """The first usable language code among ``candidates``, as a lower-case primary subtag."""
    for value in candidates:
        if not value or not isinstance(value, str):
            continue
        primary = re.split(r"[-_\s]", value.strip().lower(), maxsplit=1)[0]
        if _LANGUAGE.match(primary) and primary not in NOT_LANGUAGES:
            return primary
    return None


def clean_plain_article(article: Article) -> Article:
    """``article`` with its text cleaned as ``normalize_entry`` cleans a feed's, for text that arrives as text
    (``newsmon import``): the invisible and control characters go, white space is collapsed, the title,
    authors and categories are one line. No markup is parsed: an exported article's ``<`` and ``&`` are
    literal characters, and text that is clean already (an export of a polled article) comes back unchanged."""
    return dataclasses.replace(
        article,
        title=clean_plain_title(article.title),
        summary=normalize_whitespace(article.summary),
        content=normalize_whitespace(article.content),
        authors=_unique_clean(article.authors, clean_plain_title),
        categories=_unique_clean(article.categories, clean_plain_title),
    )


def _unique_clean(values: Iterable[str], clean: Callable[[str], str] = clean_title) -> list[str]:
    seen: set[str] = set()
    result = []
    for value in values:
        cleaned = clean(value)
        folded = cleaned.casefold()
        if cleaned and folded not in seen:
            seen.add(folded)
            result.append(cleaned)
    return result


# ------------------------------------------------------------------------------- keys and fingerprints

def article_key(
    entry: Entry,
    canonical: str | None,
    merge_urls: bool = True,
    *,
    title: str | None = None,
    summary: str | None = None,
    content: str | None = None,
    feed_link: str | None = None,
    shared_guids: Collection[str] = (),
) -> str:
    """The article's stable identity, one of three forms, tried in this order:

    1. ``"guid:" + guid`` when the GUID is trustworthy. It is not when it is empty, shorter than
       ``MIN_GUID_LENGTH`` (8) characters, only digits (a database row number that another feed may
       use too), the feed's homepage or any site root URL, or shared by several entries of the feed
       (``shared_guids``).
    2. ``"url:" + canonical URL`` when ``merge_urls`` is on (it is off for a feed whose entries all
       link to one page, see ``feed_has_single_link``) and the URL is not a site root.
    3. ``"hash:" + sha1`` of the clean title and the clean summary (the clean content when the summary
       is empty).

    ``title``, ``summary`` and ``content`` are the clean texts when the caller has them (else they are
    cleaned here).
    """
    homepage = canonical_url(feed_link) if feed_link else None
    guid = (entry.guid or "").strip()
    if guid and _trustworthy_guid(guid, homepage, shared_guids):
        return "guid:" + guid
    if merge_urls and canonical and not _is_site_root(canonical) and canonical != homepage:
        return "url:" + canonical
    clean_title_text = clean_title(entry.title) if title is None else title
    clean_summary = html_to_text(entry.summary) if summary is None else summary
    if not clean_summary:
        clean_summary = html_to_text(entry.content) if content is None else content
    digest = hashlib.sha1(f"{clean_title_text}\n{clean_summary}".encode("utf-8", "surrogatepass")).hexdigest()
    return "hash:" + digest


def _trustworthy_guid(guid: str, feed_link: str | None, shared: Collection[str]) -> bool:
    if len(guid) < MIN_GUID_LENGTH or guid.isdigit() or guid in shared:
        return False
    if guid[:4].lower() == "http":
        as_url = canonical_url(guid)
        if as_url and (_is_site_root(as_url) or as_url == feed_link):
            return False
    return True


def fold_text(text: str) -> str:
    """Case-folded, accent-folded, punctuation-free text with single spaces (for fingerprints)."""
    folded = text.casefold()
    if not folded.isascii():
        folded = _COMBINING_MARKS.sub("", unicodedata.normalize("NFKD", folded))
    return _NOT_WORD.sub(" ", folded).strip()


def text_fingerprint(title: str, summary: str) -> str:
    """sha1 (hex) of the folded title and summary: equal for texts that differ only in case, accents,
    punctuation or spacing."""
    folded = fold_text(f"{title} {summary}")
    return hashlib.sha1(folded.encode("utf-8", "surrogatepass")).hexdigest()
