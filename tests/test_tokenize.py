"""``tokenize()`` agrees with SQLite FTS5 ``unicode61 remove_diacritics 2``, established
against the running SQLite: every BMP code point, the characters news text is full of, and
every title and summary of the real feeds."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import feedparser
import pytest

from monitor.tokenize import fold_token, probe_unicode61, tokenize, tokenize_with_offsets

CORPORA = Path(__file__).resolve().parents[1].parent / "shared" / "corpora"


@pytest.fixture(scope="module")
def fts(tmp_path_factory: pytest.TempPathFactory) -> sqlite3.Connection:
    conn = sqlite3.connect(tmp_path_factory.mktemp("tokenize") / "fts.db", isolation_level=None)
    conn.execute("CREATE VIRTUAL TABLE docs USING fts5(body, tokenize='unicode61 remove_diacritics 2')")
    conn.execute("CREATE VIRTUAL TABLE docs_v USING fts5vocab(docs, 'instance')")
    yield conn
    conn.close()


def fts_tokens(conn: sqlite3.Connection, texts: list[str]) -> list[list[str]]:
    """What FTS5 indexes for each text, in order (through fts5vocab)."""
    with conn:  # one transaction, not one fsync per row
        conn.execute("BEGIN")
        conn.execute("DELETE FROM docs")
        conn.executemany("INSERT INTO docs (rowid, body) VALUES (?, ?)", enumerate(texts, start=1))
    result: list[list[str]] = [[] for _ in texts]
    for doc, term in conn.execute("SELECT doc, term FROM docs_v ORDER BY doc, offset"):
        result[doc - 1].append(term)
    return result


def ours(code: int) -> str | None:
    """Our tokenizer's verdict on one code point, in the shape of probe_unicode61()."""
    tokens = tokenize("x" + chr(code) + "y")
    if tokens == ["x", "y"]:
        return None
    assert len(tokens) == 1 and tokens[0].startswith("x") and tokens[0].endswith("y"), (hex(code), tokens)
    return tokens[0][1:-1]


def test_every_bmp_code_point_agrees_with_sqlite() -> None:
    conn = sqlite3.connect(":memory:")
    probed = probe_unicode61(conn, range(1, 0x10000))
    assert len(probed) == 0xFFFF - 0x800  # every code point but the surrogates answered
    disagreements = {hex(code): (sqlite, ours(code)) for code, sqlite in probed.items() if ours(code) != sqlite}
    assert disagreements == {}


def test_sampled_astral_code_points_agree_with_sqlite() -> None:
    conn = sqlite3.connect(":memory:")
    sample = list(range(0x10000, 0x10500)) + list(range(0x1F300, 0x1F320)) + list(range(0x20000, 0x20010)) \
        + [0xE0001, 0xE0020, 0xE007F, 0xF0000, 0x10FFFD]
    probed = probe_unicode61(conn, sample)
    assert {hex(c): v for c, v in probed.items() if ours(c) != v} == {}


# What unicode61 remove_diacritics 2 does with the characters of French and English news,
# as found by asking SQLite (the fts fixture re-asks it in every run).
CASES = [
    ("l’armée malienne", ["l", "armee", "malienne"]),          # typographic apostrophe: separator
    ("l'armée", ["l", "armee"]),                                # ASCII apostrophe: separator
    ("« Goïta » a dit", ["goita", "a", "dit"]),                 # guillemets: separators; ï → i
    ("Niger–Benue — Mali-Niger", ["niger", "benue", "mali", "niger"]),  # en/em dash, hyphen
    ("cœur Œuvre æther Æ", ["cœur", "œuvre", "æther", "æ"]),    # œ/æ are not expanded, only lower-cased
    ("ﬁnance ﬂeur", ["ﬁnance", "ﬂeur"]),                        # ligatures stay ligatures
    ("Ma\u00adli", ["ma", "li"]),                               # soft hyphen splits a word
    ("G5 Sahel 2026 3e 1er", ["g5", "sahel", "2026", "3e", "1er"]),  # digits and mixed alnum
    ("12,5 % 3.14", ["12", "5", "3", "14"]),                    # decimal separators split numbers
    ("Goi\u0308ta e\u0301te\u0301", ["goita", "ete"]),          # combining marks fold away
    ("x\u0305y", ["x", "y"]),                                   # ... but not all: U+0305 separates
    ("北京欢迎你 東京", ["北京欢迎你", "東京"]),                  # a CJK run is one token
    ("Straße ẞ ø Ł İ", ["straße", "ß", "ø", "ł", "i"]),         # no expansion; ø/ł have no diacritic to strip
    ("ÉTÉ À Ça", ["ete", "a", "ca"]),
    ("under_score a.b a/b #tag @user", ["under", "score", "a", "b", "a", "b", "tag", "user"]),
    ("½ ² ª º", ["½", "²", "ª", "º"]),                          # other numbers and ordinals are tokens
    ("zero\u200bwidth zw\u200dj", ["zero", "width", "zw", "j"]),
    ("ＦＵＬＬ", ["ｆｕｌｌ"]),                                   # full-width letters: lower-cased, not narrowed
    ("", []),
    ("\u0301", []),
]


@pytest.mark.parametrize("text, expected", CASES, ids=[repr(t)[:24] for t, _ in CASES])
def test_news_characters(fts: sqlite3.Connection, text: str, expected: list[str]) -> None:
    assert fts_tokens(fts, [text]) == [expected]
    assert tokenize(text) == expected


def test_offsets_point_at_the_original_spelling() -> None:
    text = "Le colonel Goïta, à Bamako : « l’armée » — Niger-Benue\u00adx e\u0301te\u0301"
    spans = tokenize_with_offsets(text)
    assert [token for token, _, _ in spans] == tokenize(text)
    assert [text[start:end] for _, start, end in spans][2:6] == ["Goïta", "à", "Bamako", "l"]
    for token, start, end in spans:
        assert tokenize(text[start:end]) == [token]


def test_fold_token_joins_parts() -> None:
    assert fold_token("Coopération") == "cooperation"
    assert fold_token("l’Armée") == "l armee"


def _real_feed_texts() -> list[str]:
    folder = CORPORA / "real-feeds"
    if not folder.is_dir():
        pytest.skip("../shared/corpora is not present beside the repository")
    texts = []
    for path in sorted(folder.iterdir()):
        if path.suffix not in (".xml", ".rss", ".atom"):
            continue
        parsed = feedparser.parse(path.read_bytes())
        for entry in parsed.entries:
            texts.extend(value for value in (entry.get("title"), entry.get("summary")) if value)
    return texts


def test_real_feed_text_tokenizes_as_fts5_does(fts: sqlite3.Connection) -> None:
    texts = _real_feed_texts()
    assert len(texts) > 1000
    expected = fts_tokens(fts, texts)
    mismatches = [(text[:80], want) for text, want in zip(texts, expected) if tokenize(text) != want]
    assert mismatches == []
