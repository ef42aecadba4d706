"""The query language: lexer, parser and the syntax tree every consumer shares.

Grammar (operators are upper case only; ``or``/``et`` are ordinary words)::

    query    := or_expr
    or_expr  := and_expr ( "OR" and_expr )*
    and_expr := unary ( ["AND"] unary )*          adjacent terms are ANDed
    unary    := ( "NOT" | "-" ) unary | primary    "-" negates only at the start of a word
    primary  := "(" or_expr ")"
              | FIELD ":" primary                  title: summary: content: text:
              | META ":" value                     feed: lang: tag: domain: (word or "quoted")
              | word | word* | "a phrase" | "a phrase"*
              | "NEAR(" item item ... "," N ")"

A word is cut into tokens by :mod:`monitor.tokenize`; a word that holds several tokens
(``Niger-Benue``, ``l’armée``) is a phrase. A word with no token at all (a lone ``—``) is
ignored, like punctuation. Scopes on a group apply to every term inside it; an inner scope
wins over an outer one.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from typing import Callable, Union

from monitor.errors import QueryError
from monitor.tokenize import tokenize

Tokenizer = Callable[[str], list[str]]

TEXT_FIELDS = ("title", "summary", "content")
SCOPE_FIELDS = TEXT_FIELDS + ("text",)
META_FIELDS = ("feed", "lang", "tag", "domain")
ALL_FIELDS = SCOPE_FIELDS + META_FIELDS
OPERATORS = ("AND", "OR", "NOT")
MAX_DEPTH = 24            # levels of nesting (groups, NOT, scopes; AND/OR/NOT in the tree): SQLite's
                          # parsers overflow at 29 levels (SQL around feed:/lang:) to 34 (FTS5 alone)
MAX_WORDS = 5_000         # words and field values in one query: a rule of thousands of feed:/lang:
                          # conditions takes SQLite seconds to prepare, and stays under its 32766 parameters
MAX_NEAR = 100_000        # FTS5 reads NEAR distances as 32-bit numbers


# --------------------------------------------------------------------------- syntax tree


@dataclass(frozen=True)
class Term:
    """A word, a prefix (``malien*``) or a phrase; ``fields`` None means all text fields."""

    words: tuple[str, ...]
    prefix: bool = False
    fields: tuple[str, ...] | None = None

    @property
    def display(self) -> str:
        body = self.words[0] if len(self.words) == 1 else '"' + " ".join(self.words) + '"'
        return body + ("*" if self.prefix else "")


@dataclass(frozen=True)
class Near:
    """``NEAR(a "b c", N)``: every item within N tokens of the others, in one field."""

    items: tuple[Term, ...]
    distance: int
    fields: tuple[str, ...] | None = None

    @property
    def display(self) -> str:
        return "NEAR(" + " ".join(item.display for item in self.items) + f", {self.distance})"


@dataclass(frozen=True)
class Meta:
    """A condition on a non-text field: ``feed``, ``lang``, ``tag`` or ``domain``."""

    field: str
    value: str          # ASCII-lower-cased; for domain without a leading "www."

    @property
    def display(self) -> str:
        return f"{self.field}:{self.value}"


@dataclass(frozen=True)
class And:
    children: tuple["Node", ...]


@dataclass(frozen=True)
class Or:
    children: tuple["Node", ...]


@dataclass(frozen=True)
class Not:
    child: "Node"


Node = Union[Term, Near, Meta, And, Or, Not]


@dataclass(frozen=True)
class Query:
    """A parsed query: ``root`` is the tree, ``text`` what the user wrote."""

    root: Node
    text: str

    def __str__(self) -> str:
        return to_text(self.root)


def to_text(node: Node) -> str:
    """A canonical, fully parenthesised spelling of ``node`` in the query language."""
    if isinstance(node, Term):
        scope = f"{node.fields[0]}:" if node.fields else ""
        body = '"' + " ".join(node.words) + '"' + ("*" if node.prefix else "")
        return scope + body
    if isinstance(node, Near):
        scope = f"{node.fields[0]}:" if node.fields else ""
        items = " ".join('"' + " ".join(i.words) + '"' + ("*" if i.prefix else "") for i in node.items)
        return f"{scope}NEAR({items}, {node.distance})"
    if isinstance(node, Meta):
        return f'{node.field}:"{node.value}"'
    if isinstance(node, And):
        return "(" + " AND ".join(to_text(c) for c in node.children) + ")"
    if isinstance(node, Or):
        return "(" + " OR ".join(to_text(c) for c in node.children) + ")"
    return "(NOT " + to_text(node.child) + ")"


def ascii_lower(text: str) -> str:
    """Lower-case A-Z only: what SQLite's built-in ``lower()`` does (no ICU)."""
    return text.translate(_ASCII_LOWER)


