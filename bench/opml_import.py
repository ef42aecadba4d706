"""Benchmark: importing the kagi-kite list (~9,900 feeds) into a config, and editing the big config.

Run: ``python bench/opml_import.py``. Prints seconds per step and, as the baseline measured in
the same run, the time ``load_config`` takes to read and validate the resulting config (every
edit validates the config before and after, so about twice that is the floor of one edit).
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, TypeVar

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from monitor.config import load_config  # noqa: E402
from monitor.configedit import add_feeds, remove_feed, set_feed_enabled  # noqa: E402
from monitor.opml import OpmlEntry, read_opml, write_opml  # noqa: E402

CORPORA = Path(__file__).resolve().parents[1].parent / "shared" / "corpora"
KITE = CORPORA / "opml" / "kagi-kite" / "kite_feeds.opml"
T = TypeVar("T")


def timed(label: str, action: Callable[[], T], results: dict[str, float]) -> T:
    start = time.perf_counter()
    value = action()
    results[label] = time.perf_counter() - start
    return value


def main() -> int:
    if not KITE.exists():
        print(f"skipped: {KITE} is not there")
        return 0
    results: dict[str, float] = {}
    data = KITE.read_bytes()
    with tempfile.TemporaryDirectory() as folder:
        config = Path(folder) / "feeds.toml"
        config.write_text("# bench\n[monitor]\ndefault_interval = \"15m\"\n\n[[feeds]]\nname = \"first\"\n"
                          "url = \"https://first.example/rss\"\n", encoding="utf-8")
        opml = timed("read_opml", lambda: read_opml(data, source=KITE.name), results)
        feeds = [{"title": e.title, "url": e.xml_url, "tags": list(e.tags), "language": e.language}
                 for e in opml.entries]
        changes = timed("import (first)", lambda: add_feeds(config, feeds), results)
        again = timed("import (again, adds nothing)", lambda: add_feeds(config, feeds), results)
        timed("import --dry-run (again)", lambda: add_feeds(config, feeds, dry_run=True), results)
        loaded = timed("baseline: load_config of the result", lambda: load_config(config), results)
        entries = [OpmlEntry(title=f.name, xml_url=f.url, tags=f.tags, language=f.language) for f in loaded.feeds]
        exported = timed("export (write_opml)", lambda: write_opml(entries), results)
        middle = loaded.feeds[len(loaded.feeds) // 2].name
        timed("disable one feed", lambda: set_feed_enabled(config, middle, False), results)
        timed("remove one feed", lambda: remove_feed(config, middle), results)
        size = config.stat().st_size
    added = sum(c.status == "added" for c in changes)
    print(f"kagi-kite: {len(opml.entries)} feeds read ({opml.duplicates} duplicate outlines merged), "
          f"{added} added, {sum(c.status == 'added' for c in again)} added again; "
          f"config {size / 1e6:.1f} MB, export {len(exported) / 1e6:.1f} MB")
    baseline = results["baseline: load_config of the result"]
    for label, seconds in results.items():
        print(f"{label:<40} {seconds:7.2f} s   {seconds / baseline:5.1f} x baseline")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
