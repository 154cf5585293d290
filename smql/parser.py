"""Parsing SMQL text into the typed syntax tree.

The grammar (grammar.lark) is compiled once into a Lark LALR(1) parser with the contextual lexer.
When a file does not parse, it is split into statements at top-level semicolons and each one is
parsed on its own, so that every syntax error in the file is reported, not only the first.
"""

from __future__ import annotations

import contextvars
import difflib
import functools
import os
import re
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import Any

from lark import Lark, Token, Transformer, v_args
from lark.exceptions import (
    UnexpectedCharacters,
    UnexpectedInput,
    UnexpectedToken,
    VisitError,
)

from smql import syntax as s
from smql.diagnostics import Diagnostic, LineIndex, Severity, SmqlSyntaxError

_comments: contextvars.ContextVar[list[Token]] = contextvars.ContextVar("smql_comments")


def _collect_comment(token: Token) -> Token:
    sink = _comments.get(None)
    if sink is not None:
        sink.append(token)
    return token


@functools.cache
def _parser() -> Lark:
    grammar = resources.files("smql").joinpath("grammar.lark").read_text(encoding="utf-8")
    return Lark(
        grammar,
        parser="lalr",
        lexer="contextual",
        propagate_positions=True,
        maybe_placeholders=True,
        lexer_callbacks={"LINE_COMMENT": _collect_comment, "BLOCK_COMMENT": _collect_comment},
        cache=_cache_file(),
    )


