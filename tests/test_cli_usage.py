"""Bad usage of any command exits 2 with a clear message, never a traceback: numbers out of range,
a named config file that is missing, options that exclude each other, URLs that are not feed URLs."""

from __future__ import annotations

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


def assert_usage_error(result: Result, *expected: str) -> None:
    assert isinstance(result.exception, SystemExit), f"a clean exit, not {result.exception!r}"
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    for text in expected:
        assert text in result.output


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
