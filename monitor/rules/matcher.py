"""The in-memory matcher: every rule against one article, in one pass.

Rules are compiled once into a :class:`RuleSet`. Matching an article tokenizes its three
text fields once (with the index's own tokenizer), then looks its distinct words up in an
index of *trigger terms*: for each rule, a set of words (or prefixes) of which at least one
must be present for the rule to be able to match. Only those rules, plus the few that can
match without any word (``NOT sport``, ``feed:"RFI"``), are evaluated.

Semantics are those of the FTS5 index (see ``tests/test_rules_property.py``): a word is a
whole token of a field; phrases and NEAR hold within one field; ``NEAR(a b, N)`` holds when,
with M the start of the last-starting item, every item i ends no more than N tokens before M.
Non-text fields compare ASCII-case-insensitively, like SQLite's ``lower()``.
"""

from __future__ import annotations

import logging
from bisect import bisect_left
from dataclasses import dataclass, field
from typing import Callable, Sequence

from monitor.errors import QueryError
from monitor.rules.query import (
    TEXT_FIELDS,
    And,
    Meta,
    Near,
    Node,
    Not,
    Or,
    Query,
    Term,
    Tokenizer,
    ascii_lower,
    parse_query,
)
from monitor.tokenize import tokenize

log = logging.getLogger(__name__)


@dataclass
class MatchDoc:
    """What the matcher sees of an article (text is clean text, not HTML)."""

    title: str = ""
    summary: str = ""
    content: str = ""
    feeds: list[str] = field(default_factory=list)
    language: str | None = None
    tags: list[str] = field(default_factory=list)
    domain: str | None = None


@dataclass(frozen=True)
class MatchedTerm:
    """A term of the rule found in the article, and the field it was found in."""

    term: str
    field: str


@dataclass
class RuleMatch:
    rule: str
    terms: list[MatchedTerm]


class _DocView:
    """One article, tokenized once, with lazily built look-up structures."""

    __slots__ = ("tokens", "sets", "all", "_sorted", "_positions", "feeds", "language", "tags", "domain")

    def __init__(self, doc: MatchDoc, tokenizer: Tokenizer) -> None:
        self.tokens = {
            "title": tokenizer(doc.title or ""),
            "summary": tokenizer(doc.summary or ""),
            "content": tokenizer(doc.content or ""),
        }
        self.sets = {name: set(tokens) for name, tokens in self.tokens.items()}
        self.all = self.sets["title"] | self.sets["summary"] | self.sets["content"]
        self._sorted: dict[str, list[str]] = {}
        self._positions: dict[str, dict[str, list[int]]] = {}
        self.feeds = {ascii_lower(name) for name in doc.feeds}
        self.language = ascii_lower(doc.language) if doc.language else ""
        self.tags = {ascii_lower(tag) for tag in doc.tags}
        self.domain = ascii_lower(doc.domain) if doc.domain else ""

    def sorted_tokens(self, name: str) -> list[str]:
        found = self._sorted.get(name)
        if found is None:
            found = self._sorted[name] = sorted(self.sets[name])
        return found

    def positions(self, name: str) -> dict[str, list[int]]:
        found = self._positions.get(name)
        if found is None:
            found = {}
            for index, token in enumerate(self.tokens[name]):
                found.setdefault(token, []).append(index)
            self._positions[name] = found
        return found

    def has_prefix(self, name: str, prefix: str) -> bool:
        tokens = self.sorted_tokens(name)
        index = bisect_left(tokens, prefix)
        return index < len(tokens) and tokens[index].startswith(prefix)


# --------------------------------------------------------------------------- evaluation


def _phrase_starts(view: _DocView, name: str, term: Term) -> list[int]:
    """Start positions of ``term`` (a word, prefix or phrase) in field ``name``."""
    tokens = view.tokens[name]
    words = term.words
    last = len(words) - 1
    if term.prefix and last == 0:
        return [i for i, token in enumerate(tokens) if token.startswith(words[0])]
    starts = view.positions(name).get(words[0], [])
    if last == 0:
        return starts
    found = []
    for start in starts:
        if start + last >= len(tokens):
            break
        ok = True
        for k in range(1, last + 1):
            token = tokens[start + k]
            if token != words[k] and not (term.prefix and k == last and token.startswith(words[k])):
                ok = False
                break
        if ok:
            found.append(start)
    return found


