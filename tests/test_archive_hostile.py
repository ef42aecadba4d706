"""The archive side under hostile conditions: a damaged archive, odd dates, malformed import lines,
non-UTF-8 terminals, backups aimed at the archive's own files. Every case ends in a clear one-line
error and its exit status (or correct output), never a traceback, and never half an import."""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from tests.feedserver import FeedServer, RequestRecord, feed_server  # noqa: F401  (feed_server: a fixture)
from tests.test_cli_usage import archive, assert_clean_error, invoke  # noqa: F401  (archive: a fixture)
from tests.test_pipeline import write_config


# --------------------------------------------------------------------------- a damaged archive


def damage_schema(db: Path) -> None:
    """Make the archive's schema unreadable (as a bad sector or a half-copied file does)."""
    conn = sqlite3.connect(db, isolation_level=None)
    try:
        conn.execute("PRAGMA writable_schema = ON")
        conn.execute("UPDATE sqlite_master SET sql = 'CREATE TABLE stories (' WHERE name = 'stories'")
    finally:
        conn.close()


@pytest.mark.parametrize("args", [["stories", "--all"], ["story", "1"], ["feeds", "list"], ["search", "Mali"],
                                  ["status"], ["export"], ["alerts"], ["backup", "copy.db"]])
def test_reading_a_damaged_archive_is_a_clean_error(archive: list[str], tmp_path: Path, args: list[str],
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    damage_schema(Path(archive[3]))
    result = invoke([*archive, *args])
    assert_clean_error(result, 1, "error: archive", "is damaged or not a newsmon database")
    assert not (tmp_path / "copy.db").exists()


@pytest.mark.parametrize("args", [["search", "Mali"], ["stories", "--all"], ["status"], ["export"], ["poll"]])
def test_an_archive_path_that_is_a_directory_is_named_as_such(tmp_path: Path, args: list[str]) -> None:
    """NEWSMON_DB (or `[monitor] database`) naming a folder: click only checks --db itself, and SQLite's
    own answer ("disk I/O error: disk I/O error") tells nothing."""
    folder = tmp_path / "archive"
    folder.mkdir()
    config = tmp_path / "feeds.toml"
    config.write_text('[monitor]\ndatabase = "unused.db"\n', encoding="utf-8")
    env = {key: value for key, value in os.environ.items() if not key.startswith("NEWSMON_")}
    env.update(PYTHONPATH=str(Path(__file__).resolve().parents[1]), NEWSMON_DB=str(folder))
    done = subprocess.run([sys.executable, "-m", "monitor", "--config", str(config), *args], capture_output=True,
                          text=True, env=env, cwd=tmp_path, timeout=60)
    assert done.returncode == 1, done.stderr
    assert done.stderr.strip() == (f"error: archive {folder} is a directory, not an SQLite file: name the "
                                   f"archive's file (such as {folder / 'newsmon.db'})")
    assert list(folder.iterdir()) == [] and not (tmp_path / "unused.db").exists()

def damage_index(db: Path, index: str) -> None:
    """Overwrite the first page of an index (as a bad sector does): its table still reads, a write to it fails."""
    conn = sqlite3.connect(db, isolation_level=None)
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        page_size = conn.execute("PRAGMA page_size").fetchone()[0]
        root = conn.execute("SELECT rootpage FROM sqlite_master WHERE name = ?", (index,)).fetchone()[0]
    finally:
        conn.close()
    with db.open("r+b") as out:
        out.seek((root - 1) * page_size)
        out.write(b"\xff" * 64)


def test_writing_to_a_damaged_archive_is_a_clean_error(tmp_path: Path, feed_server: FeedServer) -> None:
    feed_server.add("/a.xml", '<?xml version="1.0"?><rss version="2.0"><channel><title>T</title>'
                              "<item><title>Bamako</title><link>http://news.example.org/1</link></item></channel></rss>")
    config = tmp_path / "feeds.toml"
    config.write_text(f'[[feeds]]\nname = "a"\nurl = "{feed_server.url("/a.xml")}"\n')
    base = ["--config", str(config), "--db", str(tmp_path / "newsmon.db")]
    assert invoke([*base, "init"]).exit_code == 0
    damage_index(tmp_path / "newsmon.db", "feeds_next_check")
    result = invoke([*base, "poll"])
    assert_clean_error(result, 1, "error: archive", "is damaged or not a newsmon database")


# --------------------------------------------------------------------------- dates at the ends of the calendar

EDGE_DATES = ["0001-01-01T00:00:00+05:00", "9999-12-31T23:59:59-05:00"]


@pytest.mark.parametrize("value", EDGE_DATES)
@pytest.mark.parametrize("args", [["search", "Mali", "--since"], ["search", "Mali", "--until"],
                                  ["stories", "--since"], ["export", "--since"], ["rules", "test", "Mali", "--since"]])
def test_a_date_beyond_the_calendar_in_utc_is_a_usage_error(archive: list[str], args: list[str], value: str) -> None:
    result = invoke([*archive, *args, value])
    assert_clean_error(result, 2, "error: --since" if "--since" in args else "error: --until", "out of range")


def exported_line(**fields: object) -> str:
    import json

    record = {"key": "guid:edge", "url": "https://example.org/a", "title": "Bamako", "published": "2026-02-17T08:00:00Z",
              "feeds": [{"name": "Example", "url": "https://example.org/feed"}]}
    record.update(fields)
    return json.dumps(record)


@pytest.mark.parametrize("value", EDGE_DATES)
@pytest.mark.parametrize("field", ["published", "first_seen", "updated_at"])
def test_an_imported_date_beyond_the_calendar_names_its_line(archive: list[str], tmp_path: Path, field: str,
                                                             value: str) -> None:
    dump = tmp_path / "edge.jsonl"
    dump.write_text(exported_line(key="guid:ok") + "\n" + exported_line(**{field: value}) + "\n", encoding="utf-8")
    result = invoke([*archive, "import", str(dump)])
    assert_clean_error(result, 2, "line 2: not an exported article", field, "out of range")


def test_dates_before_year_1000_compare_as_dates(archive: list[str], tmp_path: Path) -> None:
    """Stored times are fixed-width strings compared as text: year 500 must be written 0500."""
    dump = tmp_path / "one.jsonl"
    dump.write_text(exported_line() + "\n" + exported_line(key="guid:old", url="https://example.org/old",
                                                            published="0999-06-01T00:00:00Z") + "\n", encoding="utf-8")
    assert invoke([*archive, "import", str(dump)]).exit_code == 0
    since = invoke([*archive, "search", "Bamako", "--since", "0500-01-01", "--format", "csv"])
    assert since.exit_code == 0 and len(since.output.splitlines()) == 3, since.output
    until = invoke([*archive, "search", "Bamako", "--until", "0500-01-01"])
    assert until.exit_code == 0 and until.output.strip() == "no results", until.output
    exported = invoke([*archive, "export"])
    assert '"published":"0999-06-01T00:00:00Z"' in exported.output


# --------------------------------------------------------------------------- import: lines JSON refuses oddly

@pytest.mark.parametrize("bad_line, message", [
    ('{"key": 1' + "0" * 5000 + "}", "line 2: not valid JSON"),              # int() refuses 4300+ digits
    ("[" * 100_000 + "]" * 100_000, "line 2: not valid JSON"),              # nesting beyond the recursion limit
])
def test_an_import_line_json_cannot_hold_names_its_line(archive: list[str], tmp_path: Path, bad_line: str,
                                                        message: str) -> None:
    dump = tmp_path / "bad.jsonl"
    dump.write_text(exported_line() + "\n" + bad_line + "\n", encoding="utf-8")
    result = invoke([*archive, "import", str(dump)])
    assert_clean_error(result, 2, message)
    assert "no results" in invoke([*archive, "search", "Bamako"]).output


@pytest.mark.parametrize("field, escaped", [
    ("title", '"title": "Bamako \\ud800"'),
    ("key", '"key": "guid:\\udc80"'),
    ("authors", '"authors": ["\\ud83d"]'),
    ("feeds[0]", '"feeds": [{"name": "RFI \\udfff"}]'),
])
def test_an_import_line_with_a_lone_surrogate_names_its_line_and_stores_nothing(
    archive: list[str], tmp_path: Path, field: str, escaped: str
) -> None:
    """JSON may escape half a UTF-16 pair (\\ud800); SQLite cannot store it. The line is refused up front,
    also when earlier batches would already have been committed (--batch 1)."""
    line = exported_line(key="guid:bad", url="https://example.org/b")
    bad = line[:-1] + ", " + escaped + "}"
    dump = tmp_path / "bad.jsonl"
    dump.write_text(exported_line() + "\n" + bad + "\n", encoding="utf-8")
    result = invoke([*archive, "import", str(dump), "--batch", "1"])
    assert_clean_error(result, 2, "line 2: not an exported article", field)
    assert "no results" in invoke([*archive, "search", "Bamako"]).output


# --------------------------------------------------------------------------- terminals that are not UTF-8

FRENCH_TITLE = "Mali : l’armée « reprend » Kidal – 5 € – ✓"


def run_newsmon(archive: list[str], *args: str, encoding: str) -> subprocess.CompletedProcess[bytes]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("NEWSMON_")}
    env.update(PYTHONPATH=str(Path(__file__).resolve().parents[1]), PYTHONIOENCODING=encoding)
    return subprocess.run([sys.executable, "-m", "monitor", *archive, *args], capture_output=True, env=env,
                          timeout=60)


