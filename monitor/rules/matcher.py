"""The in-memory matcher: every rule against one article, in one pass.

Rules are compiled once into a :class:`RuleSet`. Matching an article tokenizes its text
once (with the index's own tokenizer) into the set of its distinct words. Each rule has
*trigger clauses*, necessary conditions of the form "one of these words or prefixes is
present" (an AND of ORs, see :func:`trigger_clauses`); the clause with the fewest prefixes
and words is the rule's anchor and is indexed by word and prefix. A per-token memo says,
for every word ever seen, which keys it satisfies and which rules it anchors, so an article
only visits the rules its words can satisfy; the rest of their clauses are checked with set
operations before the rule itself is evaluated. Rules that state no clause (``NOT sport``,
``feed:"RFI"``) are evaluated for every article. Per-field structures (token lists,
positions) are built only when a phrase, NEAR, a field scope or an explanation needs them.

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
    """One article, tokenized once; per-field structures are built only when a rule asks.

    ``all`` (every word of the three text fields) comes from one pass over the joined text:
    a newline is a separator, so it holds exactly the union of the fields' words.
    """

    __slots__ = ("doc", "tokenizer", "all", "present", "_tokens", "_sets", "_sorted", "_positions", "_meta")

    def __init__(self, doc: MatchDoc, tokenizer: Tokenizer) -> None:
        self.doc = doc
        self.tokenizer = tokenizer
        self.all = set(tokenizer(f"{doc.title or ''}\n{doc.summary or ''}\n{doc.content or ''}"))
        self._tokens: dict[str, list[str]] = {}
        self._sets: dict[str, set[str]] = {}
        self._sorted: dict[str, list[str]] = {}
        self._positions: dict[str, dict[str, list[int]]] = {}
        self._meta: tuple[set[str], str, set[str], str] | None = None
        # Filled by RuleSet.candidates(): the rule set's known words present in the article
        # and "prefix*" for each of its prefixes that some word of the article starts with.
        self.present: set[str] | None = None

    def field_tokens(self, name: str) -> list[str]:
        found = self._tokens.get(name)
        if found is None:
            found = self._tokens[name] = self.tokenizer(getattr(self.doc, name) or "")
        return found

    def field_set(self, name: str) -> set[str]:
        found = self._sets.get(name)
        if found is None:
            found = self._sets[name] = set(self.field_tokens(name))
        return found

    def meta(self) -> tuple[set[str], str, set[str], str]:
        """(feeds, language, tags, domain), ASCII-lower-cased as SQLite's lower() does."""
        if self._meta is None:
            doc = self.doc
            self._meta = (
                {ascii_lower(name) for name in doc.feeds},
                ascii_lower(doc.language) if doc.language else "",
                {ascii_lower(tag) for tag in doc.tags},
                ascii_lower(doc.domain) if doc.domain else "",
            )
        return self._meta

    def sorted_tokens(self, name: str) -> list[str]:
        found = self._sorted.get(name)
        if found is None:
            found = self._sorted[name] = sorted(self.field_set(name))
        return found

    def positions(self, name: str) -> dict[str, list[int]]:
        found = self._positions.get(name)
        if found is None:
            found = {}
            for index, token in enumerate(self.field_tokens(name)):
                found.setdefault(token, []).append(index)
            self._positions[name] = found
        return found

    def has_prefix_anywhere(self, prefix: str) -> bool:
        tokens = self._sorted.get("")
        if tokens is None:
            tokens = self._sorted[""] = sorted(self.all)
        index = bisect_left(tokens, prefix)
        return index < len(tokens) and tokens[index].startswith(prefix)

    def has_prefix(self, name: str, prefix: str) -> bool:
        tokens = self.sorted_tokens(name)
        index = bisect_left(tokens, prefix)
        return index < len(tokens) and tokens[index].startswith(prefix)


# --------------------------------------------------------------------------- evaluation


def _phrase_starts(view: _DocView, name: str, term: Term) -> list[int]:
    """Start positions of ``term`` (a word, prefix or phrase) in field ``name``."""
    tokens = view.field_tokens(name)
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
        return words[0] in view.field_set(name)
    field_set = view.field_set(name)
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
    feeds, language, tags, domain = view.meta()
    if meta.field == "feed":
        return value in feeds
    if meta.field == "tag":
        return value in tags
    if meta.field == "lang":
        return language == value or language.startswith(value + "-")
    return domain == value or domain.endswith("." + value)


