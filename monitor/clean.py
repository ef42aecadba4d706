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

Fast path: most feed HTML is simple, and building the tree was most of the cost. ``fast_markup_to_text``
tokenises the markup with a regular expression and replays what bs4's html.parser builder does with it
(which elements are open, what an end tag closes, how text and character references are read), giving
exactly the string the tree walk gives, with 3.6 times less CPU on the real feeds (bench/clean_speed.py).
It gives up (returns None, and BeautifulSoup runs) on anything else: comments, declarations, CDATA
sections, processing instructions, a ``<`` that does not start a simple tag, unusual attribute syntax,
end tags of void elements (``</br>``), the dropped elements and those html.parser or bs4 read specially
(script, style, title, textarea, template, rt, ...), and references whose reading depends on what
follows them (``&amp`` right before a tag or at the end, ``&#`` not followed by digits and ``;``). On
the real feeds it takes 80% of the fields that contain markup. The two paths are compared on every field
of the test corpora and on generated markup (tests/test_clean.py), with beautifulsoup4 4.15 (older
releases read ``<br/>`` and numeric references differently, hence the floor in pyproject.toml).
"""

from __future__ import annotations

import html
import logging
import re
import warnings

from bs4 import BeautifulSoup, CData, MarkupResemblesLocatorWarning, NavigableString, Tag, XMLParsedAsHTMLWarning
from bs4.builder import HTMLTreeBuilder, ParserRejectedMarkup
from bs4.dammit import EntitySubstitution, UnicodeDammit

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
# What an element adds to the text when it opens and, if it had content, when it closes.
_SEPARATORS = {**dict.fromkeys(SPACE_ELEMENTS, " "), **dict.fromkeys(LINE_ELEMENTS, "\n")}

_REMOVED_CHARS = frozenset(
    [0x00AD, 0x200B, 0x200C, 0x200D, 0x2060, 0xFEFF, 0x180E]
    + [c for c in range(0x00, 0x20) if c not in (0x09, 0x0A, 0x0D)]
    + list(range(0x7F, 0xA0))
)
# One character class deletes them (str.translate with a table looks every character up: 18 times slower).
_REMOVED = re.compile("[" + "".join(re.escape(chr(code)) for code in sorted(_REMOVED_CHARS)) + "]")
_ESCAPED_MARKUP = re.compile(
    r"<(?:/?(?:p|div|br|a|b|i|em|strong|span|img|li|ul|ol|h[1-6]|blockquote|figure|table|tr|td)\b[^<>]*"
    r"|!--)>?",
    re.IGNORECASE,
)
_TAG_FALLBACK = re.compile(r"<[^>]*>?")

# The fast path (see ``fast_markup_to_text``).
_VOID_ELEMENTS = HTMLTreeBuilder.DEFAULT_EMPTY_ELEMENT_TAGS or frozenset()
_FAST_PATH_REFUSED = DROPPED_ELEMENTS | {
    # read as raw text by html.parser in some Python version, or given their own string class by bs4
    "script", "style", "title", "textarea", "xmp", "plaintext", "iframe", "noembed", "noframes", "noscript",
    "template", "rt", "rp",
}
_SIMPLE_TAG = re.compile(r"""
    <(?:
        ([a-zA-Z][a-zA-Z0-9]*)                                 # start tag name
        (?:[ \t\n\r\f]+[^\s"'<>/=`]+                             # attribute name
            (?:[ \t\n\r\f]*=[ \t\n\r\f]*
                (?:"[^"]*"|'[^']*'|[^\s"'<>=`]+(?=[ \t\n\r\f>]))  # value (a bare one is not followed by "/")
            )?
        )*
        [ \t\n\r\f]*(/?)>                                       # "/>": html.parser's startend tag
      | /([a-zA-Z][a-zA-Z0-9]*)[ \t\n\r\f]*>                    # end tag name
    )""", re.VERBOSE)
_CHARREF = re.compile(r"#(?:([0-9]{1,8})|[xX]([0-9a-fA-F]{1,8}));")
_ENTITY_NAME = re.compile(r"[a-zA-Z][-.a-zA-Z0-9]*")
_ASCII_SPACES = " \n\t\x0c\r"  # bs4's ASCII_SPACES


def html_to_text(html_text: str, *, fast_path: bool = True) -> str:
    """Feed HTML (or plain text) → clean text, paragraphs separated by single newlines.

    ``fast_path=False`` always builds the BeautifulSoup tree (the reference the fast path is tested against).
    """
    if not html_text:
        return ""
    if not isinstance(html_text, str):
        html_text = str(html_text)
    if len(html_text) > MAX_HTML_CHARS:
        logger.debug("html field cut chars=%d limit=%d", len(html_text), MAX_HTML_CHARS)
        html_text = html_text[:MAX_HTML_CHARS]
    markup_to_text = _markup_to_text if fast_path else soup_markup_to_text
    if "<" not in html_text:
        if "&" not in html_text:
            return normalize_whitespace(html_text)
        text = html.unescape(html_text)
    else:
        text = markup_to_text(html_text)
    if "<" in text and _ESCAPED_MARKUP.search(text):
        text = markup_to_text(text)  # the HTML was escaped twice; one more pass, never more
    return normalize_whitespace(text)


def clean_title(text: str) -> str:
    """A title as one line of clean text (markup removed, entities decoded, whitespace collapsed)."""
    return _one_line(html_to_text(text))


def clean_plain_title(text: str) -> str:
    """A title that is text already, not HTML (its ``<`` and ``&`` are literal), as one line of clean text:
    what ``clean_title`` gives for a title without markup or references."""
    return _one_line(normalize_whitespace(text))


def _one_line(cleaned: str) -> str:
    return cleaned.replace("\n", " ") if "\n" in cleaned else cleaned


def normalize_whitespace(text: str) -> str:
    """Remove invisible characters, collapse spaces, keep single newlines between non-empty lines.

    Each line's runs of white space (any Unicode space, tabs, carriage returns) become one space and
    its ends are trimmed; empty lines go. str.split does this in C: a regular expression replacing
    every run (most of them single spaces) took three times as long.
    """
    text = _REMOVED.sub("", text)
    if "\n" not in text:
        return " ".join(text.split())
    return "\n".join(line for line in (" ".join(part.split()) for part in text.split("\n")) if line)


def _markup_to_text(markup: str) -> str:
    text = fast_markup_to_text(markup)
    return soup_markup_to_text(markup) if text is None else text


def soup_markup_to_text(markup: str) -> str:
    """The reference path: BeautifulSoup's tree, walked by ``_collect_text``."""
    try:
        soup = BeautifulSoup(markup, PARSER)
    except (ParserRejectedMarkup, AssertionError, ValueError, RecursionError) as exc:
        logger.debug("html parser rejected markup error=%s", type(exc).__name__)
        return html.unescape(_TAG_FALLBACK.sub(" ", markup))
    parts: list[str] = []
    _collect_text(soup, parts)
    return "".join(parts)


def fast_markup_to_text(markup: str) -> str | None:
    """``soup_markup_to_text(markup)`` without building a tree, or None when the markup is not simple.

    Replays what bs4's html.parser builder does with simple markup: a start tag opens an element (a void
    element or ``<x/>`` is closed at once), an end tag closes the most recent open element of its name and
    every element opened after it (an end tag with no open element is ignored), the text between two tags is
    one string, and each element adds ``_collect_text``'s separator when it opens and, if it had any
    content, when it closes. An end tag of a void element (``</img>``) answering one opened before is
    ignored, so the text on both sides stays one string; any other is a stray end tag. Anything else
    (comments, declarations, a stray ``<``, unusual tag or attribute syntax, the elements of
    ``_FAST_PATH_REFUSED``, entities html.parser reads in context-dependent ways) gives None.
    """
    parts: list[str] = []
    append = parts.append
    stack: list[list] = [["", "", False]]  # [name, separator, has content]; the bottom one is the document
    open_count: dict[str, int] = {}
    in_pre = 0  # inside <pre>, bs4 keeps whitespace-only strings as they are
    closed_voids: dict[str, int] = {}  # void elements opened by a start tag, whose end tag bs4 will ignore
    pending: list[str] = []  # text since the last tag bs4 acts on: one string
    position = 0
    end = len(markup)
    while True:
        tag_start = markup.find("<", position)
        if tag_start < 0:
            tag_start = end
        if tag_start > position:
            text = markup[position:tag_start]
            if "&" in text:
                text = _decode_entities(text)
                if text is None:
                    return None
            pending.append(text)
        match = _SIMPLE_TAG.match(markup, tag_start) if tag_start < end else None
        if match is None and tag_start < end:
            return None
        if match is not None:
            start_name, self_closing, end_name = match.groups()
            if end_name and end_name.lower() in closed_voids:  # "<img ...>...</img>": bs4 ignores the end tag
                name = end_name.lower()
                closed_voids[name] -= 1
                if not closed_voids[name]:
                    del closed_voids[name]
                position = match.end()
                continue
        if pending:  # bs4 ends the string here
            text = pending[0] if len(pending) == 1 else "".join(pending)
            pending.clear()
            if not in_pre and not text.strip(_ASCII_SPACES):
                text = "\n" if "\n" in text else " "  # what bs4 makes of a whitespace-only string
            stack[-1][2] = True
            append(text)
        if match is None:
            break
        position = match.end()
        if start_name:
            name = start_name.lower()
            if name in _FAST_PATH_REFUSED:
                return None
            separator = _SEPARATORS.get(name, "")
            stack[-1][2] = True
            if separator:
                append(separator)
            if name in _VOID_ELEMENTS:
                if not self_closing:
                    closed_voids[name] = closed_voids.get(name, 0) + 1
            elif not self_closing:
                stack.append([name, separator, False])
                open_count[name] = open_count.get(name, 0) + 1
                in_pre += name == "pre"
            continue
        name = end_name.lower()
        if name in _FAST_PATH_REFUSED:
            return None
        if open_count.get(name):
            while True:
                closed, separator, has_content = stack.pop()
                open_count[closed] -= 1
                in_pre -= closed == "pre"
                if has_content and separator:
                    append(separator)
                if closed == name:
                    break
    while len(stack) > 1:
        _, separator, has_content = stack.pop()
        if has_content and separator:
            append(separator)
    return "".join(parts)


def _decode_entities(text: str) -> str | None:
    """Character references in one text string as bs4's html.parser builder reads them (its own tables, an
    unknown ``&name;`` kept as ``&name``), or None for a form whose reading depends on what follows it."""
    pieces = text.split("&")
    decoded = [pieces[0]]
    last = len(pieces) - 1
    for index in range(1, last + 1):
        piece = pieces[index]
        if piece.startswith("#"):
            match = _CHARREF.match(piece)
            if match is None:
                return None
            decimal, hexadecimal = match.groups()
            number = int(decimal) if decimal else int(hexadecimal, 16)
            decoded.append(UnicodeDammit.numeric_character_reference(number)[0])
            decoded.append(piece[match.end():])
            continue
        match = _ENTITY_NAME.match(piece)
        if match is None:
            decoded.append("&" + piece)  # a lone "&"
            continue
        name = match.group()
        rest = piece[len(name):]
        if not rest and index == last:
            return None  # the name runs into the next tag or the end of the markup
        if rest.startswith(";"):
            rest = rest[1:]
        decoded.append(EntitySubstitution.HTML_ENTITY_TO_CHARACTER.get(name, "&" + name))
        decoded.append(rest)
    return "".join(decoded)


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
        separator = _SEPARATORS.get(name, "")
        if separator:
            append(separator)
        if child.contents:
            stack.append((iter(child.contents), separator))