@pytest.fixture
def french_archive(archive: list[str], tmp_path: Path) -> list[str]:
    dump = tmp_path / "fr.jsonl"
    dump.write_text(exported_line(title=FRENCH_TITLE, language="fr") + "\n", encoding="utf-8")
    assert invoke([*archive, "import", str(dump)]).exit_code == 0
    return archive


@pytest.mark.parametrize("encoding", ["ascii", "latin-1"])
@pytest.mark.parametrize("args", [["search", "Kidal"], ["search", "Kidal", "--format", "csv"], ["story", "1"],
                                  ["stories", "--all"], ["search", "Kidal", "--group-stories"]])
def test_french_text_on_a_terminal_that_is_not_utf8(french_archive: list[str], encoding: str,
                                                    args: list[str]) -> None:
    done = run_newsmon(french_archive, *args, encoding=encoding)
    assert done.returncode == 0, done.stderr.decode("utf-8", "replace")
    assert b"Traceback" not in done.stderr
    assert "Kidal" in done.stdout.decode(encoding, "replace")  # click writes UTF-8 where it is told ascii


@pytest.mark.parametrize("encoding", ["ascii", "latin-1"])
@pytest.mark.parametrize("args", [["export"], ["search", "Kidal", "--format", "json"],
                                  ["search", "Kidal", "--format", "jsonl"], ["story", "1", "--format", "json"],
                                  ["stories", "--all", "--format", "json"]])
