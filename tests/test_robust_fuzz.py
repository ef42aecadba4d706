"""Bad input on every door (hypothesis): the config loader, OPML import, the query parser and search.

Each door may answer with a result or with its own clear error (ConfigError, OPMLError, QueryError),
never with another exception. ``hypothesis.event()`` labels what each example hit, so ``pytest
--hypothesis-show-statistics`` shows how much of each door was reached (valid results vs. which errors).
"""

from __future__ import annotations

import re
import string
from datetime import datetime, timezone
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
import tomlkit
from click.testing import CliRunner
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from monitor.cli import cli
from monitor.config import parse_config
from monitor.errors import ConfigError, OPMLError, QueryError
from monitor.models import Article
from monitor.opml import OpmlResult, read_opml
from monitor.pipeline import ingest_articles
from monitor.rules import parse_query
from monitor.search import search
from monitor.store import Store

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
STARTER = resources.files("monitor").joinpath("data/feeds.toml").read_text(encoding="utf-8")


def _label(message: str) -> str:
    """A short, stable label for an error message: its text without values (for event counts)."""
    reason = message.split(": ", 2)[-1] if message.count(": ") >= 1 else message
    return re.sub(r"['\"].*?['\"]|\d+", "_", reason)[:60]


# --------------------------------------------------------------------------- config

_DURATIONS = st.sampled_from(["90s", "10m", "2h", "7d", "0s", "1s", "-5m", "1.5h", "10", "m", "", "99999999999d",
                              "1e3s", "15 m", "1h30m", "nan", "inf"])
_SCALARS = st.one_of(
    st.text(max_size=30), _DURATIONS, st.integers(min_value=-(2**63), max_value=2**63 - 1), st.booleans(),
    st.floats(), st.datetimes(timezones=st.sampled_from([None, timezone.utc])), st.times(),
    st.sampled_from(["http://example.org/feed", "https://ex.org/rss", "ftp://x", "file:///etc/passwd",
                     "webhook:http://127.0.0.1:9/x", "jsonl:///tmp/x.jsonl", "log:", "mailto:x@y", "${HOME}",
                     "${NO_SUCH_VARIABLE_X}", "${file:/etc/hostname}", "${file:/nonexistent}", "${", "Europe/Paris",
                     "Mars/Olympus", "../../etc/passwd", "UTC", "08:00", "25:61", "instant", "digest", "10MB",
                     "-1MB", "1TB", "Mali AND", "(France OR", "NOT x", "\x00", "a" * 300]),
)
_VALUES = st.recursive(_SCALARS, lambda children: st.one_of(
    st.lists(children, max_size=4), st.dictionaries(st.text(max_size=8), children, max_size=3)), max_leaves=8)

MONITOR_KEYS = ["database", "default_interval", "user_agent", "connect_timeout", "read_timeout", "fetch_deadline",
                "max_body", "concurrency", "per_host", "backoff_max", "failing_after", "cache_max", "story_window",
                "alert_max_age", "alert_give_up", "default_channels", "retention", "shutdown_grace"]
FEED_KEYS = ["name", "url", "interval", "language", "tags", "enabled"]
RULE_KEYS = ["name", "query", "keywords", "exclude", "channels", "mode", "every", "at", "timezone",
             "notify_on_update"]
CHANNEL_KEYS = ["name", "url", "max_per_hour", "secret_header", "timeout"]