_ASCII_LOWER = {code: code + 32 for code in range(ord("A"), ord("Z") + 1)}


# --------------------------------------------------------------------------- lexer


@dataclass(frozen=True)
class _Tok:
    kind: str          # LPAREN RPAREN AND OR NOT MINUS FIELD WORD PHRASE NEAR EOF
    pos: int
    text: str = ""
    prefix: bool = False
    near: Near | None = None


_SPACE = " \t\r\n\f\v"
# Quotes that open a phrase, and what closes each: ASCII, English “…”, French « … », German „…“ / „…”,
# Swedish ”…”. Keyboards and autocorrect write these: « Burkina Faso » must be the phrase, not two words.
_PHRASE_QUOTES = {'"': '"', "\u201c": "\u201d", "\u00ab": "\u00bb", "\u201e": "\u201c\u201d", "\u201d": "\u201d"}
_STRAY_QUOTES = "\u00bb"  # a closing guillemet with no opening one: punctuation
# Dashes that exclude the word they precede: the hyphen-minus and what autocorrect makes of it (en dash,
# minus sign), so that "Mali –football" excludes football as "Mali -football" does.
_MINUS = "-\u2013\u2212"
_WORD_STOP = _SPACE + "()" + "".join(_PHRASE_QUOTES) + _STRAY_QUOTES
_FIELD_WORD = re.compile(r"^([A-Za-z]+):")


