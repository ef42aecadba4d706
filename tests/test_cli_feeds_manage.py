"""`newsmon feeds add | import | export | remove | enable | disable` through the real root command."""

from __future__ import annotations

import json
import os
import resource
import signal
import stat
import subprocess
from pathlib import Path
from typing import Iterator

import pytest
from click.testing import CliRunner, Result

from monitor.cli import cli
from monitor.config import load_config
from monitor.opml import read_opml
from tests.feedserver import FeedServer
from tests.test_robust_support import child_env, newsmon_argv

CORPORA = Path(__file__).resolve().parents[1].parent / "shared" / "corpora"
OPML_DIR = CORPORA / "opml"
OPML_FILES = sorted(OPML_DIR.rglob("*.opml")) if OPML_DIR.is_dir() else []

CONFIG = """\
# test config: this comment must survive every edit
[monitor]
default_interval = "15m"  # settings comment

# --- feeds
[[feeds]]
name = "Al Jazeera"
url = "https://www.aljazeera.com/xml/rss/all.xml"
tags = ["africa"]

# --- channels
[[channels]]
name = "file"
url = "jsonl://storage/alerts.jsonl"
"""

RSS = """<?xml version="1.0"?><rss version="2.0"><channel><title>{title}</title><link>http://e.org/</link>
<description>d</description><item><title>a</title><link>http://e.org/a</link></item></channel></rss>"""


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "feeds.toml"
    path.write_text(CONFIG, encoding="utf-8")
    return path


@pytest.fixture
def server() -> Iterator[FeedServer]:
    with FeedServer() as feed_server:
        yield feed_server


def run(config: Path, *args: str, input: str | None = None) -> Result:
    return CliRunner().invoke(cli, ["--config", str(config), "feeds", *args], input=input)


def names(config: Path) -> list[str]:
    return [feed.name for feed in load_config(config).feeds]


def comments_kept(config: Path) -> bool:
    text = config.read_text(encoding="utf-8")
    return all(line in text for line in CONFIG.splitlines() if line.lstrip().startswith("#"))


# --------------------------------------------------------------------------- add


def test_add_a_feed_url(config: Path, server: FeedServer) -> None:
    server.add("/rss.xml", RSS.format(title="Le Journal"))
    result = run(config, "add", server.url("/rss.xml"), "--tag", "france", "--tag", "news", "--interval", "30m",
                 "--language", "fr")
    assert result.exit_code == 0, result.output
    assert "added feed 'Le Journal'" in result.output
    feed = load_config(config).feed("Le Journal")
    assert feed is not None and feed.url == server.url("/rss.xml")
    assert feed.tags == ("france", "news") and feed.language == "fr" and feed.interval.total_seconds() == 1800
    assert comments_kept(config)


def test_add_a_page_with_several_feeds_needs_a_choice(config: Path, server: FeedServer) -> None:
    server.add("/", "<html><head>"
               '<link rel="alternate" type="application/rss+xml" href="/one.xml">'
               '<link rel="alternate" type="application/rss+xml" href="/two.xml">'
               "</head><body></body></html>", content_type="text/html")
    server.add("/one.xml", RSS.format(title="One"))
    server.add("/two.xml", RSS.format(title="Two"))
    result = run(config, "add", server.url("/"))
    assert result.exit_code == 2
    assert "1. One" in result.output and "2. Two" in result.output
    assert "--choose" in result.output
    assert names(config) == ["Al Jazeera"]
    result = run(config, "add", server.url("/"), "--choose", "2", "--name", "Second")
    assert result.exit_code == 0, result.output
    assert load_config(config).feed("Second").url == server.url("/two.xml")
    result = run(config, "add", server.url("/"), "--choose", "5")
    assert result.exit_code == 2 and "only 2" in result.output
    assert "(already configured as 'Second')" in result.output
    result = run(config, "add", server.url("/"), "--yes")
    assert result.exit_code == 0, result.output
    assert names(config) == ["Al Jazeera", "Second", "One"]


def test_add_refuses_a_url_already_configured(config: Path) -> None:
    result = run(config, "add", "https://WWW.ALJAZEERA.COM/xml/rss/all.xml")
    assert result.exit_code == 2
    assert "already configured as feed 'Al Jazeera'" in result.output
    assert config.read_text(encoding="utf-8") == CONFIG


def test_add_refuses_a_name_already_used(config: Path, server: FeedServer) -> None:
    server.add("/rss.xml", RSS.format(title="Al Jazeera"))
    result = run(config, "add", server.url("/rss.xml"))
    assert result.exit_code == 2 and "--name" in result.output
    assert run(config, "add", server.url("/rss.xml"), "--name", "AJ mirror").exit_code == 0


