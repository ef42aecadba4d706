"""Bad usage of any command exits 2 with a clear message, never a traceback: numbers out of range,
a named config file that is missing, options that exclude each other, URLs that are not feed URLs."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from monitor.cli import cli

HUGE = "99999999999999999999"            # more than SQLite's 64-bit integers hold
SQLITE_MAX = str(2**63 - 1)


@pytest.fixture
def archive(tmp_path: Path) -> list[str]:
    """``--config`` and ``--db`` of a fresh starter config and archive (made by `newsmon init`)."""
    base = ["--config", str(tmp_path / "feeds.toml"), "--db", str(tmp_path / "newsmon.db")]
    result = CliRunner().invoke(cli, [*base, "init"])
    assert result.exit_code == 0, result.output
    return base


def invoke(args: list[str], **kwargs: object) -> Result:
    return CliRunner().invoke(cli, args, **kwargs)  # type: ignore[arg-type]


def assert_clean_error(result: Result, exit_code: int, *expected: str) -> None:
    """The command ended with ``exit_code`` and a message holding ``expected``, not a traceback."""
    assert isinstance(result.exception, SystemExit), f"a clean exit, not {result.exception!r}"
    assert result.exit_code == exit_code, result.output
    assert "Traceback" not in result.output
    for text in expected:
        assert text in result.output


def assert_usage_error(result: Result, *expected: str) -> None:
    assert_clean_error(result, 2, *expected)


# --------------------------------------------------------------------------- integers in range


@pytest.mark.parametrize("args", [
    ["search", "Mali", "--limit", HUGE],
    ["search", "Mali", "--offset", HUGE],
    ["search", "Mali", "--story", HUGE],
    ["search", "Mali", "--story", "0"],
    ["search", "Mali", "--group-stories", "--limit", HUGE],
    ["story", HUGE],
    ["story", "0"],
    ["stories", "--min-sources", HUGE],
    ["stories", "--limit", HUGE],
    ["alerts", "--limit", HUGE],
    ["alerts", "retry", HUGE],
    ["rules", "test", "Mali", "--limit", HUGE],
    ["feeds", "check", "http://127.0.0.1:9/feed.xml", "--limit", HUGE],
    ["feeds", "add", "http://127.0.0.1:9/feed.xml", "--choose", HUGE],
    ["import", "export.jsonl", "--batch", HUGE],
])
def test_an_integer_out_of_range_is_a_usage_error(archive: list[str], args: list[str]) -> None:
    assert_usage_error(invoke([*archive, *args]), "Invalid value", "range")


@pytest.mark.parametrize(("args", "message"), [
    (["story", SQLITE_MAX], f"error: no story with id {SQLITE_MAX}"),
    (["alerts", "retry", SQLITE_MAX], f"error: no alert with id {SQLITE_MAX}"),
])
def test_the_largest_id_is_looked_up(archive: list[str], args: list[str], message: str) -> None:
    assert_usage_error(invoke([*archive, *args]), message)


def test_the_largest_counts_search_without_overflow(archive: list[str]) -> None:
    for extra in ([], ["--group-stories"]):
        result = invoke([*archive, "search", "Mali", "--story", SQLITE_MAX, "--limit", "1000000000",
                         "--offset", "1000000000", *extra])
        assert result.exit_code == 0, result.output
        assert result.output.strip() == "no results"
    result = invoke([*archive, "stories", "--all", "--min-sources", "1000000000", "--limit", "1000000000"])
    assert result.exit_code == 0 and result.output.startswith("no stories"), result.output


# --------------------------------------------------------------------------- a named config that is missing

READING = [["status"], ["search", "Mali"], ["stories"], ["story", "1"], ["alerts"], ["export"],
           ["rules", "test", "sahel"], ["rules", "list"], ["feeds", "list"], ["feeds", "export"],
           ["channels", "test", "log"], ["alerts", "retry"], ["rules", "rematch"], ["poll"], ["run"]]


@pytest.mark.parametrize("args", [*READING, ["backup", "copy.db"], ["import", "export.jsonl"],
                                  ["feeds", "check", "http://127.0.0.1:9/feed.xml"]])
@pytest.mark.parametrize("how", ["option", "environment"])
def test_a_named_config_that_is_missing_is_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, args: list[str], how: str
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "export.jsonl").write_text("", encoding="utf-8")
    if how == "option":
        result = invoke(["--config", "nope.toml", *args])
    else:
        result = invoke(args, env={"NEWSMON_CONFIG": "nope.toml"})
    assert_usage_error(result, "error: nope.toml: no such file")
    assert not (tmp_path / "storage").exists(), "the default archive is not used (nor created)"


@pytest.mark.parametrize("args", [["status"], ["search", "Mali"], ["rules", "test", "Mali"], ["backup", "copy.db"]])
def test_a_named_config_that_is_missing_is_an_error_also_with_db(archive: list[str], args: list[str]) -> None:
    result = invoke(["--config", "nope.toml", archive[2], archive[3], *args])
    assert_usage_error(result, "error: nope.toml: no such file")


@pytest.mark.parametrize("args", [["status"], ["search", "Mali"], ["stories"], ["alerts"], ["export"],
                                  ["rules", "test", "Mali"], ["backup", "copy.db"]])
def test_reading_commands_need_only_db_when_the_default_config_is_absent(
    archive: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, args: list[str]
) -> None:
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")     # no config/feeds.toml here
    monkeypatch.delenv("NEWSMON_CONFIG", raising=False)
    result = invoke([archive[2], archive[3], *[str(tmp_path / a) if a.endswith(".db") else a for a in args]])
    assert result.exit_code == 0, result.output


def test_init_writes_a_named_config_that_does_not_exist_yet(tmp_path: Path) -> None:
    config = tmp_path / "new" / "feeds.toml"
    result = invoke(["--config", str(config), "--db", str(tmp_path / "a.db"), "init"])
    assert result.exit_code == 0, result.output
    assert config.exists()


def test_init_counts_feeds_and_rules_in_words(tmp_path: Path) -> None:
    config = tmp_path / "feeds.toml"
    config.write_text('[[feeds]]\nname = "a"\nurl = "https://a.example.org/rss"\n'
                      '[[rules]]\nname = "mali"\nquery = "Mali"\n', encoding="utf-8")
    result = invoke(["--config", str(config), "--db", str(tmp_path / "a.db"), "init"])
    assert result.exit_code == 0 and "(1 feed, 1 rule)" in result.output, result.output


# --------------------------------------------------------------------------- options that exclude each other


def test_stories_since_and_all_exclude_each_other(archive: list[str]) -> None:
    for args in (["--all", "--since", "2d"], ["--since", "7d", "--all"]):
        assert_usage_error(invoke([*archive, "stories", *args]), "error: --since and --all exclude each other")
    for args in (["--all"], ["--since", "2d"], []):
        result = invoke([*archive, "stories", *args])
        assert result.exit_code == 0, result.output
    assert invoke([*archive, "stories"]).output.strip() == "no stories updated in the last 7d"
    assert invoke([*archive, "stories", "--since", "2030-01-01"]).output.strip() == "no stories updated since 2030-01-01"


# --------------------------------------------------------------------------- URL arguments


def closed_port_url() -> str:
    """An http URL on 127.0.0.1 where nothing listens (a network failure, not bad usage)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/feed.xml"