class _Lexer:
    def __init__(self, text: str, tokenizer: Tokenizer) -> None:
        self.text = text
        self.tokenizer = tokenizer
        self.pos = 0
        self.tokens: list[_Tok] = []

    def error(self, message: str, pos: int) -> QueryError:
        return QueryError(message, query=self.text, position=pos)

    def run(self) -> list[_Tok]:
        text = self.text
        while self.pos < len(text):
            ch = text[self.pos]
            if ch.isspace():
                self.pos += 1
            elif ch == "(":
                self.tokens.append(_Tok("LPAREN", self.pos))
                self.pos += 1
            elif ch == ")":
                self.tokens.append(_Tok("RPAREN", self.pos))
                self.pos += 1
            elif ch in _PHRASE_QUOTES:
                self.tokens.append(self._phrase())
            elif ch in _STRAY_QUOTES:
                self.pos += 1
            elif ch in _MINUS and self.pos + 1 < len(text) and not text[self.pos + 1].isspace() \
                    and text[self.pos + 1] not in ")" + _MINUS:
                self.tokens.append(_Tok("MINUS", self.pos))
                self.pos += 1
            else:
                self._word()
        self.tokens.append(_Tok("EOF", len(text)))
        return self.tokens

    def _phrase(self) -> _Tok:
        start = self.pos
        opening = self.text[start]
        closing = _PHRASE_QUOTES[opening]
        end = next((i for i in range(start + 1, len(self.text)) if self.text[i] in closing), -1)
        if end < 0:
            raise self.error(f"unbalanced quote: this {opening} is never closed", start)
        self.pos = end + 1
        prefix = self.pos < len(self.text) and self.text[self.pos] == "*"
        if prefix:
            self.pos += 1
        return _Tok("PHRASE", start, self.text[start + 1:end], prefix=prefix)

    def _read_word(self, stop: str) -> tuple[str, int]:
        start = self.pos
        while self.pos < len(self.text) and self.text[self.pos] not in stop:
            self.pos += 1
        return self.text[start:self.pos], start

    def _word(self) -> None:
        word, start = self._read_word(_WORD_STOP)
        if word in OPERATORS:
            self.tokens.append(_Tok(word, start))
            return
        if self._opens_near(word, start):
            self.tokens.append(_Tok("NEAR", start, near=self._near(start)))
            return
        field_match = _FIELD_WORD.match(word)
        if field_match:
            name = field_match.group(1)
            rest = word[field_match.end():]
            if name.lower() not in ALL_FIELDS:
                at_space = self.pos >= len(self.text) or self.text[self.pos] in _SPACE
                if not rest and at_space and _headline_word(name):
                    self._append_word(name, start, meta=False)  # "Mali: la junte", a headline pasted as a query
                    return
                raise self.error(_unknown_field_message(name), start)
            self.tokens.append(_Tok("FIELD", start, name.lower()))
            rest_at = start + field_match.end()
            if self._opens_near(rest, rest_at):
                self.tokens.append(_Tok("NEAR", rest_at, near=self._near(rest_at)))
            elif rest:
                if rest[0] in _MINUS and len(rest) > 1:  # title:-Niger would otherwise be title:Niger
                    raise self.error(_negated_scope_message(name.lower(), rest.lstrip(_MINUS) or "..."), rest_at)
                self._append_word(rest, rest_at, meta=name.lower() in META_FIELDS)
            return
        self._append_word(word, start, meta=False)

    def _opens_near(self, word: str, start: int) -> bool:
        """Is ``word`` (at ``start``) the NEAR operator, its "(" next? Written otherwise than in capitals it is
        an error: near(a b, 5) would be the words near, a, b and 5, almost never found."""
        if word.upper() != "NEAR" or self.pos >= len(self.text) or self.text[self.pos] != "(":
            return False
        if word != "NEAR":
            raise self.error("NEAR is written in capitals, like the operators: NEAR(word word, 10)", start)
        return True

    def _append_word(self, word: str, start: int, *, meta: bool) -> None:
        if meta:
            self.tokens.append(_Tok("WORD", start, word))
            return
        prefix = word.endswith("*")
        stem = word[:-1] if prefix else word
        star = stem.find("*")
        if star >= 0:
            raise self.error("a wildcard * can only end a word (malien*)", start + star)
        if prefix and (not stem or not self.tokenizer(stem[-1])):
            raise self.error("a wildcard * must follow the letters of a word (malien*)", start + len(stem))
        if not self.tokenizer(stem):
            if self.tokens and self.tokens[-1].kind == "FIELD":
                raise self.error(f"{self.tokens[-1].text}: needs a word after it", start)
            return  # punctuation on its own, such as a dash between words
        self.tokens.append(_Tok("WORD", start, stem, prefix=prefix))

    def _near(self, start: int) -> Near:
        self.pos += 1  # the "("
        items: list[Term] = []
        while True:
            while self.pos < len(self.text) and self.text[self.pos].isspace():
                self.pos += 1
            if self.pos >= len(self.text):
                raise self.error("unbalanced parenthesis: NEAR( is never closed", start)
            ch = self.text[self.pos]
            if ch == ")":
                raise self.error("NEAR needs a distance: NEAR(word word, 10)", self.pos)
            if ch == ",":
                return self._near_end(start, items)
            if ch == "(":
                raise self.error("NEAR takes words and phrases, not groups", self.pos)
            if ch in _PHRASE_QUOTES:
                tok = self._phrase()
            else:
                word, wpos = self._read_word(_WORD_STOP + ",")
                if word in OPERATORS or word == "NEAR":
                    raise self.error(f"{word} cannot be used inside NEAR(...)", wpos)
                before = len(self.tokens)
                self._append_word(word, wpos, meta=False)
                if len(self.tokens) == before:
                    continue
                tok = self.tokens.pop()
            items.append(self._term_from(tok))

    def _near_end(self, start: int, items: list[Term]) -> Near:
        comma = self.pos
        self.pos += 1
        number, npos = self._read_word(_WORD_STOP + ",")
        while not number and self.pos < len(self.text) and self.text[self.pos].isspace():
            self.pos += 1
            number, npos = self._read_word(_WORD_STOP + ",")
        if not (number.isascii() and number.isdigit()):
            raise self.error("NEAR needs a distance, a whole number: NEAR(word word, 10)", npos if number else comma)
        while self.pos < len(self.text) and self.text[self.pos].isspace():
            self.pos += 1
        if self.pos >= len(self.text) or self.text[self.pos] != ")":
            raise self.error("unbalanced parenthesis: NEAR( is never closed", start)
        self.pos += 1
        if len(items) < 2:
            raise self.error("NEAR needs at least two words or phrases", start)
        if int(number) > MAX_NEAR:
            raise self.error(f"NEAR distance must be at most {MAX_NEAR}", npos)
        return Near(tuple(items), int(number))

    def _term_from(self, tok: _Tok) -> Term:
        words = tuple(self.tokenizer(tok.text))
        if not words:
            raise self.error("this phrase has no words in it", tok.pos)
        return Term(words, prefix=tok.prefix)