def _cache_file() -> str | bool:
    """Where lark keeps the analysed grammar (it halves the start-up of every command): a
    file in the user's own cache directory, made owner-only. Lark names the grammar's hash and
    its own version in the file, and the file is a pickle, so it is never read from a shared
    directory such as /tmp. False (no cache) when the directory cannot be made."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    directory = os.path.join(base, "stratum")
    try:
        os.makedirs(directory, mode=0o700, exist_ok=True)
        if os.stat(directory).st_uid != os.getuid() or not os.access(directory, os.W_OK):
            return False
    except OSError:
        return False
    return os.path.join(directory, "smql-grammar.lark-cache")


def parse(source: str, path: str = "<string>") -> s.Program:
    """Parse SMQL text. Raises SmqlSyntaxError listing every syntax error found."""
    comments: list[Token] = []
    token = _comments.set(comments)
    try:
        tree = _parser().parse(source)
    except UnexpectedInput:
        raise SmqlSyntaxError(_all_syntax_errors(source, path), source) from None
    finally:
        _comments.reset(token)
    index = LineIndex(source)
    try:
        statements = _Builder(index).transform(tree)
    except VisitError as exc:  # a builder bug, not a user error: keep the original cause
        raise exc.orig_exc from exc
    return s.Program(
        path=path,
        source=source,
        statements=tuple(statements),
        comments=tuple(
            s.Comment(str(c).rstrip(), index.span(c.start_pos or 0, c.end_pos or 0))
            for c in comments
        ),
    )


def parse_file(path: str | Path) -> s.Program:
    """Read and parse a .smql file (UTF-8, a BOM is allowed)."""
    file = Path(path)
    data = file.read_bytes()
    try:
        source = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        message = f"file is not valid UTF-8 (byte {exc.start}: {data[exc.start : exc.end]!r})"
        raise SmqlSyntaxError([Diagnostic(Severity.ERROR, message, str(path))]) from None
    return parse(source, str(path))


# ---------------------------------------------------------------------------------------------
# Syntax errors


def _all_syntax_errors(source: str, path: str) -> list[Diagnostic]:
    diagnostics = []
    index = LineIndex(source)
    for start, end in split_statements(source):
        line, column = index.position(start)
        pad = "\n" * (line - 1) + " " * (column - 1)
        try:
            _parser().parse(pad + source[start:end])
        except UnexpectedInput as exc:
            chunk_end = start + len(source[start:end].rstrip())
            chunk = (start, source[start:end])
            diagnostics.append(
                _describe(exc, index, path, start - len(pad), chunk_end, chunk=chunk)
            )
    if not diagnostics:  # the split disagreed with the grammar: report the whole-file error
        try:
            _parser().parse(source)
        except UnexpectedInput as exc:
            end_of_text = len(source.rstrip())
            diagnostics.append(_describe(exc, index, path, 0, end_of_text, chunk=(0, source)))
    return diagnostics


def split_statements(source: str) -> Iterator[tuple[int, int]]:
    """(start, end) of each statement: text up to a `;` outside quotes and comments.

    Only used to keep going after a syntax error; a successful parse never depends on it.
    """
    i, n, start = 0, len(source), 0
    while i < n:
        char = source[i]
        if char in "'\"`":
            close = source.find(char, i + 1)
            while close != -1 and source[close + 1 : close + 2] == char:
                close = source.find(char, close + 2)
            i = n if close == -1 else close + 1
            continue
        if source.startswith("--", i):
            newline = source.find("\n", i)
            i = n if newline == -1 else newline
            continue
        if source.startswith("/*", i):
            close = source.find("*/", i + 2)
            i = n if close == -1 else close + 2
            continue
        if char == ";":  # no SMQL construct holds a ';' inside parentheses
            yield start, i + 1
            start = i + 1
        i += 1
    if source[start:].strip():
        yield start, n


_CLAUSE_WORDS = frozenset(
    [
        "MODE",
        "KEY",
        "CURSOR",
        "COLUMNS",
        "COMPUTE",
        "WHERE",
        "CAST",
        "BATCH",
        "PARTITIONS",
        "ON",
        "ZERO",
        "NAME",
        "AFTER",
        "DIALECT",
        "INCLUDING",
        "EXCLUDING",
        "DEDUPLICATE",
        "EXPECT",
    ]
)

STRING_RE = re.compile(r"'(?:[^']|'')*'")

_FRIENDLY = {
    "NAME": "a name",
    "QUOTED_NAME": "a quoted name",
    "STRING": "a string",
    "INT": "a number",
    "SQL_EXPR": "an SQL expression",
    "SQL_QUERY": "a query",
    "SQL_PAREN": "a query in parentheses",
    "$END": "end of file",
}


def _terminal_text(name: str) -> str:
    if name in _FRIENDLY:
        return _FRIENDLY[name]
    try:
        pattern = _parser().get_terminal(name).pattern
    except KeyError:
        return name
    if pattern.type == "str":
        return f"'{pattern.value.upper()}'"
    return name.lower()


def _expected_text(expected: set[str]) -> str:
    clauses = {name for name in expected if _terminal_text(name).strip("'") in _CLAUSE_WORDS}
    if len(clauses) > 4:
        rest = _expected_text(expected - clauses) + " or " if expected - clauses else ""
        return rest + "another clause (MODE, KEY, WHERE, ...)"
    names = sorted(expected - {"QUOTED_NAME"} if "NAME" in expected else expected)
    words = sorted({_terminal_text(name) for name in names}, key=lambda w: (w[0] != "'", w))
    if len(words) > 8:
        words = [*words[:7], "..."]
    if len(words) == 1:
        return words[0]
    return ", ".join(words[:-1]) + " or " + words[-1]


def _describe(
    exc: UnexpectedInput,
    index: LineIndex,
    path: str,
    shift: int,
    input_end: int,
    *,
    chunk: tuple[int, str] = (0, ""),
) -> Diagnostic:
    chunk_start, chunk_text = chunk
    expected = _precise_expected(exc)
    if isinstance(exc, UnexpectedToken) and exc.token.type != "$END":
        token = exc.token
        start = (token.start_pos or 0) + shift
        text = str(token).split(None, 1)[0] if str(token).strip() else str(token)
        end = start + max(1, len(text))
        found = f"'{_shorten(text)}'"
        string = STRING_RE.match(str(token))
        if string:  # the root lexer may have taken it for SQL: judge by the text
            end = start + string.end()
            found = f"string {_shorten(string.group())}"
        elif text.startswith("(") and _unbalanced(chunk_text[start - chunk_start :]):
            message = "'(' is never closed (or the SQL nests deeper than 8 levels of parentheses)"
            return Diagnostic(Severity.ERROR, message, path, index.span(start, start + 1))
    elif isinstance(exc, UnexpectedCharacters):
        start = (exc.pos_in_stream or 0) + shift
        end = start + 1
        if exc.char == "(" and _unbalanced(chunk_text[start - chunk_start :]):
            message = "'(' is never closed (or the SQL nests deeper than 8 levels of parentheses)"
            return Diagnostic(Severity.ERROR, message, path, index.span(start, end))
        if exc.char in "'\"`":
            kind = "string" if exc.char == "'" else "quoted name"
            message = f"unterminated {kind}: no closing {exc.char} before the end of the file"
            return Diagnostic(Severity.ERROR, message, path, index.span(start, end))
        found = f"character {exc.char!r}"
    else:  # end of input: point just past the last thing written
        start = end = input_end
        found = "end of file"
    message = f"unexpected {found}"
    if expected:
        message += f", expected {_expected_text(expected)}"
        suggestion = _keyword_suggestion(found, expected)
        if suggestion:
            message += f" (did you mean '{suggestion}'?)"
    return Diagnostic(Severity.ERROR, message, path, index.span(start, end))


def _unbalanced(text: str) -> bool:
    """Whether the text (up to its statement's end) opens more parentheses than it closes,
    outside quoted strings and names."""
    depth = 0
    for piece in re.split(r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"", text):
        depth += piece.count("(") - piece.count(")")
    return depth > 0


def _precise_expected(exc: UnexpectedInput) -> set[str]:
    """What the parser can accept here. LALR merges states, so the sets Lark reports may hold
    tokens that are only valid elsewhere; the interactive parser tries each one for real."""
    interactive = getattr(exc, "interactive_parser", None)
    if interactive is not None:
        try:
            return set(interactive.accepts())
        except UnexpectedInput:
            pass
    if isinstance(exc, UnexpectedCharacters):
        return set(exc.allowed or ())
    return set(getattr(exc, "expected", ()) or ())


def _keyword_suggestion(found: str, expected: set[str]) -> str | None:
    keywords = []
    for name in expected:
        text = _terminal_text(name)
        if text.startswith("'") and text[1:-1].isalpha():
            keywords.append(text[1:-1])
    word = found.strip("'").upper()
    matches = difflib.get_close_matches(word, keywords, n=1, cutoff=0.75)
    return matches[0] if matches and matches[0] != word else None


def _shorten(text: str, limit: int = 30) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


# ---------------------------------------------------------------------------------------------
# Parse tree -> syntax tree


def _unquote_string(text: str) -> str:
    return text[1:-1].replace("''", "'")


def _unquote_ident(text: str) -> str:
    return text[1:-1].replace('""', '"')


@v_args(meta=True)
class _Builder(Transformer[Token, list[s.Statement]]):
    """Builds syntax nodes bottom-up. Spans are computed from absolute offsets."""

    def __init__(self, index: LineIndex) -> None:
        super().__init__()
        self._index = index

    def _span(self, meta: Any) -> s.Span:
        return self._index.span(meta.start_pos, meta.end_pos)

    def _token_span(self, token: Token) -> s.Span:
        return self._index.span(token.start_pos or 0, token.end_pos or 0)

    def _sql(self, token: Token, strip_parens: bool = False) -> s.SqlText:
        start, end = token.start_pos or 0, token.end_pos or 0
        text = str(token)
        if strip_parens:
            text, start, end = text[1:-1], start + 1, end - 1
        lead = len(text) - len(text.lstrip())
        trail = len(text) - len(text.rstrip())
        text = text.strip()
        return s.SqlText(text, self._index.span(start + lead, end - trail))

    # --- names and literals

    def start(self, meta: Any, children: list[s.Statement]) -> list[s.Statement]:
        return children

    def ident(self, meta: Any, children: list[Token]) -> s.Ident:
        (token,) = children
        span = self._token_span(token)
        if token.type == "QUOTED_NAME":
            return s.Ident(_unquote_ident(str(token)), span, quoted=True)
        return s.Ident(str(token), span)

    query_connection = ident

    def dotted(self, meta: Any, children: list[s.Ident]) -> s.Dotted:
        return s.Dotted(tuple(children), self._span(meta))

    def ident_list(self, meta: Any, children: list[s.Ident]) -> tuple[s.Ident, ...]:
        return tuple(children)

    def string(self, meta: Any, children: list[Token]) -> s.StringLit:
        (token,) = children
        return s.StringLit(_unquote_string(str(token)), self._token_span(token))

    def integer(self, meta: Any, children: list[Token]) -> s.IntLit:
        (token,) = children
        return s.IntLit(int(str(token)), self._token_span(token))

    def word(self, meta: Any, children: list[Token]) -> s.WordLit:
        (token,) = children
        return s.WordLit(str(token), self._token_span(token))

    def type_word(self, meta: Any, children: list[Any]) -> s.TypeWord:
        name, *args = children
        return s.TypeWord(str(name), tuple(arg.value for arg in args), self._span(meta))

    def array_suffix(self, meta: Any, children: list[Any]) -> int:
        return 1

    def type_spec(self, meta: Any, children: list[Any]) -> s.TypeSpec:
        words = tuple(c for c in children if isinstance(c, s.TypeWord))
        dims = sum(1 for c in children if isinstance(c, int))
        return s.TypeSpec(words, dims, self._span(meta))

    # --- declarations

    def connection(self, meta: Any, children: list[Any]) -> s.Connection:
        name, url = children
        return s.Connection(name, url, self._span(meta))

    def setting(self, meta: Any, children: list[Any]) -> s.Setting:
        name, value = children
        return s.Setting(name, value, self._span(meta))

    def set_statement(self, meta: Any, children: list[s.Setting]) -> s.SetStatement:
        return s.SetStatement(tuple(children), self._span(meta))

    # --- items

    def migrate_table(self, meta: Any, children: list[Any]) -> s.MigrateTable:
        table_kw, source, target, *options = children
        return s.MigrateTable(
            source, target, tuple(options), self._span(meta), table_keyword=table_kw is not None
        )

    def migrate_database(self, meta: Any, children: list[Any]) -> s.MigrateDatabase:
        source, target, *options = children
        return s.MigrateDatabase(source, target, tuple(options), self._span(meta))

    def migrate_query(self, meta: Any, children: list[Any]) -> s.MigrateQuery:
        connection, query, target, *options = children
        return s.MigrateQuery(
            connection,
            self._sql(query, strip_parens=True),
            target,
            tuple(options),
            self._span(meta),
        )

    def file_option(self, meta: Any, children: list[Any]) -> s.FileOption:
        name, value = children
        return s.FileOption(name, value, self._span(meta))

    def file_options(self, meta: Any, children: list[s.FileOption]) -> tuple[s.FileOption, ...]:
        return tuple(children)

    def migrate_file(self, meta: Any, children: list[Any]) -> s.MigrateFile:
        path, file_options, target, *options = children
        return s.MigrateFile(path, file_options or (), target, tuple(options), self._span(meta))

    def stage_from(self, meta: Any, children: list[Any]) -> s.StageFrom:
        target, source, *options = children
        return s.StageFrom(target, source, tuple(options), self._span(meta))

    def stage_query(self, meta: Any, children: list[Any]) -> s.StageQuery:
        target, *options, query = children
        return s.StageQuery(target, tuple(options), self._sql(query), self._span(meta))

    def entity(self, meta: Any, children: list[Any]) -> s.Entity:
        name, keys = children
        return s.Entity(name, keys, self._span(meta))

    def window(self, meta: Any, children: list[Any]) -> s.Window:
        amount, unit = children
        return s.Window(amount, unit, self._span(meta))

    def feature(self, meta: Any, children: list[Any]) -> s.Feature:
        name, expr, window = children
        return s.Feature(name, self._sql(expr), window, self._span(meta))

    def features(self, meta: Any, children: list[Any]) -> s.Features:
        target, entity, source, timestamp, *rest = children
        feats = tuple(c for c in rest if isinstance(c, s.Feature))
        options = tuple(c for c in rest if not isinstance(c, s.Feature))
        return s.Features(target, entity, source, timestamp, feats, options, self._span(meta))

    def dataset_features(
        self, meta: Any, children: list[s.Dotted]
    ) -> tuple[tuple[s.Dotted, ...], s.Span]:
        return tuple(children), self._span(meta)

    def dataset(self, meta: Any, children: list[Any]) -> s.Dataset:
        target, spine, timestamp, (tables, tables_span), *options = children
        return s.Dataset(
            target, spine, timestamp, tables, tables_span, tuple(options), self._span(meta)
        )

    # --- options

    def mode_option(self, meta: Any, children: list[Any]) -> s.ModeOption:
        return s.ModeOption(children[0], self._span(meta))

    def key_option(self, meta: Any, children: list[Any]) -> s.KeyOption:
        return s.KeyOption(children[0], self._span(meta))

    def cursor_option(self, meta: Any, children: list[Any]) -> s.CursorOption:
        return s.CursorOption(children[0], self._span(meta))

    def column(self, meta: Any, children: list[Any]) -> s.Column:
        name, alias = children
        return s.Column(name, alias, self._span(meta))

    def columns_option(self, meta: Any, children: list[s.Column]) -> s.ColumnsOption:
        return s.ColumnsOption(tuple(children), self._span(meta))

    def computed(self, meta: Any, children: list[Any]) -> s.Computed:
        name, expr = children
        return s.Computed(name, self._sql(expr), self._span(meta))

    def compute_option(self, meta: Any, children: list[s.Computed]) -> s.ComputeOption:
        return s.ComputeOption(tuple(children), self._span(meta))

    def where_option(self, meta: Any, children: list[Token]) -> s.WhereOption:
        return s.WhereOption(self._sql(children[0]), self._span(meta))

    def cast_type(self, meta: Any, children: list[Any]) -> s.CastType:
        source, target = children
        return s.CastType(source, target, self._span(meta))

    def cast_column(self, meta: Any, children: list[Any]) -> s.CastColumn:
        column, target = children
        return s.CastColumn(column, target, self._span(meta))

    def cast_option(self, meta: Any, children: list[s.CastRule]) -> s.CastOption:
        return s.CastOption(tuple(children), self._span(meta))

    def batch_size_option(self, meta: Any, children: list[Any]) -> s.BatchSizeOption:
        return s.BatchSizeOption(children[0], self._span(meta))

    def partitions_option(self, meta: Any, children: list[Any]) -> s.PartitionsOption:
        return s.PartitionsOption(children[0], self._span(meta))

    def on_error_option(self, meta: Any, children: list[Any]) -> s.OnErrorOption:
        return s.OnErrorOption(children[0], self._span(meta))

    def zero_dates_option(self, meta: Any, children: list[Any]) -> s.ZeroDatesOption:
        return s.ZeroDatesOption(children[0], self._span(meta))

    def name_option(self, meta: Any, children: list[Any]) -> s.NameOption:
        return s.NameOption(children[0], self._span(meta))

    def after_option(self, meta: Any, children: list[s.Dotted]) -> s.AfterOption:
        return s.AfterOption(tuple(children), self._span(meta))

    def dialect_option(self, meta: Any, children: list[Any]) -> s.DialectOption:
        return s.DialectOption(children[0], self._span(meta))

    def including_option(self, meta: Any, children: list[s.StringLit]) -> s.IncludingOption:
        return s.IncludingOption(tuple(children), self._span(meta))

    def excluding_option(self, meta: Any, children: list[s.StringLit]) -> s.ExcludingOption:
        return s.ExcludingOption(tuple(children), self._span(meta))

    def including_views_option(
        self, meta: Any, children: list[s.StringLit]
    ) -> s.IncludingViewsOption:
        return s.IncludingViewsOption(tuple(children), self._span(meta))

    def order_by(self, meta: Any, children: list[Token]) -> tuple[s.SqlText, ...]:
        return tuple(self._sql(token) for token in children)

    def deduplicate_option(self, meta: Any, children: list[Any]) -> s.DeduplicateOption:
        columns, order_by = children
        return s.DeduplicateOption(columns, order_by or (), self._span(meta))

    def expect_option(self, meta: Any, children: list[Any]) -> s.ExpectOption:
        condition, action = children
        return s.ExpectOption(self._sql(condition), action, self._span(meta))
