"""`newsmon rules list | test | rematch` over a real archive polled from 127.0.0.1.

The feed's items are dated a few hours ago, so that the first poll creates alerts: rematch must
leave the alerts table exactly as it was while it adds and removes matches."""

from __future__ import annotations

import json
import sqlite3
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from pathlib import Path

from click.testing import CliRunner, Result

from monitor.cli import cli
from monitor.rules import RuleSet
from monitor.search import search
from monitor.store.matches import iter_match_docs
from tests.feedserver import FeedServer
from tests.test_cli_search import LABELLED
from tests.test_pipeline import write_config

RULES_BEFORE = """
[[rules]]
name = "mali"
query = 'Mali OR Bamako'

[[rules]]
name = "coop"
query = 'cooperation'
channels = ["log"]
mode = "digest"
every = "1h"
"""
RULES_AFTER = """
[[rules]]
name = "mali"
query = 'Somalia OR Malibu OR Bamako'
"""


def recent_rss(now: datetime) -> bytes:
    items = "".join(
        f"<item><title>{title}</title><link>https://desk.example.org/{guid}</link><guid>{guid}-guid</guid>"
        f"<description>{summary}</description><pubDate>{format_datetime(now - timedelta(hours=index + 1))}</pubDate>"
        "</item>"
        for index, (guid, title, summary, _) in enumerate(LABELLED)
    )
    return (f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>Desk</title>'
            f"<link>https://desk.example.org/</link><description>t</description>{items}</channel></rss>").encode()


def invoke(base: list[str], *args: str) -> Result:
    return CliRunner().invoke(cli, [*base, *args])


def polled(tmp_path: Path, server: FeedServer) -> tuple[list[str], Path, Path]:
    server.add("/desk.xml", recent_rss(datetime.now(timezone.utc)))
    config = write_config(tmp_path / "feeds.toml", [("Desk", server.url("/desk.xml"))], extra=RULES_BEFORE)
    db = tmp_path / "archive.db"
    base = ["--config", str(config), "--db", str(db)]
    result = invoke(base, "poll")
    assert result.exit_code == 0, result.output
    return base, config, db


def rows(db: Path, sql: str) -> list[tuple]:
    conn = sqlite3.connect(db)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def matched(db: Path, rule: str) -> set[str]:
    return {row[0] for row in rows(db, f"SELECT a.title FROM matches m JOIN articles a ON a.id = m.article_id "
                                       f"WHERE m.rule = '{rule}'")}


def test_rules_list_shows_queries_channels_modes_and_counts(tmp_path: Path, feed_server: FeedServer) -> None:
    base, _, _ = polled(tmp_path, feed_server)
    listed = json.loads(invoke(base, "rules", "list", "--format", "json").output)
    assert [rule["name"] for rule in listed] == ["mali", "coop"]
    mali, coop = listed
    assert mali["query"] == "Mali OR Bamako" and mali["mode"] == "instant" and mali["channels"] == ["log"]
    assert mali["matches"] == 2 and coop["matches"] == 2
    assert coop["mode"] == "digest every 60m"
    table = invoke(base, "rules", "list")
    assert table.exit_code == 0 and "mali  (instant -> log; 2 matches stored)" in table.output


def test_rules_test_by_name_and_by_query(tmp_path: Path, feed_server: FeedServer) -> None:
    base, _, _ = polled(tmp_path, feed_server)
    by_name = json.loads(invoke(base, "rules", "test", "mali", "--format", "json").output)
    assert by_name["rule"] == "mali" and by_name["count"] == 2
    assert {hit["title"] for hit in by_name["hits"]} == {LABELLED[0][1], LABELLED[3][1]}
    hit = next(h for h in by_name["hits"] if h["title"] == LABELLED[0][1])
    assert {"id", "title", "url", "feed", "published", "story_id", "snippet", "rules"} <= set(hit)
    assert {"term": "mali", "field": "title"} in hit["matched"]

    table = invoke(base, "rules", "test", "Goita OR cooperation")
    assert table.exit_code == 0, table.output
    assert table.output.startswith("2 articles match query")
    assert "[Goïta]" in table.output and "[coopération]" in table.output and "matched:" in table.output

    limited = invoke(base, "rules", "test", "mali", "--limit", "1")
    assert "2 articles match rule mali (newest 1 shown)" in limited.output
    none = invoke(base, "rules", "test", "Bamako", "--since", "1s")
    assert none.exit_code == 0 and none.output.startswith("0 articles match")

    bad = invoke(base, "rules", "test", "(Mali OR")
    assert bad.exit_code == 2 and "position" in bad.output and "Traceback" not in bad.output


def test_rematch_adds_and_removes_matches_and_creates_no_alert(tmp_path: Path, feed_server: FeedServer) -> None:
    base, config, db = polled(tmp_path, feed_server)
    alerts_before = rows(db, "SELECT * FROM alerts ORDER BY id")
    assert alerts_before, "the first poll alerted on the fresh articles"
    assert matched(db, "mali") == {LABELLED[0][1], LABELLED[3][1]}

    config.write_text(config.read_text().replace(RULES_BEFORE, RULES_AFTER))
    result = invoke(base, "rules", "rematch", "mali")
    assert result.exit_code == 0, result.output
    assert "mali: 3 matches (2 added, 1 removed)" in result.output
    assert "no alerts created" in result.output
    assert matched(db, "mali") == {LABELLED[0][1], LABELLED[1][1], LABELLED[2][1]}
    assert rows(db, "SELECT * FROM alerts ORDER BY id") == alerts_before
    assert matched(db, "coop"), "a named rematch leaves other rules alone"

    # the stored matches are what the matcher and search() say over the archive
    conn = sqlite3.connect(db)
    ruleset = RuleSet.compile([("mali", "Somalia OR Malibu OR Bamako")])
    expected = {article_id for article_id, doc in iter_match_docs(conn) if ruleset.match(doc)}
    assert expected == {hit.id for hit in search(conn, "Somalia OR Malibu OR Bamako", limit=None)}
    assert expected == {row[0] for row in conn.execute("SELECT article_id FROM matches WHERE rule = 'mali'")}
    conn.close()

    everything = invoke(base, "rules", "rematch")
    assert everything.exit_code == 0, everything.output
    assert "mali: 3 matches (0 added, 0 removed)" in everything.output
    assert "coop: no longer configured, 2 matches removed" in everything.output
    assert matched(db, "coop") == set()
    assert rows(db, "SELECT * FROM alerts ORDER BY id") == alerts_before

    unknown = invoke(base, "rules", "rematch", "nope")
    assert unknown.exit_code == 2 and "no rule named 'nope'" in unknown.output
