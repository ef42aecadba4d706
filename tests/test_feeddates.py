"""Feed dates feedparser reads wrong (zone names it does not know, GMT+1, French names, Unix times), read right."""

from __future__ import annotations

import calendar
import sqlite3
import time
from datetime import datetime, timezone
from pathlib import Path

import feedparser
import pytest

from monitor.feeddates import ZONE_OFFSETS, parse_feed_date
from monitor.parse import parse_feed
from tests.feedserver import FeedServer
from tests.test_pipeline import run, write_config


def _rss(dates: list[str]) -> bytes:
    items = "".join(f"<item><title>Report {number}</title><link>https://news.example.org/{number}</link>"
                    f"<pubDate>{date}</pubDate></item>" for number, date in enumerate(dates))
    return f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>T</title>{items}</channel></rss>'.encode()


# (as written in a feed, the moment it names in UTC); feedparser alone gets each of them wrong or reads no date
WRONG_BEFORE = [
    ("Mon, 07 Dec 2026 10:00:00 CET", "2026-12-07T09:00:00"),
    ("Tue, 07 Jul 2026 10:00:00 CEST", "2026-07-07T08:00:00"),
    ("Mon, 07 Dec 2026 10:00:00 WAT", "2026-12-07T09:00:00"),
    ("Mon, 07 Dec 2026 10:00:00 (CET)", "2026-12-07T09:00:00"),
    ("Mon, 07 Dec 2026 10:00:00 IST", "2026-12-07T04:30:00"),
    ("Mon, 07 Dec 2026 10:00:00 GMT+1", "2026-12-07T09:00:00"),
    ("Mon, 07 Dec 2026 10:00:00 UTC+1", "2026-12-07T09:00:00"),
    ("Mon, 07 Dec 2026 10:00:00 UTC-5", "2026-12-07T15:00:00"),
    ("Thu,28 Jul 2022 4:35:5 GMT+9", "2022-07-27T19:35:05"),
    ("Mon, 7 Dec 2026 10:00:00 Europe/Paris", "2026-12-07T09:00:00"),
    ("Tue, 7 Jul 2026 10:00:00 Europe/Paris", "2026-07-07T08:00:00"),
    ("2026-12-07 10:00:00 CET", "2026-12-07T09:00:00"),
    ("lun., 07 déc. 2026 10:00:00 +0100", "2026-12-07T09:00:00"),
    ("lun., 07 dec. 2026 10:00:00 +0100", "2026-12-07T09:00:00"),
    ("mardi 8 décembre 2026 10:00:00 CET", "2026-12-08T09:00:00"),
    ("sam, 01 août 2026 10:00:00 +0200", "2026-08-01T08:00:00"),
    ("jeudi 5 mars 2026 08:30 CET", "2026-03-05T07:30:00"),
    ("ven., 13 févr. 2026 18:05:00 GMT", "2026-02-13T18:05:00"),
    ("8 décembre 2026", "2026-12-08T00:00:00"),
    ("1733566800", "2024-12-07T10:20:00"),
    ("1733566800123", "2024-12-07T10:20:00"),
]

# Forms feedparser reads right: left to it (the handler answers None and costs one quick look).
LEFT_TO_FEEDPARSER = [
    "Tue, 17 Feb 2026 10:00:00 GMT", "Tue, 17 Feb 2026 10:00:00 +0100", "Tue, 17 Feb 2026 10:00:00 EST",
    "2026-02-17T10:00:00Z", "2026-02-17T10:00:00+01:00", "2026-02-17", "Tuesday, 17 February 2026 10:00:00 GMT",
    "Tue, 17 Feb 2026 10:00:00 XYZ", "20260217", "not a date",
]


def _feedparser_alone(written: str) -> time.struct_time | None:
    """What feedparser's own date handlers make of ``written`` (as its ``_parse_date`` runs them)."""
    from feedparser.datetimes import _date_handlers
    for handler in _date_handlers:
        if handler is parse_feed_date:
            continue
        try:
            found = handler(written)
        except (KeyError, OverflowError, ValueError):
            continue
        if found and len(found) == 9:
            return found
    return None


def _utc(struct: time.struct_time | None) -> str | None:
    return time.strftime("%Y-%m-%dT%H:%M:%S", struct) if struct else None


