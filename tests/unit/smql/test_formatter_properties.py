"""Property tests of the SMQL formatter on generated programs.

The strategy builds random but valid SMQL: random statements and clauses, identifiers that are
not keywords, keywords in random case, random whitespace and comments between tokens, small SQL
expressions and queries (sometimes spread over several lines, with comments inside). Each
property parses the generated text first, so a generator bug shows as an SmqlSyntaxError.
"""

from __future__ import annotations

import dataclasses
import functools
import re
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from smql import syntax as s
from smql.diagnostics import SmqlSyntaxError
from smql.formatter import format_program, format_source
from smql.parser import parse

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Words that must not be generated as plain identifiers: SMQL keywords and the SQL words the
# generated expressions use (a column called `mode` may legally end an expression early).
KEYWORDS = frozenset(
    [
        "connection",
        "set",
        "migrate",
        "table",
        "database",
        "query",
        "file",
        "into",
        "stage",
        "from",
        "as",
        "entity",
        "key",
        "features",
        "dataset",
        "on",
        "timestamp",
        "over",
        "mode",
        "cursor",
        "columns",
        "compute",
        "where",
        "cast",
        "type",
        "column",
        "to",
        "batch",
        "size",
        "partitions",
        "error",
        "zero",
        "dates",
        "name",
        "after",
        "dialect",
        "including",
        "excluding",
        "tables",
        "views",
        "deduplicate",
        "order",
        "by",
        "expect",
        "else",
        "and",
        "or",
        "not",
        "is",
        "in",
        "like",
        "ilike",
        "between",
        "case",
        "when",
        "then",
        "end",
        "select",
        "null",
        "true",
        "false",
        "div",
        "mod",
        "xor",
        "collate",
        "similar",
        "regexp",
        "rlike",
        "group",
        "having",
        "limit",
        "distinct",
        "union",
        "all",
        "with",
        "asc",
        "desc",
    ]
)

# ---------------------------------------------------------------------------------------------
# Lexical pieces


@st.composite
def keyword(draw: st.DrawFn, word: str) -> str:
    style = draw(st.sampled_from(["upper", "lower", "mixed"]))
    if style == "upper":
        return word.upper()
    if style == "lower":
        return word.lower()
    flips = draw(st.integers(0, 2 ** len(word) - 1))
    return "".join(c.upper() if flips >> k & 1 else c.lower() for k, c in enumerate(word))


_PLAIN_NAME = st.builds(
    lambda first, rest: first + rest,
    st.sampled_from("abcxyzABQ_ü"),
    st.text(alphabet="abeorstuy_019", max_size=6),
).filter(lambda n: n.lower() not in KEYWORDS)
_QUOTED_NAME = st.text(alphabet='abZ _-."', min_size=1, max_size=6).map(
    lambda t: '"' + t.replace('"', '""') + '"'
)
ident = st.one_of(_PLAIN_NAME, _PLAIN_NAME, _PLAIN_NAME, _QUOTED_NAME)
plain_ident = _PLAIN_NAME
dotted = st.lists(ident, min_size=1, max_size=3).map(".".join)
string = st.text(alphabet="ab %_'x-:/\n", max_size=8).map(
    lambda t: "'" + t.replace("'", "''") + "'"
)
integer = st.integers(min_value=0, max_value=99_999).map(str)

_SPACES = [" ", " ", " ", "  ", "\n", "\n  ", "\n    ", "\n\n", "\t", "\r\n", "\n\n\n  "]
space = st.sampled_from(_SPACES)
line_comment = st.sampled_from(
    ["-- a", "-- it's", '-- "q" (x', "--", "-- -- twice", "-- /* no block", "-- ;", "-- é ,"]
)
block_comment = st.sampled_from(
    ["/* b */", "/**/", "/* it's */", "/* two\n   lines */", "/* -- x */", "/*\n*/", "/* ( ; */"]
)