def holds(node: Node, view: _DocView) -> bool:
    """Plain recursive evaluation (the reference the compiled closures must agree with)."""
    if isinstance(node, Term):
        return any(term_in_field(view, name, node) for name in _fields(node.fields))
    if isinstance(node, Near):
        return any(near_in_field(view, name, node) for name in _fields(node.fields))
    if isinstance(node, Meta):
        return meta_holds(view, node)
    if isinstance(node, Not):
        return not holds(node.child, view)
    if isinstance(node, And):
        return all(holds(child, view) for child in node.children)
    return any(holds(child, view) for child in node.children)  # type: ignore[union-attr]


def _is_plain_word(node: Node) -> bool:
    return isinstance(node, Term) and len(node.words) == 1 and not node.prefix


def _compile_or(node: Or) -> Callable[[_DocView], bool]:
    """OR groups are where rules are large: plain words become one set test per field scope,
    unscoped prefixes one bisect each over the article's sorted words."""
    by_scope: dict[tuple[str, ...] | None, set[str]] = {}
    prefixes: list[str] = []
    others: list[Callable[[_DocView], bool]] = []
    for child in node.children:
        if _is_plain_word(child):
            by_scope.setdefault(child.fields, set()).add(child.words[0])  # type: ignore[union-attr]
        elif isinstance(child, Term) and child.prefix and len(child.words) == 1 and child.fields is None:
            prefixes.append(child.words[0])
        else:
            others.append(_compile(child))
    everywhere = frozenset(by_scope.pop(None, ()))
    scoped = [(fields, frozenset(words)) for fields, words in by_scope.items()]
    prefix_list = tuple(sorted(set(prefixes)))
    keys = everywhere | frozenset(prefix + "*" for prefix in prefix_list)

    def test(view: _DocView) -> bool:
        present = view.present
        if present is not None:
            if not keys.isdisjoint(present):
                return True
        else:
            if everywhere and not everywhere.isdisjoint(view.all):
                return True
            for prefix in prefix_list:
                if view.has_prefix_anywhere(prefix):
                    return True
        for fields, words in scoped:
            for name in fields:
                if not words.isdisjoint(view.field_set(name)):
                    return True
        for other in others:
            if other(view):
                return True
        return False

    return test


def _compile(node: Node) -> Callable[[_DocView], bool]:
    """The AST as nested closures: no isinstance dispatch at match time."""
    if isinstance(node, Term):
        fields = _fields(node.fields)
        term = node
        if len(node.words) == 1:
            word = node.words[0]
            if node.prefix:
                if node.fields is None:
                    key = word + "*"
                    return lambda view: (key in view.present) if view.present is not None \
                        else view.has_prefix_anywhere(word)
                return lambda view: any(view.has_prefix(name, word) for name in fields)
            if node.fields is None:
                return lambda view: word in view.all
            return lambda view: any(word in view.field_set(name) for name in fields)
        needed = node.words[:-1] if node.prefix else node.words
        return lambda view: all(w in view.all for w in needed) and any(
            term_in_field(view, name, term) for name in fields)
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
    if isinstance(node, Or):
        return _compile_or(node)
    parts = tuple(_compile(child) for child in node.children)  # type: ignore[union-attr]
    if len(parts) == 2:
        first, second = parts
        return lambda view: first(view) and second(view)
    if len(parts) == 3:
        first, second, third = parts
        return lambda view: first(view) and second(view) and third(view)
    return lambda view: all(part(view) for part in parts)


def _maybe_somewhere(term: Term, view: _DocView) -> bool:
    """A cheap test on the article's word set: False means the term is in no field."""
    if term.prefix and len(term.words) == 1:
        if view.present is not None:
            return term.words[0] + "*" in view.present
        return view.has_prefix_anywhere(term.words[0])
    needed = term.words[:-1] if term.prefix else term.words
    return all(word in view.all for word in needed)


def _explain(node: Node, view: _DocView, out: list[MatchedTerm]) -> None:
    """The positive terms that made a true ``node`` true, with their fields."""
    if isinstance(node, Term):
        if _maybe_somewhere(node, view):
            out.extend(MatchedTerm(node.display, name) for name in _fields(node.fields)
                       if term_in_field(view, name, node))
    elif isinstance(node, Near):
        if all(_maybe_somewhere(item, view) for item in node.items):
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
            if isinstance(child, (Term, Near, Meta)) or holds(child, view):
                _explain(child, view, out)


Explainer = Callable[[_DocView, list[MatchedTerm]], None]


