"""Helpers shared by the tests that read ../shared/corpora (not a test module)."""

from __future__ import annotations

import re

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
