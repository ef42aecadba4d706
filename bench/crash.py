"""SIGKILL campaign: kill a real ``newsmon poll`` and the daemon ``newsmon run`` at random moments during
ingest and alert delivery, many times, and check that nothing is lost or duplicated.

Feeds (growing every round) are served on 127.0.0.1 and alerts go to a loopback webhook receiver. After
each kill: ``PRAGMA integrity_check``, every article a concurrent reader saw committed is still there, no
duplicate article keys/URLs/feed links. At the end, uninterrupted polls finish the work (after the dead
processes' feed leases expire) and the archive is compared with a clean reference run over the same feeds;
every alert row must be sent and received, never twice outside the documented window (a kill between a
channel's acceptance and the ``sent`` mark).

    python bench/crash.py [--poll-kills 20] [--run-kills 10] [--feeds 40] [--items 30] [--seed 1]

Prints one line per kill and a summary table (markdown) to stdout.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.test_robust_support import CrashCampaign, CrashTally  # noqa: E402


def campaign(mode: str, kills: int, *, feeds: int, items: int, seed: int) -> tuple[CrashTally, float]:
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix=f"newsmon-crash-{mode}-") as work:
        with CrashCampaign(Path(work), mode=mode, feeds=feeds, items=items, seed=seed) as crash:
            print(f"{mode}: an uninterrupted poll of the first round takes {crash.tally.full_poll_seconds:.2f} s; "
                  f"kills land in 0.3 .. {crash.max_delay:.2f} s", flush=True)
            rounds = 0
            while crash.tally.kills < kills and rounds < kills * 3:
                crash.kill_once()
                rounds += 1
                moment = crash.tally.kill_moments[-1] if crash.tally.kill_moments else None
                seen = crash.tally.articles_at_kill[-1] if crash.tally.articles_at_kill else None
                print(f"  round {rounds:>3}: kills={crash.tally.kills} at={moment}s committed_seen={seen} "
                      f"lost={crash.tally.lost} dup={crash.tally.duplicated} orphans={crash.tally.orphans} "
                      f"integrity_failures={crash.tally.integrity_failures}", flush=True)
            tally = crash.finish()
    return tally, time.monotonic() - started


def table(rows: list[tuple[str, CrashTally]]) -> str:
    lines = [
        "| fault | injected | survived | articles lost | articles duplicated | alerts duplicated "
        "| alerts lost | reference diff | leftover processes | skipped after restart | (in window) |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, tally in rows:
        lines.append(
            f"| {name} | {tally.kills} | {tally.survived - tally.finished_first} | {tally.lost} | {tally.duplicated} "
            f"| {tally.alerts_duplicated} | {tally.alerts_lost} "
            f"| {tally.reference_missing + tally.reference_extra} | {tally.orphans} | {tally.skipped_after} "
            f"| {tally.alerts_in_window} |"
        )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--poll-kills", type=int, default=20)
    parser.add_argument("--run-kills", type=int, default=10)
    parser.add_argument("--feeds", type=int, default=40)
    parser.add_argument("--items", type=int, default=30)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rows: list[tuple[str, CrashTally]] = []
    for mode, kills, label in (("poll", args.poll_kills, "SIGKILL `newsmon poll` (ingest + delivery)"),
                               ("run", args.run_kills, "SIGKILL `newsmon run` daemon")):
        if kills <= 0:
            continue
        tally, elapsed = campaign(mode, kills, feeds=args.feeds, items=args.items, seed=args.seed)
        print(f"{mode}: {tally}", flush=True)
        print(f"{mode}: {elapsed:.0f} s, {tally.articles} articles, {tally.alerts_received} alerts received",
              flush=True)
        rows.append((label, tally))
    print()
    print(table(rows))
    bad = sum(t.lost + t.duplicated + t.alerts_duplicated + t.alerts_lost + t.integrity_failures + t.orphans
              + t.skipped_after
              + t.reference_missing + t.reference_extra for _, t in rows)
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