_PLAUSIBLE: dict[str, st.SearchStrategy[Any]] = {
    "name": st.one_of(st.text(min_size=1, max_size=12), st.sampled_from(["hook", "log", "Desk", "a b", "x" * 120])),
    "url": st.sampled_from(["https://example.org/rss", "http://127.0.0.1:1/feed", "webhook:https://h.example/x",
                            "jsonl:///tmp/alerts.jsonl", "log:", "ftp://x.org/", "not a url", "https://",
                            "mailtos://u:p@mail.example.org?to=a@b", "json://x", "${NO_SUCH_VARIABLE_X}"]),
    "query": st.one_of(st.text(max_size=30), st.sampled_from(["Mali", "Mali AND", "(France OR Mali)", "NOT x",
                                                               "a NEAR b", "title:Mali", "\"coup d'état\"", "*"])),
    "keywords": st.lists(st.text(max_size=10), max_size=3),
    "exclude": st.lists(st.text(max_size=10), max_size=3),
    "channels": st.lists(st.sampled_from(["hook", "log", "missing", ""]), max_size=3),
    "default_channels": st.lists(st.sampled_from(["hook", "log", "missing", ""]), max_size=3),
    "mode": st.sampled_from(["instant", "digest", "digest", "weekly", ""]),
    "every": _DURATIONS, "at": st.sampled_from(["08:00", "25:00", "8", "08:00:00", ""]),
    "timezone": st.sampled_from(["Africa/Bamako", "UTC", "Mars/Olympus", "../etc/passwd", "", "Etc/GMT+3",
                                 "\x00", "/etc/localtime"]),
    "tags": st.lists(st.text(max_size=8), max_size=3), "enabled": st.booleans(), "notify_on_update": st.booleans(),
    "language": st.sampled_from(["en", "fr", "", "xx-YY", "english"]),
    "max_per_hour": st.integers(min_value=-2, max_value=10**12), "concurrency": st.integers(-2, 10**6),
    "per_host": st.integers(-2, 10**6), "failing_after": st.integers(-2, 10**6),
    "max_body": st.sampled_from(["10MB", "1KB", "0", "-1MB", "10", "1e9GB", "lots"]),
    "database": st.sampled_from(["storage/x.db", "", "/", ":memory:"]),
}
for _key in ("default_interval", "interval", "connect_timeout", "read_timeout", "fetch_deadline", "backoff_max",
             "cache_max", "story_window", "alert_max_age", "alert_give_up", "retention", "shutdown_grace",
             "timeout"):
    _PLAUSIBLE[_key] = _DURATIONS


def _table(keys: list[str]) -> st.SearchStrategy[dict[str, Any]]:
    """Tables whose values are mostly plausible for their key (to get past the first check) and sometimes
    anything at all."""
    def build(chosen: list[str]) -> st.SearchStrategy[dict[str, Any]]:
        values = {key: st.one_of(_PLAUSIBLE[key], _PLAUSIBLE[key], _VALUES) if key in _PLAUSIBLE else _VALUES
                  for key in chosen}
        return st.fixed_dictionaries(values, optional={"bogus": _VALUES}) if len(chosen) % 5 == 4 else \
            st.fixed_dictionaries(values)

    required = [key for key in ("name", "url") if key in keys]
    return st.lists(st.sampled_from(keys), max_size=len(keys), unique=True).map(
        lambda chosen: list(dict.fromkeys(required + chosen))).flatmap(build)


