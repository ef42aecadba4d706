"""Editing config/feeds.toml: comments survive, the result always loads, nothing half-written."""

from __future__ import annotations

import os
import subprocess
import sys
import stat
from pathlib import Path

import pytest

from monitor.config import load_config
from monitor.configedit import add_feed, add_feeds, feed_name, remove_feed, set_feed_enabled
from monitor.errors import ConfigError, UsageError
from monitor.opml import read_opml

CORPORA = Path(__file__).resolve().parents[1].parent / "shared" / "corpora"
STARTER = Path(__file__).resolve().parents[1] / "monitor" / "data" / "feeds.toml"

SAMPLE = """\
# newsmon test config: keep this comment
[monitor]
default_interval = "15m"   # inline comment on a setting

# --- feeds banner
[[feeds]]
name = "Al Jazeera"   # the identity
url = "https://www.aljazeera.com/xml/rss/all.xml"
tags = ["africa"]

# about BBC Africa
[[feeds]]
name = "BBC Africa"
url = "https://feeds.bbci.co.uk/news/world/africa/rss.xml"
language = "en"

# about RFI
[[feeds]]
name = "RFI"
# a comment inside the RFI table
url = "https://www.rfi.fr/fr/afrique/rss"

# --- channels banner
[[channels]]
name = "file"
url = "jsonl://storage/alerts.jsonl"
"""


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "feeds.toml"
    path.write_text(SAMPLE, encoding="utf-8")
    return path


def _comment_lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip().startswith("#")]


def _names(path: Path) -> list[str]:
    return [feed.name for feed in load_config(path).feeds]


def test_add_appends_after_last_feed_and_keeps_comments(config: Path) -> None:
    changes = add_feeds(config, [
        {"title": "Le Monde", "url": "https://www.lemonde.fr/rss/une.xml", "tags": ["france"], "language": "fr",
         "interval": "30m"},
    ])
    assert [(c.name, c.status) for c in changes] == [("Le Monde", "added")]
    text = config.read_text(encoding="utf-8")
    assert _comment_lines(text) == _comment_lines(SAMPLE)
    assert "default_interval = \"15m\"   # inline comment on a setting" in text
    assert text.index('name = "Le Monde"') < text.index("# --- channels banner") < text.index("[[channels]]")
    loaded = load_config(config)
    feed = loaded.feed("Le Monde")
    assert feed is not None and feed.language == "fr" and feed.tags == ("france",)
    assert feed.interval is not None and feed.interval.total_seconds() == 1800
    assert [channel.name for channel in loaded.channels] == ["file"]
    # the original text is a prefix-preserving edit: every original line is still there, in order
    lines = iter(text.splitlines())
    assert all(any(line == kept for kept in lines) for line in SAMPLE.splitlines())


def test_duplicate_url_is_skipped_and_refused(config: Path) -> None:
    before = config.read_bytes()
    changes = add_feeds(config, [{"title": "again", "url": "HTTPS://WWW.ALJAZEERA.COM/xml/rss/all.xml/"}])
    assert changes[0].status == "skipped"
    assert "Al Jazeera" in (changes[0].reason or "")
    assert config.read_bytes() == before
    with pytest.raises(UsageError, match="already configured"):
        add_feed(config, {"url": "https://www.aljazeera.com/xml/rss/all.xml"})


def test_same_url_twice_in_one_batch_is_added_once(config: Path) -> None:
    changes = add_feeds(config, [{"title": "x", "url": "https://e.org/f"}, {"title": "y", "url": "https://e.org/f/"}])
    assert [c.status for c in changes] == ["added", "skipped"]
    assert changes[1].reason == "the same URL as feed 'x', listed before it"
    assert _names(config)[-1] == "x"


def test_name_clash_is_numbered_on_import_and_refused_on_add(config: Path) -> None:
    changes = add_feeds(config, [
        {"title": "RFI", "url": "https://e.org/1"},
        {"title": "rfi", "url": "https://e.org/2"},
    ])
    assert [c.name for c in changes] == ["RFI (2)", "rfi (3)"]
    assert _names(config)[-2:] == ["RFI (2)", "rfi (3)"]
    with pytest.raises(UsageError, match="--name"):
        add_feed(config, {"name": "BBC Africa", "url": "https://e.org/3"})
    assert add_feed(config, {"name": "BBC Afrique", "url": "https://e.org/3"}).status == "added"