@pytest.mark.parametrize("command", ["check", "add"])
@pytest.mark.parametrize("url", ["notaurl", "file:///etc/passwd", "ftp://example.org/feed.xml", "http://",
                                 "https://example.org:99999/", "http://a..b/", "http://[::1/", "",
                                 "https://exa mple.org/feed", "https://xn--zz.example.org/feed",
                                 "https://\uff45xample.org/feed", "http://999.1.1.1/feed"])
def test_a_url_that_is_not_a_feed_url_is_a_usage_error(archive: list[str], command: str, url: str) -> None:
    config = Path(archive[1])
    before = config.read_bytes()
    assert_usage_error(invoke([*archive, "feeds", command, url]), "error: not a feed URL")
    assert config.read_bytes() == before


@pytest.mark.parametrize("command", ["check", "add"])
def test_a_valid_url_that_cannot_be_fetched_exits_1(archive: list[str], command: str) -> None:
    result = invoke([*archive, "feeds", command, closed_port_url()])
    assert isinstance(result.exception, SystemExit) and result.exit_code == 1, result.output
    assert "error: cannot connect" in result.output


def test_feeds_add_takes_a_host_without_scheme_as_https(archive: list[str]) -> None:
    result = invoke([*archive, "feeds", "add", "localhost:1/news"])
    assert result.exit_code == 1 and "error: cannot connect to localhost:1" in result.output, result.output


