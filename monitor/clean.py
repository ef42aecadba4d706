"""HTML (or text) from a feed → clean plain text.

``html_to_text`` is the one place feed HTML becomes text. BeautifulSoup builds the tree with the
standard library's ``html.parser`` (no lxml dependency). What it does:

- drops elements whose content is not article text: script, style, noscript, iframe, object, embed,
  svg, form and form controls, template, audio/video/canvas/picture (their fallback text), head;
- images never contribute text (no alt text), so tracking pixels and tracker images leave no trace;
- comments, doctypes and processing instructions are dropped; entities are decoded;
- block elements (p, div, li, h1-h6, tr, br, blockquote, ...) end a line, table cells are separated
  by a space, so words never glue together across elements;
- whitespace: runs of spaces/tabs (NBSP and other Unicode spaces included) become one space, each line
  is stripped, empty lines are dropped: paragraphs are separated by exactly one ``\\n`` (no blank lines);
- soft hyphens, zero-width characters, the BOM and C0/C1 control characters are removed;
- HTML that was escaped twice (``&lt;p&gt;``) is unwrapped once more.

Input longer than ``MAX_HTML_CHARS`` (1,000,000) is cut to that length first. A string with no ``<``
and no ``&`` skips BeautifulSoup (only the character and whitespace clean-up runs); one with ``&`` but
no ``<`` is only unescaped. ``html_to_text`` never raises on garbage: markup the parser rejects falls
back to a tag-stripping regular expression.
"""

from __future__ import annotations

import html
import logging
import re
import warnings

from bs4 import BeautifulSoup, CData, MarkupResemblesLocatorWarning, NavigableString, Tag, XMLParsedAsHTMLWarning
from bs4.builder import ParserRejectedMarkup

logger = logging.getLogger(__name__)

# Feed fragments are often short or start with an XML declaration; bs4's hints about that are noise here.
warnings.filterwarnings("ignore", category=MarkupResemblesLocatorWarning)
warnings.filterwarnings("ignore", category=XMLParsedAsHTMLWarning)

PARSER = "html.parser"
MAX_HTML_CHARS = 1_000_000  # longer fields are cut before parsing: no article needs more, a hostile feed may send more

DROPPED_ELEMENTS = frozenset({
    "script", "style", "noscript", "iframe", "frame", "frameset", "object", "embed", "applet", "svg",
    "math", "form", "input", "select", "textarea", "button", "template", "audio", "video", "canvas",
    "picture", "map", "head",
})
LINE_ELEMENTS = frozenset({
    "p", "br", "li", "div", "h1", "h2", "h3", "h4", "h5", "h6", "tr", "ul", "ol", "dl", "dt", "dd",
    "blockquote", "pre", "section", "article", "header", "footer", "aside", "nav", "figure",
    "figcaption", "table", "thead", "tbody", "tfoot", "caption", "hr", "address", "main", "details",
    "summary", "center", "body", "html",
})
SPACE_ELEMENTS = frozenset({"td", "th", "img", "wbr"})

_REMOVED_CHARS = dict.fromkeys(
    [0x00AD, 0x200B, 0x200C, 0x200D, 0x2060, 0xFEFF, 0x180E]
    + [c for c in range(0x00, 0x20) if c not in (0x09, 0x0A, 0x0D)]
    + list(range(0x7F, 0xA0))
)
_SPACE_RUNS = re.compile(r"[^\S\n]+")
_LINE_BREAKS = re.compile(r"\s*\n\s*")
_ESCAPED_MARKUP = re.compile(
    r"<(?:/?(?:p|div|br|a|b|i|em|strong|span|img|li|ul|ol|h[1-6]|blockquote|figure|table|tr|td)\b[^<>]*"
    r"|!--)>?",
    re.IGNORECASE,
)
_TAG_FALLBACK = re.compile(r"<[^>]*>?")


def html_to_text(html_text: str) -> str:
    """Feed HTML (or plain text) → clean text, paragraphs separated by single newlines."""
    if not html_text:
        return ""
    if not isinstance(html_text, str):
        html_text = str(html_text)
    if len(html_text) > MAX_HTML_CHARS:
        logger.debug("html field cut chars=%d limit=%d", len(html_text), MAX_HTML_CHARS)
        html_text = html_text[:MAX_HTML_CHARS]
    if "<" not in html_text:
        if "&" not in html_text:
            return normalize_whitespace(html_text)
        text = html.unescape(html_text)
    else:
        text = _markup_to_text(html_text)
    if "<" in text and _ESCAPED_MARKUP.search(text):
        text = _markup_to_text(text)  # the HTML was escaped twice; one more pass, never more
    return normalize_whitespace(text)


def clean_title(text: str) -> str:
    """A title as one line of clean text (markup removed, entities decoded, whitespace collapsed)."""
    cleaned = html_to_text(text)
    return cleaned.replace("\n", " ") if "\n" in cleaned else cleaned


def normalize_whitespace(text: str) -> str:
    """Remove invisible characters, collapse spaces, keep single newlines between non-empty lines."""
    text = text.translate(_REMOVED_CHARS)
    text = _SPACE_RUNS.sub(" ", text)
    if "\n" in text:
        text = _LINE_BREAKS.sub("\n", text)
    return text.strip()


def _markup_to_text(markup: str) -> str:
    try:
        soup = BeautifulSoup(markup, PARSER)
    except (ParserRejectedMarkup, AssertionError, ValueError, RecursionError) as exc:
        logger.debug("html parser rejected markup error=%s", type(exc).__name__)
        return html.unescape(_TAG_FALLBACK.sub(" ", markup))
    parts: list[str] = []
    _collect_text(soup, parts)
    return "".join(parts)


def _collect_text(root: Tag, parts: list[str]) -> None:
    """Depth-first walk without recursion (deeply nested garbage must not hit the recursion limit)."""
    append = parts.append
    stack: list[tuple[object, str]] = [(iter(root.contents), "")]
    while stack:
        children, closing = stack[-1]
        child = next(children, None)  # type: ignore[call-overload]
        if child is None:
            stack.pop()
            if closing:
                append(closing)
            continue
        if isinstance(child, NavigableString):
            if type(child) is NavigableString or type(child) is CData:
                append(str(child))
            continue  # comments, doctypes, declarations, processing instructions
        if not isinstance(child, Tag):
            continue
        name = child.name
        if name in DROPPED_ELEMENTS:
            append(" ")
            continue
        separator = "\n" if name in LINE_ELEMENTS else (" " if name in SPACE_ELEMENTS else "")
        if separator:
            append(separator)
        if child.contents:
            stack.append((iter(child.contents), separator))
