"""Outbox policy through the real ingest path: once per story, updates, overlapping rules, quiet catch-up,
digests, flood control, give-up and retry. Channels here are ``log`` and ``jsonl`` (files in tmp_path)."""

from __future__ import annotations

import json
from datetime import datetime, time, timedelta, timezone
from pathlib import Path

import pytest

from monitor.alerts import deliver_pending, run_digests
from monitor.alerts.digest import due_slot
from monitor.config import RuleConfig
from monitor.store import alerts as outbox_sql
from tests.test_alerts_support import NOW, World, config_text, later, make_article

MALI_RULE = """
[[rules]]
name = "mali"
query = "Mali OR Bamako"
channels = ["file"]
"""


def jsonl_channel(path: Path, extra: str = "") -> str:
    return f'[[channels]]\nname = "file"\nurl = "jsonl://{path}"\n{extra}\n'


def lines(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


@pytest.fixture
def out(tmp_path: Path) -> Path:
    return tmp_path / "alerts.jsonl"


def world(tmp_path: Path, rules: str, channels: str, monitor: str = "") -> World:
    return World(tmp_path, config_text(rules=rules, channels=channels, monitor=monitor))


COUP_RFI = make_article("rfi-1", "Mali: soldiers seize the presidential palace in Bamako",
                        summary="Mutinous soldiers took control of the presidential palace in Bamako, Mali, on Monday.")
COUP_BBC = make_article("bbc-1", "Mali coup: soldiers seize presidential palace in Bamako",
                        summary="Soldiers seized the presidential palace in Bamako, Mali, on Monday, witnesses said.")
COUP_RFI_REWRITE = make_article(
    "rfi-1", "Mali: mutinous soldiers seize the presidential palace in Bamako",
    summary="Mutinous soldiers took control of the presidential palace in Bamako, Mali, on Monday.")
COUP_AJ = make_article("aj-1", "Soldiers seize presidential palace in Mali's capital Bamako",
                       summary="Soldiers seized the presidential palace in Bamako, Mali, on Monday.")


def test_two_outlets_and_a_rewrite_give_one_alert_and_a_fourth_outlet_none(tmp_path: Path, out: Path) -> None:
    w = world(tmp_path, MALI_RULE, jsonl_channel(out))
    w.ingest("RFI", COUP_RFI)
    w.ingest("BBC", COUP_BBC)
    w.ingest("RFI", COUP_RFI_REWRITE, now=later(minutes=5))
    rows = w.alerts()
    assert [(row["rule"], row["kind"], row["channel"]) for row in rows] == [("mali", "new", "file")]
    report = deliver_pending(w.store, w.config, now=later(minutes=6))
    assert report.sent == 1
    sent = lines(out)
    assert len(sent) == 1
    assert {source["feed"] for source in sent[0]["sources"]} == {"RFI", "BBC"}   # sources so far
    w.ingest("Al Jazeera", COUP_AJ, now=later(hours=1))
    assert len(w.alerts()) == 1
    deliver_pending(w.store, w.config, now=later(hours=1))
    assert len(lines(out)) == 1


def test_notify_on_update_sends_one_follow_up_for_a_new_outlet(tmp_path: Path, out: Path) -> None:
    rules = MALI_RULE + "notify_on_update = true\n"
    w = world(tmp_path, rules, jsonl_channel(out))
    w.ingest("RFI", COUP_RFI)
    w.ingest("BBC", COUP_BBC)
    w.ingest("RFI", COUP_RFI_REWRITE, now=later(minutes=5))
    deliver_pending(w.store, w.config, now=later(minutes=6))
    w.ingest("Al Jazeera", COUP_AJ, now=later(hours=1))
    deliver_pending(w.store, w.config, now=later(hours=1))
    sent = lines(out)
    assert [message["kind"] for message in sent] == ["new", "update-1"]
    assert {source["feed"] for source in sent[1]["sources"]} == {"RFI", "BBC", "Al Jazeera"}
    w.ingest("Al Jazeera", COUP_AJ, now=later(hours=2))     # the same outlet again: nothing new
    deliver_pending(w.store, w.config, now=later(hours=2))
    assert len(lines(out)) == 2


def test_overlapping_rules_send_one_message_per_rule(tmp_path: Path, out: Path) -> None:
    rules = MALI_RULE + '[[rules]]\nname = "sahel"\nquery = "Bamako OR Niamey"\nchannels = ["file"]\n'
    w = world(tmp_path, rules, jsonl_channel(out))
    w.ingest("RFI", COUP_RFI)
    w.ingest("BBC", COUP_BBC)
    deliver_pending(w.store, w.config, now=later(minutes=1))
    sent = lines(out)
    assert sorted(message["rule"] for message in sent) == ["mali", "sahel"]
    assert len({message["story_id"] for message in sent}) == 1


def test_alert_json_has_the_interface_shape(tmp_path: Path, out: Path) -> None:
    w = world(tmp_path, MALI_RULE, jsonl_channel(out))
    w.ingest("RFI", COUP_RFI)
    deliver_pending(w.store, w.config, now=NOW)
    (message,) = lines(out)
    for key in ("rule", "story_id", "headline", "url", "sources", "matched", "published", "kind"):
        assert key in message
    assert message["url"] == COUP_RFI.url
    assert message["published"] == "2026-02-17T08:00:00Z"
    assert {"term", "field"} <= set(message["matched"][0])
    assert set(message["sources"][0]) >= {"article_id", "url", "feed", "title", "published"}
    assert message["feeds"] == ["RFI"]


def test_quiet_catch_up_alerts_only_on_recent_dated_entries(tmp_path: Path, out: Path) -> None:
    w = world(tmp_path, MALI_RULE, jsonl_channel(out), monitor='alert_max_age = "24h"')
    old = make_article("old", "Mali: talks in Bamako adjourned", published=NOW - timedelta(days=3))
    fresh = make_article("fresh", "Niger and Mali close a border post near Bamako road",
                         published=NOW - timedelta(hours=2))
    undated = make_article("undated", "Mali: new governor named in the Bamako region", undated=True)
    result = w.ingest("RFI", old, fresh, undated, catch_up=True)
    assert result.held_back == 2
    assert result.alerts == 1
    deliver_pending(w.store, w.config, now=NOW)
    assert [message["title"] for message in lines(out)] == [fresh.title]
    # a normal poll later: an undated entry alerts then
    later_undated = make_article("undated-2", "Bamako: Mali's army reshuffle announced", undated=True,
                                 seen=later(hours=1))
    assert w.ingest("RFI", later_undated, now=later(hours=1)).alerts == 1


def test_an_entry_held_back_stays_quiet_when_revised_or_carried_by_another_feed(tmp_path: Path, out: Path) -> None:
    """Quiet catch-up holds an old entry back; the publisher correcting a typo in it, or another feed
    carrying it, is not news: no alert for that old story. A revision that makes it match a rule it did
    not match before does alert, once."""
    rules = MALI_RULE + '[[rules]]\nname = "junta"\nquery = "junta"\nchannels = ["file"]\n'
    w = world(tmp_path, rules, jsonl_channel(out), monitor='alert_max_age = "24h"')
    old = make_article("old", "Mali: talks in Bamako adjourned", published=NOW - timedelta(days=3))
    assert w.ingest("RFI", old, catch_up=True).held_back == 1
    typo_fixed = make_article("old", "Mali: talks in Bamako are adjourned", published=NOW - timedelta(days=3))
    assert w.ingest("RFI", typo_fixed, now=later(hours=1)).alerts == 0
    assert w.ingest("BBC", typo_fixed, now=later(hours=2)).alerts == 0
    assert w.alerts() == []
    revised = make_article("old", "Mali: talks in Bamako adjourned as junta walks out",
                           published=NOW - timedelta(days=3))
    assert w.ingest("RFI", revised, now=later(hours=3)).alerts == 1
    assert [(row["rule"], row["kind"]) for row in w.alerts()] == [("junta", "new")]
    assert w.ingest("RFI", make_article("old", revised.title + ".", published=NOW - timedelta(days=3)),
                    now=later(hours=4)).alerts == 0


def test_digest_every_hour_sends_one_message_listing_the_stories(tmp_path: Path, out: Path) -> None:
    rules = MALI_RULE + 'mode = "digest"\nevery = "1h"\n'
    w = world(tmp_path, rules, jsonl_channel(out))
    assert run_digests(w.store, w.config, now=NOW) == 0          # the first run starts the clock
    w.ingest("RFI", COUP_RFI, now=later(minutes=10))
    w.ingest("RFI", make_article("rfi-2", "Football: Bamako hosts the regional cup final next weekend"), now=later(minutes=20))
    assert deliver_pending(w.store, w.config, now=later(minutes=30)).sent == 0   # digest rows wait
    assert run_digests(w.store, w.config, now=later(minutes=59)) == 0
    assert run_digests(w.store, w.config, now=later(minutes=61)) == 1
    assert deliver_pending(w.store, w.config, now=later(minutes=61)).sent == 1
    (digest,) = lines(out)
    assert digest["kind"].startswith("digest-") and digest["rule"] == "mali"
    assert len(digest["items"]) == 2
    assert {row["status"] for row in w.alerts(rule="mali")} == {"sent"}
    # an empty period sends nothing
    assert run_digests(w.store, w.config, now=later(hours=2, minutes=1)) == 0


def test_a_waiting_alert_lists_an_outlet_whose_article_does_not_match_its_rule(tmp_path: Path, out: Path) -> None:
    """The digest lists each story with its sources so far: an outlet that joined the story while the
    alert waited is among them even when its own wording does not match the rule (BBC never says
    'mutinous'). It still sends nothing of its own."""
    rules = '[[rules]]\nname = "mutiny"\nquery = "mutinous"\nchannels = ["file"]\nmode = "digest"\nevery = "1h"\n'
    w = world(tmp_path, rules, jsonl_channel(out))
    assert run_digests(w.store, w.config, now=NOW) == 0
    assert w.ingest("RFI", COUP_RFI, now=later(minutes=10)).alerts == 1
    assert w.ingest("BBC", COUP_BBC, now=later(minutes=20)).alerts == 0
    (held,) = w.alerts()
    assert held["status"] == "held" and held["payload"]["feeds"] == ["RFI", "BBC"]
    assert run_digests(w.store, w.config, now=later(minutes=61)) == 1
    assert deliver_pending(w.store, w.config, now=later(minutes=61)).sent == 1
    (digest,) = lines(out)
    (item,) = digest["items"]
    assert {source["feed"] for source in item["sources"]} == {"RFI", "BBC"}


def test_a_channel_taken_off_a_digest_rule_gets_its_held_alerts_released(tmp_path: Path, out: Path) -> None:
    """Held alerts wait for a digest of their (rule, channel); when the config no longer sends that rule's
    digest to the channel, none will ever fold them: they go out as ordinary alerts instead of waiting forever."""
    other = tmp_path / "other.jsonl"
    channels = jsonl_channel(out) + f'[[channels]]\nname = "other"\nurl = "jsonl://{other}"\n'
    both = MALI_RULE.replace('channels = ["file"]', 'channels = ["file", "other"]') + 'mode = "digest"\nevery = "1h"\n'
    w = world(tmp_path, both, channels)
    run_digests(w.store, w.config, now=NOW)
    w.ingest("RFI", COUP_RFI, now=later(minutes=10))
    assert sorted((row["channel"], row["status"]) for row in w.alerts()) == [("file", "held"), ("other", "held")]
    w.close()

    only_file = MALI_RULE + 'mode = "digest"\nevery = "1h"\n'
    w = world(tmp_path, only_file, channels)
    assert run_digests(w.store, w.config, now=later(minutes=20)) == 0
    assert sorted((row["channel"], row["status"]) for row in w.alerts()) == [("file", "held"), ("other", "pending")]
    assert deliver_pending(w.store, w.config, now=later(minutes=21)).sent == 1
    assert [message["kind"] for message in lines(other)] == ["new"]
    assert run_digests(w.store, w.config, now=later(minutes=61)) == 1      # the rule's own digest goes on
    deliver_pending(w.store, w.config, now=later(minutes=61))
    assert [message["kind"][:7] for message in lines(out)] == ["digest-"]
    w.close()


def test_digest_at_a_local_clock_time() -> None:
    rule = RuleConfig(name="r", query="x", mode="digest", at=time(8, 0), timezone="Europe/Paris")
    # 08:00 in Paris in February is 07:00 UTC
    assert due_slot(rule, NOW, later(hours=22, minutes=59)) is None
    slot = due_slot(rule, NOW, later(hours=23, minutes=5))
    assert slot is not None and slot.hour == 7 and slot.day == 18
    bamako = RuleConfig(name="r", query="x", mode="digest", at=time(8, 0), timezone="Africa/Bamako")
    assert due_slot(bamako, NOW - timedelta(minutes=1), NOW) == NOW


def test_a_digest_due_at_a_time_the_spring_forward_night_skips_goes_once_and_not_ahead_of_time(
        tmp_path: Path, out: Path) -> None:
    """02:30 does not exist in New York on 8 March 2026 (02:00 EST -> 03:00 EDT, at 07:00 UTC): the digest goes
    when the clock passes it, once, and covers the time until then, not until 03:30 EDT (07:30 UTC), half an
    hour ahead; the next day's digest starts where it ended."""
    rules = MALI_RULE + 'mode = "digest"\nat = "02:30"\ntimezone = "America/New_York"\n'
    w = world(tmp_path, rules, jsonl_channel(out))
    start = datetime(2026, 3, 7, 12, tzinfo=timezone.utc)
    assert run_digests(w.store, w.config, now=start) == 0
    w.ingest("RFI", make_article("rfi-9", "Mali: Bamako votes", seen=start), now=start)
    gap_end = datetime(2026, 3, 8, 7, 0, 10, tzinfo=timezone.utc)   # 03:00:10 EDT
    assert run_digests(w.store, w.config, now=gap_end - timedelta(minutes=1)) == 0
    assert run_digests(w.store, w.config, now=gap_end) == 1
    w.ingest("RFI", make_article("rfi-10", "Mali: Gao reopens", seen=gap_end), now=gap_end + timedelta(minutes=5))
    for minutes in (10, 25, 40):
        assert run_digests(w.store, w.config, now=gap_end + timedelta(minutes=minutes)) == 0
    assert run_digests(w.store, w.config, now=datetime(2026, 3, 9, 6, 31, tzinfo=timezone.utc)) == 1
    deliver_pending(w.store, w.config, now=datetime(2026, 3, 9, 6, 31, tzinfo=timezone.utc))
    first, second = lines(out)
    assert first["until"] <= "2026-03-08T07:00:10Z"
    assert second["since"] == first["until"] and second["until"] == "2026-03-09T06:30:00Z"
    assert [len(first["items"]), len(second["items"])] == [1, 1]
    w.close()


def test_a_digest_goes_on_after_the_system_clock_went_back(tmp_path: Path, out: Path) -> None:
    """A run while the clock was a day ahead leaves the last digest in the future; once the clock is right
    again, the digest must not wait a day for it."""
    rules = MALI_RULE + 'mode = "digest"\nevery = "1h"\n'
    w = world(tmp_path, rules, jsonl_channel(out))
    assert run_digests(w.store, w.config, now=NOW) == 0
    assert run_digests(w.store, w.config, now=later(days=1)) == 0      # the clock a day ahead: nothing held
    w.ingest("RFI", COUP_RFI, now=later(minutes=10))                    # the clock is right again
    assert run_digests(w.store, w.config, now=later(minutes=20)) == 0  # the period starts again
    assert run_digests(w.store, w.config, now=later(minutes=81)) == 1
    deliver_pending(w.store, w.config, now=later(minutes=81))
    (digest,) = lines(out)
    assert digest["since"] == "2026-02-17T08:20:00Z" and len(digest["items"]) == 1
    w.close()


def test_flood_control_folds_the_overflow_into_one_summary_and_drops_nothing(tmp_path: Path, out: Path) -> None:
    w = world(tmp_path, MALI_RULE, jsonl_channel(out, "max_per_hour = 3"))
    headlines = [
        "Mali: Gao hospital receives new surgical equipment",
        "Bamako stock exchange lists its first cotton cooperative",
        "Mali football federation names Italian coach for qualifiers",
        "Locust swarms threaten millet harvest near Segou, Mali",
        "Bamako court sentences former mayor in land scandal",
        "Mali launches solar power plant at Kita with 50 megawatts",
        "Timbuktu manuscripts exhibition opens in Bamako museum",
    ]
    for index, headline in enumerate(headlines):
        w.ingest("RFI", make_article(f"t{index}", headline))
    assert len(w.alerts()) == 7
    report = deliver_pending(w.store, w.config, now=NOW)
    assert report.sent == 3 and report.folded == 5
    sent = lines(out)
    assert [message["kind"] for message in sent[:2]] == ["new", "new"]
    assert sent[2]["kind"].startswith("summary-") and len(sent[2]["items"]) == 5
    assert {row["status"] for row in w.alerts(rule="mali")} == {"sent"}
    # the hour is used up: new alerts wait, then go out when slots free up
    w.ingest("RFI", make_article("t8", "Mali: Bamako airport reopens after 2 days"), now=later(minutes=10))
    w.ingest("RFI", make_article("t9", "Bamako: Mali's teachers strike for a third week"), now=later(minutes=11))
    report = deliver_pending(w.store, w.config, now=later(minutes=12))
    assert report.sent == 0 and report.waiting == 2
    assert len(lines(out)) == 3
    report = deliver_pending(w.store, w.config, now=later(minutes=61))
    assert report.sent == 2
    assert len(lines(out)) == 5
    assert {row["status"] for row in w.alerts()} == {"sent"}


def test_a_channel_that_cannot_write_keeps_alerts_then_gives_up(tmp_path: Path) -> None:
    blocked = tmp_path / "not-a-dir"
    blocked.write_text("a file where a folder should be")
    target = blocked / "alerts.jsonl"
    w = world(tmp_path, MALI_RULE, jsonl_channel(target), monitor='alert_give_up = "1h"')
    w.ingest("RFI", COUP_RFI)
    report = deliver_pending(w.store, w.config, now=NOW)
    assert report.retrying == 1 and report.sent == 0
    (row,) = w.alerts()
    assert row["status"] == "pending" and row["attempts"] == 1 and "cannot append" in row["last_error"]
    assert row["next_attempt"] == "2026-02-17T08:00:30Z"           # backoff: 30s after the first failure
    assert deliver_pending(w.store, w.config, now=later(minutes=0.25)).retrying == 0   # not due yet
    deliver_pending(w.store, w.config, now=later(minutes=1))
    assert w.alerts()[0]["attempts"] == 2
    deliver_pending(w.store, w.config, now=later(hours=1, minutes=1))
    (row,) = w.alerts()
    assert row["status"] == "failed" and "cannot append" in row["last_error"]
    # still listed, and `alerts retry` puts it back; once the file can be written it goes out
    blocked.unlink()
    blocked.mkdir()
    with w.store.transaction() as conn:
        assert outbox_sql.retry_failed(conn, later(hours=2)) == 1
    assert deliver_pending(w.store, w.config, now=later(hours=2)).sent == 1
    assert len(lines(target)) == 1


def test_default_channels_apply_when_a_rule_names_none(tmp_path: Path, out: Path,
                                                       caplog: pytest.LogCaptureFixture) -> None:
    rules = '[[rules]]\nname = "mali"\nquery = "Mali"\n'
    w = world(tmp_path, rules, jsonl_channel(out), monitor='default_channels = ["log", "file"]')
    w.ingest("RFI", COUP_RFI)
    with caplog.at_level("INFO", logger="monitor.alerts"):
        assert deliver_pending(w.store, w.config, now=NOW).sent == 2
    assert len(lines(out)) == 1
    assert any('channel="log"' in record.getMessage() for record in caplog.records)