def _compile_explain(node: Node) -> Explainer:
    """Like :func:`_explain`, compiled once per rule; MatchedTerm objects are made up front."""
    if isinstance(node, Term):
        fields = _fields(node.fields)
        made = {name: MatchedTerm(node.display, name) for name in fields}
        if len(node.words) == 1 and not node.prefix:
            word = node.words[0]

            def explain_word(view: _DocView, out: list[MatchedTerm]) -> None:
                if word in view.all:
                    for name in fields:
                        if word in view.field_set(name):
                            out.append(made[name])
            return explain_word
        term = node
        if node.prefix and len(node.words) == 1:
            key, stem = node.words[0] + "*", node.words[0]

            def explain_prefix(view: _DocView, out: list[MatchedTerm]) -> None:
                present = view.present
                if (key in present) if present is not None else view.has_prefix_anywhere(stem):
                    for name in fields:
                        if view.has_prefix(name, stem):
                            out.append(made[name])
            return explain_prefix
        needed = frozenset(node.words[:-1] if node.prefix else node.words)

        def explain_phrase(view: _DocView, out: list[MatchedTerm]) -> None:
            if needed <= view.all:
                for name in fields:
                    if term_in_field(view, name, term):
                        out.append(made[name])
        return explain_phrase
    if isinstance(node, (Near, Meta)):
        leaf = node
        return lambda view, out: _explain(leaf, view, out)
    if isinstance(node, Not):
        return lambda view, out: None
    if isinstance(node, And):
        parts = tuple(_compile_explain(child) for child in node.children)

        def explain_and(view: _DocView, out: list[MatchedTerm]) -> None:
            for part in parts:
                part(view, out)
        return explain_and
    plain = [child for child in node.children if _is_plain_word(child) and child.fields is None]  # type: ignore
    order = {child.words[0]: index for index, child in enumerate(plain)}  # type: ignore[union-attr]
    plain_parts = {child.words[0]: _compile_explain(child) for child in plain}  # type: ignore[union-attr]
    plain_words = frozenset(order)
    steps = tuple(
        (None if isinstance(child, (Term, Near, Meta)) else _compile(child), _compile_explain(child))
        for child in node.children  # type: ignore[union-attr]
        if not (_is_plain_word(child) and child.fields is None)  # type: ignore[union-attr]
    )

    def explain_or(view: _DocView, out: list[MatchedTerm]) -> None:
        hits = plain_words.intersection(view.all)
        if hits:
            for word in sorted(hits, key=order.__getitem__):
                plain_parts[word](view, out)
        for test, part in steps:
            if test is None or test(view):
                part(view, out)
    return explain_or


# --------------------------------------------------------------------------- triggers

Trigger = str               # a word, or a prefix followed by "*" (a token never holds "*")
Clause = frozenset[Trigger]  # at least one of these must be in the article
_MEMO_LIMIT = 200_000       # distinct tokens remembered by a RuleSet before the memo restarts


def _term_clauses(term: Term) -> list[Clause]:
    if term.prefix and len(term.words) == 1:
        return [frozenset({term.words[0] + "*"})]
    clauses = [frozenset({word}) for word in (term.words[:-1] if term.prefix else term.words)]
    if term.prefix:
        clauses.append(frozenset({term.words[-1] + "*"}))
    return clauses


def _clause_cost(clause: Clause) -> tuple[int, int]:
    return (sum(1 for key in clause if key.endswith("*")), len(clause))


def trigger_clauses(node: Node) -> list[Clause]:
    """Necessary conditions for ``node``, as clauses that must all be hit (an AND of ORs).

    ``[]`` means none can be stated (a lone NOT, a feed:/lang:/tag:/domain: condition).
    Every word of a phrase is required; an OR needs one word of any of its branches.
    """
    if isinstance(node, Term):
        return _term_clauses(node)
    if isinstance(node, Near):
        return [clause for item in node.items for clause in _term_clauses(item)]
    if isinstance(node, (Meta, Not)):
        return []
    if isinstance(node, And):
        clauses = [clause for child in node.children for clause in trigger_clauses(child)]
        return list(dict.fromkeys(clauses))
    union: set[Trigger] = set()
    for child in node.children:  # type: ignore[union-attr]
        child_clauses = trigger_clauses(child)
        if not child_clauses:
            return []
        union |= min(child_clauses, key=_clause_cost)
    return [frozenset(union)]


def _all_keys(node: Node) -> set[Trigger]:
    """Every word and prefix key of a query, NOT branches included."""
    if isinstance(node, Term):
        keys = {node.words[-1] + "*"} if node.prefix else {node.words[-1]}
        return keys | set(node.words[:-1])
    if isinstance(node, Near):
        return set().union(*(_all_keys(item) for item in node.items))
    if isinstance(node, Meta):
        return set()
    if isinstance(node, Not):
        return _all_keys(node.child)
    return set().union(*(_all_keys(child) for child in node.children))  # type: ignore[union-attr]


