"""Alert content: the JSON payload and its renderings for each medium.

Everything that came from a feed (titles, headlines, feed names, matched terms) is neutralised for the
medium it goes to: one line without control characters everywhere; HTML-escaped for the email HTML part;
markdown, mention and link syntax defused for chat services (lookalike characters, no ``@everyone``);
links only when they are http(s) URLs, percent-encoding the characters chat markup uses.
"""

from __future__ import annotations

import html
import re
import unicodedata
from dataclasses import dataclass
from typing import Any, Callable, Iterable
from urllib.parse import quote, urlsplit

from monitor.timeutil import to_iso

MAX_LINE = 300
MAX_SOURCES = 20
MAX_ITEMS = 50

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u200b-\u200f\u202a-\u202e\u2066-\u2069]+")
_SPACES = re.compile(r"\s+")
# markdown / mrkdwn / chat markup → harmless lookalikes
_CHAT_MAP = str.maketrans({
    "*": "\u2217", "_": "\uff3f", "~": "\u223c", "`": "\u02cb", "|": "\u2223", "[": "\uff3b", "]": "\uff3d",
    "<": "\u2039", ">": "\u203a", "#": "\uff03", "\\": "\u29f5", "(": "\uff08", ")": "\uff09", "!": "\uff01",
    "@": "\uff20", ":": "\u2236", "&": "\uff06",
})
_URL_UNSAFE = "<>|\"`[]() {}\\^'*_~"


@dataclass(frozen=True)
class Message:
    """One message in every form a channel may need."""

    title: str                  # one line, plain (email subject)
    text: str                   # plain text (email text part, log)
    html: str                   # email HTML part (all feed text escaped)
    chat: str                   # text for chat services (markup defused)
    data: dict[str, Any]        # our JSON (webhook body, jsonl line)
    chat_title: str = ""        # one line for chat services (markup defused)


def one_line(text: Any, limit: int = MAX_LINE) -> str:
    """Feed text as one printable line: no control or bidi characters, collapsed spaces, bounded length."""
    value = unicodedata.normalize("NFC", str(text or ""))
    value = _SPACES.sub(" ", _CONTROL.sub(" ", value)).strip()
    if len(value) > limit:
        value = value[: limit - 1].rstrip() + "\u2026"
    return value


def chat_text(text: Any, limit: int = MAX_LINE) -> str:
    """Feed text for a chat message: markup characters replaced by lookalikes, so nothing is interpreted."""
    return one_line(text, limit).translate(_CHAT_MAP)


def html_text(text: Any, limit: int = MAX_LINE) -> str:
    return html.escape(one_line(text, limit), quote=True)


def safe_link(url: Any) -> str | None:
    """An http(s) URL with chat/markup characters percent-encoded, or None.

    No ``@`` is left for a chat service to read as a mass mention (``@everyone``, ``@here``, ``@room``): it is
    percent-encoded after the host, and the user-info part (``https://user@host/``) is left out."""
    if not isinstance(url, str):
        return None
    candidate = one_line(url, 2000).replace(" ", "%20")
    try:
        parts = urlsplit(candidate)
    except ValueError:
        return None
    scheme_end = len(parts.scheme) + len("://")
    authority_end = scheme_end + len(parts.netloc)
    if (parts.scheme.lower() not in ("http", "https") or not parts.netloc
            or candidate[scheme_end:authority_end] != parts.netloc):
        return None
    host = parts.netloc.rpartition("@")[2]
    return (_percent_encode(candidate[:scheme_end] + host, _URL_UNSAFE)
            + _percent_encode(candidate[authority_end:], _URL_UNSAFE + "@"))


def _percent_encode(text: str, chars: str) -> str:
    return "".join(quote(char, safe="") if char in chars else char for char in text)


def build_payload(
    *,
    rule: str,
    kind: str,
    story: dict[str, Any],
    article: Any,
    article_id: int,
    feed_name: str,
    matched: Iterable[Any],
) -> dict[str, Any]:
    """The alert JSON (INTERFACE.md: rule, story_id, headline, url, sources, matched, published, kind)."""
    sources = [
        {
            "article_id": source.get("article_id"),
            "url": source.get("url"),
            "feed": source.get("feed"),
            "title": source.get("title"),
            "published": source.get("published"),
        }
        for source in story.get("sources") or []
    ]
    first_url = next((source["url"] for source in sources if source.get("url")), None) or article.url
    feeds: list[str] = []
    for name in [source.get("feed") for source in sources] + [feed_name]:
        if name and name not in feeds:
            feeds.append(name)
    return {
        "rule": rule,
        "story_id": story.get("id"),
        "kind": kind,
        "headline": story.get("headline") or article.title,
        "url": first_url,
        "sources": sources,
        "matched": [{"term": term.term, "field": term.field} for term in matched],
        "published": to_iso(article.published),
        "feeds": feeds,
        "article_id": article_id,
        "title": article.title,
        "article_url": article.url,
        "feed": feed_name,
        "undated": bool(article.undated),
    }