def _headline_word(name: str) -> bool:
    """A capitalised word before a colon and a space ("Mali: la junte") that looks like no field name is a
    word of a pasted headline, not a field; "titel:" or "source:" stay errors (a field was meant)."""
    return name[0].isupper() and not difflib.get_close_matches(name.lower(), ALL_FIELDS, n=1, cutoff=0.75)


def _unknown_field_message(name: str) -> str:
    close = difflib.get_close_matches(name.lower(), ALL_FIELDS, n=1, cutoff=0.6)
    hint = f"; did you mean {close[0]}:?" if close else ""
    return f"unknown field {name}:{hint} (fields: {', '.join(f + ':' for f in ALL_FIELDS)})"


# --------------------------------------------------------------------------- parser


_PRIMARY_START = {"LPAREN", "FIELD", "WORD", "PHRASE", "NEAR", "NOT", "MINUS"}


class _Parser:
    def __init__(self, text: str, tokens: list[_Tok], tokenizer: Tokenizer) -> None:
        self.text = text
        self.tokens = tokens
        self.tokenizer = tokenizer
        self.index = 0
        self.depth = 0
        self.words = 0

    @property
    def tok(self) -> _Tok:
        return self.tokens[self.index]

    def take(self) -> _Tok:
        tok = self.tokens[self.index]
        self.index += 1
        return tok

    def error(self, message: str, pos: int) -> QueryError:
        return QueryError(message, query=self.text, position=pos)

    def parse(self) -> Node:
        if self.tok.kind == "EOF":
            raise self.error("empty query", 0)
        node = self.or_expr()
        if self.tok.kind == "RPAREN":
            raise self.error("unbalanced parenthesis: this ) has no (", self.tok.pos)
        if self.tok.kind != "EOF":  # pragma: no cover - every other token starts a term
            raise self.error("unexpected text", self.tok.pos)
        self._check_height(node, 0)
        return node

    def or_expr(self) -> Node:
        children = [self.and_expr()]
        while self.tok.kind == "OR":
            op = self.take()
            self._need_operand(op, "OR")
            children.append(self.and_expr())
        return children[0] if len(children) == 1 else Or(tuple(_flatten(children, Or)))

    def and_expr(self) -> Node:
        if self.tok.kind in ("OR", "AND"):
            raise self.error(f"{self.tok.kind} needs a term before it", self.tok.pos)
        children = [self.unary()]
        while True:
            if self.tok.kind == "AND":
                op = self.take()
                self._need_operand(op, "AND")
            elif self.tok.kind not in _PRIMARY_START:
                break
            children.append(self.unary())
        return children[0] if len(children) == 1 else And(tuple(_flatten(children, And)))

    def _need_operand(self, op: _Tok, name: str) -> None:
        if self.tok.kind not in _PRIMARY_START:
            raise self.error(f"{name} needs a term on both sides", op.pos)

    def unary(self) -> Node:
        if self.tok.kind in ("NOT", "MINUS"):
            op = self.take()
            if self.tok.kind not in _PRIMARY_START:
                raise self.error("NOT needs a term after it", op.pos)
            self._enter(op)
            try:
                return Not(self.unary())
            finally:
                self.depth -= 1
        return self.primary()

    def _count(self, words: int, pos: int) -> None:
        self.words += words
        if self.words > MAX_WORDS:
            raise self.error(f"the query is too long (more than {MAX_WORDS} words and field values)", pos)

    def _check_height(self, node: Node, pos: int) -> None:
        if _height(node) > MAX_DEPTH:
            raise self.error(f"the query is nested too deeply (more than {MAX_DEPTH} levels)", pos)

    def _enter(self, tok: _Tok) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise self.error(f"the query is nested too deeply (more than {MAX_DEPTH} levels)", tok.pos)

    def primary(self) -> Node:
        tok = self.take()
        if tok.kind == "LPAREN":
            if self.tok.kind == "RPAREN":
                raise self.error("empty parentheses", tok.pos)
            if self.tok.kind == "EOF":
                raise self.error("unbalanced parenthesis: this ( is never closed", tok.pos)
            self._enter(tok)
            try:
                node = self.or_expr()
            finally:
                self.depth -= 1
            if self.tok.kind != "RPAREN":
                raise self.error("unbalanced parenthesis: this ( is never closed", tok.pos)
            self.take()
            self._check_height(node, tok.pos)
            return node
        if tok.kind == "FIELD":
            return self.scoped(tok)
        if tok.kind == "WORD":
            words = tuple(self.tokenizer(tok.text))
            self._count(len(words), tok.pos)
            return Term(words, prefix=tok.prefix)
        if tok.kind == "PHRASE":
            words = tuple(self.tokenizer(tok.text))
            if not words:
                raise self.error("this phrase has no words in it", tok.pos)
            self._count(len(words), tok.pos)
            return Term(words, prefix=tok.prefix)
        if tok.kind == "NEAR":
            assert tok.near is not None
            self._count(sum(len(item.words) for item in tok.near.items), tok.pos)
            return tok.near
        if tok.kind == "RPAREN":
            raise self.error("unbalanced parenthesis: this ) has no (", tok.pos)
        raise self.error(f"unexpected {tok.kind.lower()}", tok.pos)  # pragma: no cover

    def scoped(self, field: _Tok) -> Node:
        if field.text in META_FIELDS:
            value = self.take()
            if value.kind not in ("WORD", "PHRASE") or value.prefix or not value.text.strip():
                raise self.error(f"{field.text}: needs a value, such as {field.text}:{_META_EXAMPLE[field.text]}",
                                 field.pos)
            self._count(1, value.pos)
            return Meta(field.text, _meta_value(field.text, value.text))
        if self.tok.kind in ("MINUS", "NOT"):
            after = self.tokens[self.index + 1]
            word = after.text if after.kind == "WORD" else "..."
            raise self.error(_negated_scope_message(field.text, word), self.tok.pos)
        if self.tok.kind not in ("LPAREN", "WORD", "PHRASE", "NEAR", "FIELD"):
            raise self.error(f"{field.text}: needs a word, a phrase or a group after it", field.pos)
        self._enter(field)
        try:
            node = self.primary()
        finally:
            self.depth -= 1
        fields = None if field.text == "text" else (field.text,)
        return _apply_scope(node, fields)