def test_json_on_a_terminal_that_is_not_utf8_is_lossless(french_archive: list[str], encoding: str,
                                                         args: list[str]) -> None:
    """JSON needs no terminal encoding: it is written with \\u escapes, so the text survives exactly."""
    done = run_newsmon(french_archive, *args, encoding=encoding)
    assert done.returncode == 0, done.stderr.decode("utf-8", "replace")
    assert b"Traceback" not in done.stderr
    text = done.stdout.decode("ascii")
    assert FRENCH_TITLE in text.encode("ascii").decode("unicode_escape")


# --------------------------------------------------------------------------- backup onto the archive's own files


@pytest.mark.parametrize("suffix", ["", "-wal", "-shm", "-journal"])
def test_backup_never_replaces_a_file_of_the_archive(archive: list[str], suffix: str) -> None:
    """The -wal file holds committed transactions not yet copied into the archive: a backup written over it
    (with --force) would lose them."""
    db = Path(archive[3])
    writer = sqlite3.connect(db, isolation_level=None)
    try:
        writer.execute("PRAGMA wal_autocheckpoint = 0")
        writer.execute("INSERT INTO meta(key, value) VALUES ('only-in-the-wal', 'x')")
        target = Path(str(db) + suffix)
        before = target.stat().st_ino if target.exists() else None
        result = invoke([*archive, "backup", str(target), "--force"])
        assert_clean_error(result, 2, "is a file of the archive itself")
        assert (target.stat().st_ino if target.exists() else None) == before, "the file was not replaced"
    finally:
        writer.close()
    check = sqlite3.connect(db)
    try:
        assert check.execute("SELECT value FROM meta WHERE key = 'only-in-the-wal'").fetchone() == ("x",)
    finally:
        check.close()


