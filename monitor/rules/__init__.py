"""The query language of rules and search: parse → syntax tree → in-memory matcher / SQL.

One grammar and one semantics serve alerts and archive search (see ``query.py`` for the
grammar, ``matcher.py`` for matching articles as they arrive, ``sql.py`` for the FTS5
compiler). Config rules are ``(name, query text)`` pairs compiled once into a ``RuleSet``.
"""

from __future__ import annotations

from monitor.rules.matcher import (
    MatchDoc,
    MatchedTerm,
    RuleMatch,
    RuleSet,
    explain_query,
    matches_query,
)
from monitor.rules.query import (
    ALL_FIELDS,
    META_FIELDS,
    TEXT_FIELDS,
    And,
    Meta,
    Near,
    Node,
    Not,
    Or,
    Query,
    Term,
    parse_query,
    query_from_keywords,
)
from monitor.rules.sql import SqlQuery, compile_sql

__all__ = [
    "ALL_FIELDS", "META_FIELDS", "TEXT_FIELDS",
    "And", "Meta", "Near", "Node", "Not", "Or", "Query", "Term",
    "MatchDoc", "MatchedTerm", "RuleMatch", "RuleSet", "SqlQuery",
    "compile_sql", "explain_query", "matches_query", "parse_query", "query_from_keywords",
]