_META_EXAMPLE = {"feed": '"Al Jazeera"', "lang": "fr", "tag": "africa", "domain": "lemonde.fr"}


def _meta_value(field: str, value: str) -> str:
    value = ascii_lower(value.strip())
    if field == "domain" and value.startswith("www."):
        value = value[4:]
    return value


def _apply_scope(node: Node, fields: tuple[str, ...] | None) -> Node:
    """Push a field scope down to the terms; a scope already set inside wins."""
    if isinstance(node, Term):
        return node if node.fields is not None else Term(node.words, node.prefix, fields)
    if isinstance(node, Near):
        return node if node.fields is not None else Near(node.items, node.distance, fields)
    if isinstance(node, Meta):
        return node  # feed:/lang:/tag:/domain: are fields of their own
    if isinstance(node, Not):
        return Not(_apply_scope(node.child, fields))
    children = tuple(_apply_scope(child, fields) for child in node.children)
    return And(children) if isinstance(node, And) else Or(children)


def _height(node: Node) -> int:
    """Levels of the tree: 1 for a term, one more for each AND, OR or NOT around it."""
    if isinstance(node, Not):
        return 1 + _height(node.child)
    if isinstance(node, (And, Or)):
        return 1 + max(_height(child) for child in node.children)
    return 1


