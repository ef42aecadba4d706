"""The SAX driver feedparser uses here: Python's expat driver with character data buffered.

Unbuffered, expat reports text in pieces, one at every line break and entity reference, and
feedparser does some Python work per piece: a summary of escaped HTML (``&lt;p&gt;...``) arrives
as hundreds of pieces. Buffered, a run of text comes in one piece (up to ``BUFFER_SIZE`` characters).
feedparser joins the pieces, so what it builds is the same. ``monitor.parse`` puts this module first
in feedparser's list of preferred SAX drivers; ``xml.sax.make_parser`` calls ``create_parser``.
"""

from __future__ import annotations

from typing import Any
from xml.sax.expatreader import ExpatParser

BUFFER_SIZE = 1 << 16


class BufferedExpatParser(ExpatParser):
    def reset(self) -> None:
        super().reset()
        self._parser.buffer_text = True
        self._parser.buffer_size = BUFFER_SIZE


def create_parser(*args: Any, **kwargs: Any) -> BufferedExpatParser:
    return BufferedExpatParser(*args, **kwargs)