@dataclass
class _Rule:
    name: str
    query: Query
    test: Callable[[_DocView], bool]
    explain: Explainer


class RuleSet:
    """Rules compiled once; :meth:`match` runs all of them against an article in one pass.

    Safe to share between threads: the only state that changes is the token memo, whose
    updates are single dict/set operations.

    Each rule's trigger clauses (see :func:`trigger_clauses`) are indexed by word and prefix.
    For an article, the words it holds light up clauses; only the rules whose clauses are all
    lit (plus the rules that have none) are evaluated.
    """

    def __init__(self, rules: list[_Rule], tokenizer: Tokenizer) -> None:
        self.rules = rules
        self.tokenizer = tokenizer
        self._always: list[int] = []
        self._rest: list[tuple[Clause, ...]] = []           # clauses checked after the anchor
        self._anchored: dict[Trigger, list[int]] = {}        # key -> rules whose anchor holds it
        words: set[str] = set()
        prefixes: set[str] = set()
        for index, rule in enumerate(rules):
            clauses = trigger_clauses(rule.query.root)
            for key in _all_keys(rule.query.root):
                (prefixes if key.endswith("*") else words).add(key)
            if not clauses:
                self._always.append(index)
                self._rest.append(())
                continue
            anchor = min(clauses, key=_clause_cost)
            self._rest.append(tuple(c for c in clauses if c is not anchor))
            for key in anchor:
                self._anchored.setdefault(key, []).append(index)
        self._words = frozenset(words)
        self._prefixes: dict[int, set[str]] = {}
        for key in prefixes:
            self._prefixes.setdefault(len(key) - 1, set()).add(key[:-1])
        self._prefix_lengths = sorted(self._prefixes)
        self._memo: dict[str, tuple[tuple[Trigger, ...], tuple[int, ...]]] = {}
        self._seen: set[str] = set()    # the memo's keys, as a set (fast differences)
        self._known: set[str] = set()   # tokens whose memo entry is not empty

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
            compiled.append(_Rule(name, query, _compile(query.root), _compile_explain(query.root)))
        log.debug("rules compiled count=%d", len(compiled))
        return cls(compiled, tokenizer)

    @property
    def names(self) -> list[str]:
        return [rule.name for rule in self.rules]

    def _learn(self, token: str) -> None:
        """Memoise which keys a token satisfies and which rules it anchors."""
        keys = [token] if token in self._words else []
        for length in self._prefix_lengths:
            if len(token) < length:
                break
            head = token[:length]
            if head in self._prefixes[length]:
                keys.append(head + "*")
        rules: set[int] = set()
        for key in keys:
            rules.update(self._anchored.get(key, ()))
        self._memo[token] = (tuple(keys), tuple(rules))
        self._seen.add(token)
        if keys:
            self._known.add(token)

    def candidates(self, view: _DocView) -> list[int]:
        """Rules worth evaluating for this article, in rule order; fills ``view.present``.

        Every token ever seen is memoised (often as nothing), so after warm-up this is two
        C-level set operations and a loop over the article's words that rules know.
        """
        memo = self._memo
        unseen = view.all.difference(self._seen)
        if unseen:
            if len(memo) + len(unseen) > _MEMO_LIMIT:
                memo.clear()
                self._seen.clear()
                self._known.clear()
                unseen = view.all
            for token in unseen:
                self._learn(token)
        present: set[str] = set()
        anchored: set[int] = set()
        for token in view.all.intersection(self._known):
            entry = memo.get(token)
            if entry is None:  # another thread restarted the memo in between
                self._learn(token)
                entry = memo[token]
            keys, rules = entry
            present.update(keys)
            if rules:
                anchored.update(rules)
        view.present = present
        rest = self._rest
        found = []
        for rule in anchored:
            for clause in rest[rule]:
                if clause.isdisjoint(present):
                    break
            else:
                found.append(rule)
        if self._always:
            found.extend(self._always)
        return sorted(found)

    def match(self, doc: MatchDoc) -> list[RuleMatch]:
        """Every rule that matches ``doc``, in rule order, with the terms that matched."""
        view = _DocView(doc, self.tokenizer)
        matches = []
        for index in self.candidates(view):
            rule = self.rules[index]
            if rule.test(view):
                terms: list[MatchedTerm] = []
                rule.explain(view, terms)
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
    if not holds(query.root, view):
        return None
    terms: list[MatchedTerm] = []
    _explain(query.root, view, terms)
    return list(dict.fromkeys(terms))

