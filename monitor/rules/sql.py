"""The query language compiled to SQL over ``articles a`` and the FTS5 table ``articles_fts``.

User text never reaches ``MATCH`` as written: the FTS5 expression is printed from our own
syntax tree, every word is a folded token in double quotes (tokens never hold a quote),
so FTS5 cannot meet a syntax it does not expect.

The largest part of the query that FTS5 can express on its own (terms, phrases, prefixes,
NEAR, AND/OR, and ``x NOT y`` when x is there) becomes the one ``MATCH`` that ranks and
makes snippets; the rest (a lone ``NOT``, ``feed:``, ``lang:``, ``tag:``, ``domain:``, and
anything mixed with them) becomes SQL conditions, where a text sub-query is
``a.id IN (SELECT rowid FROM articles_fts WHERE articles_fts MATCH ?)``.
"""

from __future__ import annotations

from dataclasses import dataclass

from monitor.rules.query import TEXT_FIELDS, And, Meta, Near, Node, Not, Or, Query, Term


@dataclass(frozen=True)
class SqlQuery:
    """``match``: FTS5 expression for ``articles_fts MATCH ?`` (None: no text core);
    ``where``/``params``: an SQL condition over ``a`` (``"1"`` when there is none)."""

    match: str | None
    where: str
    params: tuple[object, ...]

    def from_clause(self) -> str:
        if self.match is None:
            return "articles a"
        return "articles_fts JOIN articles a ON a.id = articles_fts.rowid"

    def condition(self) -> tuple[str, list[object]]:
        """The whole WHERE condition and its parameters, for use with :meth:`from_clause`."""
        if self.match is None:
            return self.where, list(self.params)
        return f"articles_fts MATCH ? AND {self.where}", [self.match, *self.params]


def fts_expressible(node: Node) -> bool:
    """Can FTS5 evaluate ``node`` by itself (as one MATCH)?"""
    if isinstance(node, (Term, Near)):
        return True
    if isinstance(node, (Meta, Not)):
        return False
    if isinstance(node, Or):
        return all(fts_expressible(child) for child in node.children)
    positives = [c for c in node.children if not isinstance(c, Not)]
    negatives = [c for c in node.children if isinstance(c, Not)]
    return (
        bool(positives)
        and all(fts_expressible(c) for c in positives)
        and all(fts_expressible(c.child) for c in negatives)  # type: ignore[union-attr]
    )


def _phrase(term: Term) -> str:
    return '"' + " ".join(term.words) + '"' + ("*" if term.prefix else "")


def _scope(fields: tuple[str, ...] | None) -> str:
    if fields is None or set(fields) == set(TEXT_FIELDS):
        return ""
    if len(fields) == 1:
        return f"{fields[0]} : "
    return "{" + " ".join(fields) + "} : "


def fts_expression(node: Node) -> str:
    """The FTS5 MATCH text of an FTS-expressible node, fully parenthesised."""
    if isinstance(node, Term):
        return _scope(node.fields) + _phrase(node)
    if isinstance(node, Near):
        items = " ".join(_phrase(item) for item in node.items)
        return _scope(node.fields) + f"NEAR({items}, {node.distance})"
    if isinstance(node, Or):
        return "(" + " OR ".join(fts_expression(c) for c in node.children) + ")"
    if isinstance(node, And):
        positives = [c for c in node.children if not isinstance(c, Not)]
        negatives = [c.child for c in node.children if isinstance(c, Not)]  # type: ignore[union-attr]
        text = " AND ".join(fts_expression(c) for c in positives)
        if negatives:  # x NOT a NOT b as one x NOT (a OR b): FTS5 nests each NOT one level deeper
            excluded = negatives[0] if len(negatives) == 1 else Or(tuple(negatives))
            text = ("(" + text + ")" if len(positives) > 1 else text) + " NOT " + fts_expression(excluded)
        return "(" + text + ")"
    raise ValueError(f"not expressible in FTS5: {node!r}")


_IN_FTS = "a.id IN (SELECT rowid FROM articles_fts WHERE articles_fts MATCH ?)"
_FEED = ("EXISTS (SELECT 1 FROM article_feeds af JOIN feeds f ON f.id = af.feed_id "
         "WHERE af.article_id = a.id AND lower(f.name) = ?)")