# --------------------------------------------------------------------------- terminal control sequences

# ESC sequences that clear the screen, recolour, retitle the window (OSC 0, ended by BEL) and write the
# clipboard (OSC 52); a C1 CSI; a line break that would split a table row.
HOSTILE_TEXT = ("\x1b[2J\x1b[31mred\x1b]0;retitled\x07 \x1b]52;c;cm0gLXJmIH4=\x07 \x9b1m\nnext\tline"
                " \u202egnirts\u202c \u2067isolated\u2069")


def assert_no_terminal_controls(output: str) -> None:
    assert not any(char in output for char in "\x1b\x07\x9b\x08\r\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"), \
        repr(output)


def _strings(value: object) -> list[str]:
    """Every string in a JSON document."""
    if isinstance(value, str):
        return [value]
    items = value.values() if isinstance(value, dict) else value if isinstance(value, list) else []
    return [text for item in items for text in _strings(item)]


@pytest.mark.parametrize("args", [["search", "Bamako"], ["search", "Bamako", "--group-stories"],
                                  ["rules", "test", "Bamako"], ["stories", "--all"], ["story", "1"]])
def test_imported_text_cannot_drive_the_terminal(archive: list[str], tmp_path: Path, args: list[str]) -> None:
    """An export file is text anyone can write: its titles, feed names and URLs reach the table output
    without the control characters that a terminal would act on, and one row stays one line."""
    dump = tmp_path / "hostile.jsonl"
    dump.write_text(exported_line(title="Bamako " + HOSTILE_TEXT, summary="Bamako " + HOSTILE_TEXT,
                                  url="https://example.org/a" + HOSTILE_TEXT,
                                  feeds=[{"name": "Example" + HOSTILE_TEXT, "url": "https://example.org/feed"}])
                    + "\n", encoding="utf-8")
    assert invoke([*archive, "import", str(dump)]).exit_code == 0
    done = run_newsmon(archive, *args, encoding="utf-8")
    assert done.returncode == 0, done.stderr
    output = done.stdout.decode("utf-8")
    assert_no_terminal_controls(output)
    assert "red]0;retitled" in output and "next line" in output
    json_args = [*args, "--format", "json"]
    exact = json.loads(run_newsmon(archive, *json_args, encoding="utf-8").stdout)
    # JSON gives the title as stored: as a poll stores it, without the control characters (bidi ones are kept)
    assert "Bamako [2J[31mred]0;retitled ]52;c;cm0gLXJmIH4= 1m next line \u202egnirts\u202c \u2067isolated\u2069" \
        in _strings(exact)