def _negated_scope_message(field: str, word: str = "...") -> str:
    return f"{field}: cannot be followed by - or NOT; to exclude, put the - before the field: -{field}:{word}"


def _flatten(children: list[Node], kind: type) -> list[Node]:
    flat: list[Node] = []
    for child in children:
        if isinstance(child, kind):
            flat.extend(child.children)  # type: ignore[attr-defined]
        else:
            flat.append(child)
    return flat


def parse_query(text: str, *, tokenizer: Tokenizer = tokenize) -> Query:
    """Parse ``text``; raises :class:`QueryError` with the 0-based position of the fault.

    ``tokenizer`` exists for tests that prove a different folding would be caught; the
    default is the one tokenizer the archive's index uses.
    """
    if not isinstance(text, str):
        raise QueryError("a query must be text", query=str(text), position=0)
    tokens = _Lexer(text, tokenizer).run()
    root = _Parser(text, tokens, tokenizer).parse()
    return Query(root, text)


def keyword_phrase(keyword: str, *, tokenizer: Tokenizer = tokenize) -> str:
    """The query text of one ``keywords``/``exclude`` entry: a phrase (quotes inside are dropped),
    a prefix when it ends in ``*``. Raises :class:`QueryError` where a query would: an empty entry,
    a wildcard that does not end the entry or does not follow a letter, an entry with no word."""
    text = keyword.strip()
    offset = len(keyword) - len(keyword.lstrip())
    if not text:
        raise QueryError("empty keyword", query=keyword, position=0)
    prefix = text.endswith("*")
    stem = text[:-1] if prefix else text
    star = stem.find("*")
    if star >= 0:
        raise QueryError("a wildcard * can only end a word (malien*)", query=keyword, position=offset + star)
    if prefix and not tokenizer(stem[-1:]):
        raise QueryError("a wildcard * must follow the letters of a word (malien*)", query=keyword,
                         position=offset + len(stem))
    body = stem.replace('"', " ").strip()
    if not tokenizer(body):
        raise QueryError("this keyword has no words in it", query=keyword, position=offset)
    return f'"{body}"' + ("*" if prefix else "")


def query_from_keywords(keywords: list[str], exclude: list[str]) -> str:
    """The query text for the ``keywords = [...]`` (any of) / ``exclude = [...]`` shorthand.

    Each entry is checked and written by :func:`keyword_phrase` (a QueryError names the entry).
    """
    wanted = [keyword_phrase(k) for k in keywords]
    unwanted = [keyword_phrase(k) for k in exclude]
    parts = []
    if wanted:
        parts.append("(" + " OR ".join(wanted) + ")")
    if unwanted:
        parts.append("NOT (" + " OR ".join(unwanted) + ")")
    return " ".join(parts)