@st.composite
def separator(draw: st.DrawFn) -> str:
    """Whitespace between two tokens, sometimes with comments in it."""
    parts = [draw(space)]
    while (kind := draw(st.integers(0, 9))) < 2:
        if kind == 0:
            parts.append(draw(line_comment) + draw(st.sampled_from(["\n", "\n  ", "\n\n"])))
        else:
            parts.append(draw(block_comment) + draw(space))
    return "".join(parts)


@st.composite
def tight(draw: st.DrawFn, *words: str) -> str:
    """Words joined by whitespace only (a comment would change how SQL before them ends)."""
    out = words[0]
    for word in words[1:]:
        out += draw(st.sampled_from([" ", "  ", "\n  ", "\t"])) + word
    return out


# ---------------------------------------------------------------------------------------------
# Embedded SQL

_SQL_SPACES = [" ", " ", " ", "\n      ", "\n  ", "\n\n    ", " /* in sql */ ", " -- in sql\n   "]
sql_space = st.sampled_from(_SQL_SPACES)
_OPS = ["+", "-", "*", "=", ">=", "<>", "<", "||", "AND", "or", "LIKE"]
_MULTILINE_STRING = st.sampled_from(["'two\n   lines'", "'a\n\nb  '", "'x''\n  y'"])


@functools.cache
def sql_expr(depth: int = 0) -> st.SearchStrategy[str]:
    atom = st.one_of(plain_ident, integer, string, _MULTILINE_STRING)
    if depth >= 2:
        return atom
    sub = sql_expr(depth + 1)
    return st.one_of(
        atom,
        st.tuples(sub, sql_space, st.sampled_from(_OPS), sql_space, sub).map("".join),
        st.tuples(sub, sql_space).map(lambda p: f"({p[0]}{p[1]}OR b) AND c"),
        st.tuples(sub, sub).map(lambda p: f"f({p[0]}, {p[1]})"),
        st.tuples(sub, sql_space, sub, sql_space, sub).map(
            lambda p: f"CASE WHEN {p[0]}{p[1]}THEN {p[2]}{p[3]}ELSE {p[4]} END"
        ),
        st.tuples(sub).map(lambda p: f"{p[0]} IS NOT NULL"),
        st.tuples(sub).map(lambda p: f"{p[0]} IN (1, 2)"),
    )


@st.composite
def sql_query(draw: st.DrawFn) -> str:
    parts = ["SELECT ", draw(sql_expr()), " AS ", draw(plain_ident)]
    if draw(st.booleans()):
        parts += [",", draw(sql_space), draw(sql_expr())]
    parts += [draw(sql_space), "FROM ", draw(dotted)]
    if draw(st.booleans()):
        parts += [draw(sql_space), "WHERE ", draw(sql_expr())]
    return "".join(parts)


# ---------------------------------------------------------------------------------------------
# Clauses: each gives its tokens and whether it ends with embedded SQL

Clause = tuple[list[str], bool]


def _word(words: list[str]) -> st.SearchStrategy[str]:
    return st.one_of(st.sampled_from(words), plain_ident)


@st.composite
def comma_list(draw: st.DrawFn, element: st.SearchStrategy[list[str]], most: int = 4) -> list[str]:
    items = draw(st.lists(element, min_size=1, max_size=most))
    tokens: list[str] = []
    for k, item in enumerate(items):
        tokens += ([","] if k else []) + item
    return tokens


type_spec = st.sampled_from(
    ["int", "TINYINT(1)", "numeric(20, 0)", "text", "bigint unsigned", "text[]", "VARCHAR(10)[]"]
)