def test_add_refuses_a_name_that_differs_only_in_how_its_accents_are_encoded(tmp_path: Path,
                                                                                server: FeedServer) -> None:
    config = tmp_path / "feeds.toml"
    config.write_text('[[feeds]]\nname = "Radio \u00e9chos"\nurl = "https://e.org/1"\n', encoding="utf-8")
    server.add("/rss.xml", RSS.format(title="other"))
    added = subprocess.run(newsmon_argv("--config", str(config), "feeds", "add", server.url("/rss.xml"),
                                        "--name", "Radio e\u0301chos"),
                           cwd=tmp_path, env=child_env(), capture_output=True, text=True, timeout=60)
    assert added.returncode == 2, added.stderr
    assert "is already used by another feed" in added.stderr
    disabled = subprocess.run(newsmon_argv("--config", str(config), "feeds", "disable", "Radio e\u0301chos"),
                              cwd=tmp_path, env=child_env(), capture_output=True, text=True, timeout=60)
    assert disabled.returncode == 0, disabled.stderr
    assert [(feed.name, feed.enabled) for feed in load_config(config).feeds] == [("Radio \u00e9chos", False)]


def test_add_without_any_feed_fails_cleanly(config: Path, server: FeedServer) -> None:
    server.add("/", "<html><head><title>x</title></head><body>nothing</body></html>", content_type="text/html")
    result = run(config, "add", server.url("/"))
    assert result.exit_code == 1
    assert "no working feed found" in result.output
    assert isinstance(result.exception, SystemExit), "a clean exit, not an exception"
    result = run(config, "add", server.url("/missing"))
    assert result.exit_code == 1 and "error:" in result.output


def test_add_a_page_with_a_link_urllib_cannot_read(config: Path, server: FeedServer) -> None:
    server.add("/", '<html><head><base href="http://[::1/">'
               '<link rel="alternate" type="application/rss+xml" href="http://[oops/rss.xml">'
               "</head><body></body></html>", content_type="text/html")
    result = run(config, "add", server.url("/"))
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit), "a clean exit, not a ValueError traceback"
    assert "no working feed found" in result.output
    assert config.read_text(encoding="utf-8") == CONFIG


@pytest.mark.parametrize("args", [["--interval", "soon"], ["--language", "French"], ["--choose", "0"],
                                  ["--name", "al jazeera"]])
def test_add_bad_options_exit_2(config: Path, args: list[str]) -> None:
    result = run(config, "add", "https://e.org/rss", *args)
    assert result.exit_code == 2
    assert config.read_text(encoding="utf-8") == CONFIG


# --------------------------------------------------------------------------- import / export


def test_import_reports_and_twice_adds_nothing(config: Path) -> None:
    path = OPML_DIR / "awesome-rss-feeds" / "countries" / "with_category" / "France.opml"
    if not path.exists():
        pytest.skip("../shared/corpora/opml is not there")
    result = run(config, "import", str(path))
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[-1].startswith("added 11, skipped 0, rejected 0")
    assert len(names(config)) == 12
    assert all(feed.tags == ("france",) for feed in load_config(config).feeds[1:])
    text = config.read_bytes()
    again = run(config, "import", str(path))
    assert again.exit_code == 0
    assert again.output.splitlines()[-1].startswith("added 0, skipped 11, rejected 0")
    assert config.read_bytes() == text
    assert comments_kept(config)


def test_import_dry_run_and_json(config: Path, tmp_path: Path) -> None:
    opml = tmp_path / "list.opml"
    opml.write_text(
        '<opml version="2.0"><body><outline text="News">'
        '<outline text="A" xmlUrl="https://a.example/rss?x=1&y=2"/>'
        '<outline text="Al Jazeera" xmlUrl="https://www.aljazeera.com/xml/rss/all.xml"/>'
        '<outline text="B" xmlUrl="gopher://b.example/"/>'
        "</outline></body></opml>", encoding="utf-8")
    result = run(config, "import", str(opml), "--dry-run")
    assert result.exit_code == 0, result.output
    assert "would add 1, skipped 1, rejected 1" in result.output
    assert "dry run" in result.output
    assert config.read_text(encoding="utf-8") == CONFIG
    result = run(config, "import", str(opml), "--format", "json")
    report = json.loads(result.output)
    assert report["counts"] == {"added": 1, "skipped": 1, "rejected": 1, "merged_duplicates": 0}
    assert report["lenient"] is True
    assert report["added"] == [{"name": "A", "url": "https://a.example/rss?x=1&y=2"}]
    assert report["rejected"][0]["reason"].startswith("not an http(s) URL")
    assert load_config(config).feed("A").tags == ("news",)