def _kind_label(kind: str) -> str:
    if kind == "new":
        return "new story"
    if kind.startswith("update-"):
        return f"update {kind.split('-', 1)[1]}: new source"
    if kind.startswith("digest-"):
        return "digest"
    if kind.startswith("summary-"):
        return "summary"
    return kind


def _new_source(item: dict[str, Any]) -> dict[str, Any] | None:
    """The outlet whose article made a follow-up (``update-N``): its feed, title and link."""
    if not str(item.get("kind", "")).startswith("update-") or not item.get("feed"):
        return None
    return {"feed": item.get("feed"), "title": item.get("title"), "url": item.get("article_url")}


def _new_source_lines(item: dict[str, Any], escape: Callable[..., str], layout: str) -> list[str]:
    """The text or chat lines naming a follow-up's new outlet (``layout`` places ``{feed}`` and ``{title}``,
    each through ``escape``), then its link."""
    new = _new_source(item)
    if not new:
        return []
    lines = [layout.format(feed=escape(new["feed"], 80), title=escape(new["title"]))]
    link = safe_link(new["url"])
    if link:
        lines.append(f"  {link}")
    return lines


def _published(item: dict[str, Any]) -> str:
    """When the article was published; for an entry the feed gave no date, that it has none and when it was seen."""
    published = one_line(item.get("published"), 40)
    if not published:
        return "unknown"
    if item.get("undated"):
        return f"no date in the feed (first seen {published} UTC)"
    return f"{published} (UTC)"


def _matched_list(item: dict[str, Any]) -> list[str]:
    seen: list[str] = []
    for term in item.get("matched") or []:
        label = f"{term.get('term')} ({term.get('field')})"
        if label not in seen:
            seen.append(label)
    return seen


def _alert_text(item: dict[str, Any]) -> list[str]:
    lines = [f"Story: {one_line(item.get('headline'))}"]
    link = safe_link(item.get("url"))
    if link:
        lines.append(f"Link: {link}")
    lines.extend(_new_source_lines(item, one_line, "New source: {feed}: {title}"))
    lines.append(f"Published: {_published(item)}")
    matched = _matched_list(item)
    if matched:
        lines.append("Matched: " + one_line(", ".join(matched)))
    feeds = item.get("feeds") or []
    if feeds:
        lines.append("Feeds: " + one_line(", ".join(feeds)))
    sources = item.get("sources") or []
    lines.append(f"Sources so far ({len(sources)}):")
    lines.extend(_source_lines(
        sources, lambda source: f"- {one_line(source.get('feed'), 80)}: {one_line(source.get('title'))}",
        "- ... and {} more",
    ))
    return lines


def _alert_chat(item: dict[str, Any]) -> list[str]:
    lines = [chat_text(item.get("headline"))]
    link = safe_link(item.get("url"))
    if link:
        lines.append(link)
    lines.extend(_new_source_lines(item, chat_text, "New source {feed} \u2013 {title}"))
    lines.append(f"Published {_published(item)}")
    matched = _matched_list(item)
    if matched:
        lines.append("Matched " + chat_text(", ".join(matched)))
    sources = item.get("sources") or []
    lines.append(f"Sources so far ({len(sources)})")
    lines.extend(_source_lines(
        sources, lambda source: f"\u2022 {chat_text(source.get('feed'), 80)} \u2013 {chat_text(source.get('title'))}",
        "\u2022 and {} more",
    ))
    return lines


def _source_lines(sources: list[dict[str, Any]], line: Callable[[dict[str, Any]], str], more: str) -> list[str]:
    """The first ``MAX_SOURCES`` sources, each ``line(source)`` then its link indented; ``more``
    (with ``{}`` for the count) when there are others."""
    lines = []
    for source in sources[:MAX_SOURCES]:
        lines.append(line(source))
        link = safe_link(source.get("url"))
        if link:
            lines.append(f"  {link}")
    if len(sources) > MAX_SOURCES:
        lines.append(more.format(len(sources) - MAX_SOURCES))
    return lines


def _alert_html(item: dict[str, Any]) -> list[str]:
    parts = []
    link = safe_link(item.get("url"))
    headline = html_text(item.get("headline"))
    if link:
        parts.append(f'<h3><a href="{html.escape(link, quote=True)}">{headline}</a></h3>')
    else:
        parts.append(f"<h3>{headline}</h3>")
    new = _new_source(item)
    if new:
        new_title = html_text(new["title"])
        new_link = safe_link(new["url"])
        if new_link:
            new_title = f'<a href="{html.escape(new_link, quote=True)}">{new_title}</a>'
        parts.append(f"<p>New source: {html_text(new['feed'], 80)}: {new_title}</p>")
    parts.append(f"<p>Published: {html.escape(_published(item))}</p>")
    matched = _matched_list(item)
    if matched:
        parts.append(f"<p>Matched: {html_text(', '.join(matched))}</p>")
    feeds = item.get("feeds") or []
    if feeds:
        parts.append(f"<p>Feeds: {html_text(', '.join(feeds))}</p>")
    sources = item.get("sources") or []
    parts.append(f"<p>Sources so far ({len(sources)}):</p><ul>")
    for source in sources[:MAX_SOURCES]:
        source_link = safe_link(source.get("url"))
        title = html_text(source.get("title"))
        if source_link:
            title = f'<a href="{html.escape(source_link, quote=True)}">{title}</a>'
        parts.append(f"<li>{html_text(source.get('feed'), 80)}: {title}</li>")
    if len(sources) > MAX_SOURCES:
        parts.append(f"<li>... and {len(sources) - MAX_SOURCES} more</li>")
    parts.append("</ul>")
    return parts


