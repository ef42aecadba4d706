"""The config loader: every key read and validated, errors name file, key path and problem."""

from __future__ import annotations

import filecmp
from datetime import timedelta
from pathlib import Path

import pytest

from monitor.config import load_config, parse_config
from monitor.errors import ConfigError

REPO = Path(__file__).resolve().parents[1]

MINIMAL = """
[[feeds]]
name = "A"
url = "https://example.org/feed.xml"
"""


def error_of(text: str) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        parse_config(text, "conf.toml")
    return caught.value


def test_starter_config_loads_and_has_real_feeds() -> None:
    config = load_config(REPO / "config" / "feeds.toml")
    assert len(config.feeds) >= 12
    languages = {feed.language for feed in config.feeds}
    assert {"en", "fr"} <= languages
    names = " ".join(feed.name for feed in config.feeds)
    for outlet in ("Al Jazeera", "BBC", "France 24", "RFI", "Le Monde", "Jeune Afrique", "Africanews"):
        assert outlet in names
    assert all(feed.url.startswith("https://") for feed in config.feeds)


def test_packaged_starter_config_is_the_repository_one() -> None:
    assert filecmp.cmp(REPO / "config" / "feeds.toml", REPO / "monitor" / "data" / "feeds.toml", shallow=False)


def test_defaults_and_every_monitor_key() -> None:
    config = parse_config(
        """
[monitor]
database = "x.db"
default_interval = "10m"
user_agent = "newsmon/<version> test"
connect_timeout = "5s"
read_timeout = "20s"
fetch_deadline = "45s"
max_body = "2MB"
concurrency = 4
per_host = 1
backoff_max = "3h"
failing_after = 3
cache_max = "1h"
story_window = "3d"
alert_max_age = "12h"
alert_give_up = "1d"
default_channels = ["log"]
retention = "30d"
shutdown_grace = "5s"
""" + MINIMAL
    )
    settings = config.monitor
    assert settings.database == Path("x.db")
    assert settings.default_interval == timedelta(minutes=10)
    assert settings.user_agent.startswith("newsmon/0.") and "<version>" not in settings.user_agent
    assert settings.fetch_deadline == timedelta(seconds=45)
    assert settings.max_body == 2_000_000
    assert (settings.concurrency, settings.per_host, settings.failing_after) == (4, 1, 3)
    assert settings.story_window == timedelta(days=3)
    assert settings.retention == timedelta(days=30)
    assert config.feeds[0].interval is None
    assert config.feed_interval(config.feeds[0]) == timedelta(minutes=10)


def test_unknown_key_suggests_the_close_one() -> None:
    error = error_of('[monitor]\ndefault_intervall = "5m"\n' + MINIMAL)
    assert "conf.toml" in str(error)
    assert "monitor.default_intervall" in str(error)
    assert "did you mean 'default_interval'" in str(error)
    assert error.exit_code == 2


@pytest.mark.parametrize(
    ("snippet", "key", "words"),
    [
        ('interval = "soon"', "feeds[1].interval", "not a duration"),
        ('interval = 15', "feeds[1].interval", "duration string"),
        ('interval = "0s"', "feeds[1].interval", "at least"),
        ('enabled = "yes"', "feeds[1].enabled", "true or false"),
        ('tags = "africa"', "feeds[1].tags", "list of strings"),
        ('language = "french!"', "feeds[1].language", "language code"),
        ('intervl = "5m"', "feeds[1].intervl", "did you mean 'interval'"),
    ],
)
def test_feed_errors_name_the_key_path(snippet: str, key: str, words: str) -> None:
    text = MINIMAL + f'\n[[feeds]]\nname = "B"\nurl = "https://example.net/rss"\n{snippet}\n'
    message = str(error_of(text))
    assert key in message and words in message and "conf.toml" in message


def test_feed_url_and_name_checks() -> None:
    assert "http:// or https://" in str(error_of('[[feeds]]\nname = "A"\nurl = "file:///etc/passwd"\n'))
    assert "is required" in str(error_of('[[feeds]]\nname = "A"\n'))
    duplicate = MINIMAL + '\n[[feeds]]\nname = "A"\nurl = "https://example.net/other"\n'
    assert "already the name of feeds[0]" in str(error_of(duplicate))
    same_url = MINIMAL + '\n[[feeds]]\nname = "B"\nurl = "HTTPS://EXAMPLE.org/feed.xml"\n'
    assert "same feed as feeds[0]" in str(error_of(same_url))


def test_not_toml_and_wrong_shapes() -> None:
    assert "not valid TOML" in str(error_of("[[feeds]\nname="))
    assert "array of tables" in str(error_of('feeds = "x"'))
    assert "unknown key" in str(error_of('[monitr]\nx = 1'))


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path / "nope.toml")
    assert "nope.toml" in str(caught.value) and "newsmon init" in str(caught.value)


def test_environment_and_file_secrets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    secret = tmp_path / "token"
    secret.write_text("s3cret\n")
    monkeypatch.setenv("NEWSMON_TEST_HOST", "example.org")
    config = parse_config(
        f'[[feeds]]\nname = "A"\nurl = "https://${{NEWSMON_TEST_HOST}}/feed"\n'
        f'[[channels]]\nname = "hook"\nurl = "webhook:https://example.org/h"\n'
        f'secret_header = "X-Token: ${{file:{secret}}}"\n'
    )
    assert config.feeds[0].url == "https://example.org/feed"
    assert config.channels[0].secret_header == "X-Token: s3cret"
    monkeypatch.delenv("NEWSMON_TEST_HOST")
    message = str(error_of('[[feeds]]\nname = "A"\nurl = "https://${NEWSMON_TEST_HOST}/feed"\n'))
    assert "NEWSMON_TEST_HOST is not set" in message and "feeds[0].url" in message


