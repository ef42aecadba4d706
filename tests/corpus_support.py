"""Helpers shared by the tests that read ../shared/corpora (not a test module)."""

from __future__ import annotations

import io
import re
from pathlib import Path

import feedparser

HEADER_LINE = re.compile(r"^\s*Header:\s*([^:\s]+)\s*:(.*)$")


def corpus_headers(body: bytes) -> dict[str, str]:
    """The ``Header: Name: value`` lines of a feedparser corpus file's leading XML comment
    (JSON files have none): the HTTP headers the file is meant to be served with."""
    head = body[:4096].decode("latin-1")
    comment = re.search(r"<!--(.*?)-->", head, re.DOTALL)
    headers: dict[str, str] = {}
    for line in (comment.group(1) if comment else "").splitlines():
        match = HEADER_LINE.match(line)
        if match:
            headers[match.group(1)] = match.group(2).strip()
    return headers


def corpus_fields(folder: Path, suffixes: tuple[str, ...]) -> list[str]:
    """The feed title and every entry's title, summary and content values of the feed files under
    ``folder``, as the production parser reads them (feedparser's sanitizer and URI rewriting off)."""
    fields: list[str] = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix in suffixes):
        body = path.read_bytes()
        parsed = feedparser.parse(io.BytesIO(body), response_headers=corpus_headers(body),
                                  sanitize_html=False, resolve_relative_uris=False)
        values = [parsed.feed.get("title")]
        for entry in parsed.entries:
            values += [entry.get("title"), entry.get("summary")]
            values += [content.get("value") for content in entry.get("content") or []]
        fields += [value for value in values if isinstance(value, str) and value]
    return fields