def term_in_field(view: _DocView, name: str, term: Term) -> bool:
    words = term.words
    if len(words) == 1:
        if term.prefix:
            return view.has_prefix(name, words[0])
        return words[0] in view.sets[name]
    field_set = view.sets[name]
    for word in words[:-1]:
        if word not in field_set:
            return False
    return bool(_phrase_starts(view, name, term))


def near_in_field(view: _DocView, name: str, near: Near) -> bool:
    starts = []
    for item in near.items:
        found = _phrase_starts(view, name, item)
        if not found:
            return False
        starts.append(found)
    lengths = [len(item.words) for item in near.items]
    for j, candidates in enumerate(starts):
        for top in candidates:
            if all(
                i == j or any(top - lengths[i] - near.distance <= p <= top for p in starts[i])
                for i in range(len(starts))
            ):
                return True
    return False


def _fields(scope: tuple[str, ...] | None) -> tuple[str, ...]:
    return TEXT_FIELDS if scope is None else scope


def meta_holds(view: _DocView, meta: Meta) -> bool:
    value = meta.value
    if meta.field == "feed":
        return value in view.feeds
    if meta.field == "tag":
        return value in view.tags
    if meta.field == "lang":
        return view.language == value or view.language.startswith(value + "-")
    return view.domain == value or view.domain.endswith("." + value)


def _compile(node: Node) -> Callable[[_DocView], bool]:
    """The AST as nested closures: no isinstance dispatch at match time."""
    if isinstance(node, Term):
        fields = _fields(node.fields)
        if len(node.words) == 1 and not node.prefix:
            word = node.words[0]
            if node.fields is None:
                return lambda view: word in view.all
            only = fields[0] if len(fields) == 1 else None
            if only is not None:
                return lambda view: word in view.sets[only]
        term = node
        return lambda view: any(term_in_field(view, name, term) for name in fields)
    if isinstance(node, Near):
        fields = _fields(node.fields)
        near = node
        return lambda view: any(near_in_field(view, name, near) for name in fields)
    if isinstance(node, Meta):
        meta = node
        return lambda view: meta_holds(view, meta)
    if isinstance(node, Not):
        inner = _compile(node.child)
        return lambda view: not inner(view)
    parts = tuple(_compile(child) for child in node.children)
    if isinstance(node, And):
        return lambda view: all(part(view) for part in parts)
    return lambda view: any(part(view) for part in parts)


def _explain(node: Node, view: _DocView, out: list[MatchedTerm]) -> None:
    """The positive terms that made a true ``node`` true, with their fields."""
    if isinstance(node, Term):
        out.extend(MatchedTerm(node.display, name) for name in _fields(node.fields)
                   if term_in_field(view, name, node))
    elif isinstance(node, Near):
        out.extend(MatchedTerm(node.display, name) for name in _fields(node.fields)
                   if near_in_field(view, name, node))
    elif isinstance(node, Meta):
        if meta_holds(view, node):
            out.append(MatchedTerm(node.value, node.field))
    elif isinstance(node, And):
        for child in node.children:
            _explain(child, view, out)
    elif isinstance(node, Or):
        for child in node.children:
            if _compile(child)(view):
                _explain(child, view, out)


# --------------------------------------------------------------------------- triggers

Trigger = tuple[str, str]   # ("w", word) or ("p", prefix)


def _triggers(node: Node) -> frozenset[Trigger] | None:
    """Words (or prefixes) of which one must be present for ``node`` to hold; None: no such set."""
    if isinstance(node, Term):
        if node.prefix and len(node.words) == 1:
            return frozenset({("p", node.words[0])})
        return frozenset({("w", max(node.words[:-1] if node.prefix else node.words, key=len))})
    if isinstance(node, Near):
        options = [_triggers(item) for item in node.items]
        return min((o for o in options if o is not None), key=_trigger_cost)
    if isinstance(node, (Meta, Not)):
        return None
    options = [_triggers(child) for child in node.children]
    if isinstance(node, And):
        known = [o for o in options if o is not None]
        return min(known, key=_trigger_cost) if known else None
    if any(o is None for o in options):
        return None
    return frozenset().union(*options)  # type: ignore[arg-type]


