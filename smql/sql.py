"""Embedded SQL: parsed with sqlglot, errors mapped back to the .smql file, canonical text.

SMQL keeps SQL as the user wrote it (the formatter never rewrites it, and the plan runs it as
written, transpiled from its dialect). For hashing and display, each piece is reduced to
`normalize_sql`: its tokens, comments dropped, keywords upper-case, so changing whitespace,
keyword case or comments inside an expression changes no hash.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from enum import Enum

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError, TokenError
from sqlglot.parser import Parser
from sqlglot.tokenizer_core import Token, TokenType

from smql.diagnostics import LineIndex
from smql.syntax import SqlText

DEFAULT_DIALECT = "postgres"


@functools.cache
def dialect_names() -> tuple[str, ...]:
    """The SQL dialects sqlglot reads, by the names SMQL accepts in DIALECT."""
    return tuple(sorted(name for name in sqlglot.Dialect.classes if name))


class SqlKind(Enum):
    EXPRESSION = "an expression"
    ORDERING = "an ORDER BY term"
    QUERY = "a query"


@dataclass(frozen=True, slots=True)
class SqlProblem:
    """Why a piece of embedded SQL was rejected, and where (absolute offsets in the .smql file)."""

    message: str
    start: int
    end: int


def parse_sql(sql: SqlText, kind: SqlKind, dialect: str) -> exp.Expr | SqlProblem:
    """Parse one piece of embedded SQL as `kind`, or say exactly why it cannot be."""
    if dialect not in dialect_names():
        return SqlProblem(f"unknown SQL dialect '{dialect}'", sql.span.start, sql.span.end)
    try:
        into = exp.Ordered if kind is SqlKind.ORDERING else None
        tree: exp.Expr = sqlglot.parse_one(sql.text, read=dialect, into=into)
    except ParseError as exc:
        return _parse_problem(sql, exc, dialect)
    except TokenError as exc:
        detail = str(exc).split("\n", 1)[0]
        return SqlProblem(f"invalid SQL ({dialect}): {detail}", sql.span.start, sql.span.end)
    is_query = isinstance(tree, exp.Query)
    if kind is SqlKind.QUERY and not is_query:
        return SqlProblem("expected a query (SELECT ...)", sql.span.start, sql.span.end)
    if kind is not SqlKind.QUERY and (is_query or not _is_expression(tree)):
        return SqlProblem(
            f"expected {kind.value}, found a {tree.key.upper()} statement",
            sql.span.start,
            sql.span.end,
        )
    return tree


def normalize_sql(text: str, dialect: str) -> str:
    """A stable, one-line form of a piece of SQL: comments dropped, one space between tokens,
    keywords upper-case, names, numbers and strings as written.

    Built from sqlglot's tokenizer rather than its SQL generator, whose output changes more
    between sqlglot releases: hashes must not move when a dependency is upgraded.
    """
    tokens = sqlglot.Dialect.get_or_raise(dialect).tokenize(text)
    out: list[str] = []
    previous: Token | None = None
    for token in tokens:
        if previous is not None and _space_between(previous, token):
            out.append(" ")
        out.append(_token_text(token))
        previous = token
    return "".join(out)


_WORDS = {TokenType.VAR, TokenType.NUMBER}
_QUOTED = {TokenType.STRING: "'", TokenType.IDENTIFIER: '"'}
_NO_SPACE_AFTER = {TokenType.L_PAREN, TokenType.L_BRACKET, TokenType.DOT, TokenType.DCOLON}
_NO_SPACE_BEFORE = {
    TokenType.R_PAREN,
    TokenType.R_BRACKET,
    TokenType.COMMA,
    TokenType.DOT,
    TokenType.DCOLON,
    TokenType.SEMICOLON,
}
_CALLABLE = {TokenType.VAR, TokenType.IDENTIFIER}


def _token_text(token: Token) -> str:
    if token.token_type in _QUOTED:
        quote = _QUOTED[token.token_type]
        return quote + token.text.replace(quote, quote * 2) + quote
    if token.token_type in _WORDS:
        return token.text
    if token.token_type.name.endswith("STRING"):  # N'..', X'..', $$..$$: text as written
        return f"{token.token_type.name}'{token.text}'"
    if token.text.isalpha() or " " in token.text:
        return token.text.upper()
    return token.text


def _space_between(previous: Token, token: Token) -> bool:
    if previous.token_type in _NO_SPACE_AFTER or token.token_type in _NO_SPACE_BEFORE:
        return False
    return not (
        token.token_type is TokenType.L_PAREN
        and (previous.token_type in _CALLABLE or previous.token_type in Parser.TYPE_TOKENS)
    )


def _is_expression(tree: exp.Expr) -> bool:
    return not isinstance(tree, exp.DDL | exp.DML | exp.Command | exp.Use | exp.Set)


def _parse_problem(sql: SqlText, exc: ParseError, dialect: str) -> SqlProblem:
    if not exc.errors:
        return SqlProblem(f"invalid SQL ({dialect}): {exc}", sql.span.start, sql.span.end)
    error = exc.errors[0]
    description = str(error.get("description") or "invalid SQL")
    highlight = str(error.get("highlight") or "")
    line, col = error.get("line"), error.get("col")
    if not isinstance(line, int) or not isinstance(col, int):
        return SqlProblem(f"{description} ({dialect})", sql.span.start, sql.span.end)
    index = LineIndex(sql.text)
    local_end = min(len(sql.text), _offset(index, sql.text, line, col))
    local_start = max(0, local_end - len(highlight))
    message = f"invalid SQL ({dialect}): {_readable(description, highlight)}"
    if highlight and not _REQUIRED.match(description):
        message += f" near '{highlight}'"
    return SqlProblem(message, sql.span.start + local_start, sql.span.start + max(local_end, 1))


def _offset(index: LineIndex, text: str, line: int, col: int) -> int:
    """Offset just past the 1-based (line, col) that sqlglot reports for a token's end."""
    offset, current = 0, 1
    while current < line:
        newline = text.find("\n", offset)
        if newline == -1:
            break
        offset, current = newline + 1, current + 1
    return offset + col


_REQUIRED = re.compile(r"Required keyword: '(\w+)' missing for <class '[\w.]*\.(\w+)'>")


_OPERATORS = {
    "EQ": "=",
    "NEQ": "<>",
    "GT": ">",
    "GTE": ">=",
    "LT": "<",
    "LTE": "<=",
    "Add": "+",
    "Sub": "-",
    "Mul": "*",
    "Div": "/",
    "Mod": "%",
    "DPipe": "||",
    "And": "AND",
    "Or": "OR",
    "Like": "LIKE",
    "ILike": "ILIKE",
    "Is": "IS",
    "In": "IN",
    "Not": "NOT",
    "Between": "BETWEEN",
}


def _readable(description: str, highlight: str) -> str:
    """sqlglot's message in the user's words, without its internal class names."""
    required = _REQUIRED.match(description)
    if required:
        part, node = required.groups()
        operator = _OPERATORS.get(node, node.upper())
        if part == "expression":
            message = f"'{operator}' is missing its right-hand side"
        else:
            message = f"{operator} is missing its {'condition' if part == 'this' else part}"
        if highlight and highlight.upper() != operator.upper():
            message += f" (sqlglot stopped at '{highlight}')"
        return message
    if description.startswith("Expected table name but got"):
        return "expected a table name"
    return description.split(". Line", 1)[0]
