"""OPML subscription lists: a lenient reader and an OPML 2.0 writer.

Reading (``read_opml``) tries strict XML first (expat, with entity declarations refused so
that no entity is ever expanded, and no external resource ever loaded). Many real lists are
not well-formed XML (raw ``&`` in ``xmlUrl``, raw ``<a href="...">`` inside ``description``),
so when expat fails the same outlines are read by a tolerant scanner that finds ``<outline``
tags and their attributes with regular expressions and keeps the folder nesting.

What becomes of the outlines:

* an outline with an ``xmlUrl`` is a feed; its title is ``title`` or else ``text``;
* an outline without one that contains outlines is a folder: its title becomes a tag of every
  feed inside it (nested folders give several tags, outermost first);
* an outline with neither is rejected with the reason ``no xmlUrl``; so are feeds whose URL
  is not http(s) or cannot be parsed (``feed://`` and ``feed:https://`` are accepted and
  rewritten to http(s));
* a ``category`` attribute (OPML 2.0: comma-separated, slash-delimited) adds its parts as tags;
* a ``language`` attribute on a feed, or inherited from the nearest folder that has one,
  becomes the feed's language when it looks like a language code;
* ``isComment="true"`` (OPML 2.0: the outline is commented out) on a feed or a folder around it
  makes the feed disabled; ``newsmon:interval`` (written by ``write_opml``) is its polling interval;
* the same ``xmlUrl`` listed twice (e.g. in two folders) is one entry with the union of the
  tags; ``OpmlResult.duplicates`` counts the extra occurrences.

Tags are normalised by ``tag_from_title``: NFKC, case-folded, every run of characters other
than letters, digits, ``+`` and ``#`` replaced by one ``-``, leading and trailing ``-``
removed ("Business & Economy" -> ``business-economy``, "Australia | Victoria" ->
``australia-victoria``). The function is idempotent, so tags survive a round trip.

Writing (``write_opml``) produces OPML 2.0: each feed is an ``outline type="rss"`` inside a
folder named after its first tag (consecutive feeds with the same first tag share a folder),
with a ``category`` attribute listing every tag when it has more than one, and ``language``
when known; a disabled feed has ``isComment="true"`` and a feed's own interval is ``newsmon:interval``
(namespace ``OPML_NAMESPACE``). ``read_opml(write_opml(entries))`` gives back the same entries, in the same order,
for entries whose tags are already normalised (every entry ``read_opml`` returns is).
"""

from __future__ import annotations

import codecs
import html
import logging
import re
import unicodedata
import xml.parsers.expat
from dataclasses import dataclass, field
from typing import Iterable, Mapping
from urllib.parse import urlsplit
from xml.etree import ElementTree

from monitor import PROJECT_URL
from monitor.errors import FetchError, OPMLError

log = logging.getLogger(__name__)

OPML_NAMESPACE = PROJECT_URL + "/opml"
ElementTree.register_namespace("newsmon", OPML_NAMESPACE)

_LANGUAGE = re.compile(r"^[A-Za-z]{2,3}([-_][A-Za-z0-9]{1,8})*$")
_TAG_SEPARATORS = re.compile(r"(?:[^\w+#]|_)+")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# Characters XML 1.0 does not allow (and so could not be written back): controls, surrogates, U+FFFE/F.
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


@dataclass(frozen=True)
class OpmlEntry:
    """One feed of an OPML list."""

    title: str
    xml_url: str
    html_url: str | None = None
    tags: tuple[str, ...] = ()
    language: str | None = None
    enabled: bool = True
    interval: str | None = None      # a duration such as "2h", as the config writes it


@dataclass(frozen=True)
class RejectedOutline:
    """An outline that is not a usable feed, and why."""

    title: str
    url: str | None
    reason: str


@dataclass
class OpmlResult:
    source: str                       # file name or other label, for messages
    title: str | None = None          # the OPML <head><title>
    entries: list[OpmlEntry] = field(default_factory=list)
    rejected: list[RejectedOutline] = field(default_factory=list)
    duplicates: int = 0               # outlines whose xmlUrl was already listed (merged)
    lenient: bool = False             # True when the file was not well-formed XML