def render(payload: dict[str, Any]) -> Message:
    """The message for one outbox row's payload (a single alert, a digest or a flood summary)."""
    if "items" in payload:
        return _render_group(payload)
    rule = one_line(payload.get("rule"), 80)
    label = _kind_label(str(payload.get("kind", "new")))
    title = f"[newsmon] {rule}: {one_line(payload.get('headline'), 160)}"
    if label != "new story":
        title = f"[newsmon] {rule} ({label}): {one_line(payload.get('headline'), 140)}"
    text = "\n".join([f"Rule: {rule} ({label})"] + _alert_text(payload)) + "\n"
    chat = "\n".join([f"newsmon \u2013 rule {chat_text(rule, 80)} \u2013 {label}"] + _alert_chat(payload))
    html_body = "".join(
        [f"<p>newsmon rule <b>{html_text(rule, 80)}</b> ({html.escape(label)})</p>"] + _alert_html(payload))
    return Message(title=title, text=text, html=html_body, chat=chat, data=payload, chat_title=chat_text(title))


def _render_group(payload: dict[str, Any]) -> Message:
    items: list[dict[str, Any]] = payload.get("items") or []
    kind = str(payload.get("kind", ""))
    if kind.startswith("digest-"):
        rule = one_line(payload.get("rule"), 80)
        stories = f"{len(items)} stor{'y' if len(items) == 1 else 'ies'}"
        heading = f"Digest for rule {rule}: {stories}"
        chat_heading = f"newsmon \u2013 digest for rule {chat_text(rule, 80)} \u2013 {stories}"
    else:
        heading = (f"{len(items)} alerts folded into one message (channel limit of "
                   f"{payload.get('max_per_hour')} per hour reached)")
        chat_heading = f"newsmon \u2013 {heading}"
    title = f"[newsmon] {heading}"
    text_lines = [heading, ""]
    chat_lines = [chat_heading, ""]
    html_parts = [f"<p>{html.escape(heading)}</p>"]
    for index, item in enumerate(items[:MAX_ITEMS], start=1):
        item_rule = one_line(item.get("rule"), 80)
        item_label = _kind_label(str(item.get("kind", "new")))
        text_lines += [f"{index}. Rule: {item_rule} ({item_label})"] + [
            "   " + line for line in _alert_text(item)] + [""]
        chat_lines += [f"{index}. rule {chat_text(item_rule, 80)} \u2013 {item_label}"] + [
            "   " + line for line in _alert_chat(item)] + [""]
        html_parts += [f"<hr><p>{index}. Rule <b>{html_text(item_rule, 80)}</b> ({html.escape(item_label)})</p>"]
        html_parts += _alert_html(item)
    if len(items) > MAX_ITEMS:
        more = f"... and {len(items) - MAX_ITEMS} more (see `newsmon alerts`)"
        text_lines.append(more)
        chat_lines.append(chat_text(more))
        html_parts.append(f"<p>{html.escape(more)}</p>")
    return Message(title=title, text="\n".join(text_lines), html="".join(html_parts),
                   chat="\n".join(chat_lines).rstrip(), data=_group_data(payload, heading),
                   chat_title=chat_text(title))


def _group_data(payload: dict[str, Any], heading: str) -> dict[str, Any]:
    """A digest's or summary's JSON: the fields of every alert (INTERFACE.md), then its own (``items`` ...)."""
    published = [str(item["published"]) for item in payload.get("items") or [] if item.get("published")]
    return {"rule": None, "story_id": None, "headline": heading, "url": None, "sources": [], "matched": [],
            "published": max(published, default=None), **payload}


def test_message(channel_name: str, now_iso: str) -> Message:
    """What ``newsmon channels test NAME`` sends."""
    text = f"newsmon test message for channel {one_line(channel_name, 80)} at {now_iso}"
    data = {"rule": None, "story_id": None, "headline": text, "url": None, "sources": [], "matched": [],
            "published": now_iso, "kind": "test"}
    return Message(title="[newsmon] test message", text=text + "\n", html=f"<p>{html.escape(text)}</p>",
                   chat=chat_text(text), data=data, chat_title="[newsmon] test message")