_TAG = ("EXISTS (SELECT 1 FROM article_feeds af JOIN feeds f ON f.id = af.feed_id, json_each(f.tags) t "
        "WHERE af.article_id = a.id AND lower(t.value) = ?)")


def meta_condition(meta: Meta) -> tuple[str, list[object]]:
    """SQL for a non-text field; never NULL, so that NOT works as in the matcher."""
    value = meta.value
    if meta.field == "feed":
        return _FEED, [value]
    if meta.field == "tag":
        return _TAG, [value]
    column = "a.language" if meta.field == "lang" else "a.domain"
    separator = "-" if meta.field == "lang" else "."
    text = (f"(coalesce(lower({column}), '') = ? OR "
            f"substr(coalesce(lower({column}), ''), -?) = ?)") if separator == "." else \
           (f"(coalesce(lower({column}), '') = ? OR "
            f"substr(coalesce(lower({column}), ''), 1, ?) = ?)")
    suffix = separator + value if separator == "." else value + separator
    return text, [value, len(suffix), suffix]


def sql_condition(node: Node) -> tuple[str, list[object]]:
    """Any node as an SQL condition over ``a`` (text parts as FTS sub-queries)."""
    if fts_expressible(node):
        return _IN_FTS, [fts_expression(node)]
    if isinstance(node, Meta):
        return meta_condition(node)
    if isinstance(node, Not):
        inner, params = sql_condition(node.child)
        return f"(NOT {inner})", params
    children = list(node.children)  # type: ignore[union-attr]
    if isinstance(node, Or):
        # the text alternatives as one sub-query: x IN A OR x IN B is x IN (A OR B)
        text_parts = [c for c in children if fts_expressible(c)]
        if len(text_parts) > 1:
            children = [Or(tuple(text_parts))] + [c for c in children if not fts_expressible(c)]
    else:
        # the excluded text as one sub-query: NOT x IN A AND NOT x IN B is NOT x IN (A OR B)
        excluded = [c.child for c in children if isinstance(c, Not) and fts_expressible(c.child)]
        if len(excluded) > 1:
            children = [c for c in children if not (isinstance(c, Not) and fts_expressible(c.child))]
            children.append(Not(Or(tuple(excluded))))
    if len(children) == 1:
        return sql_condition(children[0])
    parts, params = [], []
    for child in children:
        text, child_params = sql_condition(child)
        parts.append(text)
        params.extend(child_params)
    return _join(parts, " AND " if isinstance(node, And) else " OR "), params


SQL_CHAIN = 50  # conditions per parenthesised chain: SQLite counts a chain of n as n levels (1000 at most)


def _join(parts: list[str], joiner: str) -> str:
    """``parts`` joined by AND or OR, in chains of at most SQL_CHAIN, so that a query of thousands
    of conditions stays a few levels deep for SQLite (whose expression trees are 1000 deep at most)."""
    while len(parts) > SQL_CHAIN:
        parts = ["(" + joiner.join(parts[i:i + SQL_CHAIN]) + ")" for i in range(0, len(parts), SQL_CHAIN)]
    return "(" + joiner.join(parts) + ")"


def compile_sql(query: Query) -> SqlQuery:
    """Compile a parsed query; see the module docstring for the shape of the result."""
    root = query.root
    if fts_expressible(root):
        return SqlQuery(fts_expression(root), "1", ())
    if isinstance(root, And):
        core = [c for c in root.children if not isinstance(c, Not) and fts_expressible(c)]
        if core:
            core += [c for c in root.children if isinstance(c, Not) and fts_expressible(c.child)]
            rest = [c for c in root.children if c not in core]
            match = fts_expression(core[0] if len(core) == 1 else And(tuple(core)))
            if not rest:
                return SqlQuery(match, "1", ())
            where, params = sql_condition(rest[0] if len(rest) == 1 else And(tuple(rest)))
            return SqlQuery(match, where, tuple(params))
    where, params = sql_condition(root)
    return SqlQuery(None, where, tuple(params))