# --------------------------------------------------------------------------- helpers


def tag_from_title(title: str) -> str:
    """A folder title as a tag: lower-case, words joined by ``-`` (idempotent; may be "")."""
    folded = unicodedata.normalize("NFKC", title).casefold()
    return _TAG_SEPARATORS.sub("-", folded).strip("-")


def check_feed_url(url: str) -> tuple[str | None, str | None]:
    """``(url, None)`` for a usable http(s) URL (``feed:`` forms rewritten), else ``(None, reason)``."""
    url = url.strip()
    if not url:
        return None, "no xmlUrl"
    lowered = url.lower()
    if lowered.startswith("feed:https://") or lowered.startswith("feed:http://"):
        url = url[5:]
    elif lowered.startswith("feed://"):
        url = "http://" + url[7:]
    if _CONTROL.search(url):
        return None, "unparsable URL (control character)"
    try:
        parts = urlsplit(url)
        host = parts.hostname
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError as exc:
        return None, f"unparsable URL ({exc})"
    if parts.scheme.lower() not in ("http", "https"):
        scheme = parts.scheme or "none"
        return None, f"not an http(s) URL (scheme {scheme!r})"
    if not host:
        return None, "unparsable URL (no host)"
    from monitor.fetch import parse_feed_url  # (imported when needed: it brings httpx)

    try:
        parse_feed_url(url)  # what the fetcher will refuse is refused now, before it is written into the config
    except FetchError:
        return None, f"unparsable URL (host name {host!r})"
    return url, None


def _clean_text(text: str) -> str:
    """One line of text: controls and characters XML cannot hold become spaces, runs of spaces one."""
    return " ".join(_NOT_XML.sub(" ", _CONTROL.sub(" ", text)).split())


def _language(value: str | None) -> str | None:
    if not value:
        return None
    value = value.strip()
    return value.lower().replace("_", "-") if _LANGUAGE.match(value) else None


def _category_tags(value: str | None) -> list[str]:
    tags: list[str] = []
    for item in (value or "").split(","):
        for part in item.split("/"):
            tag = tag_from_title(part)
            if tag:
                tags.append(tag)
    return tags


def _attribute(attrs: Mapping[str, str], name: str) -> str | None:
    """Attribute lookup ignoring case (``xmlUrl``, ``xmlurl``, ``XMLURL`` are all seen)."""
    if name in attrs:
        return attrs[name]
    lowered = name.lower()
    for key, value in attrs.items():
        if key.lower() == lowered:
            return value
    return None


# --------------------------------------------------------------------------- building entries


@dataclass
class _Frame:
    tag: str | None
    language: str | None     # its own, else inherited from the folders around it
    is_feed: bool
    title: str
    has_children: bool = False
    commented: bool = False  # it or a folder around it is commented out