COMPOSED = "Radio Bamako \u00e9chos"            # "é" as one character (what most keyboards type)
DECOMPOSED = "Radio Bamako e\u0301chos"         # "e" and a combining accent (macOS file names, some pastes)


def test_names_that_differ_only_in_how_accents_are_encoded_or_in_width_clash(tmp_path: Path) -> None:
    config = tmp_path / "feeds.toml"
    config.write_text(f'[[feeds]]\nname = "{COMPOSED}"\nurl = "https://e.org/1"\n', encoding="utf-8")
    with pytest.raises(UsageError, match="already used"):
        add_feed(config, {"name": DECOMPOSED, "url": "https://e.org/2"})
    with pytest.raises(UsageError, match="already used"):
        add_feed(config, {"name": "ＲＡＤＩＯ BAMAKO ÉCHOS", "url": "https://e.org/2"})  # full-width letters
    changes = add_feeds(config, [{"title": DECOMPOSED, "url": "https://e.org/3"},
                                 {"title": "radio bamako échos", "url": "https://e.org/4"}])
    assert [change.name for change in changes] == [f"{COMPOSED} (2)", "radio bamako échos (3)"]
    assert add_feed(config, {"name": "Studio Tamani\u0301", "url": "https://e.org/5"}).name == "Studio Taman\u00ed"
    assert _names(config) == [COMPOSED, f"{COMPOSED} (2)", "radio bamako échos (3)", "Studio Taman\u00ed"]


def test_a_name_typed_with_its_accents_encoded_otherwise_finds_the_feed(tmp_path: Path) -> None:
    """A terminal shows both spellings alike: 'no feed named X (did you mean X?)' could not be acted on."""
    config = tmp_path / "feeds.toml"
    config.write_text(f'[[feeds]]\nname = "{COMPOSED}"\nurl = "https://e.org/1"\n'
                      f'[[feeds]]\nname = "Other"\nurl = "https://e.org/2"\n', encoding="utf-8")
    assert set_feed_enabled(config, DECOMPOSED, False) is True
    assert load_config(config).feeds[0].enabled is False
    assert remove_feed(config, DECOMPOSED).name == COMPOSED
    assert _names(config) == ["Other"]


def test_unusable_values_are_rejected_without_touching_the_file(config: Path) -> None:
    before = config.read_bytes()
    changes = add_feeds(config, [
        {"title": "ftp", "url": "ftp://e.org/f"},
        {"title": "interval", "url": "https://e.org/i", "interval": "soon"},
        {"title": "language", "url": "https://e.org/l", "language": "French"},
        {"title": "unknown", "url": "https://e.org/u", "colour": "red"},
    ])
    assert [c.status for c in changes] == ["rejected"] * 4
    assert all(c.reason for c in changes)
    assert config.read_bytes() == before
    with pytest.raises(UsageError, match="http"):
        add_feed(config, {"url": "mailto:x@e.org"})


