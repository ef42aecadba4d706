"""Crash safety: SIGKILL a real ``newsmon poll`` and the daemon ``newsmon run`` at random moments while they
ingest many loopback feeds (growing every round) and deliver alerts to a loopback webhook.

After every kill: ``PRAGMA integrity_check`` is ok, every article a reader saw committed before the kill is
still there, no duplicate keys, URLs or feed links. Then uninterrupted polls finish the work and the archive
must hold exactly the articles of a clean reference run over the same feeds; every alert row is sent and
reached the receiver, never twice except inside the documented window (a kill between a channel's
acceptance and the ``sent`` mark). ``bench/crash.py`` runs the same campaign with many more kills.
"""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Callable

import pytest

from tests.test_robust_support import CrashCampaign

pytestmark = pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")


def test_sigkill_during_poll_and_daemon_loses_and_duplicates_nothing(
    tmp_path: Path, record_property: Callable[[str, object], None],
) -> None:
    modes = ["poll", "poll", "run", "poll", "run", "poll", "poll", "run", "poll", "poll"]
    with CrashCampaign(tmp_path, feeds=24, items=20, seed=20261128) as campaign:
        while campaign.tally.kills < 5 and modes:      # a round whose process ends first is not a kill
            campaign.kill_once(modes.pop(0))
        tally = campaign.finish()
    record_property("tally", tally)
    assert tally.kills >= 5
    assert tally.survived == tally.kills + tally.finished_first
    assert tally.integrity_failures == 0
    assert tally.lost == 0
    assert tally.duplicated == 0
    assert tally.reference_missing == 0 and tally.reference_extra == 0
    assert tally.alerts_duplicated == 0
    assert tally.alerts_lost == 0
    assert tally.orphans == 0
    assert tally.skipped_after == 0      # the dead processes' feed leases did not hold the next poll back
    assert tally.articles > 0 and tally.alerts_received > 0