@st.composite
def clause(draw: st.DrawFn, sql_allowed: bool, after_sql: bool) -> Clause:
    kinds = ["mode", "key", "cursor", "columns", "cast", "batch", "partitions", "on_error"]
    kinds += ["zero", "name", "after", "dialect", "dedup_plain", "expect"]
    kinds += ["compute", "where", "dedup_order"] if sql_allowed else []
    kinds += [] if after_sql else ["including", "excluding", "including_views"]
    kind = draw(st.sampled_from(kinds))

    def kw(word: str) -> str:
        return draw(keyword(word))

    def idents() -> list[str]:
        return draw(comma_list(ident.map(lambda i: [i])))

    if kind == "mode":
        value = draw(_word(["full", "FULL", "Append", "incremental", "upsert"]))
        return [draw(tight(kw("mode"), value))], False
    if kind == "key":
        return [draw(tight(kw("key"), "(")), *idents(), ")"], False
    if kind == "cursor":
        return [draw(tight(kw("cursor"), draw(ident)))], False
    if kind == "columns":
        column = st.one_of(
            ident.map(lambda i: [i]),
            st.tuples(ident, keyword("as"), ident).map(list),
        )
        return [draw(tight(kw("columns"), "(")), *draw(comma_list(column)), ")"], False
    if kind == "cast":
        rule = st.one_of(
            st.tuples(keyword("type"), type_spec, keyword("to"), type_spec).map(list),
            st.tuples(keyword("column"), dotted, keyword("to"), type_spec).map(list),
        )
        rules = draw(comma_list(rule, most=3))
        return [draw(tight(kw("cast"), rules[0])), *rules[1:]], False
    if kind == "batch":
        return [draw(tight(kw("batch"), kw("size"), draw(integer)))], False
    if kind == "partitions":
        return [draw(tight(kw("partitions"), draw(integer)))], False
    if kind == "on_error":
        value = draw(_word(["stop", "Reject", "SKIP"]))
        return [draw(tight(kw("on"), kw("error"), value))], False
    if kind == "zero":
        value = draw(st.one_of(st.sampled_from(["null", "ERROR", "'1970-01-01'"]), integer))
        return [draw(tight(kw("zero"), kw("dates"), kw("as"), value))], False
    if kind == "name":
        return [draw(tight(kw("name"), draw(dotted)))], False
    if kind == "after":
        items = draw(comma_list(dotted.map(lambda d: [d])))
        return [draw(tight(kw("after"), "(")), *items, ")"], False
    if kind == "dialect":
        value = draw(_word(["postgres", "MySQL", "duckdb"]))
        return [draw(tight(kw("dialect"), value))], False
    if kind in ("dedup_plain", "dedup_order"):
        tokens = [kw("deduplicate"), kw("on"), "(", *idents(), ")"]
        if kind == "dedup_plain":
            return tokens, False
        order = st.tuples(sql_expr(), st.sampled_from(["", " DESC", " asc"])).map(
            lambda p: [p[0] + p[1]]
        )
        return [*tokens, kw("order"), kw("by"), *draw(comma_list(order, most=2))], True
    if kind == "expect":
        action = draw(_word(["drop", "FAIL", "Flag", "quarantine"]))
        return [kw("expect"), draw(sql_expr()), kw("else"), action], False
    if kind == "compute":
        item = st.tuples(ident, st.just("="), sql_expr()).map(list)
        return [kw("compute"), *draw(comma_list(item))], True
    if kind == "where":
        return [kw("where"), draw(sql_expr())], True
    patterns = draw(comma_list(string.map(lambda p: [p])))
    if kind == "including_views":
        return [kw("including"), kw("views"), "(", *patterns, ")"], False
    return [kw(kind), kw("tables"), "(", *patterns, ")"], False


@st.composite
def clauses(draw: st.DrawFn, sql_allowed: bool = True, most: int = 4) -> list[str]:
    tokens: list[str] = []
    after_sql = False
    for _ in range(draw(st.integers(0, most))):
        more, after_sql = draw(clause(sql_allowed, after_sql))
        tokens += more
    return tokens


# ---------------------------------------------------------------------------------------------
# Statements