def test_rules_validated_with_position() -> None:
    message = str(error_of(MINIMAL + '[[rules]]\nname = "r"\nquery = "(Mali OR Niger"\n'))
    assert "rules[0].query" in message and "'r'" in message and "position" in message
    config = parse_config(MINIMAL + '[[rules]]\nname = "k"\nkeywords = ["Mali", "Bamako"]\nexclude = ["sport"]\n')
    assert config.rules[0].query
    assert config.rule_channels(config.rules[0]) == ("log",)


def test_rule_channels_and_digest_options() -> None:
    unknown = MINIMAL + '[[rules]]\nname = "r"\nquery = "Mali"\nchannels = ["mial"]\n'
    assert "no channel named 'mial'" in str(error_of(unknown))
    twice = MINIMAL + '[[rules]]\nname = "r"\nquery = "Mali"\nchannels = ["log", "log"]\n'
    assert "rules[0].channels[1]: 'log' is already in the list" in str(error_of(twice))
    twice_default = '[monitor]\ndefault_channels = ["log", "log"]\n' + MINIMAL
    assert "monitor.default_channels[1]: 'log' is already in the list" in str(error_of(twice_default))
    toml_time = MINIMAL + '[[rules]]\nname = "r"\nquery = "Mali"\nmode = "digest"\nat = 1979-05-27T07:32:00Z\n'
    assert "rules[0].at: must be a clock time such as \"08:00\", not 1979-05-27T07:32:00+00:00" in str(
        error_of(toml_time))
    digest = MINIMAL + '[[rules]]\nname = "r"\nquery = "Mali"\nmode = "digest"\n'
    assert "exactly one of every" in str(error_of(digest))
    zone = MINIMAL + '[[rules]]\nname = "r"\nquery = "Mali"\nmode = "digest"\nat = "08:00"\ntimezone = "Mars/Olympus"\n'
    assert "not a known time zone" in str(error_of(zone))
    for folder_or_file in ("America/Argentina", "Europe", "zone.tab"):  # in the zone database, but no zone
        rule = MINIMAL + f'[[rules]]\nname = "r"\nquery = "Mali"\nmode = "digest"\nat = "08:00"\ntimezone = "{folder_or_file}"\n'
        assert f"rules[0].timezone: '{folder_or_file}' is not a known time zone" in str(error_of(rule))
    good = parse_config(
        MINIMAL + '[[rules]]\nname = "r"\nquery = "Mali"\nmode = "digest"\nat = "08:00"\ntimezone = "Africa/Bamako"\n'
    )
    assert good.rules[0].at.hour == 8


@pytest.mark.parametrize("keywords, exclude, key, words", [
    ('["Tr*mp"]', '[]', "rules[0].keywords[0]", "can only end a word"),
    ('["Mali", "Bamako", "Ga*o"]', '[]', "rules[0].keywords[2]", "can only end a word"),
    ('["Mali"]', '["*"]', "rules[0].exclude[0]", "must follow the letters"),
    ('["Mali"]', '["sport", "—"]', "rules[0].exclude[1]", "no words in it"),
    ('["Mali", "  "]', '[]', "rules[0].keywords[1]", "is empty"),
    ('["Mali **"]', '[]', "rules[0].keywords[0]", "wildcard"),
])
def test_each_keyword_is_checked_like_a_query(keywords: str, exclude: str, key: str, words: str) -> None:
    error = error_of(MINIMAL + f'[[rules]]\nname = "k"\nkeywords = {keywords}\nexclude = {exclude}\n')
    assert key in str(error) and "'k'" in str(error) and words in str(error)
    assert error.exit_code == 2


def test_keywords_with_a_final_wildcard_and_quotes_still_load() -> None:
    config = parse_config(MINIMAL + '[[rules]]\nname = "k"\nkeywords = ["malien*", "Burkina Faso"]\n'
                          'exclude = [\'say "hi"\']\n')
    assert config.rules[0].query == '("malien"* OR "Burkina Faso") NOT ("say  hi")'


def test_a_leading_byte_order_mark_is_skipped(tmp_path: Path) -> None:
    """Editors on Windows start UTF-8 files with a BOM; it is not part of the TOML."""
    plain, marked = tmp_path / "plain.toml", tmp_path / "marked.toml"
    plain.write_bytes((REPO / "config" / "feeds.toml").read_bytes())
    marked.write_bytes(b"\xef\xbb\xbf" + plain.read_bytes())
    assert load_config(marked).feeds == load_config(plain).feeds
    assert load_config(marked).rules == load_config(plain).rules
    broken = tmp_path / "broken.toml"
    broken.write_bytes(b"\xef\xbb\xbf[monitor]\ndefault_interval = \n")
    with pytest.raises(ConfigError, match=r"line 2, column 20"):
        load_config(broken)
    twice = tmp_path / "twice.toml"
    twice.write_bytes(b"\xef\xbb\xbf\xef\xbb\xbf[monitor]\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(twice)
