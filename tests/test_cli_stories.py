"""`newsmon stories` / `newsmon story` over an archive filled by a real poll of the same-day feeds."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from monitor.cli import cli
from tests.feedserver import FeedServer
from tests.test_pipeline import SAME_DAY, write_config


def test_stories_lists_multi_outlet_stories_and_story_shows_sources(
    tmp_path: Path, corpora: Path, feed_server: FeedServer
) -> None:
    feeds = []
    for index, path in enumerate(sorted((corpora / "real-feeds").glob(SAME_DAY))):
        feed_server.add(f"/f{index}.xml", path.read_bytes())
        feeds.append((path.stem, feed_server.url(f"/f{index}.xml")))
    config = write_config(tmp_path / "feeds.toml", feeds)
    base = ["--config", str(config), "--db", str(tmp_path / "a.db")]
    runner = CliRunner()
    assert runner.invoke(cli, [*base, "poll"]).exit_code == 0

    listing = runner.invoke(cli, [*base, "stories", "--all", "--min-sources", "2", "--format", "json"])
    assert listing.exit_code == 0, listing.output
    stories = json.loads(listing.output)
    assert stories, "the same-day outlets share stories"
    for story in stories:
        assert {"id", "headline", "first_seen", "updated", "sources"} <= set(story)
        assert len({source["feed"] for source in story["sources"]}) >= 2

    shown = runner.invoke(cli, [*base, "story", str(stories[0]["id"]), "--format", "json"])
    assert json.loads(shown.output)["id"] == stories[0]["id"]
    table = runner.invoke(cli, [*base, "story", str(stories[0]["id"])])
    assert stories[0]["headline"] in table.output

    everything = json.loads(runner.invoke(cli, [*base, "stories", "--all", "--format", "json"]).output)
    single = next(story for story in everything if story["source_count"] == 1)
    single_table = runner.invoke(cli, [*base, "story", str(single["id"])]).output
    assert ", 1 outlet\n" in single_table and "1 outlets" not in single_table

    missing = runner.invoke(cli, [*base, "story", "999999"])
    assert missing.exit_code == 2 and "no story" in missing.output
    bad_since = runner.invoke(cli, [*base, "stories", "--since", "yesterday-ish"])
    assert bad_since.exit_code == 2 and "--since" in bad_since.output