def test_a_change_that_would_make_the_config_invalid_writes_nothing(config: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NEWSMON_TEST_UNSET", raising=False)
    before = config.read_bytes()
    with pytest.raises(ConfigError, match="NEWSMON_TEST_UNSET"):
        add_feeds(config, [{"name": "${NEWSMON_TEST_UNSET}", "url": "https://e.org/f"}])
    assert config.read_bytes() == before
    assert [p.name for p in config.parent.iterdir()] == ["feeds.toml"]


def test_references_in_imported_titles_and_tags_are_defused(config: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NEWSMON_TEST_SECRET", "s3cret")
    changes = add_feeds(config, [
        {"title": "${NEWSMON_TEST_SECRET}", "url": "https://e.org/f", "tags": ["${file:/etc/hostname}"]},
        {"title": "x", "url": "https://e.org/${NEWSMON_TEST_SECRET}"},
    ])
    assert [c.status for c in changes] == ["added", "rejected"]
    feed = load_config(config).feeds[-1]
    assert feed.name == "$ {NEWSMON_TEST_SECRET}" and feed.tags == ("$ {file:/etc/hostname}",)


def test_an_invalid_config_is_not_edited(config: Path) -> None:
    config.write_text(SAMPLE.replace('default_interval = "15m"', 'default_intervall = "15m"'), encoding="utf-8")
    before = config.read_bytes()
    with pytest.raises(ConfigError, match="default_intervall"):
        add_feeds(config, [{"url": "https://e.org/f"}])
    with pytest.raises(ConfigError):
        remove_feed(config, "RFI")
    assert config.read_bytes() == before


def test_missing_config_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="newsmon init"):
        add_feeds(tmp_path / "nope.toml", [{"url": "https://e.org/f"}])


def test_dry_run_reports_but_writes_nothing(config: Path) -> None:
    before = config.read_bytes()
    changes = add_feeds(config, [{"url": "https://e.org/f"}], dry_run=True)
    assert changes[0].status == "added" and changes[0].name == "e.org/f"
    assert config.read_bytes() == before


def test_remove_keeps_other_comments_and_drops_the_feeds_own(config: Path) -> None:
    remove_feed(config, "RFI")
    text = config.read_text(encoding="utf-8")
    assert "RFI" not in text
    assert "# about RFI" not in text and "# a comment inside the RFI table" not in text
    assert "# --- channels banner" in text and "# about BBC Africa" in text
    assert _names(config) == ["Al Jazeera", "BBC Africa"]
    remove_feed(config, "Al Jazeera")
    text = config.read_text(encoding="utf-8")
    assert "# --- feeds banner" in text and "# about BBC Africa" in text
    assert text.index("# about BBC Africa") < text.index('name = "BBC Africa"')
    remove_feed(config, "BBC Africa")
    assert _names(config) == []
    text = config.read_text(encoding="utf-8")
    assert "# newsmon test config: keep this comment" in text and "# --- channels banner" in text
    assert [channel.name for channel in load_config(config).channels] == ["file"]


def test_unknown_name_suggests_a_close_one(config: Path) -> None:
    with pytest.raises(UsageError, match="did you mean 'BBC Africa'"):
        remove_feed(config, "bbc afrika")
    with pytest.raises(UsageError, match="no feed named 'zzz'"):
        set_feed_enabled(config, "zzz", False)


def test_enable_and_disable(config: Path) -> None:
    assert set_feed_enabled(config, "BBC Africa", False) is True
    assert load_config(config).feed("BBC Africa").enabled is False
    assert set_feed_enabled(config, "BBC Africa", False) is False
    assert set_feed_enabled(config, "BBC Africa", True) is True
    assert load_config(config).feed("BBC Africa").enabled is True
    assert set_feed_enabled(config, "RFI", True) is False
    assert _comment_lines(config.read_text(encoding="utf-8")) == _comment_lines(SAMPLE)


def test_config_without_feeds_gets_a_feeds_array(tmp_path: Path) -> None:
    path = tmp_path / "feeds.toml"
    path.write_text("# only settings\n[monitor]\nconcurrency = 2\n", encoding="utf-8")
    add_feeds(path, [{"title": "A", "url": "https://e.org/a"}, {"title": "B", "url": "https://e.org/b"}])
    assert _names(path) == ["A", "B"]
    assert path.read_text(encoding="utf-8") == (
        '# only settings\n[monitor]\nconcurrency = 2\n\n[[feeds]]\nname = "A"\nurl = "https://e.org/a"\n'
        '\n[[feeds]]\nname = "B"\nurl = "https://e.org/b"\n'
    )


def test_inline_feeds_array_is_extended_in_kind(tmp_path: Path) -> None:
    path = tmp_path / "feeds.toml"
    path.write_text('feeds = [{name = "A", url = "https://e.org/a"}]  # inline\n', encoding="utf-8")
    add_feeds(path, [{"title": "B", "url": "https://e.org/b"}])
    assert _names(path) == ["A", "B"]
    remove_feed(path, "A")
    assert _names(path) == ["B"]


def test_file_mode_is_kept_and_no_temporary_file_is_left(config: Path) -> None:
    os.chmod(config, 0o640)
    add_feeds(config, [{"url": "https://e.org/f"}])
    assert stat.S_IMODE(config.stat().st_mode) == 0o640
    assert [p.name for p in config.parent.iterdir()] == ["feeds.toml"]


def test_feed_names_from_titles_and_urls() -> None:
    assert feed_name("  Le   Monde\n", "https://x") == "Le Monde"
    assert feed_name("", "https://www.example.org/feed/") == "example.org/feed"
    assert feed_name("https://www.example.org/rss?x=1", "https://www.example.org/rss?x=1") == "example.org/rss?x=1"
    assert len(feed_name("x" * 300, "https://e.org")) == 100


def test_importing_an_opml_list_twice_adds_nothing_the_second_time(config: Path) -> None:
    path = CORPORA / "opml" / "awesome-rss-feeds" / "countries" / "with_category" / "France.opml"
    if not path.exists():
        pytest.skip("../shared/corpora/opml is not there")
    entries = read_opml(path.read_bytes(), source=path.name).entries
    feeds = [{"title": e.title, "url": e.xml_url, "tags": list(e.tags), "language": e.language} for e in entries]
    first = add_feeds(config, feeds)
    assert sum(c.status == "added" for c in first) == 11
    text = config.read_bytes()
    second = add_feeds(config, feeds)
    assert all(c.status == "skipped" for c in second)
    assert config.read_bytes() == text
    assert len(load_config(config).feeds) == 14


@pytest.mark.skipif(not STARTER.exists(), reason="no starter config in monitor/data")
def test_starter_config_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "feeds.toml"
    original = STARTER.read_text(encoding="utf-8")
    path.write_text(original, encoding="utf-8")
    first = load_config(path).feeds[0].name
    add_feeds(path, [{"title": "Example", "url": "https://e.org/rss"}])
    set_feed_enabled(path, "Example", False)
    remove_feed(path, first)
    remove_feed(path, "Example")
    text = path.read_text(encoding="utf-8")
    assert _comment_lines(text) == _comment_lines(original)
    assert len(load_config(path).feeds) == len(load_config(STARTER).feeds) - 1


def test_text_the_line_scan_cannot_follow_is_edited_with_tomlkit(tmp_path: Path) -> None:
    path = tmp_path / "feeds.toml"
    tricky = ("[[feeds]]  # first\nname = \"A\"\nurl = \"https://e.org/a\"\n\n"
              "[[feeds]]\nname = '''\n[[feeds]]'''\nurl = \"https://e.org/weird\"\n")
    path.write_text(tricky, encoding="utf-8")
    add_feeds(path, [{"title": "B", "url": "https://e.org/b"}])
    assert _names(path) == ["A", "[[feeds]]", "B"]
    set_feed_enabled(path, "[[feeds]]", False)
    remove_feed(path, "A")
    feeds = load_config(path).feeds
    assert [(f.name, f.enabled) for f in feeds] == [("[[feeds]]", False), ("B", True)]


def test_windows_line_endings_are_kept(config: Path) -> None:
    config.write_bytes(SAMPLE.replace("\n", "\r\n").encode("utf-8"))
    add_feeds(config, [{"title": "New", "url": "https://e.org/new"}])
    set_feed_enabled(config, "New", False)
    remove_feed(config, "RFI")
    data = config.read_bytes()
    assert b"\n" not in data.replace(b"\r\n", b"")
    assert _names(config) == ["Al Jazeera", "BBC Africa", "New"]
    assert load_config(config).feed("New").enabled is False


def test_big_config_edits_stay_consistent(tmp_path: Path) -> None:
    path = tmp_path / "feeds.toml"
    path.write_text("[monitor]\n", encoding="utf-8")
    feeds = [{"title": f"Feed {i}", "url": f"https://e{i % 7}.example/{i}/rss", "tags": [f"t{i % 3}"]}
             for i in range(600)]
    assert sum(c.status == "added" for c in add_feeds(path, feeds)) == 600
    remove_feed(path, "Feed 300")
    set_feed_enabled(path, "Feed 599", False)
    loaded = load_config(path)
    assert len(loaded.feeds) == 599 and loaded.feeds[-1].enabled is False
    assert "Feed 300" not in {f.name for f in loaded.feeds}
    assert all(c.status == "skipped" for c in add_feeds(path, feeds) if c.name != "Feed 300")


# --------------------------------------------------------------------------- property: a sequence of edits

import tempfile  # noqa: E402

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_operations = st.lists(
    st.one_of(
        st.tuples(st.just("add"), st.text(max_size=12), st.integers(0, 30),
                  st.lists(st.text(min_size=1, max_size=6), max_size=2)),
        st.tuples(st.just("remove"), st.integers(0, 50)),
        st.tuples(st.just("toggle"), st.integers(0, 50)),
    ),
    max_size=10,
)


@settings(max_examples=40, deadline=None)
@given(_operations)
def test_property_any_sequence_of_edits_keeps_a_valid_config_with_its_comments(operations: list[tuple]) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "feeds.toml"
        path.write_text(SAMPLE, encoding="utf-8")
        model = [(f.name, f.url, f.enabled) for f in load_config(path).feeds]
        for operation in operations:
            if operation[0] == "add":
                _, title, number, tags = operation
                url = f"https://site{number}.example/rss"
                change = add_feeds(path, [{"title": title, "url": url, "tags": tags}])[0]
                if change.status == "added":
                    assert url not in {u for _, u, _ in model}
                    model.append((change.name, url, True))
                else:
                    assert url in {u for _, u, _ in model}
            elif model:
                index = operation[1] % len(model)
                name, url, enabled = model[index]
                if operation[0] == "remove":
                    remove_feed(path, name)
                    del model[index]
                else:
                    set_feed_enabled(path, name, not enabled)
                    model[index] = (name, url, not enabled)
            assert [(f.name, f.url, f.enabled) for f in load_config(path).feeds] == model
        text = path.read_text(encoding="utf-8")
        for line in ("# newsmon test config: keep this comment", "# --- feeds banner", "# --- channels banner"):
            assert line in text
        assert "\n\n\n" not in text


def test_a_symlinked_config_stays_a_symlink(tmp_path: Path) -> None:
    real = tmp_path / "etc" / "feeds.toml"
    real.parent.mkdir()
    real.write_text(SAMPLE, encoding="utf-8")
    link = tmp_path / "feeds.toml"
    link.symlink_to(real)
    add_feeds(link, [{"title": "New", "url": "https://e.org/new"}])
    assert link.is_symlink()
    assert "New" in [feed.name for feed in load_config(real).feeds]


@pytest.mark.parametrize("newline", ["\n", "\r\n"])
def test_a_config_with_a_byte_order_mark_is_edited_and_keeps_it(config: Path, newline: str) -> None:
    bom = b"\xef\xbb\xbf"
    config.write_bytes(bom + SAMPLE.replace("\n", newline).encode("utf-8"))
    add_feeds(config, [{"title": "New", "url": "https://e.org/new"}])
    set_feed_enabled(config, "New", False)
    remove_feed(config, "RFI")
    add_feed(config, {"name": "Other", "url": "https://e.org/other"})
    data = config.read_bytes()
    assert data.startswith(bom) and data.count(bom) == 1
    assert _names(config) == ["Al Jazeera", "BBC Africa", "New", "Other"]
    assert load_config(config).feed("New").enabled is False
    assert newline == "\r\n" or b"\r" not in data


def test_a_byte_order_mark_survives_the_tomlkit_path(tmp_path: Path) -> None:
    path = tmp_path / "feeds.toml"
    tricky = ("[[feeds]]  # first\nname = \"A\"\nurl = \"https://e.org/a\"\n\n"
              "[[feeds]]\nname = '''\n[[feeds]]'''\nurl = \"https://e.org/weird\"\n")
    path.write_bytes(b"\xef\xbb\xbf" + tricky.encode("utf-8"))
    add_feeds(path, [{"title": "B", "url": "https://e.org/b"}])
    remove_feed(path, "A")
    data = path.read_bytes()
    assert data.startswith(b"\xef\xbb\xbf") and data.count(b"\xef\xbb\xbf") == 1
    assert _names(path) == ["[[feeds]]", "B"]


ADD_IN_A_LOOP = """
import sys
from monitor.configedit import add_feed
for number in range(int(sys.argv[3])):
    add_feed(sys.argv[1], {"url": f"https://e.org/{sys.argv[2]}{number}", "name": f"{sys.argv[2]} {number}"})
"""


def test_concurrent_adds_from_two_processes_all_land(config: Path) -> None:
    # Two shells running `newsmon feeds add` at once: each add must be kept (or refused), never reported as
    # added and then overwritten by the other process's write.
    env = {**os.environ, "PYTHONPATH": str(STARTER.parents[2])}
    processes = [subprocess.Popen([sys.executable, "-c", ADD_IN_A_LOOP, str(config), tag, "60"], env=env,
                                  stderr=subprocess.PIPE, text=True) for tag in ("left", "right")]
    errors = [process.communicate(timeout=300)[1] for process in processes]
    assert [process.returncode for process in processes] == [0, 0], errors
    names = _names(config)
    assert len(names) == 3 + 120
    assert {f"{tag} {number}" for tag in ("left", "right") for number in range(60)} <= set(names)
    assert _comment_lines(config.read_text(encoding="utf-8")) == _comment_lines(SAMPLE)