class _Builder:
    """Turns a sequence of outline start/end events into an ``OpmlResult``."""

    def __init__(self, result: OpmlResult) -> None:
        self.result = result
        self.stack: list[_Frame] = []
        self.folder_tags: list[str] = []  # the tags of the frames on the stack that have one, outermost first
        self.by_url: dict[str, int] = {}

    def start(self, attrs: Mapping[str, str]) -> None:
        # Each frame carries what it inherits (language, commented out), so that an outline costs the same
        # however deep it sits: a hostile or broken file can nest outlines thousands deep.
        parent = self.stack[-1] if self.stack else None
        if parent is not None:
            parent.has_children = True
        title = _clean_text(_attribute(attrs, "title") or _attribute(attrs, "text") or "")
        language = _language(_attribute(attrs, "language")) or (parent.language if parent else None)
        commented = (_attribute(attrs, "isComment") or "").strip().lower() == "true" or bool(
            parent and parent.commented)
        raw_url = _attribute(attrs, "xmlUrl")
        if raw_url is None and (_attribute(attrs, "type") or "").lower() in ("rss", "atom"):
            raw_url = _attribute(attrs, "url")
        if raw_url is None:
            tag = tag_from_title(title) or None
            self.push(_Frame(tag=tag, language=language, is_feed=False, title=title, commented=commented))
            return
        self.push(_Frame(tag=None, language=language, is_feed=True, title=title, commented=commented))
        url, reason = check_feed_url(raw_url)
        if url is None:
            self.result.rejected.append(RejectedOutline(title=title, url=raw_url.strip() or None,
                                                        reason=reason or "unusable URL"))
            return
        tags = self.folder_tags + _category_tags(_attribute(attrs, "category"))
        html_url = (_attribute(attrs, "htmlUrl") or "").strip() or None
        if html_url and (_NOT_XML.search(html_url) or _CONTROL.search(html_url)):
            html_url = None
        interval = (_attribute(attrs, "newsmon:interval") or "").strip() or None
        self.add(OpmlEntry(title=title, xml_url=url, html_url=html_url, tags=tuple(dict.fromkeys(tags)),
                           language=language, enabled=not commented, interval=interval))

    def push(self, frame: _Frame) -> None:
        self.stack.append(frame)
        if frame.tag:
            self.folder_tags.append(frame.tag)

    def end(self) -> None:
        if not self.stack:
            return
        frame = self.stack.pop()
        if frame.tag:
            self.folder_tags.pop()
        if not frame.is_feed and not frame.has_children:
            self.result.rejected.append(RejectedOutline(title=frame.title, url=None, reason="no xmlUrl"))

    def add(self, entry: OpmlEntry) -> None:
        index = self.by_url.get(entry.xml_url)
        if index is None:
            self.by_url[entry.xml_url] = len(self.result.entries)
            self.result.entries.append(entry)
            return
        self.result.duplicates += 1
        first = self.result.entries[index]
        merged = tuple(dict.fromkeys(first.tags + entry.tags))
        if merged != first.tags:
            self.result.entries[index] = OpmlEntry(
                title=first.title or entry.title, xml_url=first.xml_url,
                html_url=first.html_url or entry.html_url, tags=merged,
                language=first.language or entry.language, enabled=first.enabled,
                interval=first.interval or entry.interval,
            )

    def finish(self) -> None:
        while self.stack:
            self.end()


# --------------------------------------------------------------------------- strict reader


class _StrictFailed(Exception):
    """Expat found the document not well-formed: use the lenient reader."""


def _read_strict(data: bytes, result: OpmlResult) -> None:
    builder = _Builder(result)
    parser = xml.parsers.expat.ParserCreate()
    state = {"root": None, "in_title": False, "title": []}

    def refuse_entities(*_args: object) -> None:
        raise OPMLError(f"{result.source}: entity declarations are not allowed in OPML")

    def start(name: str, attrs: dict[str, str]) -> None:
        if state["root"] is None:
            state["root"] = name
            if name.lower() != "opml":
                raise OPMLError(f"{result.source}: not an OPML file (the root element is <{name}>)")
        lowered = name.lower()
        if lowered == "outline":
            builder.start(attrs)
        elif lowered == "title" and not builder.stack:
            state["in_title"] = True

    def end(name: str) -> None:
        lowered = name.lower()
        if lowered == "outline":
            builder.end()
        elif lowered == "title":
            state["in_title"] = False

    def text(data_text: str) -> None:
        if state["in_title"]:
            state["title"].append(data_text)

    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.CharacterDataHandler = text
    parser.EntityDeclHandler = refuse_entities
    parser.UnparsedEntityDeclHandler = refuse_entities
    parser.ExternalEntityRefHandler = refuse_entities
    parser.SetParamEntityParsing(xml.parsers.expat.XML_PARAM_ENTITY_PARSING_NEVER)
    try:
        parser.Parse(data, True)
    except xml.parsers.expat.ExpatError as exc:
        raise _StrictFailed(str(exc)) from exc
    except LookupError as exc:  # unknown encoding in the XML declaration
        raise _StrictFailed(str(exc)) from exc
    if state["root"] is None:
        raise OPMLError(f"{result.source}: not an OPML file (no root element)")
    builder.finish()
    result.title = _clean_text("".join(state["title"])) or None