def _trigger_cost(triggers: frozenset[Trigger]) -> tuple[int, int]:
    return (sum(1 for kind, _ in triggers if kind == "p"), len(triggers))


@dataclass
class _Rule:
    name: str
    query: Query
    test: Callable[[_DocView], bool]


class RuleSet:
    """Rules compiled once; :meth:`match` runs all of them against an article in one pass."""

    def __init__(self, rules: list[_Rule], tokenizer: Tokenizer) -> None:
        self.rules = rules
        self.tokenizer = tokenizer
        self._words: dict[str, list[int]] = {}
        self._prefixes: dict[int, dict[str, list[int]]] = {}
        self._always: list[int] = []
        for index, rule in enumerate(rules):
            triggers = _triggers(rule.query.root)
            if triggers is None:
                self._always.append(index)
                continue
            for kind, text in triggers:
                if kind == "w":
                    self._words.setdefault(text, []).append(index)
                else:
                    self._prefixes.setdefault(len(text), {}).setdefault(text, []).append(index)
        self._prefix_lengths = sorted(self._prefixes)

    @classmethod
    def compile(cls, rules: Sequence[tuple[str, str | Query]], *, tokenizer: Tokenizer = tokenize) -> "RuleSet":
        """``rules``: (name, query text or parsed Query). Raises QueryError naming the rule."""
        compiled = []
        for name, query in rules:
            if isinstance(query, str):
                try:
                    query = parse_query(query, tokenizer=tokenizer)
                except QueryError as exc:
                    raise QueryError(f"rule {name}: {exc.reason}", query=exc.query, position=exc.position) from exc
            compiled.append(_Rule(name, query, _compile(query.root)))
        log.debug("rules compiled count=%d", len(compiled))
        return cls(compiled, tokenizer)

    @property
    def names(self) -> list[str]:
        return [rule.name for rule in self.rules]

    def candidates(self, view: _DocView) -> list[int]:
        found = set(self._always)
        words = self._words
        for token in view.all:
            hit = words.get(token)
            if hit is not None:
                found.update(hit)
        for length in self._prefix_lengths:
            table = self._prefixes[length]
            for token in view.all:
                if len(token) >= length:
                    hit = table.get(token[:length])
                    if hit is not None:
                        found.update(hit)
        return sorted(found)

    def match(self, doc: MatchDoc) -> list[RuleMatch]:
        """Every rule that matches ``doc``, in rule order, with the terms that matched."""
        view = _DocView(doc, self.tokenizer)
        matches = []
        for index in self.candidates(view):
            rule = self.rules[index]
            if rule.test(view):
                terms: list[MatchedTerm] = []
                _explain(rule.query.root, view, terms)
                matches.append(RuleMatch(rule.name, list(dict.fromkeys(terms))))
        return matches

    def matching_rules(self, doc: MatchDoc) -> list[str]:
        """Names of the rules that match ``doc`` (no explanation; the fast path)."""
        view = _DocView(doc, self.tokenizer)
        return [self.rules[i].name for i in self.candidates(view) if self.rules[i].test(view)]


def matches_query(query: Query | str, doc: MatchDoc, *, tokenizer: Tokenizer = tokenize) -> bool:
    """Does one query match one article (no trigger index; for tests and ``rules test``)."""
    if isinstance(query, str):
        query = parse_query(query, tokenizer=tokenizer)
    return _compile(query.root)(_DocView(doc, tokenizer))


def explain_query(query: Query, doc: MatchDoc, *, tokenizer: Tokenizer = tokenize) -> list[MatchedTerm] | None:
    """The matched terms of ``query`` in ``doc``, or None when it does not match."""
    view = _DocView(doc, tokenizer)
    if not _compile(query.root)(view):
        return None
    terms: list[MatchedTerm] = []
    _explain(query.root, view, terms)
    return list(dict.fromkeys(terms))