def test_a_feed_servers_error_text_cannot_drive_the_terminal(tmp_path: Path, feed_server: FeedServer) -> None:
    """The reason phrase of an HTTP error is the server's own text: it is stored as the feed's last error
    and shown by `poll`, its log line, `feeds list` and `status`."""
    def busy(sock: socket.socket, record: RequestRecord) -> None:
        sock.sendall(b"HTTP/1.1 503 Busy \x1b]0;retitled\x07\x1b[2J now\r\nContent-Length: 0\r\n"
                     b"Connection: close\r\n\r\n")

    feed_server.add("/feed.xml", raw=busy)
    archive = ["--config", str(write_config(tmp_path / "feeds.toml", [("Busy", feed_server.url("/feed.xml"))])),
               "--db", str(tmp_path / "archive.db")]
    poll = run_newsmon(archive, "poll", encoding="utf-8")
    assert poll.returncode == 0
    for args in (["feeds", "list"], ["status"]):
        done = run_newsmon(archive, *args, encoding="utf-8")
        assert done.returncode == 0 and b"HTTP 503 Busy ]0;retitled[2J now" in done.stdout, done.stdout
        assert_no_terminal_controls(done.stdout.decode("utf-8"))
    assert b"HTTP 503 Busy ]0;retitled[2J now" in poll.stdout and b"HTTP 503 Busy ]0;retitled[2J now" in poll.stderr
    assert_no_terminal_controls((poll.stdout + poll.stderr).decode("utf-8"))


# --------------------------------------------------------------------------- colour on a terminal


def run_on_a_terminal(archive: list[str], *args: str, env: dict[str, str]) -> bytes:
    """``newsmon ARGS`` with its stdout on a pseudo-terminal; what it wrote there."""
    import pty

    controller, terminal = pty.openpty()
    child_env = {key: value for key, value in os.environ.items() if key not in ("NEWSMON_DB", "NEWSMON_CONFIG",
                                                                                "NO_COLOR", "TERM")}
    child_env.update({"PYTHONPATH": str(Path(__file__).resolve().parents[1]), "TERM": "xterm", **env})
    with subprocess.Popen([sys.executable, "-m", "monitor", *archive, *args], stdout=terminal,
                          stderr=subprocess.PIPE, env=child_env) as proc:
        os.close(terminal)
        output = b""
        while True:
            try:
                chunk = os.read(controller, 65536)
            except OSError:          # EIO: the child closed the terminal
                break
            if not chunk:
                break
            output += chunk
        assert proc.wait(timeout=60) == 0, proc.stderr.read() if proc.stderr else b""
    os.close(controller)
    return output


@pytest.mark.parametrize("args", [["search", "Bamako"], ["rules", "test", "Bamako"]])
@pytest.mark.parametrize("env, coloured", [({}, True), ({"NO_COLOR": "1"}, False), ({"TERM": "dumb"}, False),
                                           ({"NO_COLOR": ""}, True)])
def test_highlight_colour_on_a_terminal_honours_no_color_and_dumb_terminals(
    archive: list[str], tmp_path: Path, args: list[str], env: dict[str, str], coloured: bool
) -> None:
    dump = tmp_path / "one.jsonl"
    dump.write_text(exported_line(title="Bamako talks") + "\n", encoding="utf-8")
    assert invoke([*archive, "import", str(dump)]).exit_code == 0
    output = run_on_a_terminal(archive, *args, env=env)
    if coloured:
        assert b"\x1b[1;33mBamako\x1b[0m talks" in output
    else:
        assert b"[Bamako] talks" in output and b"\x1b" not in output


@pytest.mark.parametrize("args", [["search", "Mali", "--since"], ["search", "Mali", "--until"],
                                  ["stories", "--since"], ["export", "--since"], ["rules", "test", "Mali", "--since"]])
def test_a_duration_too_long_is_called_too_long(archive: list[str], args: list[str]) -> None:
    """`--since 40000d` is a duration: the message says what is wrong with it, not that it is no duration."""
    done = run_newsmon(archive, *args, "40000d", encoding="utf-8")
    assert done.returncode == 2 and done.stdout == b""
    assert done.stderr.decode().strip() == f"error: {args[-1]}: '40000d' is too long: at most 36525d (100 years)"
