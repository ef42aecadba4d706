"""html_to_text speed: the fast path (regular-expression tokeniser) against the BeautifulSoup path, in one run.

The fields are those of ../shared/corpora/real-feeds as the production parser reads them (feedparser
without its sanitizer): each feed's title and every entry's title, summary and content values. Both
variants clean every field once per round; rounds alternate (old, new, old, new, ...) and each variant's
best round is reported, as CPU time of this process. The same is done for the markup step alone
(``_markup_to_text`` against ``soup_markup_to_text`` on the fields with a ``<``). The outputs of the two
are compared field by field.

    python bench/clean_speed.py [--rounds 5]
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from monitor.clean import _markup_to_text, fast_markup_to_text, html_to_text, soup_markup_to_text  # noqa: E402
from tests.corpus_support import corpus_fields  # noqa: E402

CORPUS = ROOT.parent / "shared" / "corpora" / "real-feeds"


def cpu_seconds(function: Callable[[str], object], fields: list[str]) -> float:
    started = time.process_time()
    for field in fields:
        function(field)
    return time.process_time() - started


def compare(label: str, old: Callable[[str], object], new: Callable[[str], object], fields: list[str],
            rounds: int) -> None:
    old_times, new_times = [], []
    for _ in range(rounds):
        old_times.append(cpu_seconds(old, fields))
        new_times.append(cpu_seconds(new, fields))
    print(f"{label}, best of {rounds} rounds (CPU s): BeautifulSoup path {min(old_times):.3f}, "
          f"with the fast path {min(new_times):.3f} ({min(old_times) / min(new_times):.1f}x)")
    print(f"  all rounds: old {' '.join(f'{t:.3f}' for t in old_times)}; "
          f"new {' '.join(f'{t:.3f}' for t in new_times)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()

    fields = corpus_fields(CORPUS, (".xml", ".rss", ".atom"))
    markup = [field for field in fields if "<" in field]
    fast = [field for field in markup if fast_markup_to_text(field) is not None]
    chars = sum(map(len, markup))
    print(f"{len(fields)} fields ({sum(map(len, fields)):,} chars), {len(markup)} with '<' ({chars:,} chars); "
          f"fast path takes {len(fast)} of them ({len(fast) / len(markup):.1%}, "
          f"{sum(map(len, fast)) / chars:.1%} of their chars)")
    differing = sum(html_to_text(field) != html_to_text(field, fast_path=False) for field in fields)
    print(f"fields whose text differs between the paths: {differing}")

    compare("html_to_text, all fields", partial(html_to_text, fast_path=False), html_to_text, fields, args.rounds)
    compare("markup step alone, fields with '<'", soup_markup_to_text, _markup_to_text, markup, args.rounds)


if __name__ == "__main__":
    main()
