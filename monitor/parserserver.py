"""The fork server that parser processes are made from (multiprocessing's "forkserver" start method).

The server imports ``monitor.parsejob`` (feedparser, BeautifulSoup, the clusterer's feature code)
once, and each parser process is a fork of it. It can be started on its own, before the pool that
uses it: ``newsmon poll`` starts it first thing, so that its imports run on another core while the
command imports the pipeline, instead of after (a cold poll of the 235 benchmark feeds: 6.35 s
against 6.52 s, means of six alternated runs). This module imports nothing heavy itself.
"""

from __future__ import annotations

import logging
import multiprocessing
import multiprocessing.context
import multiprocessing.forkserver
import os

log = logging.getLogger(__name__)

PRELOAD = ["monitor.parsejob"]


def parser_workers() -> int:
    """How many parser processes a poll of many feeds uses: one per core."""
    return os.cpu_count() or 1


def parser_context() -> multiprocessing.context.ForkServerContext:
    """The multiprocessing context of the parser pool, its server set to preload ``PRELOAD``."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(PRELOAD)
    return context  # type: ignore[return-value]


def start_parser_server() -> None:
    """Start the fork server now, without waiting for its imports (nothing to do on one core, where
    feeds are parsed in the polling threads). A failure is only logged: the pool starts the server
    again when the first feed is parsed, and that feed reports the cause."""
    if parser_workers() <= 1:
        return
    parser_context()
    try:
        multiprocessing.forkserver.ensure_running()
    except OSError as exc:  # no process or pipe could be made (limits, memory)
        log.warning("parser server could not be started ahead error=%s", exc)