@st.composite
def statement(draw: st.DrawFn) -> list[str]:
    kind = draw(
        st.sampled_from(
            [
                *("connection", "set", "entity", "table", "database", "query", "file"),
                *("stage_from", "stage_query", "features", "dataset"),
            ]
        )
    )

    def kw(word: str) -> str:
        return draw(keyword(word))

    if kind == "connection":
        return [kw("connection"), draw(ident), "=", draw(string), ";"]
    if kind == "set":
        value = st.one_of(string, integer, plain_ident)
        setting = st.tuples(
            st.one_of(st.sampled_from(["batch_size", "Parallel", "ON_ERROR"]), ident),
            st.just("="),
            value,
        ).map(list)
        return [kw("set"), *draw(comma_list(setting, most=3)), ";"]
    if kind == "entity":
        keys = draw(comma_list(ident.map(lambda i: [i]), most=3))
        return [kw("entity"), draw(ident), kw("key"), "(", *keys, ")", ";"]
    if kind == "table":
        head = [kw("migrate"), *([kw("table")] if draw(st.booleans()) else [])]
        return [*head, draw(dotted), kw("into"), draw(dotted), *draw(clauses()), ";"]
    if kind == "database":
        head = [kw("migrate"), kw("database"), draw(dotted), kw("into"), draw(dotted)]
        return [*head, *draw(clauses()), ";"]
    if kind == "query":
        lead, trail = (
            draw(st.sampled_from(["", "\n  ", " "])),
            draw(st.sampled_from(["", "\n", " -- end of query\n", " /* q */ "])),
        )
        query = f"({lead}{draw(sql_query())}{trail})"
        head = [kw("migrate"), kw("query"), draw(ident), query, kw("into"), draw(dotted)]
        return [*head, *draw(clauses()), ";"]
    if kind == "file":
        option = st.tuples(
            st.sampled_from(["HEADER", "delimiter", "NULL", "Format", "quote", "header"]),
            st.sampled_from(["", "TRUE", "false", "';'", "''", "CSV", "2"]),
        ).map(lambda p: [p[0], p[1]] if p[1] else [p[0]])
        options = ["(", *draw(comma_list(option)), ")"] if draw(st.booleans()) else []
        head = [kw("migrate"), kw("file"), draw(string), *options, kw("into"), draw(dotted)]
        return [*head, *draw(clauses()), ";"]
    if kind == "stage_from":
        head = [kw("stage"), draw(dotted), kw("from"), draw(dotted)]
        return [*head, *draw(clauses()), ";"]
    if kind == "stage_query":
        body = draw(clauses(sql_allowed=False, most=2))
        return [kw("stage"), draw(dotted), *body, kw("as"), draw(sql_query()), ";"]
    if kind == "dataset":
        head = [kw("dataset"), draw(dotted), kw("from"), draw(dotted), kw("timestamp"), draw(ident)]
        tables = draw(comma_list(dotted.map(lambda d: [d])))
        return [*head, kw("features"), "(", *tables, ")", *draw(clauses(most=2)), ";"]
    feature = st.tuples(ident, st.just("="), sql_expr(), st.booleans(), integer).map(
        lambda p: [p[0], p[1], p[2]] + ([f"OVER {p[4]}", "days"] if p[3] else [])
    )
    head = [kw("features"), draw(dotted), kw("on"), draw(ident), kw("from"), draw(dotted)]
    head += [kw("timestamp"), draw(ident), "(", *draw(comma_list(feature, most=3)), ")"]
    return [*head, *draw(clauses(most=2)), ";"]


@st.composite
def program_text(draw: st.DrawFn) -> str:
    tokens = [token for stmt in draw(st.lists(statement(), max_size=4)) for token in stmt]
    out = draw(separator()).lstrip(" \t") if draw(st.booleans()) else ""
    for k, token in enumerate(tokens):
        out += (draw(separator()) if k else "") + token
    return out + draw(st.one_of(st.just(""), separator()))