def test_import_of_what_is_not_opml_exits_2(config: Path, tmp_path: Path) -> None:
    bad = tmp_path / "feed.opml"
    bad.write_text(RSS.format(title="x"), encoding="utf-8")
    result = run(config, "import", str(bad))
    assert result.exit_code == 2 and "not an OPML file" in result.output
    result = run(config, "import", str(tmp_path / "missing.opml"))
    assert result.exit_code == 2 and "cannot be read" in result.output


@pytest.mark.skipif(not OPML_FILES, reason="../shared/corpora/opml is not there")
@pytest.mark.parametrize("path", OPML_FILES, ids=lambda p: str(p.relative_to(OPML_DIR)))
def test_import_every_corpus_file(path: Path, config: Path) -> None:
    result = run(config, "import", str(path), "--format", "json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    counts = report["counts"]
    entries = read_opml(path.read_bytes(), source=path.name).entries
    assert counts["added"] + counts["skipped"] == len(entries)
    assert len(names(config)) == 1 + counts["added"]
    assert comments_kept(config)
    again = json.loads(run(config, "import", str(path), "--format", "json").output)
    assert again["counts"]["added"] == 0
    assert again["counts"]["skipped"] == counts["added"] + counts["skipped"]


HOSTILE_SIZE = 2_000_000
HOSTILE_OPML = {  # each is not well-formed (read leniently), and made of a run that some pattern could rescan
    "blanks after a tag": b'<opml><body><outline text="F" xmlUrl="https://e.org/f"' + b" " * HOSTILE_SIZE + b"x",
    "a long attribute name": b"<opml><body>&<outline " + b"a" * HOSTILE_SIZE
                             + b"><outline xmlUrl='https://e.org/f'/>",
    "titles never closed": b"<opml><head>" + b"<title>" * (HOSTILE_SIZE // 7)
                           + b"<body><outline xmlUrl='https://e.org/f'/>&",
    "folders never closed": b"<opml><body>&" + b"".join(b'<outline text="f%d">' % (n % 50) for n in range(HOSTILE_SIZE // 20))
                            + b'<outline xmlUrl="https://e.org/f"/>',
}


@pytest.mark.parametrize("kind", sorted(HOSTILE_OPML))
def test_import_of_a_large_hostile_opml_file_does_not_hang(tmp_path: Path, kind: str) -> None:
    """The lenient reader's scan is linear: a 2 MB file made to make a regular expression rescan each run
    of characters from each of its positions (hours of work) is read like any other."""
    hostile = tmp_path / "hostile.opml"
    hostile.write_bytes(HOSTILE_OPML[kind])
    config = tmp_path / "feeds.toml"
    config.write_text("[monitor]\n", encoding="utf-8")
    done = subprocess.run(newsmon_argv("--config", str(config), "feeds", "import", str(hostile), "--dry-run",
                                       "--format", "json"),
                          cwd=tmp_path, env=child_env(), capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["lenient"] is True
    assert [item["url"] for item in report["added"]] == ["https://e.org/f"]


def test_export_then_import_round_trips(config: Path, tmp_path: Path) -> None:
    opml = tmp_path / "list.opml"
    opml.write_text(
        '<opml version="2.0"><body>'
        '<outline text="Africa"><outline text="RFI" xmlUrl="https://www.rfi.fr/fr/afrique/rss" language="fr"/>'
        '<outline text="Sahel"><outline text="Studio Tamani" xmlUrl="https://www.studiotamani.org/feed"/>'
        "</outline></outline>"
        '<outline text="untagged" xmlUrl="https://e.org/rss"/></body></opml>', encoding="utf-8")
    assert run(config, "import", str(opml)).exit_code == 0
    assert run(config, "disable", "RFI").exit_code == 0
    exported = tmp_path / "out.opml"
    result = run(config, "export", "--output", str(exported))
    assert result.exit_code == 0, result.output
    stdout = run(config, "export")
    assert stdout.exit_code == 0 and stdout.output.encode("utf-8") == exported.read_bytes()
    fresh = tmp_path / "fresh.toml"
    fresh.write_text("[monitor]\n", encoding="utf-8")
    assert run(fresh, "import", str(exported)).exit_code == 0
    original = {(f.name, f.url, f.tags, f.language) for f in load_config(config).feeds}
    copied = {(f.name, f.url, f.tags, f.language) for f in load_config(fresh).feeds}
    assert copied == original
    assert ("Studio Tamani", "https://www.studiotamani.org/feed", ("africa", "sahel"), None) in copied


def test_export_then_import_keeps_disabled_feeds_and_intervals(tmp_path: Path) -> None:
    config = tmp_path / "feeds.toml"
    config.write_text('[monitor]\n\n[[feeds]]\nname = "Paused"\nurl = "https://e.org/paused"\nenabled = false\n'
                      'interval = "2h"\n\n[[feeds]]\nname = "Hourly"\nurl = "https://e.org/hourly"\ninterval = "1h"\n'
                      '\n[[feeds]]\nname = "Plain"\nurl = "https://e.org/plain"\ntags = ["sahel"]\n', encoding="utf-8")
    exported = tmp_path / "out.opml"
    assert run(config, "export", "--output", str(exported)).exit_code == 0
    fresh = tmp_path / "fresh.toml"
    fresh.write_text("[monitor]\n", encoding="utf-8")
    result = run(fresh, "import", str(exported))
    assert result.exit_code == 0, result.output
    assert load_config(fresh).feeds == load_config(config).feeds     # a disabled feed is not polled again
    assert run(fresh, "import", str(exported)).output.startswith("skipped")


def _limit_file_size(limit: int) -> None:
    """In the child, before exec: files may not grow past ``limit`` bytes (a full disk); the write fails
    (EFBIG) instead of the process being killed by SIGXFSZ."""
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.RLIM_INFINITY))


def test_export_on_a_full_disk_keeps_the_earlier_file_and_leaves_no_temporary_file(tmp_path: Path) -> None:
    config = tmp_path / "feeds.toml"
    config.write_text("".join(f'[[feeds]]\nname = "Feed {number}"\nurl = "https://e.org/{number}"\n'
                              for number in range(200)), encoding="utf-8")
    exported = tmp_path / "out" / "feeds.opml"
    exported.parent.mkdir()
    exported.write_bytes(b"<opml>earlier export</opml>")
    full = subprocess.run(newsmon_argv("--config", str(config), "feeds", "export", "--output", str(exported)),
                          cwd=tmp_path, env=child_env(), capture_output=True, text=True, timeout=120,
                          preexec_fn=lambda: _limit_file_size(4096))
    assert full.returncode == 1, (full.returncode, full.stderr)
    assert "Traceback" not in full.stderr
    assert f"error: {exported}: cannot be written" in full.stderr
    assert exported.read_bytes() == b"<opml>earlier export</opml>"
    assert sorted(path.name for path in exported.parent.iterdir()) == ["feeds.opml"]


def test_export_gives_the_file_ordinary_permissions(config: Path, tmp_path: Path) -> None:
    fresh = tmp_path / "fresh.opml"
    umask = os.umask(0o022)
    try:
        assert run(config, "export", "--output", str(fresh)).exit_code == 0
    finally:
        os.umask(umask)
    assert stat.S_IMODE(fresh.stat().st_mode) == 0o644  # readable by the web server that publishes it
    shared = tmp_path / "shared.opml"
    shared.write_bytes(b"")
    shared.chmod(0o664)
    assert run(config, "export", "--output", str(shared)).exit_code == 0
    assert stat.S_IMODE(shared.stat().st_mode) == 0o664
    assert read_opml(shared.read_bytes(), source="shared").entries


# --------------------------------------------------------------------------- remove / enable / disable


def test_remove_enable_disable(config: Path) -> None:
    result = run(config, "disable", "Al Jazeera")
    assert result.exit_code == 0 and "disabled feed 'Al Jazeera'" in result.output
    assert load_config(config).feed("Al Jazeera").enabled is False
    assert "already disabled" in run(config, "disable", "Al Jazeera").output
    assert run(config, "enable", "Al Jazeera").exit_code == 0
    assert load_config(config).feed("Al Jazeera").enabled is True
    result = run(config, "remove", "Al Jazeera")
    assert result.exit_code == 0 and "removed feed 'Al Jazeera'" in result.output
    assert names(config) == []
    assert comments_kept(config)


@pytest.mark.parametrize("command", ["remove", "enable", "disable"])
def test_unknown_name_exits_2_with_a_suggestion(config: Path, command: str) -> None:
    result = run(config, command, "al jazera")
    assert result.exit_code == 2
    assert "did you mean 'Al Jazeera'" in result.output
    assert config.read_text(encoding="utf-8") == CONFIG


def test_help_says_import_does_not_fetch(config: Path) -> None:
    result = run(config, "import", "--help")
    assert "NOT fetched" in result.output