# --------------------------------------------------------------------------- lenient reader

_TOKEN = re.compile(
    r"<!--.*?(?:-->|\Z)"
    r"|<!\[CDATA\[.*?(?:\]\]>|\Z)"
    r"|<(?P<close>/)?(?P<name>outline|opml|title)\b",
    re.IGNORECASE | re.DOTALL,
)
# The end of a start tag: a ">" after a quote or the tag name, followed by another tag or the end. (Each
# pattern here is tried at every position of a file that can be large and hostile: none may scan a run of
# text again from each of its characters, so the scan stays linear in the size of the file.)
_TAG_END = re.compile(r">(?=\s*+(?:<|\Z))")
_NEXT_OUTLINE = re.compile(r"</?outline\b|</body\b", re.IGNORECASE)
_ATTRIBUTE = re.compile(r"(?<![\w:.-])([A-Za-z_:][\w:.-]*+)\s*+=\s*+(?:\"([^\"]*)\"|'([^']*)')")
_TITLE_OPEN = re.compile(r"\s*+>")
_TITLE_CLOSE = re.compile(r"</title\s*+>", re.IGNORECASE)
_ENCODING = re.compile(rb"^<\?xml[^>]*encoding\s*=\s*[\"']([A-Za-z0-9._-]+)[\"']")


def _decode(data: bytes) -> str:
    for bom, encoding in ((codecs.BOM_UTF8, "utf-8"), (codecs.BOM_UTF16_LE, "utf-16-le"),
                          (codecs.BOM_UTF16_BE, "utf-16-be")):
        if data.startswith(bom):
            return data[len(bom):].decode(encoding, errors="replace")
    match = _ENCODING.match(data.lstrip()[:200])
    encoding = match.group(1).decode("ascii") if match else "utf-8"
    try:
        return data.decode(encoding, errors="replace")
    except LookupError:
        return data.decode("utf-8", errors="replace")


def _find_tag_end(text: str, name_end: int) -> tuple[int, int, bool]:
    """``(attributes_end, tag_end, self_closing)`` of the start tag whose name ends at ``name_end``.

    The end is the first ``>`` (or ``/>``) after a quote or right after the name that is followed by
    another tag, looked for before the next outline tag starts (attribute values may hold ``>``)."""
    next_tag = _NEXT_OUTLINE.search(text, name_end)
    limit = next_tag.start() if next_tag else len(text)
    for match in _TAG_END.finditer(text, name_end, limit):
        attributes_end = _skip_space_back(text, match.start(), name_end)
        self_closing = attributes_end > name_end and text[attributes_end - 1] == "/"
        before = _skip_space_back(text, attributes_end - 1, name_end) if self_closing else attributes_end
        if before == name_end or text[before - 1] in "\"'":
            return (attributes_end - 1 if self_closing else attributes_end), match.end(), self_closing
    plain = text.rfind(">", name_end, limit)
    if plain < 0:
        return limit, limit, False
    self_closing = text[plain - 1] == "/"
    return plain - (1 if self_closing else 0), plain + 1, self_closing


def _skip_space_back(text: str, end: int, start: int) -> int:
    """The position after the last character of ``text[start:end]`` that is not white space (``start`` if none)."""
    while end > start and text[end - 1].isspace():
        end -= 1
    return end


def _lenient_attributes(text: str, start: int, end: int) -> dict[str, str]:
    attrs: dict[str, str] = {}
    for match in _ATTRIBUTE.finditer(text, start, end):
        value = match.group(2) if match.group(2) is not None else match.group(3)
        attrs.setdefault(match.group(1), html.unescape(value))
    return attrs