def _mostly(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """``strategy`` nine times in ten, any scalar otherwise (a section written as a value)."""
    return st.integers(0, 9).flatmap(lambda roll: _SCALARS if roll == 0 else strategy)


_DOCUMENTS = st.fixed_dictionaries({}, optional={
    "monitor": _mostly(_table(MONITOR_KEYS)),
    "feeds": _mostly(st.lists(_table(FEED_KEYS), max_size=3)),
    "rules": _mostly(st.lists(_table(RULE_KEYS), max_size=3)),
    "channels": _mostly(st.lists(_table(CHANNEL_KEYS), max_size=3)),
})


def _load(text: str) -> None:
    try:
        config = parse_config(text, "fuzz.toml")
    except ConfigError as exc:
        assert str(exc).startswith("fuzz.toml"), str(exc)
        event(f"config error: {_label(exc.reason)}")
        return
    event(f"config ok: feeds={min(len(config.feeds), 2)} rules={min(len(config.rules), 2)}")


@FUZZ
@given(document=_DOCUMENTS)
def test_config_loader_structured(document: dict[str, Any]) -> None:
    try:
        text = tomlkit.dumps(document)
    except (TypeError, ValueError, tomlkit.exceptions.TOMLKitError):
        event("not expressible in TOML")
        return
    _load(text)


@FUZZ
@given(text=st.text(max_size=400))
def test_config_loader_any_text(text: str) -> None:
    _load(text)


_LINES = STARTER.splitlines()


@FUZZ
@given(edits=st.lists(st.tuples(st.sampled_from(["delete", "duplicate", "replace", "swap"]),
                                st.integers(min_value=0, max_value=len(_LINES) - 1),
                                st.one_of(st.sampled_from(_LINES), _SCALARS.map(str))), min_size=1, max_size=6))
def test_config_loader_mutated_starter(edits: list[tuple[str, int, str]]) -> None:
    """The starter config with lines deleted, duplicated, replaced or swapped (what a hurried edit does)."""
    lines = list(_LINES)
    for action, index, text in edits:
        index %= len(lines) if lines else 1
        if not lines:
            break
        if action == "delete":
            del lines[index]
        elif action == "duplicate":
            lines.insert(index, lines[index])
        elif action == "replace":
            lines[index] = text
        else:
            other = (index + 7) % len(lines)
            lines[index], lines[other] = lines[other], lines[index]
    _load("\n".join(lines))


def test_starter_config_itself_loads() -> None:
    assert parse_config(STARTER).feeds


# --------------------------------------------------------------------------- OPML

_OPML_ATTR = st.sampled_from(["text", "title", "xmlUrl", "htmlUrl", "type", "category", "language", "xmlurl",
                              "XMLURL", "url", "x"])
_ATTR_VALUE = st.one_of(st.text(max_size=20), st.sampled_from([
    "http://example.org/rss", "https://ex.org/a?b=1&amp;c=2", "feed://x.org/", "javascript:alert(1)", "",
    "file:///etc/passwd", "http://", "http://[::1", "rss", "/a/b,/c", "&bogus;", "&#0;", "&#x110000;"]))


@st.composite
def _outline(draw: st.DrawFn, depth: int = 0) -> str:
    attrs = draw(st.dictionaries(_OPML_ATTR, _ATTR_VALUE, max_size=4))
    rendered = " ".join(f'{name}="{value.replace(chr(34), "&quot;")}"' for name, value in attrs.items())
    children = draw(st.lists(_outline(depth + 1), max_size=2)) if depth < 3 else []
    closing = draw(st.sampled_from(["", "</outline>", "</outlin>"]))
    if children:
        return f"<outline {rendered}>{''.join(children)}</outline>"
    return f"<outline {rendered}/>" if not closing else f"<outline {rendered}>{closing}"


@st.composite
def _opml_documents(draw: st.DrawFn) -> bytes:
    head = draw(st.sampled_from(['<?xml version="1.0" encoding="UTF-8"?>', '<?xml version="1.0" encoding="latin-1"?>',
                                 "", '<?xml version="1.0" encoding="bogus"?>', "\ufeff",
                                 '<!DOCTYPE opml [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;">]>']))
    title = draw(st.text(max_size=20))
    outlines = "".join(draw(st.lists(_outline(), max_size=5)))
    tail = draw(st.sampled_from(["</body></opml>", "</body>", "", "</opml>"]))
    text = f'{head}<opml version="2.0"><head><title>{title}</title></head><body>{outlines}{tail}'
    data = text.encode("utf-8", "surrogatepass")
    cut = draw(st.one_of(st.none(), st.integers(min_value=0, max_value=len(data))))
    return data if cut is None else data[:cut]


def _read(data: bytes) -> None:
    try:
        result = read_opml(data, source="fuzz.opml")
    except OPMLError as exc:
        assert "fuzz.opml" in str(exc)
        event(f"opml error: {_label(str(exc))}")
        return
    assert isinstance(result, OpmlResult)
    for entry in result.entries:
        assert entry.xml_url.startswith(("http://", "https://")), entry.xml_url
    event(f"opml ok: lenient={result.lenient} entries={min(len(result.entries), 2)} "
          f"rejected={min(len(result.rejected), 2)}")


@FUZZ
@given(data=_opml_documents())
def test_opml_import_structured(data: bytes) -> None:
    _read(data)


@FUZZ
@given(data=st.binary(max_size=300))
def test_opml_import_any_bytes(data: bytes) -> None:
    _read(data)


def test_opml_real_lists_never_raise_other_errors(corpora: Path) -> None:
    files = sorted((corpora / "opml").rglob("*.opml"))
    assert files
    for path in files:
        data = path.read_bytes()
        for cut in (len(data), len(data) // 2, len(data) // 3):
            try:
                read_opml(data[:cut], source=path.name)
            except OPMLError:
                pass


# --------------------------------------------------------------------------- queries and search

_QUERY_PIECES = st.sampled_from([
    "Mali", "mali", "Bamako", "élection", "\"", "(", ")", " AND ", " OR ", " NOT ", "NOT ", " NEAR ", "NEAR(",
    "NEAR/3", ",", "*", "-", "+", ":", "title:", "summary:", "content:", "feed:", "lang:", "tag:", "domain:",
    "bogus:", "\"coup d'état\"", "~", "^", "{", "}", "[", "]", "'", "\\", "œuvre", "ﬁnance", "co\u00adop", "\x00",
    "\u200b", " ", "  ", "OR", "AND", "2026", "x" * 50, "日本", "🙂", "\t", "\n", ";", "--", "/*", "near", "MATCH",
])
_QUERIES = st.one_of(st.lists(_QUERY_PIECES, max_size=12).map("".join), st.text(max_size=60))


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    db = tmp_path_factory.mktemp("fuzz") / "archive.db"
    now = datetime(2026, 2, 17, 12, 0, tzinfo=timezone.utc)
    titles = ["Mali: elections in Bamako", "France and Mali sign an accord", "Coup d'état au Niger",
              "Œuvre de la finance à Dakar", "日本のニュース"]
    articles = [Article(key=f"url:http://x.org/{n}", url=f"http://x.org/{n}", guid=None, title=title,
                        summary=f"{title} summary", content="", published=now, published_source="feed",
                        undated=False, first_seen=now, language="fr" if n % 2 else "en", authors=[],
                        categories=[], domain="x.org", fingerprint=f"f{n}")
                for n, title in enumerate(titles)]
    with Store.open(db) as store:
        ingest_articles(store, "Desk", articles, now=now)
    return db


@FUZZ
@given(text=_QUERIES)
def test_query_parser_and_search(text: str, archive: Path) -> None:
    """Only QueryError from the parser; a query it accepts runs against a real FTS5 archive without error."""
    try:
        query = parse_query(text)
    except QueryError as exc:
        assert 0 <= exc.position <= len(text), (exc.position, text)
        event(f"query error: {_label(exc.reason)}")
        return
    event("query ok")
    with Store.open(archive, readonly=True) as store, store.reading() as conn:
        hits = search(conn, query, limit=5)
    event(f"search hits={min(len(hits), 2)}")


@settings(max_examples=40, deadline=None)
@given(text=_QUERIES)
def test_cli_search_exits_2_without_traceback(text: str, archive: Path) -> None:
    """`newsmon search` with any query: a bad query is exit 2 with a message, never a traceback."""
    result = CliRunner().invoke(cli, ["--db", str(archive), "search", "--", text])
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output
    assert result.exit_code in (0, 2), (result.exit_code, result.output)
    event(f"search: exit {result.exit_code}")


_ALPHABET = string.ascii_letters + string.digits + " \"()*:-"


@FUZZ
@given(text=st.text(alphabet=_ALPHABET, max_size=40))
def test_query_parser_on_query_like_text(text: str) -> None:
    try:
        parse_query(text)
    except QueryError as exc:
        event(f"query error: {_label(exc.reason)}")
        return
    event("query ok")


BAD_QUERIES = ["Mali AND", "(France OR Mali", '"never closed', "bogus:Mali", "NEAR(a", "", "*", "a OR OR b"]


def test_search_command_rejects_bad_queries_with_exit_2(archive: Path, tmp_path: Path) -> None:
    """`newsmon search` end to end, in a real subprocess (the command as a user runs it)."""
    import subprocess

    from tests.test_robust_support import child_env, newsmon_argv

    for query in BAD_QUERIES:
        done = subprocess.run(newsmon_argv("--db", str(archive), "search", "--", query), cwd=tmp_path,
                              env=child_env(), capture_output=True, text=True, timeout=120)
        assert "Traceback" not in done.stderr, (query, done.stderr)
        if "No such command" in done.stderr:
            assert done.returncode == 2            # `search` not attached to this build: still a clean exit 2
            continue
        assert done.returncode == 2, (query, done.returncode, done.stdout, done.stderr)
        assert done.stderr.startswith("error: ") or "Error" in done.stderr, (query, done.stderr)
    good = subprocess.run(newsmon_argv("--db", str(archive), "search", "Mali", "--format", "json"), cwd=tmp_path,
                          env=child_env(), capture_output=True, text=True, timeout=120)
    assert "Traceback" not in good.stderr and good.returncode in (0, 2), good.stderr