def test_init_where_the_config_cannot_be_written_is_a_clean_error(tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("")
    config = tmp_path / "a-file" / "feeds.toml"       # its folder cannot be made: a file is in the way
    result = invoke(["--config", str(config), "--db", str(tmp_path / "a.db"), "init"])
    assert_clean_error(result, 2, str(config), "cannot be written")
    assert not (tmp_path / "a.db").exists()


def test_init_through_a_symlink_to_a_missing_file_writes_its_target(tmp_path: Path) -> None:
    link = tmp_path / "feeds.toml"
    link.symlink_to(tmp_path / "etc" / "newsmon.toml")
    result = invoke(["--config", str(link), "--db", str(tmp_path / "a.db"), "init"])
    assert result.exit_code == 0, result.output
    assert link.is_symlink() and (tmp_path / "etc" / "newsmon.toml").read_text().startswith("#")
    assert not [p.name for p in (tmp_path / "etc").iterdir() if p.name.endswith(".tmp")]


@pytest.mark.parametrize("command", [["init"], ["feeds", "remove", "BBC"], ["feeds", "disable", "BBC"],
                                     ["feeds", "import", "list.opml"]])
def test_a_config_that_is_a_loop_of_symlinks_is_a_clean_error(tmp_path: Path, command: list[str]) -> None:
    (tmp_path / "list.opml").write_text('<opml><body><outline xmlUrl="https://e.org/f"/></body></opml>')
    (tmp_path / "feeds.toml").symlink_to(tmp_path / "other.toml")
    (tmp_path / "other.toml").symlink_to(tmp_path / "feeds.toml")
    done = subprocess.run([sys.executable, "-m", "monitor", "--config", "feeds.toml", "--db", "a.db", *command],
                          cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    assert done.stderr.startswith("error: feeds.toml: cannot be"), done.stderr
    assert (tmp_path / "feeds.toml").is_symlink() and (tmp_path / "other.toml").is_symlink()


@pytest.mark.parametrize("option", ["--feed", "--lang"])
@pytest.mark.parametrize("value", ["", "  "])
def test_an_empty_search_filter_is_a_usage_error(archive: list[str], option: str, value: str) -> None:
    """`--lang ''` matched every article and `--feed ''` none: an empty filter is a mistake (an unset shell variable)."""
    assert_usage_error(invoke([*archive, "search", "Mali", option, value]), f"error: {option} needs a value")


# --------------------------------------------------------------------------- a query that starts with "-"


@pytest.mark.parametrize(("command", "query"), [
    (["search"], "-title:Niger"),
    (["search"], "-sport"),
    (["rules", "test"], "-sport"),
    (["search"], "-hausse"),                 # -h is the help flag: click names "-a"
])
def test_a_query_that_starts_with_a_minus_says_to_put_it_after_double_dash(
        archive: list[str], command: list[str], query: str) -> None:
    """The shell hands `-sport` to newsmon as an option: the message shows how to pass it as the query."""
    done = subprocess.run([sys.executable, "-m", "monitor", *archive, *command, query], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    assert f"newsmon {' '.join(command)} -- {query}" in done.stderr
    after_dashes = subprocess.run([sys.executable, "-m", "monitor", *archive, *command, "--", query],
                                  capture_output=True, text=True, timeout=60)
    assert after_dashes.returncode == 0, after_dashes.stderr


def test_an_unknown_long_option_is_not_taken_for_a_query(archive: list[str]) -> None:
    done = subprocess.run([sys.executable, "-m", "monitor", *archive, "search", "Mali", "--limt", "5"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "--limit" in done.stderr and " -- " not in done.stderr