def _read_lenient(data: bytes, result: OpmlResult) -> None:
    text = _decode(data)
    builder = _Builder(result)
    seen_opml = False
    titles_closed = True  # False once no "</title>" follows: later <title> tags are not looked into
    position = 0
    while True:
        match = _TOKEN.search(text, position)
        if match is None:
            break
        name = (match.group("name") or "").lower()
        if not name:  # comment or CDATA
            position = match.end()
            continue
        if match.group("close"):
            close = text.find(">", match.end())
            position = len(text) if close < 0 else close + 1
            if name == "outline":
                builder.end()
            continue
        if name != "outline":
            close = text.find(">", match.end())
            position = len(text) if close < 0 else close + 1
            if name == "opml":
                seen_opml = True
            elif result.title is None and titles_closed and not builder.stack:
                opening = _TITLE_OPEN.match(text, match.end())
                closing = _TITLE_CLOSE.search(text, opening.end()) if opening else None
                titles_closed = opening is None or closing is not None
                if opening and closing:
                    result.title = _clean_text(html.unescape(text[opening.end():closing.start()])) or None
                    position = closing.end()
            continue
        attributes_end, tag_end, self_closing = _find_tag_end(text, match.end())
        position = tag_end
        builder.start(_lenient_attributes(text, match.end(), attributes_end))
        if self_closing:
            builder.end()
    if not seen_opml:
        raise OPMLError(f"{result.source}: not an OPML file (no <opml> element found)")
    builder.finish()


# --------------------------------------------------------------------------- public API


def read_opml(data: bytes, *, source: str) -> OpmlResult:
    """Read an OPML list. Raises ``OPMLError`` only when the data is not OPML at all."""
    if not data.strip():
        raise OPMLError(f"{source}: empty file, not an OPML list")
    result = OpmlResult(source=source)
    try:
        _read_strict(data, result)
    except _StrictFailed as exc:
        log.info("opml not well-formed, reading leniently source=%s error=%s", source, exc)
        result = OpmlResult(source=source, lenient=True)
        _read_lenient(data, result)
    log.debug("opml read source=%s entries=%d rejected=%d duplicates=%d lenient=%s", source,
              len(result.entries), len(result.rejected), result.duplicates, result.lenient)
    return result


def write_opml(entries: Iterable[OpmlEntry], *, title: str = "newsmon feeds") -> bytes:
    """OPML 2.0 bytes (UTF-8) for ``entries``; folders from each entry's first tag."""
    root = ElementTree.Element("opml", version="2.0")
    head = ElementTree.SubElement(root, "head")
    ElementTree.SubElement(head, "title").text = _NOT_XML.sub("", title)
    body = ElementTree.SubElement(root, "body")
    folder: ElementTree.Element | None = None
    folder_tag: str | None = None
    for entry in entries:
        first_tag = entry.tags[0] if entry.tags else None
        if first_tag is None:
            parent, folder, folder_tag = body, None, None
        else:
            if folder is None or folder_tag != first_tag:
                folder_title = _NOT_XML.sub("", first_tag)
                folder = ElementTree.SubElement(body, "outline", text=folder_title, title=folder_title)
                folder_tag = first_tag
            parent = folder
        title = _NOT_XML.sub("", entry.title)
        attrs = {"type": "rss", "text": title, "title": title, "xmlUrl": entry.xml_url}
        if entry.html_url:
            attrs["htmlUrl"] = entry.html_url
        if len(entry.tags) > 1:
            attrs["category"] = _NOT_XML.sub("", ",".join(entry.tags))
        if entry.language:
            attrs["language"] = entry.language
        if not entry.enabled:
            attrs["isComment"] = "true"
        if entry.interval:
            attrs[f"{{{OPML_NAMESPACE}}}interval"] = _NOT_XML.sub("", entry.interval)
        ElementTree.SubElement(parent, "outline", attrs)
    ElementTree.indent(root, space="  ")
    return ElementTree.tostring(root, encoding="utf-8", xml_declaration=True) + b"\n"