# ---------------------------------------------------------------------------------------------
# Comparing programs

# Fields whose words the formatter may change the case of (known value words, setting names,
# file option names, type names).
_CASE_FOLDED = {
    (s.ModeOption, "value"),
    (s.OnErrorOption, "value"),
    (s.DialectOption, "value"),
    (s.ExpectOption, "action"),
    (s.Window, "unit"),
    (s.ZeroDatesOption, "value"),
    (s.FileOption, "name"),
    (s.FileOption, "value"),
    (s.Setting, "name"),
    (s.TypeWord, "name"),
}
_SQL_TOKEN = re.compile(r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"|[^\s'\"]+")


def plain(node: Any, fold: bool = False) -> Any:
    """A program as plain data: no spans, SQL compared token by token (strings exactly)."""
    if isinstance(node, s.SqlText):
        return ("sql", tuple(_SQL_TOKEN.findall(node.text)))
    if isinstance(node, s.Ident):
        return ("ident", node.name.lower() if fold and not node.quoted else node.name, node.quoted)
    if isinstance(node, s.WordLit):
        return ("word", node.value.lower() if fold else node.value)
    if isinstance(node, str):
        return node.lower() if fold else node
    if isinstance(node, tuple):
        return tuple(plain(item, fold) for item in node)
    if dataclasses.is_dataclass(node) and not isinstance(node, type):
        fields = [f.name for f in dataclasses.fields(node)]
        return (
            type(node).__name__,
            *(
                (name, plain(getattr(node, name), (type(node), name) in _CASE_FOLDED))
                for name in fields
                if name not in ("span", "source", "path", "comments")
                and not isinstance(getattr(node, name), s.Span)
            ),
        )
    return node


def comments_in_order(texts: list[str], output: str) -> bool:
    pos = 0
    for text in texts:
        found = output.find(text, pos)
        if found < 0:
            return False
        pos = found + len(text)
    return True


# ---------------------------------------------------------------------------------------------
# Properties


@SETTINGS
@given(program_text())
def test_format_is_idempotent(source: str) -> None:
    once = format_source(source)
    assert format_source(once) == once


@SETTINGS
@given(program_text())
def test_every_comment_survives_in_order(source: str) -> None:
    program = parse(source)
    output = format_program(program)
    assert comments_in_order([c.text for c in program.comments], output)
    # and they stay separate comments: none is swallowed by a `--` comment before it
    assert [c.text for c in parse(output).comments] == [c.text for c in program.comments]


@SETTINGS
@given(program_text())
def test_format_keeps_the_program(source: str) -> None:
    program = parse(source)
    output = format_program(program)
    assert plain(parse(output)) == plain(program)
    assert output == "" or (output.endswith("\n") and not output.endswith("\n\n"))


_SOUP = st.sampled_from(
    [
        "MIGRATE", "migrate", "INTO", "STAGE", "AS", "SELECT", "FROM", "WHERE", "MODE", "full",
        "KEY", "COLUMNS", "COMPUTE", "EXPECT", "ELSE", "DROP", "SET", "CONNECTION", "FEATURES",
        "ON", "TIMESTAMP", "OVER", "30", "DAYS", "CAST", "TYPE", "TO", "int", "(", ")", ",", ";",
        "=", ".", "a", "b", '"q"', "'s'", "'", '"', "--", "/*", "*/", "-- c\n", "/* c */", "\n",
        " ", "CASE", "END", "ENTITY", "QUERY", "FILE", "DATABASE", "a > 1", "x + 1", "DATASET",
    ]
)  # fmt: skip


@SETTINGS
@given(st.lists(_SOUP, max_size=25).map(" ".join))
def test_arbitrary_text_formats_or_raises_a_syntax_error(source: str) -> None:
    try:
        output = format_source(source)
    except SmqlSyntaxError:
        return
    assert isinstance(output, str)
    assert format_source(output) == output