@pytest.mark.parametrize(("written", "expected"), WRONG_BEFORE)
def test_forms_feedparser_reads_wrong_are_read_right(written: str, expected: str) -> None:
    assert _utc(parse_feed_date(written)) == expected
    entry = parse_feed(_rss([written])).entries[0]  # the parse stage, feedparser with the handler in front
    assert entry.published == datetime.fromisoformat(expected).replace(tzinfo=timezone.utc)


def test_feedparser_alone_gets_them_wrong() -> None:
    """The reason for the handler: without it, every form above comes out wrong or undated."""
    wrong = sum(_utc(_feedparser_alone(written)) != expected for written, expected in WRONG_BEFORE)
    assert wrong == len(WRONG_BEFORE)


@pytest.mark.parametrize("written", LEFT_TO_FEEDPARSER)
def test_forms_feedparser_reads_right_are_left_to_it(written: str) -> None:
    assert parse_feed_date(written) is None


def test_a_date_that_does_not_exist_is_no_date() -> None:
    assert parse_feed_date("mar., 31 févr. 2026 10:00:00 +0100") is None
    assert parse_feed_date("Mon, 07 Dec 2026 25:00:00 CET") is None


def test_a_zone_database_folder_or_file_is_no_zone_and_the_feed_still_parses() -> None:
    """"America/Argentina" is a folder of the zone database: ZoneInfo raises IsADirectoryError for it (not
    ZoneInfoNotFoundError), which stopped the parse of the whole feed."""
    assert parse_feed_date("Mon, 07 Dec 2026 10:00:00 America/Argentina") is None
    parsed = parse_feed(_rss(["Mon, 07 Dec 2026 10:00:00 America/Argentina", "Mon, 7 Dec 2026 10:00:00 Europe/Paris"]))
    assert [entry.title for entry in parsed.entries] == ["Report 0", "Report 1"]
    assert parsed.entries[1].published == datetime(2026, 12, 7, 9, tzinfo=timezone.utc)


def test_every_zone_name_gets_its_offset() -> None:
    for name, hours in ZONE_OFFSETS.items():
        found = parse_feed_date(f"Mon, 07 Dec 2026 12:00:00 {name}")
        expected = datetime(2026, 12, 7, 12, tzinfo=timezone.utc).timestamp() - hours * 3600
        assert found is not None and calendar.timegm(found) == expected, name


def test_real_feed_dates_change_only_where_feedparser_had_none(corpora: Path) -> None:
    """Over every entry date of the real feeds and feedparser's corpus, the handler answers only for dates
    feedparser alone read as none (the Korea Times' "GMT+9"); all others are parsed exactly as before."""
    files = sorted((corpora / "real-feeds").iterdir()) + sorted((corpora / "feedparser-tests").rglob("*.xml"))
    seen = answered = 0
    for path in files:
        for entry in feedparser.parse(path.read_bytes()).entries:
            for key in ("published", "updated"):
                written = dict.get(entry, key)  # the stored value: no alias of feedparser's (updated -> published)
                if not isinstance(written, str) or not written:
                    continue
                seen += 1
                ours = parse_feed_date(written)
                if ours is None:
                    continue
                answered += 1
                assert _feedparser_alone(written) is None, (path.name, written)
    print(f"{seen} entry dates, {answered} read by the handler (feedparser alone: no date)")
    assert seen > 1500 and answered > 0


def test_poll_stores_the_moment_a_zone_name_or_a_french_date_names(tmp_path: Path, feed_server: FeedServer) -> None:
    """Through `newsmon poll` (feedparser runs in the parser worker processes): the stored times are right."""
    written = ["Mon, 07 Dec 2026 10:00:00 CET", "Mon, 07 Dec 2026 10:00:00 GMT+1", "lun., 07 déc. 2026 10:00:00 +0100"]
    feed_server.add("/dates.xml", _rss(written))
    config = write_config(tmp_path / "feeds.toml", [("Dates", feed_server.url("/dates.xml"))])
    db = tmp_path / "archive.db"
    result = run("--config", str(config), "--db", str(db), "poll")
    assert result.exit_code == 0, result.output
    rows = sqlite3.connect(db).execute("SELECT published, undated FROM articles ORDER BY url").fetchall()
    assert rows == [("2026-12-07T09:00:00Z", 0)] * 3
