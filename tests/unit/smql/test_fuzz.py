"""Fuzzing SMQL where test_robustness.py, test_formatter_properties.py and
tests/unit/stratum/plan/test_hash_properties.py stop.

1. Bytes, not text: whatever a .smql file holds (invalid UTF-8, BOMs, NULs, lone CRs), reading it
   with `parse_file` or `load_plan` ends in SMQL's own error (or a plan), never another exception.
2. Every error is a usable diagnostic: for random text, token soups and mutated programs, each
   diagnostic's span lies inside the source, its line and column agree with the offsets, and
   the rendered error shows the source line with a caret under the span.
3. The formatter on garbage: random text and mutated valid programs give a syntax error or a
   fixed point that parses back to the same program.
4. Hashes, for the statements the hash properties do not generate (MIGRATE FILE with its
   options, MIGRATE QUERY, MIGRATE DATABASE with CAST TYPE, EXCLUDING TABLES, INCLUDING VIEWS,
   and COLUMNS renames, KEY, CAST COLUMN, ZERO DATES, NAME, AFTER): layout, keyword case and
   comments change no hash, the formatter keeps every hash and is a fixed point, and without
   comments the formatted text depends on the program only, not on its layout.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

import smql
from smql.diagnostics import Diagnostic
from smql.formatter import format_source
from stratum.cli.app import app
from stratum.errors import PlanError
from stratum.plan import MigrationPlan, compile_plan, load_plan
from tests.unit.smql.test_formatter_properties import plain
from tests.unit.smql.test_robustness import TOKENS, VALID

FAST = settings(max_examples=50, deadline=None)

# --- 1. bytes -----------------------------------------------------------------------------------

PIECES = [
    *(token.encode() for token in TOKENS),
    b"\xef\xbb\xbf",
    b"\xff",
    b"\xc3",
    b"\xc3\xa9",
    b"\xed\xa0\x80",  # an encoded surrogate: not UTF-8
    b"\x00",
    b"\r",
    b"\r\n",
    b"\xfe\xff",
]
file_bytes = (
    st.lists(st.sampled_from(PIECES), max_size=30).map(b"".join)
    | st.binary(max_size=80)
    | st.tuples(st.binary(max_size=3), st.just(VALID.encode()), st.binary(max_size=3)).map(b"".join)
)


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=file_bytes)
def test_any_bytes_in_a_file_give_an_smql_error_or_a_plan(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "fuzz.smql"
    path.write_bytes(data)
    try:
        program = smql.parse_file(path)
    except smql.SmqlError as exc:
        check_error(exc.diagnostics, exc.source)
    else:
        assert program.source == data.decode("utf-8-sig")
    try:
        load_plan(path, env={})
    except PlanError as exc:
        check_error(exc.diagnostics, exc.source)


def test_a_file_that_is_not_utf8_is_named_as_such(tmp_path: Path) -> None:
    path = tmp_path / "latin.smql"
    path.write_bytes("CONNECTION a = 'duckdb:///a'; -- café\n".encode("latin-1"))
    with pytest.raises(smql.SmqlSyntaxError, match=r"not valid UTF-8 \(byte 36: b'\\xe9'\)"):
        smql.parse_file(path)


def test_fmt_of_a_file_that_is_not_utf8_is_an_error_not_a_crash(tmp_path: Path) -> None:
    path = tmp_path / "latin.smql"
    path.write_bytes("CONNECTION a = 'duckdb:///a'; -- café\n".encode("latin-1"))
    result = CliRunner().invoke(app, ["fmt", "--stdout", str(path)])
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert result.exit_code == 1
    assert "not valid UTF-8" in result.output


# --- 2. diagnostics -----------------------------------------------------------------------------


def check_error(diagnostics: tuple[Diagnostic, ...], source: str | None) -> None:
    """At least one error; every span inside the source, its line and column those of its
    offset, and its rendering showing the line with a caret under the span."""
    assert any(d.is_error for d in diagnostics)
    for diagnostic in diagnostics:
        assert diagnostic.message
        rendered = diagnostic.render(source)
        assert diagnostic.message in rendered
        span = diagnostic.span
        if span is None or source is None:
            continue
        assert 0 <= span.start <= span.end <= len(source)
        lines = source.split("\n")
        assert 1 <= span.line <= span.end_line <= len(lines)
        assert sum(len(line) + 1 for line in lines[: span.line - 1]) + span.column - 1 == span.start
        assert f":{span.line}:{span.column}:" in rendered
        assert "^" in rendered.splitlines()[-1 if not diagnostic.notes else 2]


def must_fail_cleanly_or_compile(source: str) -> None:
    error: smql.SmqlError | PlanError | None = None
    try:
        compile_plan(smql.parse(source, "fuzz.smql"), env={})
    except (smql.SmqlError, PlanError) as exc:
        error = exc
    if error is not None:
        check_error(error.diagnostics, error.source)
        assert str(error).startswith("fuzz.smql")


@st.composite
def mutated(draw: st.DrawFn) -> str:
    source = VALID
    for _ in range(draw(st.integers(1, 4))):
        position = draw(st.integers(0, len(source)))
        width = draw(st.integers(0, 12))
        insert = draw(st.sampled_from([*TOKENS, ""]))
        source = source[:position] + insert + source[position + width :]
    return source


garbage = st.one_of(
    st.text(max_size=60),
    st.lists(st.sampled_from(TOKENS), max_size=30).map(" ".join),
    mutated(),
)


@FAST
@given(source=garbage)
def test_every_error_is_a_diagnostic_with_a_true_position(source: str) -> None:
    must_fail_cleanly_or_compile(source)


# --- 3. the formatter on garbage ---------------------------------------------------------------


@FAST
@given(source=garbage)
def test_formatting_garbage_is_a_syntax_error_or_a_fixed_point(source: str) -> None:
    try:
        output = format_source(source)
    except smql.SmqlSyntaxError as exc:
        check_error(exc.diagnostics, exc.source)
        return
    assert format_source(output) == output
    assert plain(smql.parse(output)) == plain(smql.parse(source))


# --- 4. hashes of the other statements -----------------------------------------------------------

CONNECTIONS = [
    ["CONNECTION", "src", "=", "'mysql://etl:${SRC_PW}@db/shop'", ";"],
    ["CONNECTION", "wh", "=", "'postgresql://etl@wh/analytics'", ";"],
]
EXPRESSIONS = [["amount", "*", "2"], ["upper(", "name", ")"], ["a", "||", "'-'", "||", "b"]]
TYPES = ["numeric(10,2)", "int", "text", "timestamp with time zone", "text[]"]


@st.composite
def common(draw: st.DrawFn, n: int, partitions: bool) -> list[str]:
    words: list[str] = []
    if draw(st.booleans()):
        words += ["BATCH", "SIZE", str(draw(st.integers(1, 100_000)))]
    if draw(st.booleans()):
        words += ["ON", "ERROR", draw(st.sampled_from(["stop", "REJECT", "Skip"]))]
    if draw(st.booleans()):
        words += ["ZERO", "DATES", "AS", draw(st.sampled_from(["NULL", "ERROR", "'1970-01-01'"]))]
    if partitions and draw(st.booleans()):
        words += ["PARTITIONS", str(draw(st.integers(1, 16)))]
    if draw(st.booleans()):
        words += ["NAME", f"item_{n}"]
    return words


@st.composite
def table_item(draw: st.DrawFn, n: int) -> list[str]:
    words = ["MIGRATE", f"src.t_{n}", "INTO", f"wh.raw.t_{n}"]
    if draw(st.booleans()):
        words += ["COLUMNS", "(", "id", ",", "a", "AS", "b", ",", "amount", ")"]
    if draw(st.booleans()):
        words += ["MODE", "upsert", "KEY", "(", "id", ")"]
    if draw(st.booleans()):
        words += ["CAST", "COLUMN", "amount", "TO", draw(st.sampled_from(TYPES))]
    if draw(st.booleans()):
        words += ["CAST", "TYPE", "tinyint(1)", "TO", "boolean"]
    if draw(st.booleans()):
        words += ["COMPUTE", "c", "=", *draw(st.sampled_from(EXPRESSIONS))]
    return [*words, *draw(common(n, partitions=True)), ";"]


@st.composite
def database_item(draw: st.DrawFn, n: int) -> list[str]:
    words = ["MIGRATE", "DATABASE", "src", "INTO", f"wh.db_{n}"]
    if draw(st.booleans()):
        words += ["EXCLUDING", "TABLES", "(", "'tmp_%'", ",", "'%_bak'", ")"]
    elif draw(st.booleans()):
        words += ["INCLUDING", "TABLES", "(", "'orders'", ")"]
    if draw(st.booleans()):
        words += ["INCLUDING", "VIEWS", "(", "'v_%'", ")"]
    if draw(st.booleans()):
        words += ["CAST", "TYPE", "bigint", "unsigned", "TO", "numeric(20, 0)", ","]
        words += ["COLUMN", "orders.flag", "TO", "int"]
    return [*words, *draw(common(n, partitions=True)), ";"]


@st.composite
def query_item(draw: st.DrawFn, n: int) -> list[str]:
    query = draw(
        st.sampled_from(
            [
                "(SELECT id, amount FROM orders WHERE amount > 0)",
                "(SELECT o.id, count(*) AS n FROM orders o GROUP BY o.id)",
                "(\n  SELECT id, ';' AS semi -- a comment\n  FROM t\n)",
            ]
        )
    )
    words = ["MIGRATE", "QUERY", "src", query, "INTO", f"wh.q_{n}"]
    if draw(st.booleans()):
        words += ["MODE", "append"]
    if draw(st.booleans()):
        words += ["WHERE", "id", ">", "10"]
    return [*words, *draw(common(n, partitions=False)), ";"]


@st.composite
def file_item(draw: st.DrawFn, n: int) -> list[str]:
    options = draw(
        st.lists(
            st.sampled_from(
                [
                    ["HEADER"],
                    ["DELIMITER", "';'"],
                    ["NULL", "''"],
                    ["QUOTE", "'\"'"],
                    ["ENCODING", "'latin-1'"],
                    ["ESCAPE", "'\\'"],
                ]
            ),
            unique_by=lambda o: o[0],
            max_size=4,
        )
    )
    words = ["MIGRATE", "FILE", f"'data/f_{n}.csv'"]
    if options:
        words += ["(", *[w for i, o in enumerate(options) for w in ([","] if i else []) + o], ")"]
    words += ["INTO", f"wh.raw.f_{n}"]
    if draw(st.booleans()):
        words += ["CAST", "COLUMN", "qty", "TO", "int", ",", "COLUMN", "price", "TO", "numeric"]
    if draw(st.booleans()):
        words += ["MODE", draw(st.sampled_from(["full", "append"]))]
    return [*words, *draw(common(n, partitions=False)), ";"]


@st.composite
def statements(draw: st.DrawFn) -> list[list[str]]:
    kinds = draw(
        st.lists(st.sampled_from([table_item, database_item, query_item, file_item]), max_size=5)
    )
    found = [draw(kind(n)) for n, kind in enumerate(kinds)]
    if len(found) >= 2 and draw(st.booleans()):  # the last item waits for the first
        first = found[0]
        name = first[first.index("NAME") + 1] if "NAME" in first else first[first.index("INTO") + 1]
        found[-1] = [*found[-1][:-1], "AFTER", "(", name, ")", ";"]
    return found


@st.composite
def layout(draw: st.DrawFn, tokens: list[str], comments: bool) -> str:
    gaps = [" ", "  ", "\n", "\n  ", "\t"] + ([" -- note\n", " /* c */ "] if comments else [])
    out = []
    for token in tokens:
        word = token
        if token.isalpha() and token.isupper():
            word = draw(st.sampled_from([token, token.lower(), token.capitalize()]))
        out.append(word + draw(st.sampled_from(gaps)))
    return "".join(out)


def hashes(plan: MigrationPlan) -> tuple[str, dict[str, str]]:
    return plan.hash, {item.name: item.hash for item in plan.items}


def compiled(source: str) -> MigrationPlan:
    return compile_plan(smql.parse(source), env={"SRC_PW": "x"})


@settings(max_examples=25, deadline=None)
@given(body=statements(), data=st.data())
def test_layout_and_formatting_of_every_statement_kind_change_no_hash(
    body: list[list[str]], data: st.DataObject
) -> None:
    program = CONNECTIONS + body
    reference = "\n".join(" ".join(statement) for statement in program)
    expected = hashes(compiled(reference))
    messy = "".join(data.draw(layout(statement, comments=True)) for statement in program)
    assert hashes(compiled(messy)) == expected
    formatted = format_source(messy)
    assert format_source(formatted) == formatted
    assert hashes(compiled(formatted)) == expected
    # without comments, the formatted text is the program's whatever the layout was, but for
    # the whitespace inside embedded SQL, which the formatter keeps as written
    bare = "".join(data.draw(layout(statement, comments=False)) for statement in program)
    assert format_source(bare).split() == format_source(reference).split()
